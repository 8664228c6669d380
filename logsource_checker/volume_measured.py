"""Measured event volume (``--events``) next to the guide's categorical volume, and fed to the plans.

The events a requirement makes a machine write (an audit subcategory: every EventID it writes for that
outcome, in the audit channel; a channel: every event in it; a Sysmon event type: its events) are counted in
the samples, divided by the hosts that sent them (1 when the sample names none) and by the days the samples
cover, and mapped to low / medium / high by ``mappings/volume_measured.yaml`` (our own convention: Microsoft
gives volumes only in words). The result goes on the requirement (``Requirement.volume_measured``), which
``plans.volume_of`` prefers to the guide's volume for ordering and ``--max-volume``.

What can be measured is honest about itself: a requirement whose events are not in the sample (usually one
the policy leaves off, the very ones a plan would switch on) has no measured volume and keeps the guide's.
It is measured where its events were seen anyway: on other hosts of a fleet-wide export, with a partly
enabled setting, or a policy input that is stale.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from .knowledge import Knowledge
from .resolve import Requirement, Resolution

_LEVELS = ("low", "medium", "high")


class VolumeScaleError(ValueError):
    """mappings/volume_measured.yaml is not of the documented shape."""


def load_scale(kb: Knowledge) -> dict[str, Any]:
    """The scale, validated: ``{"min_span_hours": float, "levels": [(volume, below or None), ...]}``."""
    from .knowledge import _read_yaml

    path = Path(kb.root) / "mappings" / "volume_measured.yaml"
    data = _read_yaml(path) if path.is_file() else None
    if not isinstance(data, dict):
        raise VolumeScaleError(f"{path}: missing or not a mapping")
    return validate_scale(data, str(path))


def validate_scale(data: dict[str, Any], where: str = "volume_measured.yaml") -> dict[str, Any]:
    span = data.get("min_span_hours")
    if not isinstance(span, (int, float)) or isinstance(span, bool) or span <= 0:
        raise VolumeScaleError(f"{where}: min_span_hours must be a positive number")
    levels = []
    for entry in data.get("per_host_per_day") or []:
        if not isinstance(entry, dict) or entry.get("volume") not in _LEVELS:
            raise VolumeScaleError(f"{where}: each per_host_per_day entry needs a volume of {_LEVELS}")
        levels.append((entry["volume"], entry.get("below")))
    names = [v for v, _ in levels]
    bounds = [b for _, b in levels[:-1]]
    if names != list(_LEVELS) or levels[-1][1] is not None or not all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and b > 0 for b in bounds) \
            or bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
        raise VolumeScaleError(f"{where}: per_host_per_day must list low, medium, high with rising `below` "
                               "bounds and `below: null` last")
    return {"min_span_hours": float(span), "levels": levels}


def categorise(per_host_per_day: float, scale: dict[str, Any]) -> str:
    for volume, below in scale["levels"]:
        if below is None or per_host_per_day < below:
            return volume
    return scale["levels"][-1][0]


def _by_subcategory(kb: Knowledge) -> dict[str, list[tuple[int, frozenset]]]:
    """Subcategory GUID -> (EventID, outcomes) it writes."""
    out: dict[str, list[tuple[int, frozenset]]] = {}
    for eid, producers in kb.producers.items():
        for sub, event in producers:
            out.setdefault(sub.guid, []).append((eid, event.outcomes))
    return out


def _keys(check: Any, kb: Knowledge, req: Requirement,
          subs: dict[str, list[tuple[int, frozenset]]]) -> set[tuple[str, int | None]]:
    """Every (channel, EventID) the requirement makes the machine write; EventID None: any in the channel."""
    if req.kind == "audit_subcategory" and kb.audit_channel and req.guid:
        outcome = "success" if req.success else "failure" if req.failure else None
        channel = kb.channel_key(kb.audit_channel)
        return {(channel, eid) for eid, outcomes in subs.get(req.guid, ())
                if outcome is None or outcome in outcomes}
    if req.kind == "sysmon_event" and req.event_id is not None:
        return {(kb.channel_key(str(kb.sysmon_meta.get("channel"))), req.event_id)}
    if req.kind == "event_channel" and req.channel:
        return {(kb.channel_key(req.channel), None)}
    return set()


def _count(kb: Knowledge, req: Requirement, items: list) -> list[int]:
    from .observed import outcome_counts

    counted = outcome_counts(kb, req, items)
    return counted[0] if counted else [s.count for s in items]


def apply_measured_volume(resolution: Resolution, check: Any, kb: Knowledge) -> None:
    """Set ``volume_measured`` on each requirement the samples measure, and add ``volume_measured``,
    ``volume_guide``, ``per_host_per_day`` and ``volume_note`` to its ``observed`` entry. Only samples that by
    themselves cover ``min_span_hours`` are measured, over the time they cover."""

    from .observed import _covered

    scale = load_scale(kb)
    least = timedelta(hours=scale["min_span_hours"])
    # only samples that by themselves cover the minimum: a folder of short recordings from several labs (the
    # corpus's evtx-samples) spans months in total, which would make every rate look tiny
    long_enough = [s for s in check.samples if s.first is not None and s.last is not None and s.last - s.first >= least]
    usable = {id(seen) for sample in long_enough for seen in sample.seen.values()}
    span = _covered(sorted((s.first, s.last) for s in long_enough)) if long_enough else None
    subs = _by_subcategory(kb)
    for rid, observed in check.per_req.items():
        req = resolution.requirements[rid]
        observed.update(volume_guide=req.volume, volume_measured=None, per_host_per_day=None, volume_note=None)
        items = check.seen(_keys(check, kb, req, subs))
        if not any(_count(kb, req, items)):
            observed["volume_note"] = "not measured: none of its events is in the samples"
            continue
        items = [s for s in items if id(s) in usable]
        events = sum(_count(kb, req, items))
        if not events:
            observed["volume_note"] = (f"not measured: no sample holding its events covers {scale['min_span_hours']:g} "
                                       "hours by itself")
            continue
        hosts = {h for s in items for h in s.hosts}
        days = span.total_seconds() / 86400
        rate = events / max(len(hosts), 1) / days
        req.volume_measured = categorise(rate, scale)
        observed["volume_measured"] = req.volume_measured
        observed["per_host_per_day"] = float(f"{rate:.3g}")
        observed["volume_note"] = (f"measured: {events} events over {days:.1f} days on "
                                   + (f"{len(hosts)} host(s)" if hosts else "one host (the sample names none)"))


__all__ = ["VolumeScaleError", "apply_measured_volume", "categorise", "load_scale", "validate_scale"]
