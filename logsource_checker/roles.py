"""The machine's role (client, member server, domain controller): which Windows audit defaults and event
volumes apply.

The role is decided from what the policy inputs show, matched against the markers in
``mappings/auditpol.yaml`` (``roles.dc_markers``: no SID, GPO or OU name lives here), else taken from
``--role``, else assumed (``roles.assumed``) and said so. ``--role`` wins over detection; when the two
disagree the report warns.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .knowledge import ROLES, AuditSubcategory, Knowledge
from .policy.model import PolicySnapshot

ROLE_NAMES = {"client": "client (workstation)", "server": "member server", "dc": "domain controller"}
# audit default value -> (success, failure)
_DEFAULT_OUTCOMES = {"none": (False, False), "success": (True, False), "failure": (False, True),
                     "success_and_failure": (True, True)}


@dataclass(frozen=True)
class RoleDecision:
    role: str
    reason: str
    known: bool          # detected or given; False when assumed


def detect_role(snapshot: PolicySnapshot | None, kb: Knowledge) -> tuple[str, str] | None:
    """('dc', why) when an input shows a domain controller; None when nothing shows the role."""
    if snapshot is None:
        return None
    markers: dict[str, Any] = kb.roles.get("dc_markers") or {}
    evidence = snapshot.role_evidence
    sids = {str(s).upper() for s in markers.get("sids") or []}
    rids = {str(r) for r in markers.get("domain_rids") or []}
    for sid, path in evidence.get("sids", []):
        text = sid.strip().upper()
        domain_rid = text.rsplit("-", 1)[-1] if text.startswith("S-1-5-21-") and text.count("-") == 7 else None
        if text in sids or (domain_rid is not None and domain_rid in rids):
            return "dc", f"{path}: the computer is in the security group {text} (a domain controllers group)"
    gpo_names = {str(n).casefold() for n in markers.get("gpo_names") or []}
    for name, path in evidence.get("gpo_names", []):
        if name.strip().casefold() in gpo_names:
            return "dc", f"{path}: the GPO {name.strip()!r} applies (it is linked to domain controllers)"
    ou_names = {str(n).casefold() for n in markers.get("ou_names") or []}
    for som, path in evidence.get("som", []):
        parts = [p.strip() for p in som.replace("\\", "/").split("/") if p.strip()]
        dn_ous = [p[3:].strip() for p in som.split(",") if p.strip().casefold().startswith("ou=")]
        if (len(parts) > 1 and parts[-1].casefold() in ou_names) or any(o.casefold() in ou_names for o in dn_ous):
            return "dc", f"{path}: the computer account is in the OU {som.strip()!r}"
    return None


def decide_role(snapshot: PolicySnapshot | None, kb: Knowledge, option: str | None) -> RoleDecision:
    """The role to use, and how it was decided. Sets ``snapshot.role`` / ``role_reason`` and, when ``--role``
    contradicts the inputs, adds a warning."""
    detected = detect_role(snapshot, kb)
    if option:
        decision = RoleDecision(option, f"given with --role {option}", True)
        if detected is not None and detected[0] != option and snapshot is not None:
            snapshot.warnings.append(f"--role {option} is used, but the input shows a {ROLE_NAMES[detected[0]]} "
                                     f"({detected[1]})")
    elif detected is not None:
        decision = RoleDecision(detected[0], f"detected: {detected[1]}", True)
    else:
        assumed = str(kb.roles.get("assumed") or "client")
        decision = RoleDecision(assumed, f"assumed: no input shows the machine's role (a gpresult /x of a domain "
                                         f"controller would); give --role client|server|dc", False)
    if snapshot is not None:
        snapshot.role, snapshot.role_reason = decision.role, decision.reason
    return decision


def default_outcomes(sub: AuditSubcategory, role: str) -> tuple[bool, bool] | None:
    """(success, failure) Windows audits by default for this role; None when the data does not know."""
    return _DEFAULT_OUTCOMES.get(sub.defaults.get(role, "unknown"))


def default_value(sub: AuditSubcategory, roles: tuple[str, ...]) -> int:
    """The SettingValue (0-3) of the defaults of these roles together (unknown counts as nothing)."""
    value = 0
    for role in roles:
        outcomes = default_outcomes(sub, role)
        if outcomes is not None:
            value |= (1 if outcomes[0] else 0) | (2 if outcomes[1] else 0)
    return value


def volume_for(sub: AuditSubcategory, role: str | None) -> str:
    """The event volume for the machine's role where Microsoft states it per role, else the general one."""
    if role is None:
        return sub.volume
    return sub.volume_by_role.get(role, sub.volume)


def _with_volumes(requirements: dict[str, Any], kb: Knowledge, decision: RoleDecision) -> dict[str, Any]:
    out = dict(requirements)
    if decision.known:
        for rid, req in requirements.items():
            if req.kind == "audit_subcategory" and req.guid in kb.subcategories:
                volume = volume_for(kb.subcategories[req.guid], decision.role)
                if volume != req.volume:
                    out[rid] = replace(req, volume=volume)
    return out


def role_volumes(resolution: Any, kb: Knowledge, decision: RoleDecision) -> Any:
    """The resolution with each audit requirement's volume for the machine's role (only when the role is known:
    an assumed role keeps the general volume, the highest over roles). Pure: a requirement whose volume
    changes is a new record in a new requirements table; the resolution given is left as it was, so two
    assessments of the same resolved rules never see each other's volumes."""
    return replace(resolution, requirements=_with_volumes(resolution.requirements, kb, decision))


__all__ = ["ROLES", "ROLE_NAMES", "RoleDecision", "detect_role", "decide_role", "default_outcomes",
           "default_value", "volume_for", "role_volumes"]
