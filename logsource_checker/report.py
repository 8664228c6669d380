"""Builds the report: one JSON-able dict that every renderer reads.

Key names here are the public JSON report format (README, "JSON report"): later versions add keys,
never rename these.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from ._gcpause import paused_gc
from .diff import LEVEL_ORDER, EffectiveAudit, Ranked, describe_setting
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


_ls = logsource_dict


def _rule_entry(res: RuleResolution, statuses: dict[str, str], verbose: bool) -> dict[str, Any]:
    from .diff import need_status

    rule = res.rule
    entry: dict[str, Any] = {
        "id": rule.id,
        "title": rule.title,
        "path": rule.path,
        "level": rule.level,
        "status": rule.status,
        "logsource": _ls(rule.logsource.key),
        "event_ids": list(rule.event_ids),
        "channels": list(rule.channels),
        "providers": list(rule.providers),
        "guide": res.guide.id if res.guide else None,
        "requirements": res.requirement_ids,
        "coverage": res.coverage,
        "partial": res.partial,
        "event_ids_produced": res.event_ids_produced,
        "event_ids_missing": res.event_ids_missing,
        "event_ids_unmapped": sorted(set(res.unmapped_event_ids)),
        "notes": res.notes,
    }
    if verbose:
        entry["fields"] = list(rule.fields)
        entry["needs"] = [{
            "label": need.label,
            "event_id": need.event_id,
            "status": need_status(need, statuses),
            "options": [{"name": o.name, "primary": o.primary, "requirements": list(o.requirements),
                         "notes": o.notes} for o in need.options],
        } for need in res.needs]
    return entry


def build(result: CheckResult, verbose: bool = True) -> dict[str, Any]:
    with paused_gc():
        return _build(result, verbose)


def _build(result: CheckResult, verbose: bool) -> dict[str, Any]:
    loaded, resolution, kb = result.loaded, result.resolution, result.knowledge
    statuses = {rid: req.status for rid, req in resolution.requirements.items()}
    rank_by_id = {r.requirement.id: r for r in result.ranked}

    # log sources
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

    requirements = []
    for req in resolution.requirements.values():
        ranked = rank_by_id.get(req.id)
        requirements.append({
            "id": req.id, "kind": req.kind, "name": req.name, "guid": req.guid,
            "success": req.success, "failure": req.failure, "channel": req.channel,
            "event_id": req.event_id, "policy": req.policy, "volume": req.volume,
            "reference": req.reference, "how": req.how,
            "rules": list(req.rules), "alternatives": list(req.alternatives),
            "status": req.status, "reason": req.reason,
            "unblinds": ranked.unblinds if ranked else None,
            "unblinds_high_critical": ranked.unblinds_high_critical if ranked else None,
        })
    requirements.sort(key=lambda r: (-len(r["rules"]), r["id"]))

    coverage = Counter(res.coverage for res in resolution.rules)
    coverage_by_level: dict[str, dict[str, int]] = {}
    for res in resolution.rules:
        level = res.rule.level or "unknown"
        coverage_by_level.setdefault(level, dict.fromkeys(COVERAGE_STATES, 0))[res.coverage] += 1
    unmapped_ls = [{**_ls(key), "rules": [r.ref for r in rules], "paths": [r.path for r in rules]}
                   for key, rules in sorted(resolution.unmapped_logsources.items(),
                                            key=lambda kv: tuple(x or "" for x in kv[0]))]
    unmapped_events = [{
        "event_id": entry.event_id, "logsource": _ls(entry.logsource.key), "reason": entry.reason,
        "replaced_by": list(entry.replaced_by), "rules": [r.ref for r in entry.rules],
        "paths": [r.path for r in entry.rules]}
        for entry in sorted(resolution.unmapped_events.values(),
                            key=lambda e: (e.event_id, tuple(x or "" for x in e.logsource.key)))]
    missing = [r for r in result.ranked]
    summary = {
        "rules": len(loaded.rules),
        "rules_checked": len(resolution.rules),
        "filtered_out": result.filtered_out,
        "files": loaded.files,
        "errors": len(loaded.errors),
        "correlations": sum(1 for o in loaded.others if o.kind == "correlation"),
        "filters": sum(1 for o in loaded.others if o.kind == "filter"),
        "logsources": len(by_ls),
        "requirements": len(resolution.requirements),
        "unmapped_logsources": len(unmapped_ls),
        "unmapped_event_ids": len(unmapped_events),
        "policy_checked": result.snapshot is not None,
        "coverage": {state: coverage.get(state, 0) for state in COVERAGE_STATES},
        "coverage_by_level": {lvl: coverage_by_level[lvl] for lvl in LEVEL_ORDER + ("unknown",)
                              if lvl in coverage_by_level},
        "requirements_status": dict(Counter(req.status for req in resolution.requirements.values())),
        "missing_requirements": len(missing),
    }
    report: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "summary": summary,
        "errors": [{"path": e.path, "line": e.line, "message": e.message} for e in loaded.errors],
        "logsources": logsources,
        "rules": [_rule_entry(res, statuses, verbose) for res in resolution.rules],
        "requirements": requirements,
        "unmapped": {"logsources": unmapped_ls, "event_ids": unmapped_events},
        "other_documents": [{"path": o.path, "document": o.document, "kind": o.kind, "id": o.id,
                             "title": o.title} for o in loaded.others],
        "recommendations": [{
            "requirement": r.requirement.id, "kind": r.requirement.kind, "name": r.requirement.name,
            "reason": r.requirement.reason, "volume": r.requirement.volume, "rules": r.rules,
            "high_critical": r.high_critical, "unblinds": r.unblinds,
            "unblinds_high_critical": r.unblinds_high_critical} for r in missing],
        "policy": _policy(result),
    }
    return report


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
        "audit_mode": audit.mode,
        "audit_explanation": audit.explanation,
        "force_subcategory": snap.force_subcategory,
        "audit": audit_rows,
        "legacy_audit": {k: describe_setting(v) for k, v in sorted(snap.legacy_audit.items())},
        "registry_policies": [{"name": p.name, "category": p.category, "state": p.state,
                               "settings": [list(s) for s in p.settings], "source": p.source}
                              for p in snap.registry_policies],
        "sysmon": None if snap.sysmon is None else {
            "source": snap.sysmon.source, "schema_version": snap.sysmon.schema_version,
            "collected": sorted(i for i, on in snap.sysmon.collected.items() if on)},
        "warnings": warnings,
        "conflicts": list(snap.conflicts),
    }
