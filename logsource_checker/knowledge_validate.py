"""``validate``: every schema problem in the loaded guide data and mappings, one line each (the schema is
docs/DATA.md). Used by the data tests and by ``engine.load_knowledge`` (a cached ``Knowledge`` it finds
fault with is rebuilt); re-exported as ``knowledge.validate``."""
from __future__ import annotations

import re

from . import auditd_data, object_data
from typing import Any

from .knowledge_model import (DEFAULTS, GUID_RE, ROLES, SAFE_CHANNEL_RE, SAFE_ELEMENT_RE, SAFE_FIELD_RE,
                              SAFE_REGISTRY_RE, SYSMON_UNMENTIONED, UUID_RE, VOLUMES, Knowledge, RegistryPolicy,
                              RequirementSpec)
from .object_data import _as_list


def validate(kb: Knowledge) -> list[str]:
    """Every schema problem in the data, one line each (empty when the data is sound)."""
    problems = list(kb.problems) + auditd_data.auditd_problems(kb.auditd)
    problems += _audit_problems(kb)
    problems += _registry_problems(kb)
    problems += _channel_problems(kb)
    problems += _sysmon_problems(kb)
    problems += _guide_problems(kb)
    return problems


def _audit_problems(kb: Knowledge) -> list[str]:
    """Audit categories, subcategories and their events, roles, object access, special events."""
    problems: list[str] = []
    guid_seen: dict[str, str] = {}
    for cat in kb.categories.values():
        if not GUID_RE.match(cat.guid):
            problems.append(f"category {cat.name}: bad GUID {cat.guid}")
        guid_seen[cat.guid] = cat.name
    roles = kb.roles
    if roles.get("assumed") not in ROLES:
        problems.append(f"auditpol.yaml: roles.assumed {roles.get('assumed')!r} not one of {ROLES}")
    markers = roles.get("dc_markers")
    if not isinstance(markers, dict) or not all(isinstance(v, list) for v in markers.values()):
        problems.append("auditpol.yaml: roles.dc_markers must map marker kinds to lists")
    if not kb.audit_channel or kb.channel(kb.audit_channel) is None:
        problems.append(f"auditpol.yaml: channel {kb.audit_channel!r} is not in channels.yaml")
    if not kb.audit_provider:
        problems.append("auditpol.yaml: provider (of the audit events) missing")
    if not kb.wef_default_log:
        problems.append("channels.yaml: wef_default_log (where WEF subscriptions store events) missing")
    if sorted(kb.outcome_keywords) != ["failure", "success"] or not all(
            spec["mask"] > 0 and spec["names"] for spec in kb.outcome_keywords.values()):
        problems.append("auditpol.yaml: outcome_keywords needs success and failure, each with a mask and names")
    if len(kb.subcategories) != kb.subcategory_count:
        problems.append(f"auditpol.yaml: {len(kb.subcategories)} subcategories, subcategory_count says "
                        f"{kb.subcategory_count}")
    if sorted(kb.inclusion_settings) != [0, 1, 2, 3] or not all(
            re.fullmatch(r"[A-Za-z][A-Za-z ]*", label) for label in kb.inclusion_settings.values()):
        problems.append("auditpol.yaml: inclusion_settings needs a plain label for each SettingValue 0-3")
    force = kb.registry_policies.get(kb.force_subcategory_policy or "")
    if kb.force_subcategory_policy and (force is None or not force.registry):
        problems.append(f"auditpol.yaml: force_subcategory_policy {kb.force_subcategory_policy!r} is not a "
                        "registry policy with a registry value")
    for sub in kb.subcategories.values():
        where = f"subcategory {sub.name}"
        if not GUID_RE.match(sub.guid):
            problems.append(f"{where}: bad GUID {sub.guid}")
        if sub.guid in guid_seen:
            problems.append(f"{where}: GUID {sub.guid} also used by {guid_seen[sub.guid]}")
        guid_seen[sub.guid] = sub.name
        if sub.category not in kb.categories:
            problems.append(f"{where}: unknown category {sub.category!r}")
        if sub.volume not in VOLUMES:
            problems.append(f"{where}: volume {sub.volume!r} not one of {VOLUMES}")
        for kind, value in sub.defaults.items():
            if value not in DEFAULTS:
                problems.append(f"{where}: default {kind}={value!r} not one of {DEFAULTS}")
        if set(sub.defaults) != set(ROLES):
            problems.append(f"{where}: defaults must name every role {ROLES}, not {sorted(sub.defaults)}")
        for kind, value in sub.volume_by_role.items():
            if kind not in ROLES or value not in VOLUMES:
                problems.append(f"{where}: volume_by_role {kind}={value!r} not a role {ROLES} and volume {VOLUMES}")
        if not sub.reference.startswith("https://"):
            problems.append(f"{where}: no https reference")
        for ev in sub.events:
            if not ev.outcomes or not ev.outcomes <= {"success", "failure"}:
                problems.append(f"{where}: event {ev.id} outcomes {sorted(ev.outcomes)} invalid")
            if ev.inferred and not (ev.basis or "").strip():
                problems.append(f"{where}: event {ev.id} is inferred but gives no basis")
            if ev.basis and not ev.inferred:
                problems.append(f"{where}: event {ev.id} has a basis but is not marked inferred: true")
    for event_id, producers in kb.producers.items():
        primaries = sum(1 for _, ev in producers if ev.primary)
        if len(producers) > 1 and primaries != 1:
            problems.append(f"event {event_id}: {len(producers)} producers, {primaries} marked primary (need 1)")
    problems.extend(object_data.object_access_problems(kb))
    problems.extend(_joint_problems(kb))
    for special in list(kb.always_logged.values()) + list(kb.legacy_events.values()):
        if not (special.reference or "").startswith("https://"):
            problems.append(f"event {special.id}: no https reference")
    return problems


