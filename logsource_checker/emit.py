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

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import __version__
from .diff import need_status, rule_coverage
from .policy.model import long_registry_key
from .knowledge import GUID_RE, SAFE_CHANNEL_RE, SAFE_ELEMENT_RE, SAFE_REGISTRY_RE, Channel, Knowledge, RegistryPolicy
from .report import CheckResult
from .resolve import Requirement
from .templating import Trusted, nrules, render

_ACTIONABLE = ("audit_subcategory", "registry_policy", "event_channel", "sysmon_event")


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
    volume: str = ""
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
class Plan:
    audit: dict[str, AuditChange] = field(default_factory=dict)
    registry: dict[str, RegistryChange] = field(default_factory=dict)
    channels: dict[str, ChannelChange] = field(default_factory=dict)
    sysmon: dict[int, SysmonChange] = field(default_factory=dict)
    external: dict[str, ExternalChange] = field(default_factory=dict)
    baseline: dict[str, str] = field(default_factory=dict)   # requirement id -> status before the changes
    counter: Any = None

    def changes(self) -> Iterable[Change]:
        for group in (self.audit, self.registry, self.channels, self.sysmon, self.external):
            yield from group.values()


def baseline_statuses(result: CheckResult) -> dict[str, str]:
    """Requirement statuses before any change. Without a policy input: nothing is switched on except
    what Windows enables by default (event-log channels), and collection outside Windows is unknown."""
    kb = result.knowledge
    statuses = {}
    for rid, req in result.resolution.requirements.items():
        status = req.status
        if status == "not_checked":
            if req.kind == "event_channel":
                channel = kb.channel(req.channel or "")
                status = "met" if channel is not None and channel.enabled_by_default else "missing"
            elif req.kind in _ACTIONABLE:
                status = "missing"
            else:
                status = "unknown"
        statuses[rid] = status
    return statuses


def plan_changes(result: CheckResult) -> Plan:
    kb = result.knowledge
    reqs = result.resolution.requirements
    plan = Plan(baseline=baseline_statuses(result))
    for res in result.resolution.rules:
        for need in res.needs:
            if need_status(need, plan.baseline) == "met":
                continue
            for rid in need.best_option(plan.baseline).requirements:
                if plan.baseline[rid] == "met":
                    continue
                _add(plan, kb, reqs[rid], res.rule.ref)
    plan.counter = _count_unblinds(result, plan)
    return plan


def _add(plan: Plan, kb: Knowledge, req: Requirement, rule: str) -> None:
    change: Change | None = None
    if req.kind == "audit_subcategory":
        sub = kb.subcategories[req.guid or ""]
        if not GUID_RE.match(sub.guid):
            raise UnsafeValue(f"GUID {sub.guid!r} malformed")
        audit = plan.audit.get(sub.guid)
        if audit is None:
            audit = plan.audit[sub.guid] = AuditChange(
                guid=Trusted(sub.guid), name=sub.name, gpo_name=Trusted(sub.gpo_name), category=sub.category,
                gpo_path=sub.gpo_path, volume=sub.volume)
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
    if change is not None:
        change.req_ids.add(req.id)
        change.rule_refs.add(rule)


def _improves(before: str, after: str) -> bool:
    return (after == "usable" and before != "usable") or (before == "blind" and after == "partial")


class _Unblinds:
    """Counts the rules a set of requirements makes usable (or blind -> partial) over the baseline."""

    def __init__(self, result: CheckResult, plan: Plan) -> None:
        self.baseline = plan.baseline
        self.by_ref = {res.rule.ref: res for res in result.resolution.rules}
        self.before = {ref: rule_coverage(copy.copy(res), self.baseline) for ref, res in self.by_ref.items()}
        every: set[str] = set()
        for change in plan.changes():
            every |= change.req_ids
        self.fixed_by_all = self._fixed(every, set(self.by_ref))

    def _fixed(self, req_ids: set[str], refs: set[str]) -> set[str]:
        trial = dict(self.baseline)
        trial.update(dict.fromkeys(req_ids, "met"))
        return {ref for ref in refs if ref in self.by_ref
                and _improves(self.before[ref], rule_coverage(copy.copy(self.by_ref[ref]), trial))}

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

