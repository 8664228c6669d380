"""Syscall numbers read as names, per audit ABI (mappings/syscalls.yaml, generated from the tables auditctl uses).

Audit rules may name syscalls by number (``-S 59``) and raw SYSCALL records carry ``syscall=59``; a number means
a different syscall in each ABI (59 is execve for b64 on x86_64, oldolduname for b32; execve is 11 for b32).
The table is read only when a number is met, once per process.
"""
from __future__ import annotations

from typing import Any

_TABLES: dict[str, dict[str, Any]] = {}


def _tables(path: str) -> dict[str, Any]:
    if path not in _TABLES:
        from .knowledge import _read_yaml
        from pathlib import Path

        raw = _read_yaml(Path(path)) if path and Path(path).is_file() else None
        _TABLES[path] = raw.get("abis") or {} if isinstance(raw, dict) else {}
    return _TABLES[path]


def name_of(data: Any, abi: str, number: str) -> str | None:
    """The syscall name a number stands for in the ABI (b64 | b32), or None when the table has none."""
    if not number.isdigit():
        return None
    numbers = (_tables(data.syscall_table).get(abi) or {}).get("numbers") or {}
    name = numbers.get(int(number), numbers.get(number))
    return str(name) if name is not None else None


def abi_of_record_arch(data: Any, value: str) -> str | None:
    """The ABI of a SYSCALL record's arch= value (c000003e -> b64, 40000003 -> b32), or None."""
    wanted = value.strip().lower().removeprefix("0x")
    for abi, entry in _tables(data.syscall_table).items():
        if str(entry.get("record_arch", "")).lower() == wanted:
            return str(abi)
    return None


def with_names(syscalls: frozenset[str], abi: str, data: Any) -> frozenset[str]:
    """A rule's -S values with each number also read as its name in the ABI."""
    if not any(s.isdigit() for s in syscalls):
        return syscalls
    return syscalls | {n for n in (name_of(data, abi, s) for s in syscalls) if n}