def _registry_problems(kb: Knowledge) -> list[str]:
    """Registry policies: references, volumes, deferrals, keys and values safe in registry.reg."""
    problems: list[str] = []
    for pol in kb.registry_policies.values():
        if not pol.reference.startswith("https://"):
            problems.append(f"registry policy {pol.id}: no https reference")
        if not pol.registry:
            problems.append(f"registry policy {pol.id}: no registry values")
        problems.extend(_deferral_problems(kb, pol))
        if pol.volume not in VOLUMES:
            problems.append(f"registry policy {pol.id}: volume {pol.volume!r} not one of {VOLUMES}")
        if pol.volume != "unknown" and not (pol.volume_reference or "").startswith("https://"):
            problems.append(f"registry policy {pol.id}: volume {pol.volume} without an https volume_reference")
        for reg in pol.registry + ((pol.defer.registry,) if pol.defer else ()):
            if not reg.key.upper().startswith(("HKLM\\", "HKCU\\")):
                problems.append(f"registry policy {pol.id}: key {reg.key!r} must start with HKLM\\ or HKCU\\")
            if reg.type not in ("REG_DWORD", "REG_SZ"):
                problems.append(f"registry policy {pol.id}: type {reg.type!r} unsupported")
            if reg.type == "REG_DWORD" and not isinstance(reg.data, int):
                problems.append(f"registry policy {pol.id}: REG_DWORD data {reg.data!r} is not a number")
            for text in (reg.key, reg.value, str(reg.data)):
                if not SAFE_REGISTRY_RE.match(text):
                    problems.append(f"registry policy {pol.id}: {text!r} has a character unsafe in registry.reg")
    return problems


def _channel_problems(kb: Knowledge) -> list[str]:
    """Channels and their aliases: references, GUIDs, names safe in a wevtutil command."""
    problems: list[str] = []
    names = kb.eventlog_setting_names
    if kb.eventlog_policy_category and sorted(k for k, v in names.items() if v.strip() and "\n" not in v) != [
            "enable_policy", "size_option", "template_size_key"]:
        problems.append("channels.yaml: eventlog_setting_names needs enable_policy, size_option and "
                        "template_size_key (one line each) beside eventlog_policy_category")
    for ch in kb.channels.values():
        if not (ch.reference or "").startswith("https://"):
            problems.append(f"channel {ch.name}: no https reference")
        if not SAFE_CHANNEL_RE.match(ch.name):
            problems.append(f"channel {ch.name!r}: a character unsafe in a wevtutil command")
        if ch.provider_guid and not GUID_RE.match(ch.provider_guid.upper()):
            problems.append(f"channel {ch.name}: bad provider GUID {ch.provider_guid}")
        for alias, ref in ch.aliases:
            if not alias.strip():
                problems.append(f"channel {ch.name}: empty alias")
            elif alias.strip().casefold() in kb.channels:
                problems.append(f"channel {ch.name}: alias {alias!r} is itself a channel name")
            if not (ref or "").startswith("https://"):
                problems.append(f"channel {ch.name}: alias {alias!r} cites no https reference")
            if not SAFE_CHANNEL_RE.match(alias):
                problems.append(f"channel {ch.name}: alias {alias!r} has a character unsafe in a wevtutil command")
    return problems


