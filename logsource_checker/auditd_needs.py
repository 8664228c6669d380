"""Which Linux audit rules a Sigma rule needs: record types, syscalls, paths and keys -> audit rule items.

An *item* is a hashable tuple naming one thing the loaded audit rules must do:

- ``("syscall", arch, name)``: an exit-list rule auditing the syscall for that ABI (``-a always,exit -F arch=b64
  -S execve``); one item per arch of mappings/auditd.yaml (a 64-bit kernel runs 32-bit programs through b32)
- ``("watch", path, perms)``: a watch covering the path for those accesses (``-w /etc/passwd -p wa``)
- ``("record", TYPE)``: a record sent by a user-space program (USER_LOGIN, ADD_USER, ...): no rule is needed,
  only that no user or exclude filter drops it
- ``("key", key)``: an audit rule carrying that key (``-k``); which rule cannot be told from the Sigma rule
- ``("undetermined", reason)``: the rule matches records whose producing rule cannot be told

``derive`` reads the rule's detection: each branch of a selection the condition uses positively gives items
from its record ``type`` values (mappings/auditd.yaml says how each type comes about), its syscall names, its
paths and its keys; a selection needs all its items. The options (any one of which serves the rule) come from the
condition: each selection that can satisfy it alone is an option, and the selections that only satisfy it
together are one more option.
"""
from __future__ import annotations

import re
from typing import Any

from . import condition as cond
from .auditd_data import KEY_RE, PERMS_RE, SYSCALL_NAME_RE, AuditdData
from .rules import Rule

Item = tuple[str, ...]
MAX_OPTIONS = 8
# a path an audit rule line can carry as one token: no blank, quote, '#', backslash or control character
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9._/+@:,=~-]{0,255}$")
_SLUG_RE = re.compile(r"[^a-z0-9]+")
_DEFINITION_WATCH_RE = re.compile(r"-w\s+(/\S*)\s+-p\s+([rwxa]{1,4})\b")


def _undetermined(reason: str) -> Item:
    return ("undetermined", reason)


def _watch_path(modifiers: tuple[str, ...], value: str) -> tuple[str | None, str | None]:
    """(path to watch, None) or (None, why no path can be told) for one value of a path field."""
    if modifiers not in ((), ("startswith",)):
        return None, f"a path matched with |{'|'.join(modifiers)} ({value!r}): which file to watch cannot be told"
    if not value.startswith("/"):
        return None, f"{value!r} is not an absolute path"
    wildcard = min((i for i in (value.find("*"), value.find("?")) if i >= 0), default=-1)
    if wildcard >= 0 or (modifiers == ("startswith",) and not value.endswith("/")):
        end = wildcard if wildcard >= 0 else len(value)
        value = value[:value.rfind("/", 0, end) + 1]        # the folder holding the names that can match
    path = value.rstrip("/") or "/"
    if value.endswith("/") and path.count("/") < 2:
        return None, f"only a watch on {value} (a whole top-level tree) would cover it: too broad to suggest"
    if not SAFE_PATH_RE.match(path):
        return None, f"{value!r} holds characters an audit rule line cannot carry safely"
    return (path + "/" if value.endswith("/") else path), None


def watch_items(matches: Any, fields: frozenset[str], data: AuditdData, perms: str | None = None) -> list[Item]:
    """Watch items for the values of the path ``fields`` (case-folded) among a branch's matches, for ``perms``
    (default: the data's default_watch_perms)."""
    items: list[Item] = []
    for field, modifiers, values in matches:
        if field is None or field.casefold() not in fields:
            continue
        for value in values:
            if value is None:
                continue
            path, why = _watch_path(tuple(modifiers), str(value))
            items.append(("watch", path, perms or data.default_watch_perms) if path else _undetermined(why or ""))
    return items


def _branch_perms(matches: Any, names: list[str], data: AuditdData) -> str | None:
    """The -p letters the branch's PATH records need when it says the access: the syscalls it names (each one's
    class, auditctl(8) -p) or the nametype (CREATE / DELETE: w); None when it does not say."""
    nametypes, _ = _equal_values(matches, frozenset({data.nametype_field}))
    letters = {data.syscall_perms[n] for n in names if n in data.syscall_perms}
    letters |= {data.nametype_perms[t.strip().upper()] for t in nametypes if t.strip().upper() in data.nametype_perms}
    if not letters or (names and not all(n in data.syscall_perms for n in names)):
        return None   # a syscall whose access the flags decide (open, openat...): not told
    return "".join(sorted(letters, key="rwxa".index))


