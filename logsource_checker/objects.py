"""Object access: which object a rule watches, which subcategory writes its events, which SACL it needs.

Events such as 4656 / 4663 are written by File System, Registry, Kernel Object, Removable Storage, SAM or
Directory Service Access depending on the object (mappings/object_access.yaml). The object is read from the
rule's ``ObjectType`` / ``ObjectServer`` values and, when a branch names no known type, from its
``ObjectName`` values, in the selections the condition does not negate. Without anything to go on the
plausible producers are listed with a note. Most of these subcategories log only objects with a SACL: each
such producer also needs a ``sacl`` requirement, met when an input shows a global SACL (or the option that
gives kernel objects a default SACL) auditing the outcome, else ``unknown``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from typing import Any, Callable, Iterator

from .condition import parse_conditions, used_positively
from .knowledge import AuditEvent, AuditSubcategory, Knowledge, ObjectAccess, ObjectClass, SaclKind
from .policy.model import PolicySnapshot
from .rules import Rule

_TYPE_FIELDS = ("objecttype",)
_SERVER_FIELDS = ("objectserver",)
_NAME_FIELDS = ("objectname",)
_SDDL_ACE_RE = re.compile(r"\(([^()]*)\)")


@dataclass(frozen=True)
class ObjectHint:
    """What a rule says about the object of one EventID: the recognised classes and unrecognised types."""

    classes: tuple[str, ...]
    unknown_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProducerOption:
    """One way to get an object-access event: a subcategory (and those it also needs) plus a SACL."""

    sub: AuditSubcategory
    event: AuditEvent
    sacl: str | None
    notes: str | None
    roles: tuple[str, ...] = ()   # machine roles on which it writes the event for this object (empty: all)


def negated_selections(rule: Rule) -> set[str]:
    """Selections the condition never uses positively (only under a negation, such as ``not filter`` or
    ``not (a or b)``, or not at all): they describe what the rule excludes, not the object it watches.
    Read with the same condition parser as the producer verdicts (condition.py); a condition that cannot
    be parsed negates nothing."""
    names = [name for name, _ in rule.selections]
    parsed = parse_conditions(rule.condition, names)
    if parsed.node is None:
        return set()
    positive = used_positively(parsed.node)
    return {name for name in names if name not in positive}


def _values(branch: tuple, fields: tuple[str, ...]) -> list[str]:
    return [str(v) for field, _mods, values in branch if field and field.casefold() in fields
            for v in values if v is not None]


def _event_ids(branch: tuple) -> set[int]:
    out = set()
    for value in _values(branch, ("eventid",)):
        try:
            out.add(int(value))
        except ValueError:
            pass
    return out


def _branch_classes(branch: tuple, data: ObjectAccess) -> tuple[set[str], set[str]]:
    """(class ids, unrecognised ObjectType values) of one AND-branch."""
    classes: set[str] = set()
    unknown: set[str] = set()
    for value in _values(branch, _TYPE_FIELDS):
        folded = value.casefold()
        found = [c.id for c in data.classes if folded in c.object_types
                 or any(p.search(value) for p in c.object_type_patterns)]
        classes.update(found)
        if not found:
            unknown.add(value)
    for value in _values(branch, _SERVER_FIELDS):
        classes.update(c.id for c in data.classes if value.casefold() in c.object_servers)
    by_name: set[str] = set()
    for value in _values(branch, _NAME_FIELDS):
        cls = next((c for c in data.classes if any(p.search(value) for p in c.name_patterns)), None)
        if cls is not None:
            by_name.add(cls.id)
    if classes or unknown:
        refining = {c.id: c.refines for c in data.classes if c.id in by_name and c.refines in classes}
        classes -= set(refining.values())
        classes |= set(refining)
        return classes, unknown
    return by_name, unknown


def rule_objects(rule: Rule, data: ObjectAccess) -> tuple[tuple[int, ObjectHint], ...]:
    """Per object-access EventID of the rule, what its positive branches say about the object."""
    wanted = [e for e in rule.event_ids if e in data.events]
    if not wanted:
        return ()
    negated = negated_selections(rule)
    per_event: dict[int, tuple[set[str], set[str]]] = {e: (set(), set()) for e in wanted}
    for name, branches in rule.selections:
        if name in negated:
            continue
        for branch in branches:
            classes, unknown = _branch_classes(branch, data)
            if not (classes or unknown):
                continue
            ids = _event_ids(branch)
            for event_id in wanted:
                if not ids or event_id in ids:
                    per_event[event_id][0].update(classes)
                    per_event[event_id][1].update(unknown)
    order = {c.id: i for i, c in enumerate(data.classes)}
    return tuple((e, ObjectHint(tuple(sorted(c, key=order.__getitem__)), tuple(sorted(u))))
                 for e, (c, u) in per_event.items())


def _class(data: ObjectAccess, class_id: str) -> ObjectClass:
    return next(c for c in data.classes if c.id == class_id)


def sacl_of(kb: Knowledge, sub: AuditSubcategory) -> str | None:
    """The SACL kind a subcategory needs when the object is not known: that of the first class whose
    producer it is (a class that refines another is skipped), None when it needs none."""
    if not sub.requires_sacl:
        return None
    for cls in kb.object_access.classes:
        if cls.refines is None:
            for producer in cls.producers:
                if producer.subcategory == sub.guid and producer.sacl is not None:
                    return producer.sacl
    return None


def producer_options(kb: Knowledge, event_id: int, hint: ObjectHint | None) -> tuple[list[ProducerOption], str | None]:
    """The producers of an object-access event for what the rule says about the object, and a note when
    the object does not decide it."""
    data = kb.object_access
    producers = kb.producers.get(event_id, [])
    by_guid = {sub.guid: (sub, event) for sub, event in producers}
    options: list[ProducerOption] = []
    if hint is not None and hint.classes:
        for class_id in hint.classes:
            for producer in _class(data, class_id).producers:
                pair = by_guid.get(producer.subcategory)
                if pair is not None and all(o.sub.guid != producer.subcategory for o in options):
                    options.append(ProducerOption(pair[0], pair[1], producer.sacl, producer.notes, producer.roles))
        if options:
            return options, None
    refining_only = {p.subcategory for c in data.classes if c.refines for p in c.producers} - {
        p.subcategory for c in data.classes if not c.refines for p in c.producers}
    options = [ProducerOption(sub, event, sacl_of(kb, sub), None) for sub, event in producers
               if sub.guid not in refining_only]
    names = ", ".join(o.sub.name for o in options)
    left_out = ", ".join(kb.subcategories[g].name for g in sorted(refining_only) if g in by_guid)
    if hint is not None and hint.classes:
        named = ", ".join(_class(data, c).name for c in hint.classes)
        why = f"the rule's object ({named}) is not one that writes EventID {event_id}"
    elif hint is not None and hint.unknown_types:
        why = ("object type " + ", ".join(repr(t) for t in hint.unknown_types)
               + " is not in mappings/object_access.yaml")
    else:
        why = "the rule names no ObjectType, ObjectServer or ObjectName that tells the object"
    note = f"EventID {event_id}: {why}; plausible producers: {names}"
    if left_out:
        note += f" ({left_out} only for objects it alone covers, such as files on removable storage)"
    return options, note


# --------------------------------------------------------------------------- SACL status

def _aces(sddl: str) -> list[list[str]]:
    """The ACEs of an SDDL SACL (``S:(AU;SA;FA;;;WD)``) as field lists."""
    return [ace.split(";") for ace in _SDDL_ACE_RE.findall(sddl)]


def sacl_status(kind: SaclKind, outcome: str, snapshot: PolicySnapshot,
                registry: Callable[[str, str], str | None] = lambda key, value: None) -> tuple[str, str]:
    """met when an input shows a global SACL auditing ``outcome`` (an audit ACE with SA / FA), or the option
    that gives these objects a default SACL (audit.csv row or security option); else unknown, with what the
    inputs do show (SACLs a template sets on named objects) and what input would decide it.
    ``registry(key, value)`` gives the data a policy sets for a registry value, or None."""
    flag = "SA" if outcome == "success" else "FA"
    seen = ""
    if kind.global_sacl:
        entry = snapshot.global_sacls.get(kind.global_sacl.casefold())
        if entry is not None:
            sddl, source = entry
            for ace in _aces(sddl):
                if len(ace) >= 6 and ace[0].upper() == "AU" and flag in ace[1].upper():
                    return "met", (f"global SACL {kind.global_sacl} ({source}) audits {outcome} for "
                                   f"{ace[5] or '?'} (rights {ace[2] or '?'})")
            seen = f"global SACL {kind.global_sacl} ({source}) audits no {outcome}; "
    if kind.option:
        option = snapshot.audit_options.get(kind.option.casefold())
        if option is not None and option[0]:
            return "met", f"option {kind.option} is enabled ({option[1]}): these objects get a default SACL"
    reg = kind.registry_value
    if reg is not None:
        data = registry(reg.key, reg.value)
        if data is not None and str(data) == str(reg.data):
            return "met", f"security option {reg.value} is set to {data}: these objects get a default SACL"
    if kind.template_section:
        named = [(obj, source) for obj, sddl, source in snapshot.object_sacls.get(kind.template_section.casefold(), [])
                 if any(len(ace) >= 2 and ace[0].upper() == "AU" and flag in ace[1].upper() for ace in _aces(sddl))]
        if named:
            shown = ", ".join(obj for obj, _ in named[:3]) + (" ..." if len(named) > 3 else "")
            seen += (f"[{kind.template_section}] of {named[0][1]} audits {outcome} on {len(named)} named "
                     f"object(s) ({shown}); whether they are the ones the rules watch is not checked; ")
    return "unknown", f"{seen}the inputs cannot show the {kind.name}: it is decided by {kind.decide}"


# --------------------------------------------------------------------------- access rights for emit

def access_mask(rules: list[Rule], data: ObjectAccess) -> int:
    """The access-mask bits the rules look for (AccessMask hex values, AccessList %% codes) in their
    positive selections; 0 when none is named."""
    mask = 0
    for branch in _positive_branches(rules):
        for value in _values(branch, ("accessmask",)):
            try:
                mask |= int(value, 16) if value.lower().startswith("0x") else int(value)
            except ValueError:
                continue
        for value in _values(branch, ("accesslist",)):
            for code in re.findall(r"%%\d{4}", value):
                mask |= data.access_codes.get(code, 0)
    return mask & 0xFFFFFFFF


def guide_access(kb: Knowledge, rules: list[Rule], kind_id: str) -> int:
    """The access-mask bits the rules' guides state for a SACL of this kind (the ``access`` of a ``sacl``
    requirement: Set Value for registry_set, ...): a rule served through 4657 / 4663 names no AccessMask."""
    mask = 0
    for key in {rule.logsource.key for rule in rules}:
        guide = kb.by_logsource.get(key)
        if guide is not None:
            for alt in guide.enablement:
                for spec in alt.requires:
                    if spec.kind == "sacl" and spec.value == kind_id:
                        mask |= spec.access
    return mask


def _positive_branches(rules: list[Rule]) -> Iterator[tuple[Any, ...]]:
    """Every branch of every selection the rules' conditions do not negate, rule by rule in order."""
    for rule in rules:
        negated = negated_selections(rule)
        for name, branches in rule.selections:
            if name not in negated:
                yield from branches


