"""The Linux audit data (mappings/auditd.yaml): record types, arches, volumes, field names.

Loaded into ``Knowledge.auditd`` by knowledge.py and validated with the rest of the data; used by
auditd_needs.py (which audit rules a Sigma rule needs) and auditd_check.py (whether loaded rules produce them).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ORIGINS = ("syscall", "watch", "user")
SYSCALL_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
ARCH_RE = re.compile(r"^b(32|64)$")
PERMS_RE = re.compile(r"^[rwxa]{1,4}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,31}$")   # auditctl: a key is at most 31 bytes
VOLUMES = ("low", "medium", "high", "unknown")


@dataclass(frozen=True)
class RecordType:
    type: str
    origin: str                              # syscall | watch | user
    syscalls: tuple[str, ...] = ()           # origin syscall: the syscalls that always write it
    path_fields: tuple[str, ...] = ()        # origin watch: the fields holding the path
    reference: str = ""


@dataclass
class AuditdData:
    references: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    arch_reference: str = ""
    default_watch_perms: str = "wa"
    watch_perms_reference: str = ""
    syscall_fields: frozenset[str] = frozenset()   # case-folded
    key_fields: frozenset[str] = frozenset()
    type_fields: frozenset[str] = frozenset()
    arch_fields: frozenset[str] = frozenset()
    syscall_perms: dict[str, str] = field(default_factory=dict)    # syscall -> the -p letter its PATH records need
    nametype_field: str = ""
    nametype_perms: dict[str, str] = field(default_factory=dict)   # upper-case nametype -> -p letter
    read_tactics: frozenset[str] = frozenset()
    emit_key: str = "sigma"
    syscall_volumes: dict[str, str] = field(default_factory=dict)
    watch_volume: str = "unknown"
    volume_reference: str = ""
    record_types: dict[str, RecordType] = field(default_factory=dict)   # by upper-case type
    arch_aliases: dict[str, str] = field(default_factory=dict)   # case-folded name -> b64 | b32
    neutral_fields: frozenset[str] = frozenset()
    result_fields: frozenset[str] = frozenset()
    problems: list[str] = field(default_factory=list)
    syscall_table: str = ""   # mappings/syscalls.yaml, read only when a number is met (auditd_syscalls.py)

    def volume_of_syscall(self, name: str) -> str:
        return self.syscall_volumes.get(name, "unknown")

    def records_of_syscall(self, name: str) -> tuple[str, ...]:
        """The record types an audited syscall writes that name it: SYSCALL and any type fixed to it."""
        return ("SYSCALL",) + tuple(t.type for t in self.record_types.values()
                                    if name in t.syscalls and t.type != "SYSCALL")


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def load_auditd(path: Path, read_yaml: Callable[[Path], Any]) -> AuditdData:
    data = AuditdData(syscall_table=str(path.parent / "syscalls.yaml"))
    if not path.is_file():
        data.problems.append(f"{path.name}: missing")
        return data
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        data.problems.append(f"{path.name}: not a mapping")
        return data
    data.references = tuple(_strings(raw.get("references")))
    data.arches = tuple(_strings(raw.get("arches")))
    data.arch_reference = str(raw.get("arch_reference") or "")
    data.default_watch_perms = str(raw.get("default_watch_perms") or "")
    data.watch_perms_reference = str(raw.get("watch_perms_reference") or "")
    data.syscall_fields = frozenset(f.casefold() for f in _strings(raw.get("syscall_fields")))
    data.key_fields = frozenset(f.casefold() for f in _strings(raw.get("key_fields")))
    data.type_fields = frozenset(f.casefold() for f in _strings(raw.get("type_fields")))
    data.arch_fields = frozenset(f.casefold() for f in _strings(raw.get("arch_fields")))
    perms = raw.get("syscall_perms") if isinstance(raw.get("syscall_perms"), dict) else {}
    data.syscall_perms = {str(name): str(letter) for letter, names in perms.items() for name in _strings(names)}
    data.nametype_field = str(raw.get("nametype_field") or "").casefold()
    nametypes = raw.get("nametype_perms") if isinstance(raw.get("nametype_perms"), dict) else {}
    data.nametype_perms = {str(k).upper(): str(v) for k, v in nametypes.items()}
    data.read_tactics = frozenset(t.casefold() for t in _strings(raw.get("read_tactics")))
    data.emit_key = str(raw.get("emit_key") or "")
    volumes = raw.get("syscall_volumes") or {}
    data.syscall_volumes = {str(k): str(v) for k, v in volumes.items()} if isinstance(volumes, dict) else {}
    data.watch_volume = str(raw.get("watch_volume") or "unknown")
    data.volume_reference = str(raw.get("volume_reference") or "")
    aliases = raw.get("arch_aliases") or {}
    data.arch_aliases = {str(k).casefold(): str(v) for k, v in aliases.items()} if isinstance(aliases, dict) else {}
    data.neutral_fields = frozenset(f.casefold() for f in _strings(raw.get("neutral_fields")))
    data.result_fields = frozenset(f.casefold() for f in _strings(raw.get("result_fields")))
    for entry in raw.get("record_types") or []:
        if not isinstance(entry, dict) or not entry.get("type"):
            data.problems.append(f"{path.name}: record type entry without a type: {entry!r}")
            continue
        rt = RecordType(type=str(entry["type"]).upper(), origin=str(entry.get("origin")),
                        syscalls=tuple(_strings(entry.get("syscalls"))),
                        path_fields=tuple(_strings(entry.get("path_fields"))),
                        reference=str(entry.get("reference") or ""))
        if rt.type in data.record_types:
            data.problems.append(f"{path.name}: record type {rt.type} listed twice")
        data.record_types[rt.type] = rt
    return data


def auditd_problems(data: AuditdData) -> list[str]:
    """Every schema problem of mappings/auditd.yaml, one line each."""
    where = "auditd.yaml"
    problems = list(data.problems)
    if not data.arches or not all(ARCH_RE.match(a) for a in data.arches):
        problems.append(f"{where}: arches must be b64 and/or b32, got {list(data.arches)}")
    if not PERMS_RE.match(data.default_watch_perms):
        problems.append(f"{where}: default_watch_perms {data.default_watch_perms!r} is not made of r, w, x, a")
    if not KEY_RE.match(data.emit_key):
        problems.append(f"{where}: emit_key {data.emit_key!r} is not a valid audit key (31 safe characters)")
    for name, volume in data.syscall_volumes.items():
        if not SYSCALL_NAME_RE.match(name) or volume not in VOLUMES:
            problems.append(f"{where}: syscall_volumes {name}: {volume} (a syscall name and one of {VOLUMES})")
    if data.watch_volume not in VOLUMES:
        problems.append(f"{where}: watch_volume {data.watch_volume!r} not one of {VOLUMES}")
    urls = [*data.references, data.arch_reference, data.watch_perms_reference, data.volume_reference]
    problems += [f"{where}: reference {u!r} is not https" for u in urls if not u.startswith("https://")]
    if not (data.syscall_fields and data.type_fields):
        problems.append(f"{where}: syscall_fields and type_fields are required")
    if not data.arch_aliases or not set(data.arch_aliases.values()) <= set(data.arches):
        problems.append(f"{where}: arch_aliases must map names to the arches {list(data.arches)}")
    for name, letter in [*data.syscall_perms.items(), *data.nametype_perms.items()]:
        if letter not in ("r", "w", "x", "a"):
            problems.append(f"{where}: {name}: permission {letter!r} is not one of r, w, x, a")
    for rt in data.record_types.values():
        if rt.origin not in ORIGINS:
            problems.append(f"{where}: record type {rt.type}: origin {rt.origin!r} not one of {ORIGINS}")
        if not rt.reference.startswith("https://"):
            problems.append(f"{where}: record type {rt.type}: needs an https reference")
        if rt.origin == "watch" and not rt.path_fields:
            problems.append(f"{where}: record type {rt.type}: a watch record needs path_fields")
        if any(not SYSCALL_NAME_RE.match(s) for s in rt.syscalls):
            problems.append(f"{where}: record type {rt.type}: bad syscall name in {list(rt.syscalls)}")
    return problems


def spec_problems(data: AuditdData, value: Any) -> list[str]:
    """Problems of a guide's ``auditd_rule`` requirement: exactly one of ``syscalls: [names]`` (a syscall rule
    for every arch), ``from_rule: true`` (derived from the rule's record types, syscalls, paths and keys) or
    ``watch_fields: [fields]`` (watches on the paths the rule's values of those fields name)."""
    if not isinstance(value, dict):
        return ["auditd_rule requirement is not a mapping"]
    given = [k for k in ("syscalls", "from_rule", "watch_fields") if value.get(k)]
    if len(given) != 1 or set(value) - {"syscalls", "from_rule", "watch_fields"}:
        return ["auditd_rule needs exactly one of syscalls, from_rule, watch_fields"]
    if "syscalls" in given and not all(SYSCALL_NAME_RE.match(str(s)) for s in _strings(value["syscalls"])):
        return [f"auditd_rule syscalls {value['syscalls']!r}: not syscall names"]
    if "from_rule" in given and value["from_rule"] is not True:
        return ["auditd_rule from_rule must be true"]
    return []