def rule_perms(rule: Rule, data: AuditdData) -> tuple[dict[str, str], bool]:
    """What the rule itself says about the access it looks for: the -w PATH -p PERMS lines of its logsource
    definition (path -> perms), and whether its ATT&CK tactics are ones that read files (read_tactics)."""
    stated = {m.group(1).rstrip("/") or "/": m.group(2) for m in _DEFINITION_WATCH_RE.finditer(rule.definition or "")}
    tactics = {t.casefold().removeprefix("attack.") for t in rule.tags}
    return stated, bool(tactics & data.read_tactics)


def with_rule_perms(items: tuple[Item, ...], rule: Rule, data: AuditdData) -> tuple[Item, ...]:
    """Watch items with the access the rule states (definition) or implies (a reading tactic: r), where the
    branch itself did not say it (the default perms)."""
    if not any(item[0] == "watch" for item in items):
        return items
    stated, reads = rule_perms(rule, data)
    out = []
    for item in items:
        if item[0] == "watch":
            _, path, perms = item
            bare = path.rstrip("/") or "/"
            if bare in stated:
                perms = stated[bare]
            elif reads and perms == data.default_watch_perms:
                perms = "r"
            item = ("watch", path, perms)
        out.append(item)
    return tuple(dict.fromkeys(out))


def syscall_items(names: Any, data: AuditdData) -> list[Item]:
    return [("syscall", arch, name) for name in names for arch in data.arches]


def _equal_values(matches: Any, fields: frozenset[str]) -> tuple[list[str], list[str]]:
    """(values matched exactly, descriptions of other matches) of the given case-folded fields."""
    exact: list[str] = []
    other: list[str] = []
    for field, modifiers, values in matches:
        if field is None or field.casefold() not in fields:
            continue
        texts = [str(v) for v in values if v is not None]
        if modifiers:
            other += [f"{field}|{'|'.join(modifiers)}: {t!r}" for t in texts]
        else:
            exact += texts
    return exact, other


def branch_items(matches: Any, data: AuditdData) -> list[Item]:
    """The items one branch (an AND of matches) needs."""
    types, other_types = _equal_values(matches, data.type_fields)
    syscalls, other_syscalls = _equal_values(matches, data.syscall_fields)
    keys, _ = _equal_values(matches, data.key_fields)
    items: list[Item] = []
    for key in keys:
        items.append(("key", key) if KEY_RE.match(key) else _undetermined(f"key {key!r} is not a valid audit key"))
    names = []
    numbered: list[Item] = []
    for name in syscalls:
        name = name.strip().lower()
        if SYSCALL_NAME_RE.match(name):
            names.append(name)
        elif name.isdigit():   # a number differs between ABIs (59 is execve on x86_64, 11 on i386)
            numbered += _numbered(name, matches, data)
        else:
            items.append(_undetermined(f"syscall {name!r} is not a syscall name or number"))
    if other_syscalls:
        items.append(_undetermined(f"syscall matched as {', '.join(other_syscalls)}: which syscall cannot be told"))
    if other_types:
        items.append(_undetermined(f"record type matched as {', '.join(other_types)}"))
    if not types and (names or numbered):
        types = ["SYSCALL"]
    if not types and not other_types:
        if not keys and not items:
            items.append(_undetermined("the selection names no record type, syscall or key"))
        return items
    for text in types:
        record = data.record_types.get(text.strip().upper())
        if record is None:
            items.append(_undetermined(f"record type {text.strip().upper()} is not in mappings/auditd.yaml"))
        elif record.origin == "user":
            items.append(("record", record.type))
        elif record.origin == "watch":
            found = watch_items(matches, frozenset(f.casefold() for f in record.path_fields), data,
                                _branch_perms(matches, names, data))
            items += found or ([] if keys else [_undetermined(f"{record.type} records of a path the rule does not "
                                                              "name")])
        else:
            wanted = list(record.syscalls) or names
            items += (syscall_items(wanted, data) + ([] if record.syscalls else numbered)) or ([] if keys else [
                _undetermined(f"{record.type} records of a syscall the rule does not name")])
    return items


