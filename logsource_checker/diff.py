"""The diff: requirements x effective policy -> status per requirement, coverage per rule.

Statuses: ``met``, ``missing``, ``unknown`` (the inputs cannot show it), ``not_checked`` (no policy
input). Coverage: ``usable``, ``partial`` (some of the rule's EventIDs are produced, others are not),
``blind``, ``unknown``, ``not_checked``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .knowledge import Knowledge, RegistryPolicy
from .policy.model import AuditSetting, PolicySnapshot, norm_category, norm_registry_key
from .resolve import Need, Requirement, Resolution, RuleResolution
from .rules import LEVELS

_NO_COMPUTER_RESULTS = ("the policy input has no computer results (gpresult /x run without elevation), so "
                        "it cannot show this setting")
_ORDER = {"met": 0, "unknown": 1, "not_checked": 1, "missing": 2}
LEVEL_ORDER = tuple(reversed(LEVELS))   # most severe first


@dataclass
class EffectiveAudit:
    settings: dict[str, AuditSetting] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)   # GUID -> "advanced" | "legacy <key>"
    mode: str = "none"          # advanced | legacy | legacy_overrides | none
    explanation: str = ""


def describe_setting(setting: AuditSetting | None) -> str:
    return "not configured" if setting is None else setting.describe()


def effective_audit(snapshot: PolicySnapshot, kb: Knowledge) -> EffectiveAudit:
    eff = EffectiveAudit()
    advanced = {guid.upper(): s for guid, s in snapshot.audit.items()}
    force = snapshot.force_subcategory
    force_text = ("the policy enables" if force else "the policy disables") if force is not None else (
        "Windows' default applies to" if kb.force_subcategory_default else "nothing sets")
    force_on = force if force is not None else kb.force_subcategory_default
    legacy: dict[str, AuditSetting] = {}
    for key, setting in snapshot.legacy_audit.items():
        for cat in kb.categories.values():
            if cat.legacy_key.casefold() == key.casefold():
                for sub in kb.subcategories.values():
                    if sub.category == cat.name:
                        legacy[sub.guid] = setting
                        eff.origin.setdefault(sub.guid, f"legacy {cat.legacy_policy}")
    if advanced and (force_on or not legacy):
        eff.settings = dict(advanced)
        eff.origin = {guid: "advanced audit policy" for guid in advanced}
        eff.mode = "advanced"
        eff.explanation = (
            f"Advanced Audit Policy applies: {force_text} 'force audit policy subcategory settings'"
            + (", so the legacy category settings in the input are ignored" if legacy else ""))
    elif advanced:
        eff.settings = dict(advanced)
        eff.settings.update(legacy)
        eff.origin = {guid: ("legacy category policy" if guid in legacy else "advanced audit policy")
                      for guid in eff.settings}
        eff.mode = "legacy_overrides"
        eff.explanation = ("'force audit policy subcategory settings' is disabled, so legacy category settings "
                           "override the subcategory settings of their categories")
    elif legacy:
        eff.settings = dict(legacy)
        eff.mode = "legacy"
        eff.explanation = "only legacy category audit settings are set: each applies to all its subcategories"
    else:
        eff.mode = "none"
        eff.explanation = "the inputs configure no audit policy"
    return eff



class PolicyDiff:
    def __init__(self, kb: Knowledge, snapshot: PolicySnapshot | None) -> None:
        self.kb = kb
        self.snapshot = snapshot
        self.audit = effective_audit(snapshot, kb) if snapshot is not None else None
        self._reg_values: dict[tuple[str, str], str] = {}
        if snapshot is not None:
            for rv in snapshot.registry_values:
                self._reg_values[(norm_registry_key(rv.key), rv.value.casefold())] = str(rv.data)

    # -- one requirement ---------------------------------------------------------------

    def status(self, req: Requirement) -> tuple[str, str | None]:
        if self.snapshot is None:
            return "not_checked", "no policy input given"
        kind = req.kind
        blind_input = not self.snapshot.has_computer_results
        if kind == "audit_subcategory":
            if blind_input and not (self.snapshot.audit or self.snapshot.legacy_audit):
                return "unknown", _NO_COMPUTER_RESULTS
            return self._audit_status(req)
        if kind == "registry_policy":
            if blind_input and not (self.snapshot.registry_policies or self.snapshot.registry_values):
                return "unknown", _NO_COMPUTER_RESULTS
            return self._registry_status(self.kb.registry_policies[req.policy or ""])
        if kind == "event_channel":
            return self._channel_status(req.channel or "")
        if kind == "sysmon_event":
            sysmon = self.snapshot.sysmon
            if sysmon is None:
                return "unknown", "no Sysmon configuration given (--sysmon-config)"
            if sysmon.collected.get(req.event_id or -1):
                return "met", sysmon.reasons.get(req.event_id or -1, "collected by the Sysmon configuration")
            return "missing", sysmon.reasons.get(req.event_id or -1, "not collected by the Sysmon configuration")
        return "unknown", "collected outside Windows policy: the inputs cannot show it"

    def _audit_status(self, req: Requirement) -> tuple[str, str | None]:
        assert self.audit is not None
        sub = self.kb.subcategories[req.guid or ""]
        setting = self.audit.settings.get(sub.guid)
        outcome = "success" if req.success else "failure"
        if setting is None:
            text = "not configured by policy"
            if sub.defaults:
                text += "; Windows' default: " + ", ".join(
                    f"{kind} {value.replace('_', ' ')}" for kind, value in sorted(sub.defaults.items()))
            return "missing", text
        origin = self.audit.origin.get(sub.guid, "policy")
        where = f" ({setting.source})" if setting.source else ""
        enabled = setting.success if outcome == "success" else setting.failure
        if enabled:
            return "met", f"{origin}{where}: {describe_setting(setting)}"
        return "missing", f"{origin}{where} sets {describe_setting(setting)}, {outcome} is needed"

    def _registry_status(self, pol: RegistryPolicy) -> tuple[str, str | None]:
        assert self.snapshot is not None
        if pol.kind == "security_option":
            found = [self._reg_values.get((norm_registry_key(r.key), r.value.casefold())) for r in pol.registry]
            if all(v is not None for v in found):
                ok = all(str(v) == str(r.data) for v, r in zip(found, pol.registry))
                return ("met", "set by policy") if ok else ("missing", f"policy sets {', '.join(map(str, found))}")
            return "missing", "not configured by policy"
        wanted_cat = norm_category(pol.category)
        matches = [p for p in self.snapshot.registry_policies
                   if p.name.strip().casefold() == pol.name.casefold() and norm_category(p.category) == wanted_cat]
        if matches:
            setting = matches[-1]
            where = f" ({setting.source})" if setting.source else ""
            if setting.state.casefold() != pol.state.casefold():
                return "missing", f"policy{where} sets it {setting.state}, {pol.state} is needed"
            given = {name.casefold(): value for name, value in setting.settings}
            for name, value in pol.settings:
                have = given.get(name.casefold())
                if have is None:
                    continue  # the report does not show the sub-setting: trust the state
                entries = {e.strip().casefold() for e in have.replace(";", ",").split(",")}
                if value.casefold() not in entries:
                    return "missing", f"policy{where} sets {name} to {have!r}, {value!r} is needed"
            return "met", f"{pol.state} by policy{where}"
        found = [self._reg_values.get((norm_registry_key(r.key), r.value.casefold())) for r in pol.registry]
        if pol.registry and all(v is not None for v in found):
            if all(str(v) == str(r.data) for v, r in zip(found, pol.registry)):
                return "met", "registry values set by policy"
            return "missing", "registry values set to other data by policy"
        return "missing", "not configured by policy"

    def _channel_status(self, name: str) -> tuple[str, str | None]:
        assert self.snapshot is not None
        channel = self.kb.channel(name)
        for setting in reversed(self.snapshot.channels):
            if setting.name.casefold() == name.casefold() and setting.enabled is not None:
                return ("met", f"enabled by {setting.source or 'policy'}") if setting.enabled else (
                    "missing", f"disabled by {setting.source or 'policy'}")
        if channel is not None and channel.enabled_by_default:
            return "met", "enabled by default"
        return "unknown", "off by default; the inputs cannot show whether it was enabled on the machine"

    # -- everything --------------------------------------------------------------------

    def apply(self, resolution: Resolution) -> None:
        for req in resolution.requirements.values():
            req.status, req.reason = self.status(req)
        statuses = {rid: req.status for rid, req in resolution.requirements.items()}
        for res in resolution.rules:
            rule_coverage(res, statuses, self.snapshot is not None)



def need_status(need: Need, statuses: dict[str, str]) -> str:
    best = "missing"
    for option in need.options:
        worst = "met"
        for rid in option.requirements:
            if _ORDER[statuses[rid]] > _ORDER[worst]:
                worst = statuses[rid]
        if _ORDER[worst] < _ORDER[best]:
            best = worst
    return "unknown" if best == "not_checked" else best


def rule_coverage(res: RuleResolution, statuses: dict[str, str], checked: bool = True) -> str:
    if not checked:
        res.coverage = "not_checked"
        return res.coverage
    results = [(need, need_status(need, statuses)) for need in res.needs]
    produced = sorted(need.event_id for need, s in results if need.event_id is not None and s == "met")
    missing_ids = sorted(need.event_id for need, s in results if need.event_id is not None and s == "missing")
    res.event_ids_produced = produced + sorted(res.always_logged_event_ids)
    res.event_ids_missing = missing_ids
    general_missing = any(s == "missing" for need, s in results if need.event_id is None)
    states = {s for _, s in results}
    res.partial = False
    if res.guide is None or (not res.needs and (res.unmapped_event_ids or res.notes)):
        res.coverage = "unknown"
    elif "missing" in states:
        if not general_missing and res.event_ids_produced and missing_ids:
            res.coverage = "partial"
            res.partial = True
        else:
            res.coverage = "blind"
    elif "unknown" in states:
        res.coverage = "unknown"
    else:
        res.coverage = "usable"
    return res.coverage


@dataclass
class Ranked:
    requirement: Requirement
    rules: int
    high_critical: int
    unblinds: int
    unblinds_high_critical: int


def actionable_missing(resolution: Resolution) -> dict[str, list[str]]:
    """Missing requirements worth recommending, with the rules they are recommended for: those in the
    best option (``Need.best_option``) of a need that is missing. A missing requirement that is only an
    alternative to something already met (Account Lockout for 4625 when Logon audits failures) is not."""
    statuses = {rid: req.status for rid, req in resolution.requirements.items()}
    chosen: dict[str, dict[str, None]] = {}
    for res in resolution.rules:
        for need in res.needs:
            if need_status(need, statuses) != "missing":
                continue
            for rid in need.best_option(statuses).requirements:
                if statuses[rid] == "missing":
                    chosen.setdefault(rid, {})[res.rule.ref] = None
    return {rid: list(refs) for rid, refs in chosen.items()}


def rank_missing(resolution: Resolution) -> list[Ranked]:
    """The actionable missing requirements, most useful first: rules each would unblind (an audit
    requirement together with the other recommended outcome of its subcategory), then high/critical
    rules, then rules it is recommended for."""
    statuses = {rid: req.status for rid, req in resolution.requirements.items()}
    by_ref = {res.rule.ref: res for res in resolution.rules}
    actionable = actionable_missing(resolution)
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
        trial = dict(statuses)
        trial.update(dict.fromkeys(group, "met"))
        unblinds = unblinds_high = 0
        for ref in dict.fromkeys(r for member in group for r in resolution.requirements[member].rules):
            res = by_ref.get(ref)
            if res is None or res.coverage not in ("blind", "partial"):
                continue
            before = (res.coverage, res.partial, list(res.event_ids_produced), list(res.event_ids_missing))
            after = rule_coverage(res, trial)
            if after == "usable" or (after == "partial" and before[0] == "blind"):
                unblinds += 1
                unblinds_high += res.rule.level in ("high", "critical")
            res.coverage, res.partial, res.event_ids_produced, res.event_ids_missing = before
        high = sum(1 for ref in refs if by_ref[ref].rule.level in ("high", "critical"))
        ranked.append(Ranked(req, len(refs), high, unblinds, unblinds_high))
    ranked.sort(key=lambda r: (-r.unblinds, -r.unblinds_high_critical, -r.rules, r.requirement.id))
    return ranked
