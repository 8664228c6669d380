"""Builds the report: one JSON-able dict that every renderer reads.

Key names here are the public JSON report format (README, "JSON report"): later versions add keys,
never rename these.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .decide import deciding_inputs, outside_summary
from ._gcpause import paused_gc
from .diff import LEVEL_ORDER, EffectiveAudit, describe_setting, need_status
from .ranking import Ranked
from .knowledge import Knowledge
from .policy.model import PolicySnapshot
from .resolve import Resolution, RuleResolution
from .rules import LoadResult, logsource_dict

COVERAGE_STATES = ("usable", "partial", "blind", "unknown", "not_checked")
FORMAT_VERSION = 1


@dataclass
class CheckResult:
    """Everything one run produced, before rendering."""

    loaded: LoadResult
    resolution: Resolution
    knowledge: Knowledge
    snapshot: PolicySnapshot | None
    audit: EffectiveAudit | None
    ranked: list[Ranked]
    filtered_out: int = 0
    role: Any = None          # roles.RoleDecision: the machine's role and how it was decided
    plans: list = field(default_factory=list)      # plans.ChangePlan: native and sysmon, one chosen
    roots: list = field(default_factory=list)      # the rule files and folders given (reports show paths below them)
    max_volume: str | None = None
    hold_unknown_volume: bool = False
    collectors: list = field(default_factory=list)   # collectors.CollectorConfig per --collector file
    collection: Any = None    # collection.CollectionCheck of the run (--collector), else None
    events: Any = None        # observed.EventsCheck of the run (--events), else None


_ls = logsource_dict


def _canonical_channels(values: tuple[str, ...], kb: Knowledge) -> list[str]:
    """A rule's Channel values as Windows names: an alias (pySigma's spelling, any case) becomes the name it
    stands for; a value the data does not know is kept as written."""
    names = []
    for value in values:
        channel = kb.channel(value)
        names.append(channel.name if channel is not None else value)
    return list(dict.fromkeys(names))


def _rule_entry(res: RuleResolution, statuses: dict[str, str], verbose: bool, kb: Knowledge,
                extra: dict[str, Any], observed: dict[str, Any] | None = None) -> dict[str, Any]:
    rule = res.rule
    entry: dict[str, Any] = {
        "id": rule.id,
        "title": rule.title,
        "path": rule.path,
        "document": rule.document,
        "level": rule.level,
        "status": rule.status,
        "logsource": _ls(rule.logsource.key),
        "event_ids": list(rule.event_ids),
        "channels": list(rule.channels),
        "channels_resolved": _canonical_channels(rule.channels, kb),
        "providers": list(rule.providers),
        "guide": res.guide.id if res.guide else None,
        "requirements": res.requirement_ids,
        "coverage": res.coverage,
        "partial": res.partial,
        "event_ids_produced": res.event_ids_produced,
        "event_ids_missing": res.event_ids_missing,
        "event_ids_unmapped": sorted(set(res.unmapped_event_ids)),
        # EventIDs whose subcategory or outcome no Microsoft page states (mappings/auditpol.yaml inferred: true)
        "event_ids_inferred": sorted({n.event_id for n in res.needs if n.event_id is not None and n.inferred}),
        "notes": res.notes,
        "lost_selections": res.lost_selections,
        "unsatisfiable_fields": res.unsatisfiable_fields,
        "tags": list(rule.tags),
        **extra,
        "collection_reason": res.collection_reason,
        "not_collected": res.not_collected,
    }
    if observed is not None:
        entry["observed"] = observed.get(rule.ref)
    if verbose:
        entry["fields"] = list(rule.fields)
        entry["needs"] = [{
            "label": need.label,
            "event_id": need.event_id,
            "status": need_status(need, statuses),
            "inferred": need.inferred,
            "options": [{"name": o.name, "primary": o.primary, "requirements": list(o.requirements),
                         "notes": o.notes, "inferred": o.basis is not None, "basis": o.basis,
                         "lost_selections": list(o.lost),
                         "filters_not_applied": list(o.filters_not_applied),
                         "narrowed_selections": list(o.narrowed)} for o in need.options],
        } for need in res.needs]
    return entry


def build(result: CheckResult, verbose: bool = True) -> dict[str, Any]:
    with paused_gc():
        return _build(result, verbose)


def _build(result: CheckResult, verbose: bool) -> dict[str, Any]:
    loaded, resolution, kb = result.loaded, result.resolution, result.knowledge
    statuses = {rid: req.status for rid, req in resolution.requirements.items()}
    logsources = _logsources(resolution)
    unmapped_ls, unmapped_events = _unmapped(resolution)
    extras = _rule_extras(result, statuses)
    summary = _summary(result, len(logsources), len(unmapped_ls), len(unmapped_events), extras)
    observed = result.events.per_rule if result.events is not None else None
    report: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "summary": summary,
        "errors": [{"path": e.path, "line": e.line, "message": e.message} for e in loaded.errors],
        "logsources": logsources,
        "rule_roots": [str(p) for p in result.roots],
        "rules": [_rule_entry(res, statuses, verbose, kb, extra, observed)
                  for res, extra in zip(resolution.rules, extras)],
        "requirements": _requirements(result),
        "unmapped": {"logsources": unmapped_ls, "event_ids": unmapped_events},
        "other_documents": [{"path": o.path, "document": o.document, "kind": o.kind, "id": o.id,
                             "title": o.title} for o in loaded.others],
        "recommendations": _recommendations(result, result.ranked),
        "plans": _plans(result),
        "lost_selection_recoveries": _recoveries(result),
        "policy": _policy(result),
        "collectors": _collectors(result),
    }
    if result.events is not None:   # --events: the samples read, their warnings, the not_observed requirements
        report["events"] = result.events.summary()
        summary["requirements_not_observed"] = len(result.events.not_observed)
        summary["requirements_seen_despite_policy"] = len(result.events.seen_despite_policy)
    if report["policy"] is not None:
        report["policy"]["collectors"] = report["collectors"]
    return report


def _logsources(resolution: Resolution) -> list[dict[str, Any]]:
    """One entry per log source, the most rules first."""
    by_ls: dict[tuple, list[RuleResolution]] = defaultdict(list)
    for res in resolution.rules:
        by_ls[res.rule.logsource.key].append(res)
    logsources = []
    for key in sorted(by_ls, key=lambda k: (-len(by_ls[k]), tuple(x or "" for x in k))):
        group = by_ls[key]
        guide = group[0].guide
        levels = Counter(r.rule.level or "unknown" for r in group)
        logsources.append({
            **_ls(key),
            "rules": len(group),
            "levels": {lvl: levels[lvl] for lvl in LEVEL_ORDER + ("unknown",) if levels[lvl]},
            "event_ids": sorted({e for r in group for e in r.rule.event_ids}),
            "guide": guide.id if guide else None,
            "guide_title": guide.title if guide else None,
            "coverage": dict(Counter(r.coverage for r in group)),
        })
    return logsources


def _requirements(result: CheckResult) -> list[dict[str, Any]]:
    """Every requirement with its status and ranking, the most rules first."""
    rank_by_id = {r.requirement.id: r for r in result.ranked}
    requirements = []
    for req in result.resolution.requirements.values():
        ranked = rank_by_id.get(req.id)
        requirements.append({
            "id": req.id, "kind": req.kind, "name": req.name, "guid": req.guid,
            "success": req.success, "failure": req.failure, "channel": req.channel,
            "event_id": req.event_id, "policy": req.policy, "volume": req.volume,
            "reference": req.reference, "how": req.how, "sacl": req.sacl,
            "rules": list(req.rules), "alternatives": list(req.alternatives),
            "status": req.status, "reason": req.reason,
            "collected": req.collected, "collection": req.collection,
            **({"observed": result.events.per_req.get(req.id)} if result.events is not None else {}),
            "unblinds": ranked.unblinds if ranked else None,
            "unblinds_high_critical": ranked.unblinds_high_critical if ranked else None,
        })
    requirements.sort(key=lambda r: (-len(r["rules"]), r["id"]))
    return requirements


def _unmapped(resolution: Resolution) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(log sources no guide covers, EventIDs no mapping covers), each with its rules."""
    unmapped_ls = [{**_ls(key), "rules": [r.ref for r in rules], "paths": [r.path for r in rules]}
                   for key, rules in sorted(resolution.unmapped_logsources.items(),
                                            key=lambda kv: tuple(x or "" for x in kv[0]))]
    unmapped_events = [{
        "event_id": entry.event_id, "logsource": _ls(entry.logsource.key), "reason": entry.reason,
        "replaced_by": list(entry.replaced_by), "rules": [r.ref for r in entry.rules],
        "paths": [r.path for r in entry.rules]}
        for entry in sorted(resolution.unmapped_events.values(),
                            key=lambda e: (e.event_id, tuple(x or "" for x in e.logsource.key)))]
    return unmapped_ls, unmapped_events