def _sysmon_problems(kb: Knowledge) -> list[str]:
    """Sysmon events (elements, fields, blocking, when unmentioned) and the condition table."""
    problems: list[str] = []
    for ev in kb.sysmon_events.values():
        if ev.filterable and not ev.element:
            problems.append(f"sysmon event {ev.id}: filterable but no element")
        if ev.element and not SAFE_ELEMENT_RE.match(ev.element):
            problems.append(f"sysmon event {ev.id}: element {ev.element!r} is not a plain XML name")
        for name in ev.fields:
            if not SAFE_FIELD_RE.match(name):
                problems.append(f"sysmon event {ev.id}: field {name!r} is not a plain XML name")
        if ev.blocking and not (ev.blocking_reference or "").startswith("https://"):
            problems.append(f"sysmon event {ev.id}: blocking without an https blocking_reference")
        if ev.filterable and (ev.when_unmentioned not in SYSMON_UNMENTIONED or not ev.unmentioned_basis):
            problems.append(f"sysmon event {ev.id}: when_unmentioned must be one of {', '.join(SYSMON_UNMENTIONED)}"
                            " with an unmentioned_basis")
    problems.extend(_sysmon_condition_problems(kb.sysmon_meta))
    problems.extend(_sysmon_linux_problems(kb))
    return problems


def _guide_problems(kb: Knowledge) -> list[str]:
    """Guides: ids, log sources, description, volume, references, sources, requirement specs."""
    problems: list[str] = []
    ids_seen: dict[str, str] = {}
    for guide in kb.guides:
        where = guide.path
        if not UUID_RE.match(guide.id):
            problems.append(f"{where}: id {guide.id!r} is not a UUID v4")
        elif guide.id in ids_seen:
            problems.append(f"{where}: id {guide.id} also used by {ids_seen[guide.id]}")
        ids_seen[guide.id] = where
        if not guide.logsources:
            problems.append(f"{where}: no logsources")
        if not guide.description:
            problems.append(f"{where}: no description")
        if guide.volume not in VOLUMES:
            problems.append(f"{where}: volume {guide.volume!r} not one of {VOLUMES}")
        if not any(u.startswith("https://") for u in guide.references):
            problems.append(f"{where}: cites no https URL")
        if not guide.enablement:
            problems.append(f"{where}: no enablement")
        for source in guide.sources:
            channel = source.get("channel")
            if channel and kb.channel(str(channel)) is None:
                problems.append(f"{where}: source channel {channel!r} not in mappings/channels.yaml")
            guid = source.get("guid")
            if guid and not GUID_RE.match(str(guid).upper()):
                problems.append(f"{where}: source GUID {guid!r} malformed")
        specs = [s for alt in guide.enablement for s in alt.requires]
        specs += [s for ev in guide.events.values() for s in ev.requires]
        for spec in specs:
            problems.extend(f"{where}: {p}" for p in _spec_problems(kb, spec))
        problems.extend(f"{where}: {p}" for p in _sacl_alternative_problems(kb, guide.enablement))
    return problems


def _sacl_alternative_problems(kb: Knowledge, alternatives: Any) -> list[str]:
    """An alternative that needs a subcategory logging only objects with a SACL (requires_sacl) needs a
    ``sacl`` requirement for the same outcomes: the subcategory alone logs nothing."""
    problems = []
    for alt in alternatives:
        sacls = {(s.success, s.failure) for s in alt.requires if s.kind == "sacl"}
        for spec in alt.requires:
            sub = kb.subcategories.get(spec.value) if spec.kind == "audit" else None
            if sub is not None and sub.requires_sacl and not any(
                    (not spec.success or ok_s) and (not spec.failure or ok_f) for ok_s, ok_f in sacls):
                problems.append(f"enablement {alt.name!r}: {sub.name} logs only objects with a SACL; add a sacl "
                                "requirement for the same outcomes")
    return problems


def _deferral_problems(kb: Knowledge, pol: RegistryPolicy) -> list[str]:
    defer = pol.defer
    if defer is None:
        return []
    where = f"registry policy {pol.id}: defer"
    problems = []
    target = kb.registry_policies.get(defer.policy)
    if target is None or target.id == pol.id:
        problems.append(f"{where} names {defer.policy!r}, not another policy of mappings/registry_policies*.yaml")
    elif target.defer is not None:
        problems.append(f"{where} names {target.id}, which defers itself (no chains)")
    if pol.kind != "administrative_template":
        problems.append(f"{where} only applies to administrative templates")
    if not defer.references or not all(u.startswith("https://") for u in defer.references):
        problems.append(f"{where} needs https references")
    return problems


