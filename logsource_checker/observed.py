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

    @property
    def warnings(self) -> list[str]:
        return [w for s in self.samples for w in s.warnings]

    def seen(self, keys: set[tuple[str, int | None]]) -> list[Seen]:
        out: dict[int, Seen] = {}
        for key in keys:
            for item in self.by_event.get(key, ()):
                out[id(item)] = item
        return list(out.values())

    def summarise(self, items: list[Seen]) -> dict[str, Any]:
        events = sum(s.count for s in items)
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

    def flag(self, req: Requirement, observed: dict[str, Any]) -> None:
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
                "warnings": self.warnings, "not_observed": list(self.not_observed)}


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
        observed = check.summarise(check.seen(keys))
        check.flag(reqs[rid], observed)
        check.per_req[rid] = observed
    return check


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
