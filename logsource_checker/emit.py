"""Emit the changes to apply: auditpol scripts, audit.csv, GPO settings, registry, channels, Sysmon.

What is emitted: for every need of every checked rule that is not met, the requirements of its
recommended option (the fewest missing requirements, else the primary one) that are not met. With no policy input that is everything the rules
require, except event-log channels that Windows enables by default. Commands are built only from our
own validated data (GUIDs, registry paths, channel names, Sysmon element names); rule text never
reaches a command. Output is deterministic, so emitting twice gives the same files.

Each change says how many rules need it and how many it unblinds: the rules that are not usable now
and become usable (or go from blind to partial) when this change alone is applied, and when every
change of the folder is applied.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import __version__
from .diff import coverage_if, improves, need_status
from .plans import ChangePlan, baseline_statuses, chosen_plan, compute_plans
from .knowledge import (GUID_RE, SAFE_CHANNEL_RE, SAFE_ELEMENT_RE, SAFE_REGISTRY_RE, Channel, Knowledge, RegistryPolicy,
                        SaclKind)
from .objects import sacl_entries
from .policy.model import long_registry_key
from .report import CheckResult
from .resolve import Requirement
from .sysmon_emit import merge_sysmon_config, render_config, split_blocking, tailor
from .templating import Trusted, nrules, render



class UnsafeValue(ValueError):
    """Our own data produced a value that is not safe in a command (a data bug: refuse to emit)."""


def _check(pattern: re.Pattern[str], value: str, what: str) -> Trusted:
    if not pattern.match(value):
        raise UnsafeValue(f"{what} {value!r} is not safe to place in a generated command")
    return Trusted(value)


@dataclass
class Change:
    """One thing to switch on, with the requirements it satisfies and the rules that need it."""

    req_ids: set[str] = field(default_factory=set)
    rule_refs: set[str] = field(default_factory=set)
    unblinds: int = 0          # rules it makes usable on its own
    unblinds_all: int = 0      # of the rules that need it, those usable once every change is applied
    order: int = 0             # its place in the plan (plans.py: most rules unblinded first)
    volume: str = "unknown"
    warning: str = ""          # plain text for a visible warning line (high or unknown volume), else ""

    @property
    def rules(self) -> int:
        return len(self.rule_refs)


@dataclass
class AuditChange(Change):
    guid: Trusted = Trusted("")
    name: str = ""
    gpo_name: Trusted = Trusted("")
    category: str = ""
    gpo_path: str = ""
    success: bool = False
    failure: bool = False


@dataclass
class RegistryChange(Change):
    policy: RegistryPolicy | None = None
    force: bool = False        # the force-subcategory option, added because audit changes need it


@dataclass
class ChannelChange(Change):
    channel: Channel | None = None


@dataclass
class SysmonChange(Change):
    event_id: int = 0


@dataclass
class ExternalChange(Change):
    req: Requirement | None = None


@dataclass
class SaclChange(Change):
    """A SACL the objects need (object-access auditing); listed to check or set, never removed."""

    kind: SaclKind | None = None
    success: bool = False
    failure: bool = False


@dataclass
class Plan:
    audit: dict[str, AuditChange] = field(default_factory=dict)
    registry: dict[str, RegistryChange] = field(default_factory=dict)
    channels: dict[str, ChannelChange] = field(default_factory=dict)
    sysmon: dict[int, SysmonChange] = field(default_factory=dict)
    external: dict[str, ExternalChange] = field(default_factory=dict)
    sacls: dict[str, SaclChange] = field(default_factory=dict)
    baseline: dict[str, str] = field(default_factory=dict)   # requirement id -> status before the changes
    counter: Any = None
    source: ChangePlan | None = None                           # the plan these changes come from

    def changes(self) -> Iterable[Change]:
        for group in (self.audit, self.registry, self.channels, self.sysmon, self.external, self.sacls):
            yield from group.values()


def plan_changes(result: CheckResult, source: ChangePlan | None = None) -> Plan:
    """The changes of a plan (by default the chosen one, see plans.py), grouped by artefact, each with
    the rules it was chosen for and its place in the plan's order."""
    kb = result.knowledge
    reqs = result.resolution.requirements
    if source is None:
        source = chosen_plan(result.plans) or chosen_plan(compute_plans(result))
    assert source is not None
    plan = Plan(baseline=baseline_statuses(result), source=source)
    seen: set[int] = set()
    for order, step in enumerate(source.steps):
        for rid in step.requirements:
            for ref in step.for_rules.get(rid, ()):
                change = _add(plan, kb, reqs[rid], ref)
                if change is not None and id(change) not in seen:
                    seen.add(id(change))
                    change.order, change.volume = order, step.volume
                    change.warning = volume_warning(step.volume)
    # collection outside Windows policy is no plan's change, but gpo.md still says what it needs
    for res in result.resolution.rules:
        for need in res.needs:
            if need_status(need, plan.baseline) != "met":
                for rid in need.best_option(plan.baseline).requirements:
                    if reqs[rid].kind == "external" and plan.baseline[rid] != "met":
                        _add(plan, kb, reqs[rid], res.rule.ref)
    plan.counter = _count_unblinds(result, plan)
    return plan


