"""The resolver's records: ``Requirement`` (one thing to switch on), ``Need`` / ``Option`` (what a rule needs
and the ways to meet it), ``RuleResolution`` (one rule's needs, filled in further by diff and collection) and
``Resolution`` (all of them). ``resolve.py`` builds them; every later stage reads them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import AbstractSet

from .knowledge import Guide
from .rules import LogSource, Rule


@dataclass
class Requirement:
    id: str
    kind: str  # audit_subcategory | registry_policy | event_channel | sysmon_event | sacl | external | auditd_rule
    #            | sysmon_linux_event
    name: str
    guid: str | None = None
    success: bool | None = None
    failure: bool | None = None
    channel: str | None = None
    event_id: int | None = None
    policy: str | None = None
    volume: str | None = None
    reference: str | None = None
    how: str | None = None
    sacl: str | None = None     # sacl kind id (mappings/object_access.yaml) of a `sacl` requirement
    auditd: tuple[str, ...] | None = None   # an `auditd_rule` requirement's item (auditd_needs.py)
    rules: dict[str, None] = field(default_factory=dict)       # ordered set of rule refs
    alternatives: dict[str, None] = field(default_factory=dict)
    status: str = "not_checked"
    reason: str | None = None
    collected: bool | None = None    # --collector: do the events it makes the machine write get forwarded
    collection: dict | None = None   # {file, stanza, reason} of that verdict (collection.py)
    volume_measured: str | None = None   # --events: low | medium | high measured in the samples (volume_measured.py)


@dataclass
class Option:
    name: str
    primary: bool
    requirements: tuple[str, ...]
    notes: str | None = None
    basis: str | None = None   # set when the mapping behind this option is inferred (no Microsoft page states it)
    # selections of the rule's condition this producer cannot see: lost (used positively) and filters
    # that cannot apply (used under a negation); see serving.py
    lost: tuple[str, ...] = ()
    filters_not_applied: tuple[str, ...] = ()
    narrowed: tuple[str, ...] = ()   # used positively but seen through only some of their branches


@dataclass
class Need:
    label: str
    options: list[Option]
    event_id: int | None = None

    @property
    def inferred(self) -> bool:
        """Whether any way of meeting this need rests on an inferred mapping (see Option.basis)."""
        return any(option.basis for option in self.options)

    def best_option(self, statuses: dict[str, str], avoid: AbstractSet[str] = frozenset()) -> Option:
        """The option to recommend under these requirement statuses: the fewest missing requirements,
        then the primary one, then data order (so with nothing in place the primary option wins). ``avoid``:
        requirements whose events never arrive (--collector); an option with one of them comes last."""
        def cost(item: tuple[int, Option]) -> tuple[int, bool, int]:
            index, option = item
            missing = sum(1 for rid in option.requirements if statuses.get(rid) == "missing")
            return missing, not option.primary, index

        if avoid:
            return min(enumerate(self.options),
                       key=lambda item: (not avoid.isdisjoint(item[1].requirements), cost(item)))[1]
        return min(enumerate(self.options), key=cost)[1]


@dataclass
class UnmappedEvent:
    event_id: int
    logsource: LogSource
    reason: str
    rules: list[Rule] = field(default_factory=list)
    replaced_by: tuple[int, ...] = ()


@dataclass
class RuleResolution:
    rule: Rule
    guide: Guide | None
    needs: list[Need] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unmapped_event_ids: list[int] = field(default_factory=list)
    always_logged_event_ids: list[int] = field(default_factory=list)
    unsatisfiable_fields: list[str] = field(default_factory=list)   # no producer of the guide writes them
    condition_problems: list[str] = field(default_factory=list)     # the condition cannot be read as written
    # filled in by diff
    coverage: str = "not_checked"
    partial: bool = False
    event_ids_produced: list[int] = field(default_factory=list)
    event_ids_missing: list[int] = field(default_factory=list)
    lost_selections: list[str] = field(default_factory=list)   # partial: what the serving producer cannot see
    collection_reason: str | None = None   # not_collected | collection_unknown (collection.py), else None
    not_collected: list[str] = field(default_factory=list)     # per need: why its events are not forwarded

    @property
    def requirement_ids(self) -> list[str]:
        known = self.__dict__.get("_requirement_ids")   # set by the resolver, which knows them per memo entry
        if known is not None:
            return list(known)
        seen: dict[str, None] = {}
        for need in self.needs:
            for option in need.options:
                for rid in option.requirements:
                    seen[rid] = None
        return list(seen)


@dataclass
class Resolution:
    requirements: dict[str, Requirement] = field(default_factory=dict)
    rules: list[RuleResolution] = field(default_factory=list)
    unmapped_logsources: dict[tuple, list[Rule]] = field(default_factory=dict)
    unmapped_events: dict[tuple, UnmappedEvent] = field(default_factory=dict)