_MAX_OBJECTS = 10


@lru_cache(maxsize=4096)
def _positive_names(condition: tuple[str, ...], names: tuple[str, ...]) -> frozenset[str] | None:
    """The selections a condition uses positively (None when it cannot be parsed: then none is negated);
    cached per condition text and selection names, which many rules share."""
    parsed = parse_conditions(condition, list(names))
    return None if parsed.node is None else frozenset(used_positively(parsed.node))


def _rule_object_names(rule: Rule, fields: frozenset[str] | tuple[str, ...]) -> list[str]:
    """The values (with their modifiers) of the object fields one rule watches in the selections its condition
    does not negate, for the reader to set SACLs on."""
    found: list[tuple[str, str]] = []   # (selection, "modifier: value")
    for name, branches in rule.selections:
        for branch in branches:
            for field, mods, values in branch:
                if field and field.casefold() in fields:
                    how = "|".join(mods) or "equals"
                    found.extend((name, f"{how}: {value}") for value in values if value is not None)
    if not found:
        return []
    positive = _positive_names(tuple(rule.condition), tuple(name for name, _ in rule.selections))
    return list(dict.fromkeys(text for name, text in found if positive is None or name in positive))


def step_objects(kind: SaclKind, rules: list[Rule], memo: dict | None = None) -> dict[str, Any]:
    """What a plan's SACL change is to be set on: the objects the rules name in the selections their
    conditions do not negate (the kind's ``object_fields``: TargetObject, TargetFilename, ObjectName, ...),
    the first ``_MAX_OBJECTS`` of them, how many more, and how many rules name none (for those the SACL goes
    on ``objects_unnamed``: the keys / files the rule watches). ``memo`` keeps each rule's names across the
    steps of both plans."""
    memo = {} if memo is None else memo
    names: dict[str, None] = {}
    unnamed = 0
    for rule in rules:
        key = (rule.ref, kind.id)
        found = memo.get(key)
        if found is None:
            found = memo[key] = _rule_object_names(rule, kind.object_fields)
        names.update(dict.fromkeys(found))
        unnamed += not found
    listed = list(names)
    return {"objects": listed[:_MAX_OBJECTS], "more_objects": max(0, len(listed) - _MAX_OBJECTS),
            "rules_without_object": unnamed, "objects_unnamed": kind.objects_unnamed}


