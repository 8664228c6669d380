"""A whole fleet at once: ``check-logsources RULES --fleet HOSTS/``.

``HOSTS/`` holds one folder per host (the folder name is the host name) with any of the inputs a single run
reads, or files named ``HOST.<kind>.<ext>`` directly in ``HOSTS/`` (kind: gpresult, auditpol, sysmon,
collector, auditd; the host name is everything before ``.<kind>.``). Every host's effective policy and role is
computed exactly as a single run computes it (``engine.read_policies`` / ``policy.merge`` /
``roles.decide_role``); the rules are loaded and resolved once; hosts whose merged policy has the same
fingerprint (its settings without source paths, plus the decided role and the collectors) form a group,
assessed once with ``diff.PolicyDiff`` (and ``collection.apply_collection``). Only one snapshot per group is
kept, so memory grows with the distinct groups, not the hosts. Inputs are parsed one host after the other.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import engine
from .diff import PolicyDiff, rank_missing
from .roles import apply_role_volumes, decide_role

KINDS = ("gpresult", "auditpol", "sysmon", "collector", "auditd")
# other spellings of a kind in a file name inside a host folder (audit.csv is what a GPO backup calls it)
_ALIASES = {"audit": "auditpol", "gporeport": "gpresult", "gpo": "gpresult", "rsop": "gpresult"}
_BY_EXTENSION = {".csv": "auditpol", ".inf": "gpresult", ".pol": "gpresult", ".rules": "auditd",
                 ".yml": "collector", ".yaml": "collector", ".conf": "collector"}
COVERAGES = ("usable", "partial", "blind", "unknown", "not_checked")
# reports about the inputs, not policy; and what shows the role (its decision is part of the key instead: a host's
# own security groups and OU would otherwise split hosts with the same policy)
_NOT_SETTINGS = frozenset({"warnings", "conflicts", "role", "role_reason", "role_evidence"})


@dataclass
class HostInputs:
    name: str
    files: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    errors: list[str] = field(default_factory=list)


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
    ranked: list = field(default_factory=list)                # diff.Ranked, most useful first


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


def host_options(base: engine.CheckOptions, host: HostInputs) -> engine.CheckOptions:
    """The options a single run on this host's inputs would get."""
    files = host.files
    return dataclasses.replace(base, gpresult=list(files["gpresult"]), auditpol=list(files["auditpol"]),
                               sysmon_config=files["sysmon"][0] if files["sysmon"] else None,
                               auditd_rules=list(files["auditd"]), collectors=list(files["collector"]))


# --------------------------------------------------------------------------- the fingerprint

