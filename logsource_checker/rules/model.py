"""The rule model: ``Rule``, ``LogSource``, ``LoadError``, ``OtherDocument``, ``LoadResult``, the level and
status vocabularies and the one wording of a log source."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

LEVELS = ("informational", "low", "medium", "high", "critical")
STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported")


@dataclass(frozen=True)
class LogSource:
    product: str | None = None
    category: str | None = None
    service: str | None = None

    @cached_property   # read several times per rule by every stage; kept in the instance's __dict__
    def key(self) -> tuple[str | None, str | None, str | None]:
        return (self.product, self.category, self.service)

    def label(self) -> str:
        return logsource_label(self.key)


LOGSOURCE_KEYS = ("product", "category", "service")


def logsource_label(key: tuple[str | None, str | None, str | None], compact: bool = False) -> str:
    """'product: windows, category: process_creation' (compact: 'windows / process_creation'), the one
    wording of a log source everywhere (reports, docs, notes); absent parts are left out."""
    present = [(name, value) for name, value in zip(LOGSOURCE_KEYS, key) if value]
    if compact:
        return " / ".join(str(value) for _, value in present) or "(empty)"
    return ", ".join(f"{name}: {value}" for name, value in present) or "(empty logsource)"


def logsource_dict(key: tuple[str | None, str | None, str | None]) -> dict[str, str | None]:
    """A log-source key as the JSON report writes it: every part, None where absent."""
    return dict(zip(LOGSOURCE_KEYS, key))


@dataclass
class Rule:
    path: str
    document: int  # 0-based index of the YAML document in its file
    id: str | None
    title: str | None
    level: str | None
    status: str | None
    logsource: LogSource
    event_ids: tuple[int, ...] = ()
    channels: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    # The detection as plain tuples (marshal-able, for the cache and worker pipes); see ``detection.py``:
    # condition: the condition text(s), a list meaning "any of them";
    # selections: ((name, branches), ...); a selection is the OR of its branches, a branch the AND of its
    # matches, a match (field or None for a keyword, (modifier, ...), (value text or None, ...)).
    condition: tuple[str, ...] = ()
    selections: tuple[Any, ...] = ()
    tags: tuple[str, ...] = ()   # the rule's ``tags`` as written (``attack.t1059.001``, ``cve.2021-1675``...)
    definition: str | None = None   # the logsource ``definition`` text (auditd watches a Linux rule states)

    @property
    def ref(self) -> str:
        """A stable name for the rule in reports: its id, else path#document."""
        return self.id or f"{self.path}#{self.document}"


@dataclass(frozen=True)
class LoadError:
    path: str
    line: int | None
    message: str


@dataclass(frozen=True)
class OtherDocument:
    """A correlation rule or a filter: recognised, counted, not checked for log sources."""

    path: str
    document: int
    kind: str  # "correlation" or "filter"
    id: str | None
    title: str | None


@dataclass
class LoadResult:
    rules: list[Rule] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    others: list[OtherDocument] = field(default_factory=list)
    files: int = 0

    def extend(self, other: "LoadResult") -> None:
        self.rules.extend(other.rules)
        self.errors.extend(other.errors)
        self.others.extend(other.others)
        self.files += other.files


def level_at_least(level: str | None, minimum: str) -> bool:
    if level not in LEVELS:
        return False
    return LEVELS.index(level) >= LEVELS.index(minimum)



def _short_text(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

