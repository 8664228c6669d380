"""Events really seen x requirements and rules (``--events``).

Each requirement that makes the machine write events (an audit subcategory, a Sysmon event, a channel) is
looked up in the samples by the events it produces (the same events ``collection.py`` asks the collectors
about: channel and EventID; a channel needed without an EventID matches any event of it). It gets
``observed = {events, per_day, per_hour, first, last, hosts}``; ``per_day``/``per_hour`` divide by the
time the samples cover (the union of each file's first-to-last window), ``None`` when that is under an hour.

A requirement the policy says is ``met`` whose events never appear, in samples spanning long enough to
expect them, is flagged ``not_observed``: a warning, not a verdict change (the sample may come from another
machine or miss a channel). Long enough, by the requirement's volume: ``EXPECT_WITHIN`` below; a low or
unknown volume is never expected (such events can be absent for weeks). Per rule: per need, the events of
it seen.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Sequence

from .collection import CollectionCheck
from .events_read import EventSample, Seen
from .knowledge import Knowledge
from .resolve import Requirement, Resolution, RuleResolution

EXPECT_WITHIN = {"high": timedelta(days=1), "medium": timedelta(days=7)}
SEEN_DESPITE_POLICY = "seen_despite_policy"   # missing / unknown by the policy input, yet its events were seen
_MIN_SPAN = timedelta(hours=1)
_HOSTS_SHOWN = 20


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when is not None else None


class EventsCheck:
    def __init__(self, samples: Sequence[EventSample], kb: Knowledge) -> None:
        self.samples = list(samples)
        self.kb = kb
        self.by_event: dict[tuple[str, int | None], list[Seen]] = {}
        for sample in self.samples:
            for seen in sample.seen.values():
                key = kb.channel_key(seen.channel)
                self.by_event.setdefault((key, seen.event_id), []).append(seen)
                self.by_event.setdefault((key, None), []).append(seen)
        windows = sorted((s.first, s.last) for s in self.samples if s.first is not None and s.last is not None)
        self.first = windows[0][0] if windows else None
        self.last = max(last for _, last in windows) if windows else None
        self.span = _covered(windows) if windows else None
        self.per_req: dict[str, dict[str, Any]] = {}
        self.per_rule: dict[str, dict[str, Any]] = {}
        self.not_observed: list[str] = []
        self.seen_despite_policy: list[str] = []

    @property
    def warnings(self) -> list[str]:
        return [w for s in self.samples for w in s.warnings]

    def seen(self, keys: set[tuple[str, int | None]]) -> list[Seen]:
        out: dict[int, Seen] = {}
        for key in keys:
            for item in self.by_event.get(key, ()):
                out[id(item)] = item
        return list(out.values())

    def summarise(self, items: list[Seen], counts: list[int] | None = None) -> dict[str, Any]:
        """``counts``: the events of each item that belong to the requirement (one outcome of an audit
        subcategory); every event of it when None."""
        if counts is not None:
            items = [s for s, n in zip(items, counts) if n]
        events = sum(counts) if counts is not None else sum(s.count for s in items)
        hosts = sorted({h for s in items for h in s.hosts})
        firsts = [s.first for s in items if s.first is not None]
        lasts = [s.last for s in items if s.last is not None]
        per_hour = per_day = None
        if self.span is not None and self.span >= _MIN_SPAN:
            hours = self.span.total_seconds() / 3600
            per_hour, per_day = _round(events / hours), _round(events * 24 / hours)
        return {"events": events, "per_day": per_day, "per_hour": per_hour,
                "first": _iso(min(firsts)) if firsts else None, "last": _iso(max(lasts)) if lasts else None,
                "hosts": hosts[:_HOSTS_SHOWN], "hosts_total": len(hosts),
                "event_ids": sorted({s.event_id for s in items if s.event_id is not None}),
                "flag": None, "reason": None}

    def flag(self, req: Requirement, observed: dict[str, Any], explained: bool = False) -> None:
        """``explained``: every EventID seen is also written by another subcategory the policy has on for the
        same outcome (4625 by Logon when Account Lockout is off): no sign of a stale policy input."""
        sure = observed["events"] - observed.get("events_outcome_unknown", 0)
        if req.status in ("missing", "unknown") and sure > 0 and not explained:
            hosts = observed["hosts_total"]
            observed["flag"] = SEEN_DESPITE_POLICY
            observed["reason"] = (
                f"the policy input says {req.status} but {sure} events of it were seen"
                + (f" on {hosts} host(s)" if hosts else "")
                + ": the policy input may be stale or incomplete (a local setting, another GPO), another mechanism "
                  "writes them, or the sample comes from other machines")
            self.seen_despite_policy.append(req.id)
            return
        expect = EXPECT_WITHIN.get(req.volume or "")
        if req.status != "met" or observed["events"] or expect is None or self.span is None:
            return
        if self.span >= expect:
            observed["flag"] = "not_observed"
            observed["reason"] = (f"the policy produces these events ({req.volume} volume) but none appear in "
                                  f"samples spanning {_duration(self.span)}")
            self.not_observed.append(req.id)

    def summary(self) -> dict[str, Any]:
        return {"files": [{"path": s.path, "format": s.format, "rows": s.rows, "events": s.events,
                           "bad_rows": s.bad_rows, "first": _iso(s.first), "last": _iso(s.last)}
                          for s in self.samples],
                "events": sum(s.events for s in self.samples), "first": _iso(self.first), "last": _iso(self.last),
                "span_hours": round(self.span.total_seconds() / 3600, 2) if self.span is not None else None,
                "warnings": self.warnings, "not_observed": list(self.not_observed),
                "seen_despite_policy": list(self.seen_despite_policy)}


def _covered(windows: list[tuple[datetime, datetime]]) -> timedelta:
    """The time the samples cover: the union of each file's first-to-last window (files of several hosts
    over the same day cover one day; consecutive exports of one host add up)."""
    total = timedelta(0)
    start, end = windows[0]
    for first, last in windows[1:]:
        if first > end:
            total += end - start
            start, end = first, last
        else:
            end = max(end, last)
    return total + (end - start)


def _round(value: float) -> float:
    return float(f"{value:.3g}")


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def _keys(check: EventsCheck, events: Sequence[Any]) -> set[tuple[str, int | None]]:
    return {(check.kb.channel_key(ev.channel), ev.event_id) for ev in events}


def apply_events(resolution: Resolution, samples: Sequence[EventSample], kb: Knowledge) -> EventsCheck:
    """Fill ``per_req`` (requirement id -> observed) and ``per_rule`` (rule ref -> per need, events seen)."""
    check = EventsCheck(samples, kb)
    producer = CollectionCheck([], kb)   # only its "which events does this option produce" part
    reqs = resolution.requirements
    req_keys: dict[str, set] = {}
    memo: dict[tuple, list[dict[str, Any]]] = {}
    for res in resolution.rules:
        shape = (res.guide.id if res.guide else None,
                 tuple((need.event_id, tuple(o.requirements for o in need.options)) for need in res.needs))
        needs = memo.get(shape)
        if needs is None:
            needs = memo[shape] = _rule_needs(check, producer, res, reqs, req_keys)
        if needs:
            check.per_rule[res.rule.ref] = {"events": sum(n["events"] for n in needs),
                                            "needs_seen": sum(1 for n in needs if n["events"]),
                                            "needs": needs}
    for rid, keys in req_keys.items():
        items = check.seen(keys)
        counted = outcome_counts(kb, reqs[rid], items)
        observed = check.summarise(items, counted[0] if counted else None)
        observed["outcome"] = _outcome(reqs[rid])
        observed["events_outcome_unknown"] = counted[1] if counted else 0
        check.flag(reqs[rid], observed, _explained(kb, reqs[rid], observed["event_ids"], reqs))
        check.per_req[rid] = observed
    from .volume_measured import apply_measured_volume

    apply_measured_volume(resolution, check, kb)
    return check


def _outcome(req: Requirement) -> str | None:
    if req.kind != "audit_subcategory":
        return None
    return "success" if req.success else "failure" if req.failure else None


def outcome_of(kb: Knowledge, keywords: str) -> str | None:
    """The audit outcome a Keywords value says (``mappings/auditpol.yaml`` ``outcome_keywords``): a number's
    bits (0x8020000000000000) or display names ("Audit Success", ECS "failure"); None when it says neither
    or both."""
    found: set[str] = set()
    try:
        number = int(keywords, 0)
    except ValueError:
        number = None
    for outcome, spec in kb.outcome_keywords.items():
        if number is not None:
            if number & spec["mask"]:
                found.add(outcome)
        elif any(part.strip() in spec["names"] for part in keywords.replace(";", ",").split(",")):
            found.add(outcome)
    return found.pop() if len(found) == 1 else None


def outcome_counts(kb: Knowledge, req: Requirement, items: list[Seen]) -> tuple[list[int], int] | None:
    """For one outcome of an audit subcategory: per item, its events of that outcome, and how many counted
    events the sample does not tell apart (an EventID the subcategory writes on success and on failure, seen
    without Keywords). An EventID the subcategory writes only for the other outcome counts 0 (a 4625 is no
    Logon success); with Keywords, only the events that carry this outcome count. None: not an outcome."""
    outcome = _outcome(req)
    if outcome is None or not req.guid:
        return None
    audit = kb.channel_key(kb.audit_channel or "")
    counts, unsure = [], 0
    for item in items:
        outcomes = _event_outcomes(kb, req.guid, item.event_id)
        if kb.channel_key(item.channel) != audit or outcomes is None:
            counts.append(item.count)
            continue
        if outcome not in outcomes:
            counts.append(0)
            continue
        told = {"success": 0, "failure": 0, None: 0}
        for keywords, n in item.keywords.items():
            told[outcome_of(kb, keywords)] += n
        untold = item.count - told["success"] - told["failure"]
        only = outcomes == frozenset((outcome,))
        # events without an outcome keyword count (they may be of this outcome) but, when the EventID is
        # written for both outcomes, as not told apart
        counts.append(told[outcome] + untold)
        if not only:
            unsure += untold
    return counts, unsure


def _explained(kb: Knowledge, req: Requirement, event_ids: list[int], reqs: dict[str, Requirement]) -> bool:
    outcome = _outcome(req)
    if outcome is None or not event_ids:
        return False
    met = {q.guid for q in reqs.values()
           if q.kind == "audit_subcategory" and q.status == "met" and _outcome(q) == outcome}
    for eid in event_ids:
        if not any(sub.guid != req.guid and sub.guid in met and outcome in event.outcomes
                   for sub, event in kb.producers.get(eid, ())):
            return False
    return True


def _event_outcomes(kb: Knowledge, guid: str, event_id: int | None) -> frozenset | None:
    for sub, event in kb.producers.get(event_id, ()) if event_id is not None else ():
        if sub.guid == guid:
            return event.outcomes
    return None


def _rule_needs(check: EventsCheck, producer: CollectionCheck, res: RuleResolution,
                reqs: dict[str, Requirement], req_keys: dict[str, set]) -> list[dict[str, Any]]:
    out = []
    for need in res.needs:
        keys: set = set()
        for option in need.options:
            for rid, events in producer.option_events(option, need, res, reqs).items():
                found = _keys(check, events)
                req_keys.setdefault(rid, set()).update(found)
                keys |= found
        if keys:
            events = sum(s.count for s in check.seen(keys))
            out.append({"label": need.label, "event_id": need.event_id, "events": events, "seen": events > 0})
    return out


__all__ = ["EXPECT_WITHIN", "EventsCheck", "apply_events"]
