"""The diff: requirements x effective policy -> status per requirement, coverage per rule.

Statuses: ``met``, ``missing``, ``unknown`` (the inputs cannot show it), ``not_checked`` (no policy
input). Coverage: ``usable``, ``partial`` (some of the rule's EventIDs are produced, others are not; or
the producer in place cannot see some selections of the condition: ``lost_selections``), ``blind``,
``unknown``, ``not_checked``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from .knowledge import Knowledge, RegistryPolicy
from .policy.model import AuditSetting, PolicySnapshot, norm_category, norm_registry_key
from .objects import sacl_status
from .auditd_check import auditd_status, only_linux_inputs
from .resolve import Need, Requirement, Resolution, RuleResolution
from .roles import ROLE_NAMES, default_outcomes
from .rules import LEVELS

_NO_COMPUTER_RESULTS = ("the policy input has no computer results (gpresult /x run without elevation), so "
                        "it cannot show this setting")
_ORDER = {"met": 0, "unknown": 1, "not_checked": 1, "missing": 2, "not_collected": 2}
LEVEL_ORDER = tuple(reversed(LEVELS))   # most severe first


@dataclass
class EffectiveAudit:
    settings: dict[str, AuditSetting] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)   # GUID -> "advanced" | "legacy <key>"
    mode: str = "none"          # advanced | legacy | legacy_overrides | none
    explanation: str = ""
    role: str = "client"        # the machine's role, whose Windows defaults apply (roles.py)
    defaults_apply: bool = False   # does a subcategory no input configures keep Windows' default?
    defaults_reason: str = ""      # why (or why not), one line
    defaults_state: str = "not_shown"   # hold | cleared (an advanced audit GPO applies) | live | not_shown


def describe_setting(setting: AuditSetting | None) -> str:
    return "not configured" if setting is None else setting.describe()


_CLEARED = ("Windows clears every subcategory no GPO configures once advanced audit policy is applied by Group "
            "Policy (Microsoft's Advanced security auditing FAQ; docs/AUDIT-DEFAULTS.md)")


_AUDIT_FORMATS = {"gpresult", "gpo_report", "audit_csv", "auditpol_r", "gpttmpl"}


def _defaults(eff: EffectiveAudit, snapshot: PolicySnapshot, advanced: dict[str, AuditSetting]) -> None:
    """Whether an unconfigured subcategory keeps Windows' default: only while no advanced audit policy reaches
    the machine through Group Policy (applying it clears the rest); a live auditpol output shows every one."""
    formats = {inp.format for inp in snapshot.inputs}
    if not formats & _AUDIT_FORMATS:
        eff.defaults_apply, eff.defaults_state = False, "not_shown"
        eff.defaults_reason = ("no input shows the audit policy (a gpresult /x, GPO report, audit.csv or auditpol "
                               "/get /r would)")
    elif "auditpol_r" in formats:
        eff.defaults_apply, eff.defaults_state = False, "live"
        eff.defaults_reason = "the live audit state (auditpol /get /r) lists every subcategory the machine has"
    elif advanced:
        eff.defaults_apply, eff.defaults_state = False, "cleared"
        eff.defaults_reason = "the policy applies advanced audit settings, and " + _CLEARED
    else:
        eff.defaults_apply, eff.defaults_state = True, "hold"
        single = not formats & {"gpresult"}
        eff.defaults_reason = ("no input applies advanced audit policy, so nothing clears Windows' defaults"
                               + (" (assuming no other GPO applies advanced audit policy: a gpresult /x shows "
                                  "every GPO)" if single else ""))


def effective_audit(snapshot: PolicySnapshot, kb: Knowledge, role: str = "client") -> EffectiveAudit:
    eff = EffectiveAudit(role=role)
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
    _defaults(eff, snapshot, advanced)
    return eff



class PolicyDiff:
    def __init__(self, kb: Knowledge, snapshot: PolicySnapshot | None, role: str = "client",
                 role_known: bool = True) -> None:
        self.kb = kb
        self.snapshot = snapshot
        self.role, self.role_known = role, role_known
        self.audit = effective_audit(snapshot, kb, role) if snapshot is not None else None
        self._reg_values: dict[tuple[str, str], str] = {}
        if snapshot is not None:
            for rv in snapshot.registry_values:
                self._reg_values[(norm_registry_key(rv.key), rv.value.casefold())] = str(rv.data)

    # -- one requirement ---------------------------------------------------------------

    def status(self, req: Requirement) -> tuple[str, str | None]:
        if self.snapshot is None:
            return "not_checked", "no policy input given"
        kind = req.kind
        if kind == "auditd_rule":   # Linux: the loaded audit rules (auditd_check.py)
            return auditd_status(req.auditd, self.snapshot.auditd, self.kb.auditd)
        if kind == "sysmon_linux_event":   # Linux: a Sysmon for Linux configuration (sysmon_linux.py)
            from .sysmon_linux import linux_status
            return linux_status(req, self.snapshot, self.kb)
        if kind != "external" and only_linux_inputs(self.snapshot):
            if kind == "sysmon_event" and self.snapshot.sysmon is not None:
                from .sysmon_linux import windows_ignored
                return "not_checked", windows_ignored(self.snapshot.sysmon)
            return "not_checked", ("only Linux inputs were given (audit rules, a Sysmon for Linux configuration): no "
                                   "Windows policy input shows this")
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
            if sysmon.os == "linux":
                from .sysmon_linux import windows_ignored
                return "unknown", windows_ignored(sysmon)
            eid = req.event_id or -1
            status = sysmon.status.get(eid, "met" if sysmon.collected.get(eid) else "missing")
            if status == "met":
                return "met", sysmon.reasons.get(eid, "collected by the Sysmon configuration")
            event = self.kb.sysmon_events.get(eid)
            if event is not None and event.blocking:  # a protection policy, never a recommendation
                return "unknown", (f"{event.element} is a blocking Sysmon event type: it is logged only where a "
                                   "site configured blocking on purpose, so no change is recommended")
            return status, sysmon.reasons.get(eid, "not collected by the Sysmon configuration")
        if kind == "machine_role":   # an object-access producer that writes the event only on some roles
            roles = req.id.split(":", 1)[1].split("+")   # role:dc (resolve.Resolver._role)
            why = f"{self.snapshot.role_reason or self.role}"
            if not self.role_known:
                return "unknown", f"the machine's role decides it ({req.name}): {why}"
            if self.role in roles:
                return "met", f"{req.name}: {why}"
            return "missing", f"not {req.name[len('the machine is '):]}: {why}"
        if kind == "sacl":
            sacl_kind = self.kb.object_access.sacl_kinds[req.sacl or ""]
            return sacl_status(sacl_kind, "success" if req.success else "failure", self.snapshot,
                               lambda key, value: self._reg_values.get((norm_registry_key(key), value.casefold())))
        return "unknown", "collected outside Windows policy: the inputs cannot show it"

    def _audit_status(self, req: Requirement) -> tuple[str, str | None]:
        assert self.audit is not None
        sub = self.kb.subcategories[req.guid or ""]
        setting = self.audit.settings.get(sub.guid)
        outcome = "success" if req.success else "failure"
        if setting is None:
            return self._default_status(sub, outcome)
        origin = self.audit.origin.get(sub.guid, "policy")
        where = f" ({setting.source})" if setting.source else ""
        enabled = setting.success if outcome == "success" else setting.failure
        if enabled:
            return "met", f"{origin}{where}: {describe_setting(setting)}"
        return "missing", f"{origin}{where} sets {describe_setting(setting)}, {outcome} is needed"

    def _default_status(self, sub, outcome: str) -> tuple[str, str | None]:
        """A subcategory no input configures: Windows' default for the machine's role, where it still holds."""
        assert self.audit is not None
        role = self.audit.role
        default = sub.defaults.get(role, "unknown")
        outcomes = default_outcomes(sub, role)
        text = f"Windows default for {role} ({ROLE_NAMES.get(role, role)}): {default.replace('_', ' ')}"
        if not self.audit.defaults_apply:
            return "missing", f"not configured by policy; {self.audit.defaults_reason} ({text} does not hold)"
        if outcomes is None:
            return "unknown", f"not configured by policy; {text} (not documented); auditpol /get /r would show it"
        if outcomes[0 if outcome == "success" else 1]:
            return "met", f"{text}; {self.audit.defaults_reason}"
        return "missing", f"not configured by policy; {text}, {outcome} is needed"

    def _registry_status(self, pol: RegistryPolicy) -> tuple[str, str | None]:
        assert self.snapshot is not None
        deferred = self._deferral(pol)
        if deferred is not None:
            # the policy's check box (PowerShell 7: "Use Windows PowerShell Policy setting.") hands the decision
            # to another policy: that one's status is this one's
            target = self.kb.registry_policies[pol.defer.policy]  # type: ignore[union-attr]
            status, reason = self._registry_status(target)
            return status, (f"{deferred}, so {target.name} ({target.category}) decides: {reason}")
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

    def _deferral(self, pol: RegistryPolicy) -> str | None:
        """Why ``pol`` follows another policy on this machine (its deferral check box is on, as a GPO report
        shows it or as the registry value it writes), or None. A check box the report shows decides over the
        registry value; a policy that is not enabled defers nothing."""
        assert self.snapshot is not None
        defer = pol.defer
        if defer is None or defer.policy not in self.kb.registry_policies:
            return None
        wanted_cat = norm_category(pol.category)
        matches = [p for p in self.snapshot.registry_policies
                   if p.name.strip().casefold() == pol.name.casefold() and norm_category(p.category) == wanted_cat]
        if matches:
            setting = matches[-1]
            if setting.state.strip().casefold() != pol.state.casefold():
                return None
            where = f" ({setting.source})" if setting.source else ""
            wanted = _setting_name(defer.setting)
            for name, value in setting.settings:
                if _setting_name(name) == wanted:
                    on = value.strip().casefold() == defer.value.casefold()
                    return f"policy{where} checks {defer.setting!r}" if on else None
        reg = defer.registry
        found = self._reg_values.get((norm_registry_key(reg.key), reg.value.casefold()))
        if found is not None and str(found) == str(reg.data):
            return f"the policy sets {reg.value} = {reg.data} ({defer.setting!r})"
        return None

    def _channel_status(self, name: str) -> tuple[str, str | None]:
        assert self.snapshot is not None
        channel = self.kb.channel(name)
        wanted = self.kb.channel_key(name)  # a policy may name the channel by an alias (pySigma's spelling)
        for setting in reversed(self.snapshot.channels):
            if setting.enabled is not None and self.kb.channel_key(setting.name) == wanted:
                return ("met", f"enabled by {setting.source or 'policy'}") if setting.enabled else (
                    "missing", f"disabled by {setting.source or 'policy'}")
        if channel is not None and channel.enabled_by_default:
            return "met", "enabled by default"
        return "unknown", "off by default; the inputs cannot show whether it was enabled on the machine"

    # -- everything --------------------------------------------------------------------

    def apply(self, resolution: Resolution) -> None:
        for req in resolution.requirements.values():
            req.status, req.reason = self.status(req)
        sysmon = self.snapshot.sysmon if self.snapshot is not None else None
        if sysmon is not None and sysmon.includes:
            from .sysmon_includes import judge_includes  # include filters with conditions: compare the rules
            wanted_kinds = (("sysmon_event", sysmon.os != "linux"), ("sysmon_linux_event", sysmon.os != "windows"))
            for kind, wanted in wanted_kinds:
                if wanted:
                    judge_includes(self.kb, sysmon, resolution, kind)
        statuses = {rid: req.status for rid, req in resolution.requirements.items()}
        for res in resolution.rules:
            rule_coverage(res, statuses, self.snapshot is not None)



def _setting_name(name: str) -> str:
    """A sub-setting name compared loosely: GPO reports copy the label of the ADML presentation, which may
    end in ':' or '.'; case and surrounding blanks are ignored."""
    return name.strip().rstrip(":.").strip().casefold()


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
    res.lost_selections = _lost_selections(results, statuses) if res.coverage in ("usable", "partial") else []
    if res.lost_selections:
        res.coverage = "partial"
        res.partial = True
    return res.coverage


def coverage_key(res: RuleResolution) -> tuple:
    """Everything ``rule_coverage`` reads of a rule: two rules with the same key get the same coverage
    under any statuses. (Extend it whenever ``rule_coverage`` starts reading something else.) Kept on the
    record after the first call: what it reads is final once the resolver has made the record."""
    key = res.__dict__.get("_coverage_key")
    if key is None:
        key = res.__dict__["_coverage_key"] = (
            res.guide is None, bool(res.unmapped_event_ids), bool(res.notes), bool(res.always_logged_event_ids),
            tuple((need.event_id, tuple((option.requirements, option.lost) for option in need.options))
                  for need in res.needs))
    return key


_SHAPES: dict[tuple, int] = {}   # coverage_key -> a number, shared by every rule of that key (in this process)
_TABLE = object()   # marks a number as _SHAPES' (a record copied into another process gets its number again)


def coverage_shape(res: RuleResolution) -> int:
    """``coverage_key`` as a small number: equal for two rules exactly when their keys are equal. Kept on the
    record like the key, so grouping rules again (each ``WhatIf``) hashes a number, not the nested key."""
    kept = res.__dict__.get("_coverage_shape")
    if kept is None or kept[0] is not _TABLE:
        kept = res.__dict__["_coverage_shape"] = (_TABLE, _SHAPES.setdefault(coverage_key(res), len(_SHAPES)))
    return kept[1]


class WhatIf:
    """What if these requirements were met: the coverage each rule would have. Pure: neither the rule
    records nor the statuses given are changed (each distinct rule shape is judged on a shallow copy,
    so whatever ``rule_coverage`` derives stays on the copy). Ranking, plans and emit all ask this one
    question through it. Built once for a list of rules; rules of the same shape (``coverage_key``)
    are judged once per question."""

    def __init__(self, rules: Sequence[RuleResolution]) -> None:
        self.rules = list(rules)
        shapes: dict[int, int] = {}
        self.shape = [shapes.setdefault(coverage_shape(res), len(shapes)) for res in self.rules]
        self.sample: list[RuleResolution] = [None] * len(shapes)  # type: ignore[list-item]
        for res, shape in zip(self.rules, self.shape):
            if self.sample[shape] is None:
                self.sample[shape] = res

    def coverage(self, statuses: Mapping[str, str], met: Iterable[str] = (),
                 indexes: Iterable[int] | None = None) -> list[str]:
        """The coverage of the rules (all, or those at ``indexes``, in that order) under ``statuses`` with
        ``met`` switched on as well."""
        trial = dict(statuses)
        trial.update(dict.fromkeys(met, "met"))
        shape, sample = self.shape, self.sample
        if indexes is None:   # every rule: each shape once, then per rule
            judged = [_judge(res, trial) for res in sample]
            return [judged[s] for s in shape]
        memo: dict[int, str] = {}
        out = []
        for i in indexes:
            s = shape[i]
            cov = memo.get(s)
            if cov is None:
                cov = memo[s] = _judge(sample[s], trial)
            out.append(cov)
        return out


def _judge(res: RuleResolution, statuses: Mapping[str, str]) -> str:
    """``rule_coverage`` on a shallow copy of ``res`` (what ``copy.copy`` makes of it, without its generic
    machinery): the record itself is not changed."""
    trial = type(res).__new__(type(res))
    trial.__dict__.update(res.__dict__)
    return rule_coverage(trial, statuses)  # type: ignore[arg-type]


def coverage_if(rules: Sequence[RuleResolution], statuses: Mapping[str, str],
                met: Iterable[str] = ()) -> list[str]:
    """What if these requirements were met (see ``WhatIf``): the coverage each rule would have, in the
    order given; nothing is changed."""
    return WhatIf(rules).coverage(statuses, met)


def improves(before: str, after: str) -> bool:
    """A rule is unblinded when it becomes usable, or goes from blind to partial."""
    return (after == "usable" and before != "usable") or (before == "blind" and after == "partial")


def _lost_selections(results: list[tuple[Need, str]], statuses: dict[str, str]) -> list[str]:
    """The selections a rule loses: those the met producer that loses fewest cannot see (serving.py)."""
    lost: dict[str, None] = {}
    for need, _ in results:
        met = [o.lost for o in need.options if all(statuses[rid] == "met" for rid in o.requirements)]
        if met:
            lost.update(dict.fromkeys(min(met, key=len)))
    return list(lost)