def volume_warning(volume: str) -> str:
    """The plain warning line a change of this volume carries in every artefact ("" for none)."""
    if volume == "high":
        return "high event volume: check log sizes and forwarding capacity before applying it fleet-wide"
    if volume == "unknown":
        return "event volume unknown: measure it on a few machines before applying it fleet-wide"
    return ""


def _add(plan: Plan, kb: Knowledge, req: Requirement, rule: str) -> Change | None:
    change: Change | None = None
    if req.kind == "audit_subcategory":
        sub = kb.subcategories[req.guid or ""]
        if not GUID_RE.match(sub.guid):
            raise UnsafeValue(f"GUID {sub.guid!r} malformed")
        audit = plan.audit.get(sub.guid)
        if audit is None:
            audit = plan.audit[sub.guid] = AuditChange(
                guid=Trusted(sub.guid), name=sub.name, gpo_name=Trusted(sub.gpo_name), category=sub.category,
                gpo_path=sub.gpo_path)
        audit.success |= bool(req.success)
        audit.failure |= bool(req.failure)
        change = audit
    elif req.kind == "registry_policy":
        pol = kb.registry_policies[req.policy or ""]
        change = plan.registry.setdefault(pol.id, RegistryChange(policy=pol))
    elif req.kind == "event_channel":
        channel = kb.channel(req.channel or "")
        if channel is not None:
            change = plan.channels.setdefault(channel.name, ChannelChange(channel=channel))
    elif req.kind == "sysmon_event" and req.event_id is not None:
        change = plan.sysmon.setdefault(req.event_id, SysmonChange(event_id=req.event_id))
    elif req.kind == "external":
        change = plan.external.setdefault(req.id, ExternalChange(req=req))
    elif req.kind == "sacl" and req.sacl in kb.object_access.sacl_kinds:
        sacl = plan.sacls.setdefault(req.sacl, SaclChange(kind=kb.object_access.sacl_kinds[req.sacl]))
        sacl.success |= bool(req.success)
        sacl.failure |= bool(req.failure)
        change = sacl
    if change is not None:
        change.req_ids.add(req.id)
        change.rule_refs.add(rule)
    return change


class _Unblinds:
    """Counts the rules a set of requirements makes usable (or blind -> partial) over the baseline."""

    def __init__(self, result: CheckResult, plan: Plan) -> None:
        self.baseline = plan.baseline
        self.by_ref = {res.rule.ref: res for res in result.resolution.rules}
        rules = list(self.by_ref.values())
        self.before = dict(zip(self.by_ref, coverage_if(rules, self.baseline)))
        every: set[str] = set()
        for change in plan.changes():
            every |= change.req_ids
        self.fixed_by_all = self._fixed(every, set(self.by_ref))

    def _fixed(self, req_ids: set[str], refs: set[str]) -> set[str]:
        known = [ref for ref in refs if ref in self.by_ref]
        after = coverage_if([self.by_ref[ref] for ref in known], self.baseline, req_ids)
        return {ref for ref, cov in zip(known, after) if improves(self.before[ref], cov)}

    def count(self, changes: list[Change]) -> tuple[int, int]:
        req_ids: set[str] = set()
        refs: set[str] = set()
        for change in changes:
            req_ids |= change.req_ids
            refs |= change.rule_refs
        return len(self._fixed(req_ids, refs)), len(refs & self.fixed_by_all)


def _count_unblinds(result: CheckResult, plan: Plan) -> _Unblinds:
    counter = _Unblinds(result, plan)
    for change in plan.changes():
        change.unblinds, change.unblinds_all = counter.count([change])
    return counter


# --------------------------------------------------------------------------- artefacts

def _audit_rows(result: CheckResult, plan: Plan) -> list[list[Trusted]]:
    """audit.csv rows: see emit_auditcsv (keeps every input row, never lowers a value, defaults included)."""
    from .emit_auditcsv import audit_csv_rows

    return audit_csv_rows(result, {guid: (c.success, c.failure) for guid, c in plan.audit.items()})