def _summary(result: CheckResult, logsources: int, unmapped_logsources: int, unmapped_event_ids: int,
             extras: list[dict[str, Any]]) -> dict[str, Any]:
    loaded, resolution = result.loaded, result.resolution
    rules, requirements = resolution.rules, resolution.requirements
    coverage: Counter[str] = Counter()
    coverage_by_level: dict[str, dict[str, int]] = {}
    for res in rules:
        coverage[res.coverage] += 1
        level = res.rule.level or "unknown"
        coverage_by_level.setdefault(level, dict.fromkeys(COVERAGE_STATES, 0))[res.coverage] += 1
    return {
        "rules": len(loaded.rules),
        "rules_checked": len(rules),
        "filtered_out": result.filtered_out,
        "files": loaded.files,
        "errors": len(loaded.errors),
        "correlations": sum(1 for o in loaded.others if o.kind == "correlation"),
        "filters": sum(1 for o in loaded.others if o.kind == "filter"),
        "logsources": logsources,
        "requirements": len(requirements),
        "unmapped_logsources": unmapped_logsources,
        "unmapped_event_ids": unmapped_event_ids,
        "policy_checked": result.snapshot is not None,
        "coverage": {state: coverage.get(state, 0) for state in COVERAGE_STATES},
        "coverage_by_level": {lvl: coverage_by_level[lvl] for lvl in LEVEL_ORDER + ("unknown",)
                              if lvl in coverage_by_level},
        "requirements_status": dict(Counter(req.status for req in requirements.values())),
        "missing_requirements": len(result.ranked),
        "unsatisfiable_field_rules": sum(1 for res in rules if res.unsatisfiable_fields),
        "outside_windows": outside_summary(rules, requirements),
        "unknown_by_input": dict(Counter(hint for extra in extras for hint in extra["decided_by"]).most_common()),
        "collectors": len(result.collectors),
        "rules_not_collected": sum(1 for res in rules if res.collection_reason == "not_collected"),
        "rules_collection_unknown": sum(1 for res in rules if res.collection_reason == "collection_unknown"),
        "requirements_not_collected": sum(1 for req in requirements.values() if req.collected is False and req.rules),
    }


