"""Splunk Universal Forwarder ``inputs.conf``: ``[WinEventLog://CHANNEL]`` stanzas.

Semantics (Splunk's inputs.conf specification, "Windows Event Log inputs"): ``disabled`` (default
off); ``whitelist`` / ``blacklist`` either a comma list of EventCodes and ranges, or ``key=regex``
pairs (``EventCode="..."``, ``SourceName=%...%``; all pairs of one entry must match); ``whitelistN`` /
``blacklistN`` (N = 1..9) in the ``key=regex`` form. An event is forwarded when it matches some
whitelist (or no whitelist is set) and no blacklist (a blacklist wins). Regexes on EventCode,
SourceName and LogName are evaluated; on any other key (Message, TaskCategory, ...) they are not
knowable for an event: ``None`` where they could decide. Settings in ``[default]`` and ``[WinEventLog]``
apply to every stanza; a stanza named twice merges, later keys winning.
"""
from __future__ import annotations

import re

from .model import ChannelInput, CollectorConfig, CollectorInputError, Filter, parse_id_list
from .xpath import Event
from ._common import truthy

FORMAT = "splunk"
_STANZA_RE = re.compile(r"^\s*\[([^\]\r\n]{1,1000})\]\s*$")
_PAIR_RE = re.compile(r'\s*\$?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:"([^"]*)"|%([^%]*)%)')
_KNOWN_KEYS = {"eventcode": "event_id", "sourcename": "provider", "logname": "channel"}
_LIST_KEYS = ("whitelist", "blacklist")


def sniff(text: str) -> bool:
    return re.search(r"^[ \t]*\[WinEventLog(://|:)", text, re.M | re.I) is not None


def _stanzas(path: str, text: str) -> list[tuple[str, dict[str, str]]]:
    stanzas: dict[str, tuple[str, dict[str, str]]] = {}
    current = ("default", {})
    stanzas["default"] = current
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _STANZA_RE.match(line)
        if match:
            name = match.group(1).strip()
            current = stanzas.setdefault(name.casefold(), (name, {}))
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise CollectorInputError(path, f"line {number}: neither a [stanza] nor key = value")
        current[1][key.strip().casefold()] = value.strip()
    return list(stanzas.values())


#: a repeated group ("(a+)+", "(x|xy)*") can backtrack exponentially: such a regex is not evaluated
_REPEATED_GROUP_RE = re.compile(r"\)[*+?{]")


def _compile(regex: str) -> "re.Pattern[str] | None":
    if len(regex) > 1000 or _REPEATED_GROUP_RE.search(regex):
        return None
    try:
        return re.compile(regex)
    except (re.error, RecursionError, OverflowError):
        return None


class _Entry:
    """One whitelist/blacklist setting."""

    def __init__(self, key: str, value: str, path: str, stanza: str) -> None:
        self.key = key
        self.ids = None
        self.pairs: list[tuple[str, str, re.Pattern | None]] = []
        if "=" not in value:
            include, exclude = parse_id_list(value, f"{stanza} {key}", path)
            if exclude.ranges:
                raise CollectorInputError(path, f"{stanza} {key}: '-' exclusions are not Splunk syntax")
            self.ids = include
            return
        pos = 0
        while pos < len(value):
            match = _PAIR_RE.match(value, pos)
            if match is None:
                if value[pos:].strip():
                    raise CollectorInputError(path, f"{stanza} {key}: not key=\"regex\" pairs")
                break
            regex = match.group(2) if match.group(2) is not None else match.group(3)
            compiled = _compile(regex)
            self.pairs.append((match.group(1), regex, compiled))
            pos = match.end()

    def matches(self, event: Event) -> tuple[bool | None, str]:
        if self.ids is not None:
            if event.event_id is None:
                return None, "the rule names no EventID"
            return event.event_id in self.ids, f"{self.key} = {self.ids.text()}"
        result: bool | None = True
        why = []
        for name, regex, compiled in self.pairs:
            attr = _KNOWN_KEYS.get(name.casefold())
            value = None if attr is None else getattr(event, attr)
            if attr is not None and attr == "event_id" and value is not None:
                value = str(value)
            if value is None or compiled is None:
                result = None if result is not False else False
                why.append(f"{name}={regex[:60]!r} " + ("cannot be evaluated for the event" if value is None else
                           "is a regex the tool does not evaluate (invalid, or a repeated group)"))
                continue
            if compiled.search(str(value)) is None:
                return False, f"{self.key}: {name} does not match"
        return result, f"{self.key} {'; '.join(why)}" if why else f"{self.key} matches"


class SplunkFilter(Filter):
    def __init__(self, whitelists: list[_Entry], blacklists: list[_Entry], stanza: str) -> None:
        self.whitelists, self.blacklists, self.stanza = whitelists, blacklists, stanza
        parts = [f"{e.key}" for e in whitelists + blacklists]
        self.description = f"{stanza} " + (", ".join(parts) if parts else "every event")

    def test(self, event: Event) -> tuple[bool | None, str]:
        eid = event.event_id if event.event_id is not None else "(any)"
        allowed: bool | None = not self.whitelists
        allowed_why = ""
        for entry in self.whitelists:
            hit, why = entry.matches(event)
            if hit is True:
                allowed, allowed_why = True, why
                break
            if hit is None:
                allowed, allowed_why = None, why
        if allowed is False:
            return False, f"EventID {eid} is not in any whitelist of {self.stanza}"
        for entry in self.blacklists:
            hit, why = entry.matches(event)
            if hit is True:
                return False, f"EventID {eid} is excluded by {self.stanza} {why}"
            if hit is None:
                return None, f"{self.stanza} {why}: it may drop EventID {eid}"
        if allowed is None:
            return None, f"{self.stanza} whitelist: {allowed_why}"
        return True, f"forwarded by {self.stanza}" + (f" ({allowed_why})" if allowed_why else "")


def read(path: str, text: str) -> CollectorConfig:
    config = CollectorConfig(path, FORMAT)
    stanzas = _stanzas(path, text)
    base: dict[str, str] = {}
    for name, settings in stanzas:
        if name.casefold() in ("default", "wineventlog"):
            base.update(settings)
    for name, own in stanzas:
        match = re.match(r"(?i)WinEventLog(?:://|:)(.+)", name)
        if match is None:
            continue
        settings = {**base, **own}
        stanza = f"[{name}]"
        lists = {k: v for k, v in settings.items() if re.fullmatch(r"(white|black)list[1-9]?", k) and v}
        entries = {k: _Entry(k, v, path, stanza) for k, v in sorted(lists.items())}
        for key, entry in entries.items():
            if key[-1].isdigit() and entry.ids is not None:
                config.warnings.append(f"{stanza} {key}: an EventCode list in a numbered {key[:9]} (Splunk "
                                       "expects key=regex there); read as a list")
        disabled = truthy(settings.get("disabled", "0"))
        if disabled is None:
            raise CollectorInputError(path, f"{stanza} disabled = {settings['disabled'][:20]!r} is not a boolean")
        filt = SplunkFilter([e for k, e in entries.items() if k.startswith("white")],
                            [e for k, e in entries.items() if k.startswith("black")], stanza)
        config.inputs.append(ChannelInput(match.group(1).strip(), not disabled, filt, path, stanza,
                                          f"disabled = {settings.get('disabled')}"))
    if not config.inputs:
        raise CollectorInputError(path, "an inputs.conf with no [WinEventLog://...] stanza")
    return config