def _audit_rows(result: CheckResult, plan: Plan) -> list[dict[str, Any]]:
    """audit.csv rows: the current effective settings merged with the additions; never lower one.
    A subcategory with no auditing is left out (not configured) rather than written as "No Auditing":
    a GPO that imports such a row would switch auditing off over any lower-precedence GPO that enables
    it, and live ``auditpol /get`` output shows every unconfigured subcategory that way."""
    kb = result.knowledge
    values: dict[str, int] = {}
    if result.audit is not None:
        for guid, setting in result.audit.settings.items():
            if guid in kb.subcategories:
                values[guid] = setting.value
    for guid, change in plan.audit.items():
        values[guid] = values.get(guid, 0) | (1 if change.success else 0) | (2 if change.failure else 0)
    rows = []
    for sub in kb.subcategories.values():  # data order: by category, as Windows lists them
        if values.get(sub.guid):
            value = values[sub.guid]
            rows.append({"gpo_name": Trusted(sub.gpo_name), "guid": Trusted(sub.guid),
                         "inclusion": Trusted(kb.inclusion_settings[value]), "value": Trusted(str(value))})
    return rows


def _registry_entries(plan: Plan) -> list[dict[str, Any]]:
    entries = []
    for change in sorted(plan.registry.values(), key=lambda c: (not c.force, c.policy.id)):  # type: ignore[union-attr]
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
                        "unblinds_all": change.unblinds_all, "force": change.force})
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
                         "rules": len(refs), "unblinds": unblinds, "unblinds_all": unblinds_all})
    return sorted(elements, key=lambda e: min(e["event_ids"]))


def _counts(entry: dict[str, Any]) -> str:
    """The same wording as the templates' ``counts`` macro (templates/emit/_counts.j2)."""
    return (f"unblinds {nrules(entry['unblinds'])} on its own, {entry['unblinds_all']} with every change here; "
            f"needed by {nrules(entry['rules'])}")


def merge_sysmon_config(data: bytes, elements: list[dict[str, Any]]) -> bytes:
    """The given Sysmon config with the missing event types added (an empty exclude collects all).

    Everything else is kept as it is, comments included. An include filter with no conditions
    (it collects nothing) for a missing type is removed, with its RuleGroup when nothing else is left
    in it; an empty exclude filter in its own RuleGroup is appended for each missing type.
    """
    from lxml import etree

    from .policy.xmlsafe import local_name, parse_xml_bytes

    root = parse_xml_bytes("sysmon config", data)
    if not elements:
        root.addprevious(etree.Comment(" logsource_checker: nothing to add, this configuration already collects "
                                       "every Sysmon event type the rules need "))
        return etree.tostring(root.getroottree(), encoding="utf-8", xml_declaration=False) + b"\n"
    filtering = next((n for n in root if local_name(n) == "EventFiltering"), None)
    if filtering is None:
        filtering = etree.SubElement(root, "EventFiltering")
        filtering.text = "\n" + _indent_of(root, 1)
        filtering.tail = "\n"
    for entry in elements:
        name = str(entry["element"])
        for node in [n for n in filtering.iter() if local_name(n) == name]:
            if (node.get("onmatch") or "").strip().casefold() == "include" and not any(
                    local_name(child) for child in node):
                parent = node.getparent()
                _remove(node)
                if (parent is not filtering and local_name(parent) == "RuleGroup"
                        and not any(local_name(child) for child in parent)):
                    _remove(parent)   # a RuleGroup left with comments only
    child_indent = _indent_of(filtering, 1)
    closing_indent = _indent_of(filtering, 0)
    last = filtering[-1] if len(filtering) else None
    if last is not None:
        last.tail = "\n" + child_indent
    else:
        filtering.text = "\n" + child_indent
    for i, entry in enumerate(elements):
        group = etree.SubElement(filtering, "RuleGroup", name="", groupRelation="or")
        group.text = "\n" + child_indent + "  "
        comment = etree.Comment(
            f" added by logsource_checker: Sysmon event {', '.join(map(str, entry['event_ids']))}; "
            f"{_counts(entry)} ")
        comment.tail = "\n" + child_indent + "  "
        group.append(comment)
        element = etree.SubElement(group, str(entry["element"]), onmatch="exclude")
        element.tail = "\n" + child_indent
        group.tail = "\n" + (child_indent if i + 1 < len(elements) else closing_indent)
    return etree.tostring(root.getroottree(), encoding="utf-8", xml_declaration=False) + b"\n"