def _rule_extras(result: CheckResult, statuses: dict[str, str]) -> list[dict[str, Any]]:
    """Per rule: what would decide it when unknown (decide.py), the chosen plan's changes it needs and
    those held back, and its coverage once the plan is applied (over the plan's baseline: what the inputs
    cannot show is assumed off; kept by plans.py from building the plan)."""
    from .diff import coverage_shape
    from .plans import chosen_plan

    rules, reqs = result.resolution.rules, result.resolution.requirements
    plan = chosen_plan(result.plans)
    changes: dict[str, list[str]] = {}
    held: dict[str, list[str]] = {}
    after: list[Any] = [None] * len(rules)
    if plan is not None:
        for steps, into in ((plan.steps, changes), (plan.held_back, held)):
            for step in steps:
                for rid, refs in step.for_rules.items():
                    for ref in refs:
                        into.setdefault(ref, []).append(rid)
        after = _coverage_after(result, plan)
    # what decides a rule depends on what its coverage depends on, its unsatisfiable fields and whether it is
    # a Windows rule
    memo: dict[tuple, list[str]] = {}   # by diff.coverage_shape
    out = []
    for res, cov in zip(rules, after):
        decided: list[str] = []
        if res.coverage == "unknown":
            key = (coverage_shape(res), bool(res.unsatisfiable_fields), res.rule.logsource.key[0] == "windows")
            if key not in memo:
                memo[key] = deciding_inputs(res, statuses, reqs)
            decided = list(memo[key])
        ref = res.rule.ref
        out.append({"decided_by": decided, "changes": changes.get(ref, []), "held_back": held.get(ref, []),
                    "coverage_after_plan": cov})
    return out