def _registry_entries(plan: Plan) -> list[dict[str, Any]]:
    entries = []
    for change in sorted(plan.registry.values(), key=lambda c: (not c.force, c.order, c.policy.id)):  # type: ignore[union-attr]
        pol = change.policy
        assert pol is not None
        values = []
        for spec in pol.registry:
            key = long_registry_key(spec.key)
            _check(SAFE_REGISTRY_RE, key, "registry key")
            _check(SAFE_REGISTRY_RE, spec.value, "registry value name")
            if spec.type == "REG_DWORD":
                data = Trusted(f"dword:{int(spec.data):08x}")
            elif spec.type == "REG_SZ":
                text = str(_check(SAFE_REGISTRY_RE, str(spec.data), "registry data"))
                data = Trusted('"' + text.replace("\\", "\\\\") + '"')
            else:
                raise UnsafeValue(f"registry type {spec.type!r} is not supported in registry.reg")
            name = spec.value.replace("\\", "\\\\")
            values.append({"key": Trusted(key), "name": Trusted(name), "data": data})
        entries.append({"policy": pol, "values": values, "rules": change.rules, "unblinds": change.unblinds,
                        "unblinds_all": change.unblinds_all, "force": change.force,
                        "volume": change.volume, "warning": "" if change.force else change.warning})
    return entries


def _sysmon_elements(kb: Knowledge, plan: Plan) -> list[dict[str, Any]]:
    """One entry per Sysmon filter element (RegistryEvent serves events 12, 13 and 14)."""
    groups: dict[str, list[SysmonChange]] = {}
    for event_id, change in sorted(plan.sysmon.items()):
        event = kb.sysmon_events.get(event_id)
        if event is None or not event.element:
            continue  # not filterable: Sysmon logs it whenever it runs
        _check(SAFE_ELEMENT_RE, event.element, "Sysmon element")
        groups.setdefault(event.element, []).append(change)
    elements = []
    for element, changes in groups.items():
        unblinds, unblinds_all = plan.counter.count(changes)
        refs = set().union(*(c.rule_refs for c in changes))
        elements.append({"element": Trusted(element), "event_ids": [c.event_id for c in changes],
                         "rules": len(refs), "unblinds": unblinds, "unblinds_all": unblinds_all,
                         "order": min(c.order for c in changes)})
    return sorted(elements, key=lambda e: (e["order"], min(e["event_ids"])))


def _held_back(result: CheckResult, plan: Plan) -> list[dict[str, Any]]:
    """What ``--max-volume`` held back from the plan, with the rules it would unblind (names from our data)."""
    if plan.source is None:
        return []
    reqs = result.resolution.requirements
    return [{"names": [reqs[rid].name for rid in step.requirements], "volume": step.volume,
             "unblinds": len(step.unblinds), "unblinds_high_critical": step.unblinds_high_critical}
            for step in plan.source.held_back]


def change_label(change: Change) -> str:
    """A change's name for warning lines, from our own data."""
    if isinstance(change, AuditChange):
        return change.name
    if isinstance(change, RegistryChange) and change.policy is not None:
        return change.policy.name
    if isinstance(change, ChannelChange) and change.channel is not None:
        return change.channel.name
    if isinstance(change, SysmonChange):
        return f"Sysmon event {change.event_id}"
    if isinstance(change, SaclChange) and change.kind is not None:
        return change.kind.name
    return ""


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _channel_entries(plan: Any) -> list[dict[str, Any]]:
    channels = []
    for change in sorted(plan.channels.values(), key=lambda c: (c.order, c.channel.name)):  # type: ignore[union-attr]
        channel = change.channel
        assert channel is not None
        size = channel.recommended_max_size_mb
        channels.append({"name": _check(SAFE_CHANNEL_RE, channel.name, "channel"), "channel": channel,
                         "bytes": Trusted(str(int(size) * 1024 * 1024)) if size else None,
                         "size_mb": Trusted(str(int(size))) if size else None,
                         "rules": change.rules, "unblinds": change.unblinds, "unblinds_all": change.unblinds_all,
                         "volume": change.volume, "warning": change.warning})
    return channels


