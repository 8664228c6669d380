"""A whole fleet at once: ``check-logsources RULES --fleet HOSTS/``.

``HOSTS/`` holds one folder per host (the folder name is the host name) with any of the inputs a single run
reads, or files named ``HOST.<kind>.<ext>`` directly in ``HOSTS/`` (kind: gpresult, auditpol, sysmon,
collector, auditd; the host name is everything before ``.<kind>.``). Every host's effective policy and role is
computed exactly as a single run computes it (``engine.read_policies`` / ``policy.merge`` /
``roles.decide_role``); the rules are loaded and resolved once; hosts whose merged policy has the same
fingerprint (its settings without source paths, plus the decided role and the collectors) form a group,
assessed once with ``diff.PolicyDiff`` (and ``collection.judge_collection``) as soon as its first host is read,
then its snapshot is dropped: memory grows with the distinct groups, not the hosts. The hosts are read by
``fleet_read.read_hosts``: one after the other, or over the cores (``--jobs``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import engine
from .diff import PolicyDiff
from .ranking import rank_missing
from .fleet_read import (KINDS, HostInputs, _host_paths, default_jobs, fingerprint, host_options,  # noqa: F401
                         read_host, read_hosts, read_one)
from .roles import role_volumes

# other spellings of a kind in a file name inside a host folder (audit.csv is what a GPO backup calls it)
_ALIASES = {"audit": "auditpol", "gporeport": "gpresult", "gpo": "gpresult", "rsop": "gpresult"}
_BY_EXTENSION = {".csv": "auditpol", ".inf": "gpresult", ".pol": "gpresult", ".rules": "auditd",
                 ".yml": "collector", ".yaml": "collector", ".conf": "collector"}
COVERAGES = ("usable", "partial", "blind", "unknown", "not_checked")


@dataclass
class Group:
    id: str
    fingerprint: str
    hosts: list[str]
    role: Any                      # roles.RoleDecision
    snapshot: Any = None           # the first host's merged snapshot; dropped once assessed
    collectors: list = field(default_factory=list)
    coverage: list[str] = field(default_factory=list)         # per rule, in resolution order
    statuses: dict[str, str] = field(default_factory=dict)    # requirement id -> status
    ranked: list = field(default_factory=list)                # ranking.Ranked, most useful first
    reasons: dict[str, str] = field(default_factory=dict)     # requirement id -> reason, when not met
    collection: Any = None         # collection.judge_collection's check, while assessed (--emit)
    audit: Any = None              # diff.PolicyDiff's effective audit policy, while assessed (--emit)


@dataclass
class FleetResult:
    hosts: list[dict]
    groups: list[Group]
    errors: list[str]
    loaded: Any
    resolution: Any


# --------------------------------------------------------------------------- the layout

def _kind_of(path: Path) -> str | None:
    """The input kind of a file in a host folder: a kind (or alias) as a part of its name, else its extension,
    else its content (a Sysmon configuration's root element; audit rules' -a/-w lines)."""
    parts = path.name.casefold().split(".")
    words = [w for part in (parts[:-1] if len(parts) > 1 else parts) for w in re.split(r"[-_ ]+", part) if w]
    kinds = [w for w in words if w in KINDS]
    if kinds:
        return kinds[-1]
    ext = path.suffix.casefold()
    if ext in _BY_EXTENSION:
        return _BY_EXTENSION[ext]
    aliases = [_ALIASES[w] for w in words if w in _ALIASES]
    if aliases:
        return aliases[-1]
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    text = head.decode("utf-8", "ignore").lstrip("\ufeff \t\r\n")
    if text.startswith("<"):
        return "sysmon" if "<sysmon" in text.casefold() else "gpresult"
    if any(line.strip().startswith(("-a ", "-w ", "-e ")) for line in text.splitlines()):
        return "auditd"
    return None


def _flat_name(name: str) -> tuple[str, str] | None:
    """``HOST.<kind>.<ext>`` -> (host, kind); the last part naming a kind with an extension after it."""
    parts = name.split(".")
    for i in range(len(parts) - 2, 0, -1):
        if parts[i].casefold() in KINDS:
            return ".".join(parts[:i]), parts[i].casefold()
    return None


def discover(folder: Path) -> tuple[list[HostInputs], list[str]]:
    """The hosts in ``folder`` (sorted by name) and what in it is not a host input. Hidden entries (a name
    starting with '.') are skipped."""
    hosts: dict[str, HostInputs] = {}
    errors: list[str] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            host = hosts.setdefault(entry.name, HostInputs(entry.name))
            try:
                items = sorted(entry.iterdir(), key=lambda p: p.name)
            except OSError as exc:
                host.errors.append(f"{entry}: cannot list the folder: {exc.strerror or exc}")
                continue
            for item in items:
                if item.name.startswith("."):
                    continue
                kind = _kind_of(item) if item.is_file() else None
                if kind is None:
                    what = "a folder" if item.is_dir() else "a file of no known kind"
                    host.errors.append(f"{item}: {what}; name it <kind>.<ext> (kind: {', '.join(KINDS)})")
                else:
                    host.files[kind].append(str(item))
        elif entry.is_file():
            found = _flat_name(entry.name)
            if found is None or not found[0]:
                errors.append(f"{entry}: not HOST.<kind>.<ext> (kind: {', '.join(KINDS)}) nor a host folder")
                continue
            hosts.setdefault(found[0], HostInputs(found[0])).files[found[1]].append(str(entry))
    for host in hosts.values():
        if not any(host.files.values()) and not host.errors:
            host.errors.append("no input files")
        if len(host.files["sysmon"]) > 1:
            host.errors.append(f"{len(host.files['sysmon'])} Sysmon configurations: a host runs one")
    return [hosts[name] for name in sorted(hosts)], errors


# --------------------------------------------------------------------------- the run

def _select(options: engine.CheckOptions, rules: list) -> list:
    """The same rule filters as a single run."""
    return engine.select_rules(options, rules)


def assess(group: Group, resolution: Any, kb: Any, on_group: Any = None) -> None:
    """One group's verdicts, as engine._check makes them after resolving: role volumes and collection
    verdicts are new records in a resolution of the group's own (``roles.role_volumes``,
    ``collection.judge_collection``), so the shared resolution keeps no other group's state (PolicyDiff
    overwrites every field it sets). ``on_group(group, resolution, kb)`` (``--emit``) runs while the group's
    snapshot is still there; then it is dropped."""
    resolution = role_volumes(resolution, kb, group.role)
    group.snapshot = engine.with_input_notes(group.snapshot, resolution)
    diff = PolicyDiff(kb, group.snapshot, group.role.role, group.role.known)
    diff.apply(resolution)
    group.audit = diff.audit
    if group.collectors:
        from .collection import judge_collection

        resolution, group.collection = judge_collection(resolution, group.collectors, kb)
    reqs = resolution.requirements
    group.coverage = [res.coverage for res in resolution.rules]
    group.statuses = {rid: req.status for rid, req in reqs.items()}
    group.reasons = {rid: req.reason for rid, req in reqs.items() if req.status != "met"}
    limit, lost = None, frozenset()
    if group.collection is not None:   # as a single run: a change unblinds only rules whose events can arrive
        from .collection_plan import limit_by_collection, never_arriving

        limit, lost = limit_by_collection(group.collection, resolution), never_arriving(group.collection)
    group.ranked = rank_missing(resolution, limit, lost)
    if on_group is not None:
        on_group(group, resolution, kb)
    group.snapshot, group.collectors, group.collection, group.audit = None, [], None, None   # only verdicts stay


def run(base: engine.CheckOptions, folder: Path, jobs: int = 1, on_group: Any = None) -> FleetResult:
    """Discover the hosts and start reading them (``jobs`` processes), load and resolve the rules once
    meanwhile, then group the hosts as their reads come in (in host order) and assess each new group at once:
    only the groups' verdicts stay in memory, never a snapshot per host. ``on_group(group, resolution, kb,
    loaded, filtered_out)``: called for each group while it is assessed (fleet_emit.GroupEmitter)."""
    from .resolve import resolve
    from .rules import LoadError

    kb = engine.load_knowledge(base)
    hosts, errors = discover(folder)
    reads = read_hosts(hosts, base, kb, jobs)   # a pool is forked now, before the rules are in memory
    try:
        loaded = engine.load_rules(base)
        selected = _select(base, loaded.rules)
        resolution = resolve(selected, kb)
        loaded.errors.extend(LoadError(res.rule.path, None, engine._where(res.rule) + problem)
                             for res in resolution.rules for problem in res.condition_problems)
        hook = None
        if on_group is not None:
            def hook(group: Group, resolution: Any, kb: Any) -> None:
                on_group(group, resolution, kb, loaded, len(loaded.rules) - len(selected))
        by_name = {host.name: host for host in hosts}
        rows, groups = _group(reads, resolution, kb, hook, lambda name: read_one(by_name[name], base, kb))
    finally:
        reads.close()
    return FleetResult(rows, groups, errors, loaded, resolution)


def _group(reads: Iterable[Any], resolution: Any, kb: Any, on_group: Any,
           reread: Any) -> tuple[list[dict], list[Group]]:
    """Host rows and groups from the reads, in host order; a group is assessed when its first host comes (with
    its snapshot: a reader returns it for the first host of a fingerprint; ``reread(name)`` if it did not)."""
    rows: list[dict] = []
    groups: dict[str, Group] = {}
    for read in reads:
        row = {"name": read.name, "group": None, "role": None, "errors": read.errors}
        rows.append(row)
        if read.fingerprint is None:
            continue
        group = groups.get(read.fingerprint)
        if group is None:
            if read.snapshot is None:   # a reader that sent it for another host first: read this one again
                read = reread(read.name)
            group = groups[read.fingerprint] = Group(f"G{len(groups) + 1}", read.fingerprint, [], read.role,
                                                     read.snapshot, read.collectors)
            with engine.paused_gc():
                assess(group, resolution, kb, on_group)
        group.hosts.append(read.name)
        row["group"], row["role"] = group.id, read.role.role
    return rows, list(groups.values())