def _recoveries(result: CheckResult) -> list[dict[str, Any]]:
    """What would serve the selections partial rules lose (recover.py); only read when a rule loses some."""
    if not any(res.lost_selections for res in result.resolution.rules):
        return []
    from .recover import recoveries

    return recoveries(result)


def _coverage_after(result: CheckResult, plan: Any) -> list[Any]:
    """Every rule's coverage with the plan applied: as the plan was built, else asked now."""
    if len(plan.coverage_after) == len(result.resolution.rules):
        return plan.coverage_after
    from .diff import WhatIf
    from .plans import baseline_statuses

    return WhatIf(result.resolution.rules).coverage(baseline_statuses(result), plan.changes)


def _collectors(result: CheckResult) -> list[dict[str, Any]]:
    return [{"path": c.path, "format": c.format, "warnings": list(c.warnings),
             "inputs": [{"channel": i.channel, "enabled": i.enabled, "stanza": i.stanza,
                         "filter": i.filter.description, "disabled": i.disabled_why or None} for i in c.inputs]}
            for c in result.collectors]


def _recommendations(result: CheckResult, ranked: list[Ranked]) -> list[dict[str, Any]]:
    """The chosen plan's changes in its order (see plans.py); without plans, the ranked missing
    requirements. ``unblinds`` counts the rules the plan makes usable that need the change."""
    from .plans import chosen_plan

    plan = chosen_plan(result.plans)
    if plan is None:
        return [{
            "requirement": r.requirement.id, "kind": r.requirement.kind, "name": r.requirement.name,
            "reason": r.requirement.reason, "volume": r.requirement.volume, "rules": r.rules,
            "high_critical": r.high_critical, "unblinds": r.unblinds,
            "unblinds_high_critical": r.unblinds_high_critical, "collected": r.requirement.collected}
            for r in ranked]
    reqs = result.resolution.requirements
    levels = {res.rule.ref: res.rule.level for res in result.resolution.rules}
    out = []
    for step in plan.steps:
        for rid in step.requirements:
            req = reqs[rid]
            out.append({
                "requirement": rid, "kind": req.kind, "name": req.name, "reason": req.reason,
                "volume": step.volume, "rules": len(step.needed_by),
                "high_critical": sum(1 for ref in step.needed_by if levels.get(ref) in ("high", "critical")),
                "unblinds": len(step.unblinds), "unblinds_high_critical": step.unblinds_high_critical,
                "change": step.key, "plan": plan.name, "collected": req.collected,
                "volume_measured": req.volume_measured})
    return out


_KIND_SHORT = {"audit_subcategory": "audit", "registry_policy": "policy", "event_channel": "channel",
               "sysmon_event": "sysmon", "sacl": "sacl"}


def step_label(step: Any, reqs: dict[str, Any], kb: Knowledge) -> dict[str, str]:
    """A change in few words: its kind, a short name, and for an audit subcategory or SACL the outcomes
    (S, F or S+F) it is set for."""
    first = reqs[step.requirements[0]]
    outcomes = "+".join(o for o, flag in (("S", "success"), ("F", "failure"))
                        if any(getattr(reqs[rid], flag) for rid in step.requirements))
    name = first.name
    if first.kind == "audit_subcategory" and first.guid in kb.subcategories:
        name = kb.subcategories[first.guid].name
    elif first.kind == "sacl":
        name = first.name.rsplit(" (", 1)[0]
    elif first.kind == "registry_policy" and first.policy in kb.registry_policies:
        name = kb.registry_policies[first.policy].name
    elif first.kind == "sysmon_event" and first.event_id in kb.sysmon_events:
        name = f"{first.event_id} {kb.sysmon_events[first.event_id].name}"
    return {"kind": _KIND_SHORT.get(first.kind, first.kind), "label": name,
            "outcomes": outcomes if first.kind in ("audit_subcategory", "sacl") else ""}


