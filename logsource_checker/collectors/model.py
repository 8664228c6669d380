"""What a collector configuration forwards, per channel, and the event filters it applies.

Every parser in this package returns a ``CollectorConfig``: one ``ChannelInput`` per channel stanza
(Winlogbeat ``event_logs`` entry, Splunk ``[WinEventLog://...]`` stanza, WEF ``<Select Path=...>``,
Wazuh ``<localfile>``, ...). A filter answers for one ``Event`` (channel, EventID, provider):
``True`` (forwarded), ``False`` (dropped, with why) or ``None`` (the configuration tests something
we cannot know for the event, with why). No channel or event ID is named here: they come from the
files read and from the guide data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..policy.model import PolicyInputError
from . import xpath
from .xpath import Event

Verdict = tuple["bool | None", str]


class CollectorInputError(PolicyInputError):
    """A collector file that cannot be used at all (exit status 2)."""


@dataclass(frozen=True)
class IdRanges:
    """EventID ranges (inclusive); ``None`` as a bound never occurs."""
    ranges: tuple[tuple[int, int], ...]

    def __contains__(self, event_id: int) -> bool:
        return any(lo <= event_id <= hi for lo, hi in self.ranges)

    def text(self) -> str:
        return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges)


class Filter:
    """An event filter: ``test(event) -> (True | False | None, why)`` and a one-line description."""

    description = "every event"

    def test(self, event: Event) -> Verdict:
        return True, "every event of the channel"


class IdFilter(Filter):
    """Forward EventIDs in ``include`` (all when None) unless in ``exclude``."""

    def __init__(self, include: IdRanges | None, exclude: IdRanges | None, what: str) -> None:
        self.include, self.exclude, self.what = include, exclude, what
        parts = []
        if include is not None:
            parts.append(f"EventIDs {include.text()}")
        if exclude is not None and exclude.ranges:
            parts.append(f"except {exclude.text()}")
        self.description = f"{what} " + (" ".join(parts) if parts else "every event")

    def test(self, event: Event) -> Verdict:
        if event.event_id is None:
            if self.include is None:
                return True, f"{self.what}: no EventID list"
            return None, f"{self.what} forwards only EventIDs {self.include.text()}; the rule names no EventID"
        if self.exclude is not None and event.event_id in self.exclude:
            return False, f"EventID {event.event_id} is excluded by {self.what} ({self.exclude.text()})"
        if self.include is not None and event.event_id not in self.include:
            return False, f"EventID {event.event_id} is not in {self.what} ({self.include.text()})"
        return True, f"EventID {event.event_id} is forwarded ({self.description})"


class XPathFilter(Filter):
    """A Windows event query: forwarded when some Select picks the event and no Suppress does."""

    def __init__(self, selects: Sequence[str], suppresses: Sequence[str], what: str) -> None:
        self.what = what
        self.problem: str | None = None
        self.selects, self.suppresses = [], []
        try:
            self.selects = [(text, xpath.parse(text)) for text in selects]
            self.suppresses = [(text, xpath.parse(text)) for text in suppresses]
        except xpath.XPathError as exc:
            self.problem = f"{what}: XPath not understood ({exc})"
        shown = " | ".join(" ".join(text.split())[:120] for text in selects) or "nothing"
        self.description = f"{what} {shown}" + (f" (suppress {len(suppresses)})" if suppresses else "")

    def test(self, event: Event) -> Verdict:
        if self.problem:
            return None, self.problem
        picked = xpath.Result(False)
        for text, tree in self.selects:
            picked = xpath._or(picked, xpath.evaluate(tree, event))
        if picked.value is False:
            return False, f"the {self.what} does not select EventID {_eid(event)}"
        dropped = xpath.Result(False)
        for text, tree in self.suppresses:
            dropped = xpath._or(dropped, xpath.evaluate(tree, event))
        if dropped.value is True:
            return False, f"EventID {_eid(event)} is suppressed by the {self.what}'s <Suppress>"
        notes = "; ".join(dict.fromkeys(picked.notes + dropped.notes))
        if picked.value is None:
            return None, f"the {self.what} cannot be evaluated for EventID {_eid(event)}: {notes}"
        if dropped.value is None:
            return None, f"a <Suppress> of the {self.what} may drop EventID {_eid(event)}: {notes}"
        return True, f"selected by the {self.what}" + (f" ({notes})" if notes else "")


class AllOf(Filter):
    """Forwarded when every filter forwards (three-valued and)."""

    def __init__(self, filters: Sequence[Filter]) -> None:
        self.filters = list(filters)
        self.description = "; ".join(f.description for f in self.filters)

    def test(self, event: Event) -> Verdict:
        unknown: str | None = None
        last = "every event of the channel"
        for f in self.filters:
            value, why = f.test(event)
            if value is False:
                return False, why
            if value is None and unknown is None:
                unknown = why
            last = why
        return (None, unknown) if unknown is not None else (True, last)


class Unknowable(Filter):
    """A filter the tool cannot evaluate (a drop processor, a data regex): None for every event it may drop."""

    def __init__(self, description: str, applies: Callable[[Event], bool | None] | None = None) -> None:
        self.description = description
        self.applies = applies

    def test(self, event: Event) -> Verdict:
        if self.applies is not None:
            hit = self.applies(event)
            if hit is False:
                return True, f"{self.description} does not apply to EventID {_eid(event)}"
        return None, f"{self.description} may drop EventID {_eid(event)}; the tool cannot evaluate it"


def _eid(event: Event) -> str:
    return str(event.event_id) if event.event_id is not None else "(any)"


@dataclass
class ChannelInput:
    """One channel a collector reads, as its file states it."""
    channel: str                 # as written in the file
    enabled: bool
    filter: Filter
    source: str                  # the file
    stanza: str                  # where in the file: "[WinEventLog://Security]", "event_logs[2]", ...
    disabled_why: str = ""       # why it is off (the setting that says so)

    def test(self, event: Event) -> Verdict:
        if not self.enabled:
            return False, f"the stanza is disabled ({self.disabled_why or 'disabled'})"
        return self.filter.test(event)


@dataclass
class CollectorConfig:
    path: str
    format: str                  # winlogbeat | splunk | wef | wazuh | nxlog | fluentbit | otel
    inputs: list[ChannelInput] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    destination: str | None = None   # WEF: the subscription's <LogFile> on the collector host (None: the default)


def parse_id_list(text: str, what: str, path: str) -> tuple[IdRanges | None, IdRanges]:
    """A Winlogbeat-style EventID list: ``4624, 4625, 4700-4800, -4735`` -> (include or None, exclude)."""
    include: list[tuple[int, int]] = []
    exclude: list[tuple[int, int]] = []
    for raw in str(text).split(","):
        item = raw.strip()
        if not item:
            continue
        target = include
        if item.startswith("-"):
            target, item = exclude, item[1:].strip()
        lo_text, sep, hi_text = item.partition("-")
        try:
            lo = int(lo_text.strip())
            hi = int(hi_text.strip()) if sep else lo
        except ValueError:
            raise CollectorInputError(path, f"{what}: {raw.strip()[:40]!r} is not an EventID or range") from None
        if not (0 <= lo <= hi <= 65535):
            raise CollectorInputError(path, f"{what}: {raw.strip()[:40]!r} is not a valid EventID range")
        target.append((lo, hi))
    return (IdRanges(tuple(include)) if include else None), IdRanges(tuple(exclude))