def _remove(node) -> None:
    """Remove a node; the whitespace after it replaces the whitespace before it, so lines stay aligned."""
    parent = node.getparent()
    previous = node.getprevious()
    tail = node.tail or ""
    if previous is not None:
        previous.tail = tail if not tail.strip() else (previous.tail or "") + tail
    else:
        parent.text = tail if not tail.strip() else (parent.text or "") + tail
    parent.remove(node)


def _indent_of(node, extra: int) -> str:
    """The indentation of ``node``'s children (extra=1) or of the node itself (extra=0), from the file."""
    parent = node.getparent()
    own = ""
    if parent is not None:
        previous = node.getprevious()
        before = (previous.tail if previous is not None else parent.text) or ""
        own = before.rsplit("\n", 1)[-1] if "\n" in before else ""
    if extra == 0:
        return own
    for child in node:
        previous = child.getprevious()
        before = (previous.tail if previous is not None else node.text) or ""
        if "\n" in before:
            return before.rsplit("\n", 1)[-1]
    return own + "  "


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def emit_all(result: CheckResult, report: dict[str, Any], directory: Path) -> list[Path]:
    from .render import render as render_report

    kb = result.knowledge
    plan = plan_changes(result)
    directory.mkdir(parents=True, exist_ok=True)
    audit = sorted(plan.audit.values(), key=lambda c: c.guid)
    for change in audit:
        if not GUID_RE.match(change.guid):
            raise UnsafeValue(f"GUID {change.guid!r} malformed")
    channels = []
    for change in sorted(plan.channels.values(), key=lambda c: c.channel.name):  # type: ignore[union-attr]
        channel = change.channel
        assert channel is not None
        size = channel.recommended_max_size_mb
        channels.append({"name": _check(SAFE_CHANNEL_RE, channel.name, "channel"), "channel": channel,
                         "bytes": Trusted(str(int(size) * 1024 * 1024)) if size else None,
                         "size_mb": Trusted(str(int(size))) if size else None,
                         "rules": change.rules, "unblinds": change.unblinds, "unblinds_all": change.unblinds_all})
    sysmon_elements = _sysmon_elements(kb, plan)
    force = kb.registry_policies.get(kb.force_subcategory_policy) if kb.force_subcategory_policy else None
    need_force = bool(audit) and (result.snapshot is None or result.snapshot.force_subcategory is not True)
    if need_force and force is not None:
        entry = plan.registry.setdefault(force.id, RegistryChange(policy=force))
        entry.force = True
        for change in audit:  # the audit changes only take effect with it
            entry.rule_refs |= change.rule_refs
    registry = _registry_entries(plan)
    external = sorted(plan.external.values(), key=lambda c: c.req.id)  # type: ignore[union-attr]
    context = {
        "version": Trusted(__version__), "audit": audit, "registry": registry, "channels": channels,
        "sysmon": sysmon_elements, "external": external,
        "policy_given": result.snapshot is not None, "kb": kb,
        "sysmon_schema": Trusted(str(kb.sysmon_meta.get("schema_version", "4.90"))),
        "force_policy": force if need_force else None,
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
    sysmon_source = result.snapshot.sysmon.source if result.snapshot and result.snapshot.sysmon else None
    if sysmon_source:
        original = Path(sysmon_source).read_bytes()
        files["sysmon.xml"] = merge_sysmon_config(original, sysmon_elements)
    else:
        files["sysmon.xml"] = render("emit/sysmon.xml.j2", "xml", **context)
    written = []
    for name, content in files.items():
        path = directory / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        written.append(path)
    return written