def _step_entry(step: Any, reqs: dict[str, Any], kb: Knowledge,
                by_ref: dict[str, Any] | None = None, memo: dict | None = None) -> dict[str, Any]:
    entry = {"change": step.key, **step_label(step, reqs, kb), "requirements": list(step.requirements),
             "names": [reqs[rid].name for rid in step.requirements], "volume": step.volume,
             "volume_source": _volume_source([reqs[rid] for rid in step.requirements]),
             "flagged": step.flagged, "needed_by": len(step.needed_by), "unblinds": len(step.unblinds),
             "unblinds_high_critical": step.unblinds_high_critical, "rules_unblinded": list(step.unblinds)}
    first = reqs[step.requirements[0]]
    if first.kind == "sacl" and first.sacl in kb.object_access.sacl_kinds and by_ref is not None:
        # what to set the SACL on: the objects the rules needing it name (objects.step_objects)
        from .objects import step_objects

        entry.update(step_objects(kb.object_access.sacl_kinds[first.sacl],
                                  [by_ref[ref] for ref in step.needed_by if ref in by_ref], memo))
    return entry


def _volume_source(reqs: list[Any]) -> str:
    """Where a change's volume comes from: ``measured`` in --events samples (every requirement of it),
    ``guide`` (none), ``measured_and_guide`` (some outcomes measured, others not)."""
    measured = sum(1 for req in reqs if getattr(req, "volume_measured", None))
    return "guide" if not measured else "measured" if measured == len(reqs) else "measured_and_guide"


def _plans(result: CheckResult) -> list[dict[str, Any]]:
    reqs = result.resolution.requirements
    by_ref = {res.rule.ref: res.rule for res in result.resolution.rules}
    memo: dict = {}   # each rule's objects, once for both plans
    return [{
        "name": plan.name, "chosen": plan.chosen, "changes": plan.changes,
        "unblinds": plan.unblinds, "unblinds_high_critical": plan.unblinds_high_critical,
        "still_blind": plan.still_blind, "still_partial": plan.still_partial,
        "held_back": [rid for step in plan.held_back for rid in step.requirements],
        "volume": plan.volume, "max_volume": result.max_volume,
        "hold_unknown_volume": result.hold_unknown_volume,
        "steps": [_step_entry(step, reqs, result.knowledge, by_ref, memo) for step in plan.steps],
        "held_back_steps": [_step_entry(step, reqs, result.knowledge, by_ref, memo) for step in plan.held_back],
    } for plan in result.plans]


def _policy(result: CheckResult) -> dict[str, Any] | None:
    snap, audit, kb = result.snapshot, result.audit, result.knowledge
    if snap is None or audit is None:
        return None
    audit_rows = []
    for guid, setting in sorted(audit.settings.items()):
        sub = kb.subcategories.get(guid)
        audit_rows.append({"guid": guid, "name": sub.name if sub else None,
                           "setting": describe_setting(setting), "success": setting.success,
                           "failure": setting.failure, "origin": audit.origin.get(guid),
                           "source": setting.source})
    warnings = list(snap.warnings)
    for inp in snap.inputs:
        warnings.extend(f"{inp.path}: {w}" for w in inp.warnings if f"{inp.path}: {w}" not in warnings)
    return {
        "inputs": [{"path": i.path, "format": i.format, "warnings": i.warnings} for i in snap.inputs],
        "has_computer_results": snap.has_computer_results,
        "role": snap.role,
        "role_reason": snap.role_reason,
        "audit_defaults": audit.defaults_reason,
        "audit_mode": audit.mode,
        "audit_explanation": audit.explanation,
        "force_subcategory": snap.force_subcategory,
        "audit": audit_rows,
        "legacy_audit": {k: describe_setting(v) for k, v in sorted(snap.legacy_audit.items())},
        "registry_policies": [{"name": p.name, "category": p.category, "state": p.state,
                               "settings": [list(s) for s in p.settings], "source": p.source}
                              for p in snap.registry_policies],
        "global_sacls": [{"name": name, "sddl": sddl, "source": source}
                         for name, (sddl, source) in sorted(snap.global_sacls.items())],
        "audit_options": {name: enabled for name, (enabled, _) in sorted(snap.audit_options.items())},
        "sysmon": None if snap.sysmon is None else {
            "source": snap.sysmon.source, "schema_version": snap.sysmon.schema_version,
            "os": snap.sysmon.os, "os_reason": snap.sysmon.os_reason,   # windows | linux | either (sysmon_linux.py)
            "collected": sorted(i for i, on in snap.sysmon.collected.items() if on),
            "unknown": sorted(i for i, s in snap.sysmon.status.items() if s == "unknown")},
        "warnings": warnings,
        "conflicts": list(snap.conflicts),
    }
