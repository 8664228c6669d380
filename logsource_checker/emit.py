"""Emit the changes to apply: auditpol scripts, audit.csv, GPO settings, registry, channels, Sysmon.

What is emitted: for every need of every checked rule that is not met, the requirements of its
recommended (primary) option that are not met. With no policy input that is everything the rules
require. Commands are built only from our own validated data (GUIDs, registry paths, channel names,
Sysmon element names); rule text never reaches a command. Output is deterministic, so emitting twice
gives the same files.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .diff import need_status
from .knowledge import GUID_RE, Knowledge, RegistryPolicy
from .report import CheckResult
from .resolve import Requirement
from .templating import Trusted, render

_SAFE_CHANNEL_RE = re.compile(r"^[A-Za-z0-9 ._/\-]+$")
_SAFE_REG_RE = re.compile(r"^[A-Za-z0-9 ._\\\-*]+$")
_INCLUSION = {0: "No Auditing", 1: "Success", 2: "Failure", 3: "Success and Failure"}


class UnsafeValue(ValueError):
    """Our own data produced a value that is not safe in a command (a data bug: refuse to emit)."""


def _check(pattern: re.Pattern[str], value: str, what: str) -> Trusted:
    if not pattern.match(value):
        raise UnsafeValue(f"{what} {value!r} is not safe to place in a generated command")
    return Trusted(value)


@dataclass
class AuditChange:
    guid: Trusted
    name: str
    gpo_name: Trusted
    category: str
    gpo_path: str
    volume: str
    success: bool = False
    failure: bool = False
    rules: set[str] = field(default_factory=set)
    current: int = 0  # current SettingValue


@dataclass
class Plan:
    audit: dict[str, AuditChange] = field(default_factory=dict)
    registry: dict[str, tuple[RegistryPolicy, set[str]]] = field(default_factory=dict)
    channels: dict[str, tuple[Any, set[str]]] = field(default_factory=dict)
    sysmon: dict[int, set[str]] = field(default_factory=dict)
    external: dict[str, tuple[Requirement, set[str]]] = field(default_factory=dict)


def plan_changes(result: CheckResult) -> Plan:
    kb = result.knowledge
    reqs = result.resolution.requirements
    statuses = {rid: req.status for rid, req in reqs.items()}
    plan = Plan()
    for res in result.resolution.rules:
        for need in res.needs:
            if need_status(need, statuses) == "met":
                continue
            for rid in need.recommended.requirements:
                req = reqs[rid]
                if req.status == "met":
                    continue
                _add(plan, kb, req, res.rule.ref)
    if result.audit is not None:
        for guid, change in plan.audit.items():
            setting = result.audit.settings.get(guid)
            change.current = setting.value if setting is not None else 0
    return plan


def _add(plan: Plan, kb: Knowledge, req: Requirement, rule: str) -> None:
    if req.kind == "audit_subcategory":
        sub = kb.subcategories[req.guid or ""]
        if not GUID_RE.match(sub.guid):
            raise UnsafeValue(f"GUID {sub.guid!r} malformed")
        change = plan.audit.get(sub.guid)
        if change is None:
            change = plan.audit[sub.guid] = AuditChange(
                guid=Trusted(sub.guid), name=sub.name, gpo_name=Trusted(sub.gpo_name), category=sub.category,
                gpo_path=sub.gpo_path, volume=sub.volume)
        change.success |= bool(req.success)
        change.failure |= bool(req.failure)
        change.rules.add(rule)
    elif req.kind == "registry_policy":
        pol = kb.registry_policies[req.policy or ""]
        plan.registry.setdefault(pol.id, (pol, set()))[1].add(rule)
    elif req.kind == "event_channel":
        channel = kb.channel(req.channel or "")
        if channel is not None:
            plan.channels.setdefault(channel.name, (channel, set()))[1].add(rule)
    elif req.kind == "sysmon_event" and req.event_id is not None:
        plan.sysmon.setdefault(req.event_id, set()).add(rule)
    elif req.kind == "external":
        plan.external.setdefault(req.id, (req, set()))[1].add(rule)


# --------------------------------------------------------------------------- artefacts

def _audit_rows(result: CheckResult, plan: Plan) -> list[dict[str, Any]]:
    """audit.csv rows: the current effective settings merged with the additions; never lower one."""
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
        if sub.guid in values:
            value = values[sub.guid]
            rows.append({"gpo_name": Trusted(sub.gpo_name), "guid": Trusted(sub.guid),
                         "inclusion": Trusted(_INCLUSION[value]), "value": Trusted(str(value))})
    return rows


def _registry_entries(plan: Plan) -> list[dict[str, Any]]:
    entries = []
    for pol, rules in sorted(plan.registry.values(), key=lambda pr: pr[0].id):
        values = []
        for spec in pol.registry:
            key = spec.key
            for short, long in (("HKLM\\", "HKEY_LOCAL_MACHINE\\"), ("HKCU\\", "HKEY_CURRENT_USER\\")):
                if key.upper().startswith(short):
                    key = long + key[len(short):]
            _check(_SAFE_REG_RE, key, "registry key")
            _check(_SAFE_REG_RE, spec.value, "registry value name")
            if spec.type == "REG_DWORD":
                data = Trusted(f"dword:{int(spec.data):08x}")
            else:
                data = Trusted('"' + str(_check(_SAFE_REG_RE, str(spec.data), "registry data")).replace("\\", "\\\\") + '"')
            values.append({"key": Trusted(key), "name": Trusted(spec.value), "data": data})
        entries.append({"policy": pol, "values": values, "rules": len(rules)})
    return entries


def _sysmon_elements(kb: Knowledge, plan: Plan) -> list[dict[str, Any]]:
    by_element: dict[str, dict[str, Any]] = {}
    for event_id, rules in sorted(plan.sysmon.items()):
        event = kb.sysmon_events.get(event_id)
        if event is None or not event.element:
            continue  # not filterable: Sysmon logs it whenever it runs
        _check(re.compile(r"^[A-Za-z]+$"), event.element, "Sysmon element")
        entry = by_element.setdefault(event.element, {"element": Trusted(event.element), "event_ids": [],
                                                      "rules": set()})
        entry["event_ids"].append(event_id)
        entry["rules"] |= rules
    return sorted(by_element.values(), key=lambda e: min(e["event_ids"]))


def merge_sysmon_config(data: bytes, elements: list[dict[str, Any]]) -> bytes:
    """The given Sysmon config with the missing event types added (an empty exclude collects all)."""
    from lxml import etree

    from .policy.xmlsafe import parse_xml_bytes

    root = parse_xml_bytes("sysmon config", data)
    filtering = root.find("EventFiltering")
    if filtering is None:
        filtering = etree.SubElement(root, "EventFiltering")
    for entry in elements:
        name = str(entry["element"])
        # an include with no conditions collects nothing: it is replaced, not kept beside the addition
        for node in list(filtering.iter(name)):
            if node.get("onmatch") == "include" and len(node) == 0:
                parent = node.getparent()
                parent.remove(node)
                if parent.tag == "RuleGroup" and len(parent) == 0 and parent is not filtering:
                    parent.getparent().remove(parent)
        group = etree.SubElement(filtering, "RuleGroup", name="", groupRelation="or")
        group.append(etree.Comment(
            f" added by logsource_checker: event {', '.join(map(str, entry['event_ids']))} "
            f"needed by {len(entry['rules'])} rules "))
        etree.SubElement(group, name, onmatch="exclude")
    return etree.tostring(root, encoding="utf-8", xml_declaration=False, pretty_print=True)


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
    for channel, rules in sorted(plan.channels.values(), key=lambda cr: cr[0].name):
        size = channel.recommended_max_size_mb
        channels.append({"name": _check(_SAFE_CHANNEL_RE, channel.name, "channel"), "channel": channel,
                         "bytes": Trusted(str(size * 1024 * 1024)) if size else None, "rules": len(rules)})
    sysmon_elements = _sysmon_elements(kb, plan)
    force = kb.registry_policies.get(kb.force_subcategory_policy) if kb.force_subcategory_policy else None
    need_force = bool(audit) and result.snapshot is not None and result.snapshot.force_subcategory is not True
    if result.snapshot is None and audit:
        need_force = True
    if need_force and force is not None and force.id not in plan.registry:
        plan.registry[force.id] = (force, set())
    registry = _registry_entries(plan)
    context = {
        "version": Trusted(__version__), "audit": audit, "registry": registry, "channels": channels,
        "sysmon": sysmon_elements, "external": [{"req": r, "rules": len(rules)} for r, rules in plan.external.values()],
        "policy_given": result.snapshot is not None, "kb": kb,
        "sysmon_schema": Trusted(str(kb.sysmon_meta.get("schema_version", "4.90"))),
        "force_policy": force if need_force else None,
    }
    files: dict[str, str | bytes] = {
        "auditpol.cmd": render("emit/auditpol.cmd.j2", "script", **context).replace("\r\n", "\n").replace("\n", "\r\n"),
        "auditpol.ps1": render("emit/auditpol.ps1.j2", "script", **context),
        "audit.csv": render("emit/audit.csv.j2", "script", rows=_audit_rows(result, plan)).replace(
            "\r\n", "\n").replace("\n", "\r\n"),
        "gpo.md": render("emit/gpo.md.j2", "markdown", **context),
        "registry.reg": render("emit/registry.reg.j2", "script", **context).replace("\r\n", "\n").replace("\n", "\r\n"),
        "channels.cmd": render("emit/channels.cmd.j2", "script", **context).replace("\r\n", "\n").replace("\n", "\r\n"),
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
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))
        written.append(path)
    return written