def _canonical(value: Any, paths: tuple[tuple[str, str], ...]) -> Any:
    """A JSON-able form of a snapshot part with every input path replaced (so hosts with the same settings in
    differently named files match)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name), paths) for f in dataclasses.fields(value)
                if f.name not in _NOT_SETTINGS}
    if isinstance(value, dict):
        return sorted((json.dumps(_canonical(k, paths), sort_keys=True), _canonical(v, paths))
                      for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_canonical(v, paths) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(json.dumps(_canonical(v, paths), sort_keys=True) for v in value)
    if isinstance(value, str):
        for path, label in paths:
            if path in value:
                value = value.replace(path, label)
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if hasattr(value, "__dict__"):   # plain objects (collector filters): their type and attributes
        return [type(value).__name__, _canonical(vars(value), paths)]
    slots = [name for cls in type(value).__mro__ for name in getattr(cls, "__slots__", ())]
    if slots:
        return [type(value).__name__, {name: _canonical(getattr(value, name, None), paths) for name in slots}]
    return repr(value)   # unknown: distinct objects never share a group by accident (at worst, less sharing)


def fingerprint(snapshot: Any, collectors: list, role: Any, paths: Iterable[tuple[str, str]]) -> str:
    """A stable hash of what decides a host's verdicts: the merged policy's settings (source paths, warnings and
    role evidence left out), the collectors' settings, and the role decided. ``paths``: (path, label) of each
    input; a path is replaced by its label (its kind and place among the host's inputs of that kind)."""
    # the longest first, so a path containing another is replaced whole
    ordered = tuple(sorted(dict(paths).items(), key=lambda item: len(item[0]), reverse=True))
    canon = [_canonical(snapshot, ordered), [_canonical(c, ordered) for c in collectors], role.role, role.known]
    return hashlib.sha256(json.dumps(canon, sort_keys=True, default=repr).encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- the run

def _select(options: engine.CheckOptions, rules: list) -> list:
    """The same rule filters as a single run."""
    return engine.select_rules(options, rules)


def read_host(options: engine.CheckOptions, kb: Any) -> tuple[Any, list, Any]:
    """(merged snapshot, collectors, role decision) exactly as a single run computes them."""
    snapshot = engine.read_policies(options, kb)
    collectors = engine.read_collectors(options)
    return snapshot, collectors, decide_role(snapshot, kb, options.role)


def _host_paths(host: HostInputs) -> list[tuple[str, str]]:
    return [(path, f"<{kind} {n}>") for kind in KINDS for n, path in enumerate(host.files[kind])]


def group_hosts(hosts: list[HostInputs], base: engine.CheckOptions, kb: Any) -> tuple[list[dict], list[Group]]:
    """Read every host; hosts with the same fingerprint share a group (only its first snapshot is kept)."""
    from .collectors import CollectorInputError
    from .policy.model import PolicyInputError

    rows: list[dict] = []
    groups: dict[str, Group] = {}
    for host in hosts:
        row = {"name": host.name, "group": None, "role": None, "errors": list(host.errors)}
        rows.append(row)
        if host.errors:
            continue
        try:
            snapshot, collectors, role = read_host(host_options(base, host), kb)
        except (PolicyInputError, CollectorInputError) as exc:
            row["errors"].append(f"{exc.path}: {exc.reason}")
            continue
        except (OSError, ValueError) as exc:   # unreadable as a whole: the host is listed, the run goes on
            row["errors"].append(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
            continue
        key = fingerprint(snapshot, collectors, role, _host_paths(host))
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(f"G{len(groups) + 1}", key, [], role, snapshot, collectors)
        group.hosts.append(host.name)
        row["group"], row["role"] = group.id, role.role
    return rows, list(groups.values())


def assess(group: Group, resolution: Any, kb: Any, volumes: dict[str, Any]) -> None:
    """One group's verdicts, as engine._check makes them after resolving (the state a previous group left
    on the shared resolution is reset first)."""
    reqs = resolution.requirements
    for rid, req in reqs.items():
        req.volume, req.collected, req.collection = volumes[rid], None, None
    for res in resolution.rules:
        res.collection_reason, res.not_collected = None, []
    apply_role_volumes(reqs, kb, group.role)
    PolicyDiff(kb, group.snapshot, group.role.role, group.role.known).apply(resolution)
    if group.collectors:
        from .collection import apply_collection

        apply_collection(resolution, group.collectors, kb)
    group.coverage = [res.coverage for res in resolution.rules]
    group.statuses = {rid: req.status for rid, req in reqs.items()}
    group.ranked = rank_missing(resolution)
    group.snapshot, group.collectors = None, []   # memory: only the verdicts stay


def run(base: engine.CheckOptions, folder: Path) -> FleetResult:
    """Discover, read and group the hosts, load and resolve the rules once, assess each group."""
    from .resolve import resolve
    from .rules import LoadError

    kb = engine.load_knowledge(base)
    hosts, errors = discover(folder)
    rows, groups = group_hosts(hosts, base, kb)
    loaded = engine.load_rules(base)
    resolution = resolve(_select(base, loaded.rules), kb)
    loaded.errors.extend(LoadError(res.rule.path, None, engine._where(res.rule) + problem)
                         for res in resolution.rules for problem in res.condition_problems)
    volumes = {rid: req.volume for rid, req in resolution.requirements.items()}
    with engine.paused_gc():
        for group in groups:
            assess(group, resolution, kb, volumes)
    return FleetResult(rows, groups, errors, loaded, resolution)

