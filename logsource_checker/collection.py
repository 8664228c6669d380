"""Does the log arrive? Requirements and rules x collector configurations (``--collector``).

A produced event is only half the answer: a forwarder must also send it on. For every event a rule's
met option produces (a Sysmon event, an audit EventID in the audit channel, an EventID in a channel
requirement's channel) this asks the collector configurations whether some enabled stanza forwards it:
``True`` (with the file and stanza), ``False`` (channel absent, EventID excluded, XPath does not select
it, stanza disabled) or ``None`` (a filter the tool cannot evaluate). Several files are a union: an
event is collected when any of them forwards it.

Verdicts: a requirement that is met but none of whose needed events is collected gets the status
``not_collected`` (diff orders it like ``missing``; no policy change fixes it, so plans skip it). A rule
whose needs are produced but not collected becomes ``blind`` (``partial`` when other EventIDs of it
arrive), with ``collection_reason = "not_collected"``; one whose collection cannot be evaluated
becomes ``unknown``. Every requirement carries ``collected`` and ``collection`` {file, stanza, reason}.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from .collectors.model import CollectorConfig
from .collectors.nxlog import ANY_CHANNEL
from .collectors.xpath import Event
from .diff import need_status
from .knowledge import Knowledge
from .resolve import Need, Option, Requirement, Resolution, RuleResolution

_KINDS = ("audit_subcategory", "sysmon_event", "event_channel")


@dataclass(frozen=True)
class Collection:
    collected: bool | None
    file: str | None
    stanza: str | None
    reason: str
    partial: bool = False    # some of the events arrive, others not (a need without EventID)
    hop: int | None = None   # WEF chain (collection_wef.py): 1 the subscription, 2 the forwarder on the collector fails
    via: str | None = None   # the collector host's log the forwarder must read (hop 2)

    def as_dict(self) -> dict[str, str | None]:
        return {"file": self.file, "stanza": self.stanza, "reason": self.reason}


def _and(items: Sequence[Collection]) -> Collection:
    """All of these events arrive: the first that does not (False before None), else the first."""
    for value in (False, None):
        for item in items:
            if item.collected is value:
                return item
    return items[0]


class CollectionCheck:
    def __init__(self, configs: Sequence[CollectorConfig], kb: Knowledge) -> None:
        self.configs = list(configs)
        self.kb = kb
        self._memo: dict[tuple, Collection] = {}
        self._events: dict[tuple, tuple[Event, ...]] = {}
        # per requirement, every event it is needed for and its verdict: {(channel, EventID): (Event, Collection)}
        self.per_req: dict[str, dict[tuple, tuple[Event, Collection]]] = {}
        self._sub_events: dict[str, list[int]] = {}   # subcategory GUID -> the EventIDs it produces
        for eid, producers in kb.producers.items():
            for sub, _ in producers:
                self._sub_events.setdefault(sub.guid, []).append(eid)

    # -- one event -------------------------------------------------------------------------

    def event(self, event: Event) -> Collection:
        key = (self.kb.channel_key(event.channel), event.event_id, event.provider)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._event(event)
        return found

    def _event(self, event: Event) -> Collection:
        if len(self.configs) > 1:   # a WEF subscription and a forwarder: the two hops (collection_wef.py)
            from .collection_wef import chained

            found = chained(self, event, self._union)
            if found is not None:
                return found
        return self._union(self.configs, event)

    def _union(self, configs: Sequence[CollectorConfig], event: Event) -> Collection:
        """The verdict of ``configs`` together: forwarded when any of them forwards it."""
        want = self.kb.channel_key(event.channel)
        name = self._display(event.channel)
        unknown: Collection | None = None
        refused: Collection | None = None
        for config in configs:
            for item in config.inputs:
                if item.channel != ANY_CHANNEL and self.kb.channel_key(item.channel) != want:
                    continue
                value, why = item.test(Event(name, event.event_id, event.provider))
                verdict = Collection(value, config.path, item.stanza, why)
                if value is True:
                    return verdict
                if value is None and unknown is None:
                    unknown = verdict
                if value is False and refused is None:
                    refused = verdict
        if unknown is not None:
            return unknown
        if refused is not None:
            return refused
        files = ", ".join(c.path for c in configs)
        return Collection(False, files, None, f"channel {name} is in no collector configuration")

    def _display(self, channel: str) -> str:
        found = self.kb.channel(channel)
        return found.name if found is not None else channel

    # -- what an option produces -------------------------------------------------------------

    def option_events(self, option: Option, need: Need, res: RuleResolution,
                      reqs: dict[str, Requirement]) -> dict[str, tuple[Event, ...]]:
        """Per requirement of the option, the events it makes the machine write for this need."""
        out: dict[str, tuple[Event, ...]] = {}
        for rid in option.requirements:
            req = reqs[rid]
            if req.kind in _KINDS:
                key = (rid, need.event_id, res.guide.id if res.guide else None)
                events = self._events.get(key)
                if events is None:
                    events = self._events[key] = tuple(self._req_events(req, need, res))
                if events:
                    out[rid] = events
        return out

    def _req_events(self, req: Requirement, need: Need, res: RuleResolution) -> Iterable[Event]:
        kb, guide = self.kb, res.guide
        if req.kind == "sysmon_event":
            meta = kb.sysmon_meta
            yield Event(str(meta.get("channel")), req.event_id, meta.get("provider"))
        elif req.kind == "audit_subcategory" and kb.audit_channel:
            if need.event_id is not None:
                yield Event(kb.audit_channel, need.event_id, kb.audit_provider)
                return
            ids = list(dict.fromkeys(self._sub_events.get(req.guid or "", [])))
            if guide is not None and guide.events:
                ids = [eid for eid in ids if eid in guide.events]
            for eid in sorted(ids) or [None]:
                yield Event(kb.audit_channel, eid, kb.audit_provider)
        elif req.kind == "event_channel" and req.channel:
            channel = kb.channel(req.channel)
            provider = channel.provider if channel is not None else None
            if need.event_id is not None:
                event = guide.events.get(need.event_id) if guide is not None else None
                yield Event(req.channel, need.event_id, (event.provider if event and event.provider else provider))
                return
            events = list(guide.events.values()) if guide is not None else []
            listed = [ev for ev in events
                      if provider is None or (ev.provider or "").casefold() == provider.casefold()]
            # no event of the guide names this channel's provider (PowerShell 7 writes Windows PowerShell's
            # IDs under its own provider): the guide's events are the ones its rules need on every channel
            listed = listed or events
            if not listed:
                yield Event(req.channel, None, provider)
            for ev in listed:
                yield Event(req.channel, ev.id, provider or ev.provider)

    def option_collection(self, events: dict[str, tuple[Event, ...]]) -> Collection | None:
        """Whether an option's events arrive. For several events (a need without EventID: the guide's
        events) some arriving and others not is partly collected (``partial``)."""
        pairs = [(e, self.event(e)) for evs in events.values() for e in evs]
        if not pairs:
            return None
        verdict = _and([v for _, v in pairs])
        arriving = [e.event_id for e, v in pairs if v.collected is True and e.event_id is not None]
        if verdict.collected is False and arriving:
            lost = [e.event_id for e, v in pairs if v.collected is False]
            return Collection(True, verdict.file, verdict.stanza,
                              f"only EventIDs {_ids(arriving)} arrive, {_ids(lost)} not: {verdict.reason}", True)
        return verdict


def _ids(ids: Iterable[int | None]) -> str:
    return ",".join(str(i) for i in dict.fromkeys(ids) if i is not None)


def judge_collection(resolution: Resolution, configs: Sequence[CollectorConfig],
                     kb: Knowledge) -> tuple[Resolution, CollectionCheck]:
    """The resolution with ``collected``/``collection`` on requirements, ``not_collected`` statuses and rule
    coverage. Pure: every requirement or rule whose verdict it decides is a new record (in new tables); the
    resolution given is left as it was, so another assessment of the same rules never sees these verdicts."""
    check = CollectionCheck(configs, kb)
    reqs = resolution.requirements
    statuses = {rid: req.status for rid, req in reqs.items()}
    per_req = check.per_req
    # rules of the same shape (guide, needs and their options) get the same verdicts: judged once
    memo: dict[tuple, list[_Judged]] = {}
    rule_verdicts: list[tuple[RuleResolution, list[_Judged]]] = []
    for res in resolution.rules:
        shape = (res.guide.id if res.guide else None, tuple(res.always_logged_event_ids),
                 tuple((need.event_id, tuple(o.requirements for o in need.options)) for need in res.needs))
        found = memo.get(shape)
        if found is None:
            found = memo[shape] = _rule_needs(check, res, reqs, statuses, per_req)
        rule_verdicts.append((res, found))
    requirements = dict(reqs)
    for rid, req in reqs.items():
        items = [verdict for _, verdict in per_req.get(rid, {}).values()]
        if not items:
            continue
        verdict = _and(items)
        status = "not_collected" if req.status == "met" and all(v.collected is False for v in items) else req.status
        requirements[rid] = replace(req, collected=verdict.collected, collection=verdict.as_dict(), status=status)
    rules = [_rule_verdict(res, verdicts) for res, verdicts in rule_verdicts]
    return replace(resolution, requirements=requirements, rules=rules), check


_Judged = tuple  # (label, EventID or None, Collection): one need, or one always-logged event


def _rule_needs(check: CollectionCheck, res: RuleResolution, reqs: dict[str, Requirement],
                statuses: dict[str, str], per_req: dict[str, dict[tuple, tuple[Event, Collection]]]) -> list[_Judged]:
    """Per need whose produced events can be judged (and per always-logged Security event of the rule):
    whether they arrive. Records, per requirement, the verdict on every event it is needed for (met or
    not: would it arrive if produced)."""
    out: list[_Judged] = []
    if check.kb.audit_channel:
        for eid in res.always_logged_event_ids:   # written whatever the policy, in the audit channel
            out.append((f"EventID {eid} (always logged)", eid, check.event(Event(check.kb.audit_channel, eid))))
    for need in res.needs:
        options = []
        for option in need.options:
            events = check.option_events(option, need, res, reqs)
            for rid, evs in events.items():
                seen = per_req.setdefault(rid, {})
                for ev in evs:
                    seen[(ev.channel, ev.event_id)] = (ev, check.event(ev))
            if all(statuses[rid] == "met" for rid in option.requirements):
                verdict = check.option_collection(events)
                if verdict is not None:
                    options.append(verdict)
        if options:   # the best met option: all its events arrive, then some, then unknown, then none
            out.append((need.label, need.event_id, min(options, key=lambda v: (
                v.collected is not True, v.partial, v.collected is not None))))
    return out


def _rule_verdict(res: RuleResolution, verdicts: list[_Judged]) -> RuleResolution:
    """The rule's result after collection: itself when nothing changes, else a new record."""
    if res.coverage not in ("usable", "partial"):
        return res
    lost = [(label, eid, v) for label, eid, v in verdicts if v.collected is False or v.partial]
    unknown = [(label, eid, v) for label, eid, v in verdicts if v.collected is None]
    if lost:
        not_collected = [f"{label}: {v.reason}" + (f" ({v.file}, {v.stanza})" if v.stanza else "")
                         for label, _, v in lost]
        lost_ids = {eid for _, eid, v in lost if not v.partial}
        general = None in lost_ids
        partly = any(v.partial for _, _, v in lost)
        arriving = [eid for eid in res.event_ids_produced if eid not in lost_ids]
        missing = sorted(set(res.event_ids_missing) | {eid for eid in lost_ids if eid is not None})
        coverage, partial = ("partial", True) if (arriving or partly) and not general else ("blind", False)
        return replace(res, collection_reason="not_collected", not_collected=not_collected,
                       event_ids_produced=arriving, event_ids_missing=missing, coverage=coverage, partial=partial)
    if unknown:
        return replace(res, collection_reason="collection_unknown", coverage="unknown", partial=False,
                       not_collected=[f"{label}: {v.reason}" for label, _, v in unknown])
    return res


__all__ = ["Collection", "CollectionCheck", "judge_collection", "need_status"]