def _force_option(result: CheckResult, plan: Any, audit: list) -> Any:
    """The 'force subcategory settings' policy when the audit changes need it (the policy does not enable it):
    added to the registry changes with the audit changes' rules, since those only take effect with it."""
    kb = result.knowledge
    force = kb.registry_policies.get(kb.force_subcategory_policy) if kb.force_subcategory_policy else None
    need_force = bool(audit) and (result.snapshot is None or result.snapshot.force_subcategory is not True)
    if not need_force:
        return None
    if force is not None:
        entry = plan.registry.setdefault(force.id, RegistryChange(policy=force))
        entry.force = True
        for change in audit:
            entry.rule_refs |= change.rule_refs
    return force


def _sysmon_file(result: CheckResult, plan: Any, context: dict[str, Any], elements: Any, blocked: Any) -> Any:
    """sysmon.xml: the user's configuration with additions, a new one, or None when nothing is to add (applied
    with `sysmon -c`, an empty new one would replace the configuration a machine already runs)."""
    kb = result.knowledge
    sysmon = result.snapshot.sysmon if result.snapshot else None
    source = sysmon.source if sysmon is not None and sysmon.os != "linux" else None   # never into a Linux one
    groups = tailor(result, plan, elements)
    if source:
        return merge_sysmon_config(Path(source).read_bytes(), groups, blocked, kb)
    if any(g["missing"] for g in groups):   # tailor() marks every group
        return render_config(kb, context, groups, blocked)
    return None


def emit_all(result: CheckResult, report: dict[str, Any], directory: Path, guard: Any = None) -> list[Path]:
    """Write the changes into ``directory`` through ``writer.write_tree`` (all or nothing, never over a
    file the tool did not write unless ``guard.force``); the paths written (a ``writer.Written``)."""
    from .writer import write_tree

    return write_tree(directory, emit_files(result, report), guard)


def emit_files(result: CheckResult, report: dict[str, Any]) -> dict[str, str | bytes]:
    """The files ``--emit`` writes: {name: content} (a fleet writes one set per policy group)."""
    from .render import render as render_report

    kb = result.knowledge
    plan = plan_changes(result)
    audit = sorted(plan.audit.values(), key=lambda c: (c.order, c.guid))   # GUIDs checked by _add
    channels = _channel_entries(plan)
    sysmon_elements, sysmon_blocked = split_blocking(kb, result, _sysmon_elements(kb, plan))
    force = _force_option(result, plan, audit)
    registry = _registry_entries(plan)
    external = sorted(plan.external.values(), key=lambda c: c.req.id)  # type: ignore[union-attr]
    context = {
        "version": Trusted(__version__), "audit": audit, "registry": registry, "channels": channels,
        "sysmon": sysmon_elements, "external": external,
        "policy_given": result.snapshot is not None, "kb": kb,
        "sysmon_schema": Trusted(str(kb.sysmon_meta.get("schema_version", "4.90"))),
        "force_policy": force,
        "plan": plan.source, "held_back": _held_back(result, plan),
        "warnings": [{"label": change_label(c), "volume": c.volume, "warning": c.warning}
                     for c in sorted(plan.changes(), key=lambda c: c.order)
                     if c.warning and not isinstance(c, ExternalChange)],
        "sacls": sacl_entries(result, sorted(plan.sacls.values(), key=lambda c: c.kind.id)),  # type: ignore[union-attr]
    }
    files: dict[str, str | bytes] = {
        "auditpol.cmd": _crlf(render("emit/auditpol.cmd.j2", "script", **context)),
        "auditpol.ps1": render("emit/auditpol.ps1.j2", "script", **context),
        "audit.csv": _crlf(render("emit/audit.csv.j2", "script", rows=_audit_rows(result, plan))),
        "gpo.md": render("emit/gpo.md.j2", "markdown", **context),
        "registry.reg": _crlf(render("emit/registry.reg.j2", "script", **context)),
        "channels.cmd": _crlf(render("emit/channels.cmd.j2", "script", **context)),
        "report.md": render_report(report, "markdown", True),
        "report.json": render_report(report, "json", True),
    }
    from .collector_emit import collector_additions

    files.update(collector_additions(result))   # --collector: what each collector must add
    sysmon = _sysmon_file(result, plan, context, sysmon_elements, sysmon_blocked)
    if sysmon is not None:
        files["sysmon.xml"] = sysmon
    from .auditd_emit import auditd_files   # Linux audit rules (only when a checked rule needs them)

    files.update(auditd_files(result))
    if any(req.kind == "sysmon_linux_event" for req in result.resolution.requirements.values()):
        from .sysmon_linux_emit import sysmon_linux_files   # Sysmon for Linux (only when a rule needs it)

        files.update(sysmon_linux_files(result))
    return files