def sacl_entries(result, changes: list) -> list[dict]:
    """What gpo.md and the auditpol scripts show per SACL kind: the outcomes, counts, the reason it is not
    known to be met, the objects the rules name, and (for File / Key) a global SACL command with the
    access-mask bits the rules look for. Commands are built from validated data and integers only."""
    from .templating import Trusted

    kb = result.knowledge
    data = kb.object_access
    by_ref = {res.rule.ref: res.rule for res in result.resolution.rules}
    reqs = result.resolution.requirements
    entries = []
    for change in changes:
        kind = change.kind
        rules = [by_ref[ref] for ref in sorted(change.rule_refs) if ref in by_ref]
        mask = access_mask(rules, data) | guide_access(kb, rules, kind.id)
        command = ps_command = view = None
        if kind.resource_type in ("File", "Key") and re.fullmatch(r"\{S-1(-\d+)+\}", data.global_sacl_trustee):
            tail = ((" /success" if change.success else "") + (" /failure" if change.failure else "")
                    + (f" /access:0x{mask:x}" if mask else ""))
            command = f"auditpol /resourceSACL /set /type:{kind.resource_type} /user:{data.global_sacl_trustee}{tail}"
            # /set adds or updates the trustee's entry (Microsoft Learn, auditpol resourceSACL): look first
            view = f"auditpol /resourceSACL /view /type:{kind.resource_type}"
            # PowerShell reads {...} as a script block: the /user: argument is quoted there
            ps_command = (f"& auditpol.exe /resourceSACL /set /type:{kind.resource_type} "
                          f"'/user:{data.global_sacl_trustee}'{tail}")
        reasons = sorted({reqs[rid].reason for rid in change.req_ids if rid in reqs and reqs[rid].reason})
        entries.append({
            "kind": kind, "success": change.success, "failure": change.failure, "rules": change.rules,
            "unblinds": change.unblinds, "unblinds_all": change.unblinds_all,
            "command": Trusted(command) if command else None,
            "ps_command": Trusted(ps_command) if ps_command else None, "view": Trusted(view) if view else None, "mask": Trusted(f"0x{mask:x}") if mask else None,
            "reasons": reasons, **step_objects(kind, rules)})
    return entries