def _joint_problems(kb: Knowledge) -> list[str]:
    """also_requires names audit subcategories; an event logged regardless of its setting has no producer."""
    problems = []
    for sub in kb.subcategories.values():
        for ev in sub.events:
            for spec in ev.also_requires:
                if spec.kind != "audit":
                    problems.append(f"subcategory {sub.name}: event {ev.id} also_requires must name audit subcategories")
                problems.extend(f"subcategory {sub.name}: event {ev.id} also_requires: {p}"
                                for p in _spec_problems(kb, spec))
            if ev.regardless_of_setting and ev.id in kb.producers:
                problems.append(f"event {ev.id}: logged regardless of its setting, yet another subcategory produces it")
    return problems


def _sysmon_linux_problems(kb: Knowledge) -> list[str]:
    """mappings/sysmon.yaml ``linux``: the event types Sysmon for Linux produces (filterable, known) and its data."""
    linux = kb.sysmon_meta.get("linux")
    if not isinstance(linux, dict):
        return ["sysmon.yaml: no linux section (the event types Sysmon for Linux produces)"]
    problems = []
    for eid in list(linux.get("events") or ()) + list(linux.get("unfiltered_events") or ()):
        if eid not in kb.sysmon_events:
            problems.append(f"sysmon.yaml linux: event {eid} is not a Sysmon event")
    for eid in linux.get("events") or ():
        if eid in kb.sysmon_events and not kb.sysmon_events[eid].element:
            problems.append(f"sysmon.yaml linux: event {eid} cannot be filtered")
    if not str(linux.get("reference", "")).startswith("https://") or not linux.get("schema_version"):
        problems.append("sysmon.yaml linux: needs an https reference and a schema_version")
    if not all(isinstance(p, str) and p.startswith("/") and p.endswith("/") for p in linux.get("path_prefixes") or ()):
        problems.append("sysmon.yaml linux: path_prefixes are folders written /name/")
    return problems


def _spec_problems(kb: Knowledge, spec: RequirementSpec) -> list[str]:
    if spec.kind == "audit" and spec.value not in kb.subcategories:
        return [f"audit subcategory {spec.value} not in mappings/auditpol.yaml"]
    if spec.kind == "audit" and not (spec.success or spec.failure):
        return [f"audit subcategory {spec.value} needs success and/or failure"]
    if spec.kind == "registry_policy" and spec.value not in kb.registry_policies:
        return [f"registry policy {spec.value!r} not in mappings/registry_policies*.yaml"]
    if spec.kind == "channel" and kb.channel(str(spec.value)) is None:
        return [f"channel {spec.value!r} not in mappings/channels.yaml"]
    if spec.kind == "sysmon_event" and spec.value not in kb.sysmon_events:
        return [f"Sysmon event {spec.value} not in mappings/sysmon.yaml"]
    linux_events = (kb.sysmon_meta.get("linux") or {}).get("events") or ()
    if spec.kind == "sysmon_linux_event" and spec.value not in linux_events:
        return [f"Sysmon for Linux event {spec.value} is not in mappings/sysmon.yaml linux.events"]
    if spec.kind == "auditd_rule":
        return auditd_data.spec_problems(kb.auditd, spec.value)
    if spec.kind == "sacl" and spec.value not in kb.object_access.sacl_kinds:
        return [f"sacl kind {spec.value!r} not in mappings/object_access.yaml sacl_kinds"]
    if spec.kind == "sacl" and not (spec.success or spec.failure):
        return [f"sacl {spec.value} needs success and/or failure"]
    if spec.kind == "external":
        ext = spec.value if isinstance(spec.value, dict) else {}
        if not ext.get("name") or not ext.get("how") or not str(ext.get("reference", "")).startswith("https://"):
            return ["external requirement needs name, how and an https reference"]
    return []


_SAFE_CONDITION_RE = re.compile(r"^[a-z]+( [a-z]+)*$")


def _sysmon_condition_problems(meta: dict[str, Any]) -> list[str]:
    """The modifier -> condition table of mappings/sysmon.yaml names only conditions Sysmon accepts."""
    known = set(_as_list(meta.get("conditions")))
    problems = [f"sysmon condition {c!r} is not a plain name" for c in sorted(map(str, known))
                if not _SAFE_CONDITION_RE.match(c)]
    table = meta.get("filter_conditions") or {}
    if not isinstance(table, dict) or "equals" not in table:
        return problems + ["sysmon filter_conditions: missing, or no 'equals' entry"]
    for modifier, forms in table.items():
        if not isinstance(forms, dict) or not forms.get("one"):
            problems.append(f"sysmon filter_conditions {modifier}: needs at least a 'one' condition")
            continue
        for form, condition in forms.items():
            if form not in ("one", "any", "all"):
                problems.append(f"sysmon filter_conditions {modifier}: unknown form {form!r}")
            elif condition is not None and condition not in known:
                problems.append(f"sysmon filter_conditions {modifier}.{form}: {condition!r} is not a Sysmon condition")
    return problems