def _numbered(number: str, matches: Any, data: AuditdData) -> list[Item]:
    """A syscall number read for the ABI the branch's arch field names (arch=c000003e: b64), else for the
    native b64 (mappings/syscalls.yaml, the tables auditctl uses)."""
    from .auditd_syscalls import abi_of_record_arch, name_of

    arches, other = _equal_values(matches, data.arch_fields)
    abis = [abi_of_record_arch(data, value) for value in arches]
    if other or None in abis:
        return [_undetermined(f"syscall {number} with an arch the rule matches as {', '.join(other + arches)}: "
                              "which ABI's numbering applies cannot be told")]
    items: list[Item] = []
    for abi in dict.fromkeys(abis or [data.arches[0] if data.arches else "b64"]):
        name = name_of(data, abi, number)
        items.append(("syscall", abi, name) if name and SYSCALL_NAME_RE.match(name) else
                     _undetermined(f"syscall {number} is not in the {abi} syscall table"))
    return items


def _selection_items(branches: Any, data: AuditdData) -> tuple[Item, ...]:
    found: dict[Item, None] = {}
    for matches in branches:
        found.update(dict.fromkeys(branch_items(matches, data)))
    return tuple(found)


def _conjunction(items: tuple[Item, ...]) -> tuple[Item, ...]:
    """Selections that must match together match the same record: a determined item decides for the others."""
    known = tuple(i for i in items if i[0] != "undetermined")
    return known or items


def derive(rule: Rule, node: tuple | None, data: AuditdData) -> tuple[tuple[str, tuple[Item, ...]], ...]:
    """The options of a rule: (label, items) pairs, any one of which serves the rule."""
    selections = dict(rule.selections)
    names = list(cond.used_positively(node)) if node is not None else list(selections)
    per = {name: with_rule_perms(_selection_items(selections[name], data), rule, data)
           for name in names if name in selections}
    per = {name: items for name, items in per.items() if items}
    if not per:
        return (("auditd records", (_undetermined("the rule names no record type, syscall or key"),)),)
    if node is None:
        return (("auditd records", _conjunction(tuple(dict.fromkeys(i for v in per.values() for i in v)))),)
    options: dict[tuple[Item, ...], str] = {}
    alone = [name for name in per if cond.verdict(node, {name}).serves]
    for name in alone:
        options.setdefault(per[name], f"auditd records of {name}")
    rest = [name for name in per if name not in alone]
    if rest and cond.verdict(node, set(rest)).serves:
        items = _conjunction(tuple(dict.fromkeys(i for name in rest for i in per[name])))
        options.setdefault(items, "auditd records of " + " and ".join(rest))
    if not options:
        items = _conjunction(tuple(dict.fromkeys(i for v in per.values() for i in v)))
        options[items] = "auditd records of " + " and ".join(per)
    return tuple((label, items) for items, label in list(options.items())[:MAX_OPTIONS])


def requirement_fields(item: Item, data: AuditdData, rule_line: str | None = None) -> dict[str, Any]:
    """The Requirement fields (id, name, how, volume, reference) of an item; ``how`` is the audit rule line."""
    key = data.emit_key
    kind = item[0]
    if kind == "syscall":
        _, arch, name = item
        return {"id": f"auditd:syscall:{arch}:{name}", "name": f"auditd syscall rule {name} ({arch})",
                "how": f"-a always,exit -F arch={arch} -S {name} -k {key}", "volume": data.volume_of_syscall(name),
                "reference": data.arch_reference}
    if kind == "watch":
        _, path, perms = item
        assert PERMS_RE.match(perms)
        return {"id": f"auditd:watch:{path}:{perms}", "name": f"auditd watch {path} ({perms})",
                "how": f"-w {path} -p {perms} -k {key}", "volume": data.watch_volume,
                "reference": data.watch_perms_reference}
    if kind == "record":
        record = data.record_types[item[1]]
        return {"id": f"auditd:record:{record.type}", "name": f"auditd {record.type} records (user space)",
                "how": None, "volume": "unknown", "reference": record.reference}
    if kind == "key":
        return {"id": f"auditd:key:{item[1]}", "name": f"auditd rule with key {item[1]}", "how": None,
                "volume": "unknown", "reference": data.watch_perms_reference}
    slug = _SLUG_RE.sub("-", item[1].lower()).strip("-")[:80]
    return {"id": f"auditd:undetermined:{slug}", "name": f"auditd records: {item[1]}", "how": None,
            "volume": "unknown", "reference": data.watch_perms_reference}
