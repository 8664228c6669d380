"""Plans x collection (``--collector``): what a plan can really make usable when the events must also arrive.

A plan switches settings on; no setting sends an event on. So with collector configurations given, a rule
need none of whose options' events arrive (whatever the policy) is lost for every plan: the rule's what-if
coverage is capped like ``collection._rule_verdict`` judges it (``blind``, or ``partial`` when other EventIDs
of it arrive); a need whose arrival cannot be evaluated caps it at ``unknown``. The plan figures
(``unblinds``, ``still_blind``, each change's ``unblinds``) are thus what the policy changes achieve with the
collectors as configured. A change whose events would not arrive stays in the plan (flagged
``collected: false``; ``--emit`` writes the collector addition it needs), unblinding nothing by itself.

Nothing here changes the resolver's records: the caps are per rule index, applied to what ``WhatIf`` says.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from .diff import WhatIf

if TYPE_CHECKING:
    from .report import CheckResult

_RANK = {"blind": 0, "unknown": 1, "partial": 2, "usable": 3}


def caps_of(check: Any, resolution: Any) -> dict[int, str]:
    """Rule index in ``resolution.rules`` -> the best coverage it can have while its events must arrive
    (only rules capped). Rules of one shape are judged once."""
    reqs = resolution.requirements
    caps: dict[int, str] = {}
    memo: dict[tuple, str | None] = {}
    for index, res in enumerate(resolution.rules):
        shape = (res.guide.id if res.guide else None,
                 tuple((need.event_id, tuple(o.requirements for o in need.options)) for need in res.needs))
        if shape not in memo:
            memo[shape] = _cap(check, res, reqs)
        if memo[shape] is not None:
            caps[index] = memo[shape]
    return caps


def rule_caps(result: CheckResult) -> dict[int, str]:
    check = getattr(result, "collection", None)
    return caps_of(check, result.resolution) if check is not None else {}


def limit_by_collection(check: Any, resolution: Any) -> Callable[[Any, str], str]:
    """For ``ranking.rank_missing``: a rule's what-if coverage, capped by what can arrive."""
    by_id = {id(resolution.rules[i]): cap for i, cap in caps_of(check, resolution).items()}

    def limit(res: Any, coverage: str) -> str:
        cap = by_id.get(id(res))
        return cap if cap is not None and _RANK.get(coverage, 0) > _RANK[cap] else coverage

    return limit


def _cap(check, res, reqs) -> str | None:
    lost: list[int | None] = []
    unknown = False
    for need in res.needs:
        verdicts = []
        for option in need.options:
            events = check.option_events(option, need, res, reqs)
            verdict = check.option_collection(events) if events else None
            # an option producing no event we can judge (a registry policy alone) is never lost
            verdicts.append(True if verdict is None else verdict.collected)
        if not verdicts or any(v is True for v in verdicts):
            continue
        if all(v is False for v in verdicts):
            lost.append(need.event_id)
        else:
            unknown = True
    if lost:
        ids = {need.event_id for need in res.needs if need.event_id is not None}
        general = None in lost
        return "partial" if not general and ids - set(lost) else "blind"
    return "unknown" if unknown else None


def never_arriving(check: Any) -> frozenset[str]:
    """Requirements none of whose needed events arrive (every verdict false; met, ``judge_collection`` calls
    them ``not_collected``): switching one on unblinds nothing, whatever another way of its needs does."""
    return frozenset(rid for rid, items in check.per_req.items()
                     if items and all(verdict.collected is False for _, verdict in items.values()))


def lost_options(check: Any, resolution: Any, signature: Callable[[Any], tuple]) -> dict[tuple, tuple[bool, ...]]:
    """For the planner: per options signature (``signature(need)``, needs planned together), for each option
    whether its events fail to arrive for some need of that signature (``collected`` false; an option whose
    events cannot be judged, or arrive partly, is not lost). Needs of one EventID and guide are judged once."""
    reqs = resolution.requirements
    out: dict[tuple, list[bool]] = {}
    seen: set[tuple] = set()
    for res in resolution.rules:
        guide = res.guide.id if res.guide else None
        for need in res.needs:
            key = signature(need)
            if (key, need.event_id, guide) in seen:
                continue
            seen.add((key, need.event_id, guide))
            flags = out.setdefault(key, [False] * len(need.options))
            for n, option in enumerate(need.options):
                if not flags[n]:
                    events = check.option_events(option, need, res, reqs)
                    verdict = check.option_collection(events) if events else None
                    flags[n] = verdict is not None and verdict.collected is False
    return {key: tuple(flags) for key, flags in out.items()}


class CappedWhatIf(WhatIf):
    """``WhatIf`` whose answers never exceed a rule's collection cap, and in which switching on a requirement
    whose events never arrive (``never_arriving``) changes nothing."""

    def __init__(self, rules: Sequence, caps: Mapping[int, str], lost: frozenset[str] = frozenset()) -> None:
        super().__init__(rules)
        self.caps = dict(caps)
        self.lost = lost

    def coverage(self, statuses: Mapping[str, str], met: Iterable[str] = (),
                 indexes: Iterable[int] | None = None) -> list[str]:
        wanted = range(len(self.rules)) if indexes is None else list(indexes)
        if self.lost:
            met = [rid for rid in met if rid not in self.lost]
        out = super().coverage(statuses, met, wanted)
        if not self.caps:
            return out
        for pos, i in enumerate(wanted):
            cap = self.caps.get(i)
            if cap is not None and _RANK.get(out[pos], 0) > _RANK[cap]:
                out[pos] = cap
        return out


def planner_what_if(result: CheckResult, rules: Sequence) -> WhatIf:
    """The what-if a plan asks: capped by collection when collector configurations were given."""
    caps = rule_caps(result)
    lost = never_arriving(result.collection) if getattr(result, "collection", None) is not None else frozenset()
    return CappedWhatIf(rules, caps, lost) if caps or lost else WhatIf(rules)


__all__ = ["CappedWhatIf", "caps_of", "limit_by_collection", "lost_options", "never_arriving", "planner_what_if",
           "rule_caps"]
