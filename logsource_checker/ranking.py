"""Ranking: the missing requirements worth recommending (``actionable_missing``) and how many rules each
would unblind (``rank_missing``), most useful first; the plans (plans.py) and reports read it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Collection

from .diff import coverage_if, need_status
from .resolution import Requirement, Resolution, RuleResolution


@dataclass
class Ranked:
    requirement: Requirement
    rules: int
    high_critical: int
    unblinds: int
    unblinds_high_critical: int


def actionable_missing(resolution: Resolution, never_arrive: Collection[str] = ()) -> dict[str, list[str]]:
    """Missing requirements worth recommending, with the rules they are recommended for: those in the
    best option (``Need.best_option``) of a need that is missing. A missing requirement that is only an
    alternative to something already met (Account Lockout for 4625 when Logon audits failures) is not.
    ``never_arrive``: an option needing one of these requirements (its events are not forwarded) is chosen
    only when no other way is left (as the plans choose, plans._Planner.choose)."""
    avoid = frozenset(never_arrive)
    statuses = {rid: req.status for rid, req in resolution.requirements.items()}
    chosen: dict[str, dict[str, None]] = {}
    for res in resolution.rules:
        for need in res.needs:
            if need_status(need, statuses) != "missing":
                continue
            for rid in need.best_option(statuses, avoid).requirements:
                # the machine's role is not a setting: never recommended
                if statuses[rid] == "missing" and resolution.requirements[rid].kind != "machine_role":
                    chosen.setdefault(rid, {})[res.rule.ref] = None
    return {rid: list(refs) for rid, refs in chosen.items()}


def rank_missing(resolution: Resolution, limit: Callable[[RuleResolution, str], str] | None = None,
                 never_arrive: Collection[str] = ()) -> list[Ranked]:
    """The actionable missing requirements, most useful first: rules each would unblind (an audit
    requirement together with the other recommended outcome of its subcategory), then high/critical
    rules, then rules it is recommended for. ``limit``: the best coverage a rule can reach whatever the
    policy (with --collector: collection_plan.limit_by_collection); ``never_arrive``: requirements whose
    events no collector forwards (collection_plan.never_arriving), which switched on unblind nothing."""
    statuses = {rid: req.status for rid, req in resolution.requirements.items()}
    by_ref = {res.rule.ref: res for res in resolution.rules}
    actionable = actionable_missing(resolution, never_arrive)
    # One change sets a subcategory for every outcome it needs: the success and failure requirements of one
    # subcategory are counted together (Detailed File Share unblinds nothing with success alone).
    together: dict[str, list[str]] = {}
    for rid in actionable:
        req = resolution.requirements[rid]
        together.setdefault(req.guid if req.kind == "audit_subcategory" and req.guid else rid, []).append(rid)
    ranked = []
    for rid, refs in actionable.items():
        req = resolution.requirements[rid]
        group = together[req.guid if req.kind == "audit_subcategory" and req.guid else rid]
        candidates = [by_ref[ref] for ref in dict.fromkeys(
            r for member in group for r in resolution.requirements[member].rules)
            if ref in by_ref and by_ref[ref].coverage in ("blind", "partial")]
        unblinds = unblinds_high = 0
        switched = [member for member in group if member not in never_arrive] if never_arrive else group
        for res, after in zip(candidates, coverage_if(candidates, statuses, switched)):
            if limit is not None:
                after = limit(res, after)
            if after == "usable" or (after == "partial" and res.coverage == "blind"):
                unblinds += 1
                unblinds_high += res.rule.level in ("high", "critical")
        high = sum(1 for ref in refs if by_ref[ref].rule.level in ("high", "critical"))
        ranked.append(Ranked(req, len(refs), high, unblinds, unblinds_high))
    ranked.sort(key=lambda r: (-r.unblinds, -r.unblinds_high_critical, -r.rules, r.requirement.id))
    return ranked
