"""Sysmon for Linux: which OS a ``--sysmon-config`` is for, and the status of ``sysmon_linux_event`` requirements.

Sysmon for Linux reads the same configuration schema as Sysmon (Sysinternals/SysmonForLinux shares
Sysinternals/SysmonCommon), so a configuration is read once (policy/sysmon_config.py) and its OS is decided
from its content (``decide_os``), unless ``--sysmon-os`` says it:

- a filter element for an event type Sysmon for Linux does not produce (ImageLoad, RegistryEvent, DnsQuery...;
  the Linux types are ``linux.events`` in mappings/sysmon.yaml): Windows;
- else condition values with a backslash (Windows paths) against values naming a path under a Linux top-level
  folder (``linux.path_prefixes``): the side with evidence, the larger when both have some;
- else ``either``: nothing in it tells, it is used for Windows and Linux rules alike (with a note).

A configuration for the other OS is ignored for those rules with a note, never an error: its requirements
stay ``unknown`` with the reason. Statuses reuse the configuration's per-type verdicts (same filter logic, same
ruledefault: SysmonForLinux SetActiveSyscalls enables the Rule_include defaults).
"""
from __future__ import annotations

from typing import Any

KIND = "sysmon_linux_event"
FORMAT = "sysmon_linux_config"
OS_CHOICES = ("auto", "windows", "linux")
NO_CONFIG = "no Sysmon for Linux configuration given (--sysmon-config)"


def linux_meta(kb: Any) -> dict[str, Any]:
    return dict(kb.sysmon_meta.get("linux") or {})


def linux_elements(kb: Any) -> dict[str, int]:
    """casefolded filter element -> event id, for the event types Sysmon for Linux produces."""
    ids = set(linux_meta(kb).get("events") or ())
    return {str(e.element).casefold(): e.id for e in kb.sysmon_events.values() if e.id in ids and e.element}


def _linux_paths(values: list[str], prefixes: tuple[str, ...]) -> list[str]:
    found = []
    for value in values:
        for token in value.replace(";", " ").split():
            if token.startswith(prefixes) or token.rstrip("/") + "/" in prefixes:
                found.append(value)
                break
    return found


def _examples(values: list[str]) -> str:
    shown = ", ".join(repr(v[:60]) for v in values[:2])
    return f"{len(values)}, e.g. {shown}"


def decide_os(snapshot: Any, kb: Any, forced: str | None = None) -> None:
    """Record which OS the snapshot's Sysmon configuration is for (``config.os`` / ``os_reason``), with a
    note in the policy warnings unless it is read as Windows from its content (the usual case); a Linux
    configuration's input is marked ``sysmon_linux_config``."""
    config = snapshot.sysmon
    if config is None:
        return
    meta = linux_meta(kb)
    known = {str(e.element).casefold() for e in kb.sysmon_events.values() if e.element}
    linux = linux_elements(kb)
    others = sorted({name for name in config.elements if name.casefold() in known and name.casefold() not in linux})
    linux_paths = _linux_paths(config.linux_values, tuple(meta.get("path_prefixes") or ()))
    windows_paths = config.windows_paths
    if forced in ("windows", "linux"):
        os_name, reason = forced, "as given with --sysmon-os"
    elif others:
        os_name, reason = "windows", (f"it filters {', '.join(others)}, which Sysmon for Linux does not produce "
                                      f"(it has event types {', '.join(map(str, meta.get('events') or ()))})")
    elif linux_paths and len(linux_paths) >= len(windows_paths):
        os_name, reason = "linux", f"its conditions name Linux paths ({_examples(linux_paths)})"
        if windows_paths:
            reason += f"; fewer Windows paths too ({_examples(windows_paths)})"
    elif windows_paths:
        os_name, reason = "windows", f"its conditions name Windows paths ({_examples(windows_paths)})"
        if linux_paths:
            reason += f"; fewer Linux paths too ({_examples(linux_paths)})"
    else:
        os_name, reason = "either", ("it filters only event types Sysmon for Linux has too and names no path: used "
                                     "for Windows and Linux rules (--sysmon-os decides)")
    config.os, config.os_reason = os_name, reason
    if os_name == "linux":
        for inp in snapshot.inputs:
            if inp.format == "sysmon_config":
                inp.format = FORMAT
    if os_name == "windows" and forced in (None, "auto"):
        return   # the usual case: recorded (policy.sysmon.os in JSON), not a note on every Windows run
    label = {"windows": "Sysmon (Windows)", "linux": "Sysmon for Linux", "either": "Sysmon or Sysmon for Linux"}
    line = f"{config.source}: Sysmon configuration read as {label[os_name]}: {reason}"
    if line not in snapshot.warnings:
        snapshot.warnings.append(line)


def for_windows(config: Any) -> bool:
    return getattr(config, "os", "windows") != "linux"


def for_linux(config: Any) -> bool:
    return getattr(config, "os", "windows") != "windows"


def linux_status(req: Any, snapshot: Any, kb: Any) -> tuple[str, str]:
    """(status, reason) of a Sysmon for Linux requirement under the snapshot's configuration."""
    config = snapshot.sysmon
    if config is None:
        return "unknown", NO_CONFIG
    if not for_linux(config):
        return "unknown", (f"the Sysmon configuration given ({config.source}) is for Windows ({config.os_reason}): "
                           "ignored for Linux rules; " + NO_CONFIG)
    eid = req.event_id if req.event_id is not None else -1
    status = config.status.get(eid, "unknown")
    reason = config.reasons.get(eid, "the configuration does not say")
    if config.os == "either":
        reason += " (read as a Sysmon for Linux configuration: nothing in it tells the OS)"
    return status, reason


def windows_ignored(config: Any) -> str:
    return (f"the Sysmon configuration given ({config.source}) is for Sysmon for Linux ({config.os_reason}): "
            "ignored for Windows rules; no Windows Sysmon configuration given (--sysmon-config)")
