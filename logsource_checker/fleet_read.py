"""The host-reading stage of ``--fleet``: one host's inputs -> a small, picklable :class:`HostRead`.

:func:`read_one` is the unit of work (docs/FLEET-SCALE.md): it reads a host's files exactly as a single run
does (``engine.read_policies`` / ``engine.read_collectors`` / ``roles.decide_role``) and returns the policy
fingerprint, the role decision and, when asked, the merged snapshot and the collectors (what a group's
assessment needs). :func:`read_hosts` runs it over every host, one after the other or in a pool of worker
processes (``--jobs``; forked on Linux, spawned elsewhere), and yields the results in host order either way, so the groups and their numbering
are the same. A worker sends a group's snapshot only the first time it meets the fingerprint; as each worker
takes its chunks in host order, the first host of every group always comes with its snapshot.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from . import engine
from .roles import decide_role

KINDS = ("gpresult", "auditpol", "sysmon", "collector", "auditd")
# reports about the inputs, not policy; and what shows the role (its decision is part of the key instead: a host's
# own security groups and OU would otherwise split hosts with the same policy)
_NOT_SETTINGS = frozenset({"warnings", "conflicts", "role", "role_reason", "role_evidence"})


@dataclass
class HostInputs:
    name: str
    files: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    errors: list[str] = field(default_factory=list)


@dataclass
class HostRead:
    """What one host's inputs come to (picklable: plain data, dataclasses)."""
    name: str
    errors: list[str]
    fingerprint: str | None = None     # None: not read (errors say why)
    role: Any = None                   # roles.RoleDecision
    snapshot: Any = None               # policy.model.PolicySnapshot; only when asked for (first of its group)
    collectors: list = field(default_factory=list)


def host_options(base: engine.CheckOptions, host: HostInputs) -> engine.CheckOptions:
    """The options a single run on this host's inputs would get."""
    files = host.files
    return dataclasses.replace(base, gpresult=list(files["gpresult"]), auditpol=list(files["auditpol"]),
                               sysmon_config=files["sysmon"][0] if files["sysmon"] else None,
                               auditd_rules=list(files["auditd"]), collectors=list(files["collector"]))
_FIELDS: dict[type, tuple[str, ...] | None] = {}   # per type: its dataclass fields that are settings, else None
_PLAIN = frozenset({bool, int, float, type(None)})


def _settings_fields(cls: type) -> tuple[str, ...] | None:
    try:
        return _FIELDS[cls]
    except KeyError:
        names = (tuple(f.name for f in dataclasses.fields(cls) if f.name not in _NOT_SETTINGS)
                 if dataclasses.is_dataclass(cls) else None)
        _FIELDS[cls] = names
        return names


def _canonical(value: Any, paths: tuple[tuple[str, str], ...]) -> Any:
    """A JSON-able form of a snapshot part with every input path replaced (so hosts with the same settings in
    differently named files match). The common types are looked up by exact type first (this runs for every
    host)."""
    cls = type(value)
    if cls is str:
        for path, label in paths:
            if path in value:
                value = value.replace(path, label)
        return value
    if cls in _PLAIN:
        return value
    names = _settings_fields(cls)
    if names is not None:
        return {name: _canonical(getattr(value, name), paths) for name in names}
    if cls is list or cls is tuple:
        return [_canonical(v, paths) for v in value]
    if isinstance(value, dict):
        return sorted((json.dumps(_canonical(k, paths), sort_keys=True), _canonical(v, paths))
                      for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_canonical(v, paths) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(json.dumps(_canonical(v, paths), sort_keys=True) for v in value)
    if isinstance(value, str):
        return _canonical(str(value), paths)
    if isinstance(value, (bool, int, float)):
        return value
    if hasattr(value, "__dict__") and not isinstance(value, type):   # plain objects (collector filters)
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



def read_host(options: engine.CheckOptions, kb: Any) -> tuple[Any, list, Any]:
    """(merged snapshot, collectors, role decision) exactly as a single run computes them."""
    snapshot = engine.read_policies(options, kb)
    collectors = engine.read_collectors(options)
    return snapshot, collectors, decide_role(snapshot, kb, options.role)


def _host_paths(host: HostInputs) -> list[tuple[str, str]]:
    return [(path, f"<{kind} {n}>") for kind in KINDS for n, path in enumerate(host.files[kind])]




SAME_MAX = 4096   # hosts whose inputs are byte for byte those of an earlier host: results remembered per process


def content_key(host: HostInputs) -> bytes | None:
    """A digest of the host's inputs (kind, order, extension and bytes of each file); None when one cannot be
    read (the reading proper then reports it)."""
    digest = hashlib.sha256()
    for kind in KINDS:
        for path in host.files[kind]:
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                return None
            digest.update(f"{kind}\0{os.path.splitext(path)[1].casefold()}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.digest()


def read_one(host: HostInputs, base: engine.CheckOptions, kb: Any, seen: set[str] | None = None,
             same: dict[bytes, tuple[str, Any]] | None = None) -> HostRead:
    """The unit of work: read one host. With ``seen`` (fingerprints whose snapshot was already sent), the
    snapshot and collectors come back only for a fingerprint not in it (and it is added); without, always.
    With ``same`` too (content digest -> fingerprint and role, for this run's options), a host whose files are
    byte for byte those of a host read before is not parsed again (GPO reports, audit.csv files and Sysmon
    configurations are often copies)."""
    from .collectors import CollectorInputError
    from .policy.model import PolicyInputError

    out = HostRead(host.name, list(host.errors))
    if host.errors:
        return out
    key = content_key(host) if same is not None and seen is not None else None
    if key is not None and key in same:   # type: ignore[operator]
        out.fingerprint, out.role = same[key]   # type: ignore[index]
        if out.fingerprint in seen:   # type: ignore[operator]
            return out
    try:
        snapshot, collectors, role = read_host(host_options(base, host), kb)
    except (PolicyInputError, CollectorInputError) as exc:
        out.errors.append(f"{exc.path}: {exc.reason}")
        return out
    except (OSError, ValueError) as exc:   # unreadable as a whole: the host is listed, the run goes on
        out.errors.append(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        return out
    out.fingerprint, out.role = fingerprint(snapshot, collectors, role, _host_paths(host)), role
    if key is not None and len(same) < SAME_MAX:   # type: ignore[arg-type]
        same[key] = (out.fingerprint, role)   # type: ignore[index]
    if seen is None or out.fingerprint not in seen:
        out.snapshot, out.collectors = snapshot, collectors
        if seen is not None:
            seen.add(out.fingerprint)
    return out


# --------------------------------------------------------------------------- serial or over the cores

_WORKER: dict[str, Any] = {}   # set in the parent before the fork: base options, knowledge; per worker: seen
# a spawned worker (no fork: Windows, macOS) imports the package and loads the guide data itself, about half a
# second: worth it only with this many hosts per worker
SPAWN_MIN_HOSTS_PER_JOB = 200


def _init_worker(base: engine.CheckOptions | None = None) -> None:
    if base is not None:   # spawned: nothing is inherited
        _WORKER["base"], _WORKER["kb"] = base, engine.load_knowledge(base)
    _WORKER["seen"], _WORKER["same"] = set(), {}


def _work(host: HostInputs) -> HostRead:
    return read_one(host, _WORKER["base"], _WORKER["kb"], _WORKER["seen"], _WORKER["same"])


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    import multiprocessing

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def start_method() -> str | None:
    """How workers are started: ``fork`` on Linux (they inherit the loaded guide data), else ``spawn``."""
    import multiprocessing

    if can_fork():
        return "fork"
    return "spawn" if "spawn" in multiprocessing.get_all_start_methods() else None


def _serial(hosts: list[HostInputs], base: engine.CheckOptions, kb: Any) -> Iterator[HostRead]:
    seen: set[str] = set()
    same: dict[bytes, tuple[str, Any]] = {}
    for host in hosts:
        yield read_one(host, base, kb, seen, same)


class _PoolReads:
    """The pool's results in host order; ``close()`` ends the workers (also when nothing was read)."""

    def __init__(self, pool: Any, results: Iterator[HostRead]) -> None:
        self.pool, self.results = pool, results

    def __iter__(self) -> Iterator[HostRead]:
        return self.results

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()
        _WORKER.clear()


def read_hosts(hosts: list[HostInputs], base: engine.CheckOptions, kb: Any, jobs: int = 1) -> Any:
    """``read_one`` over every host, results in host order. ``jobs`` > 1 and more hosts than jobs: a pool of
    ``jobs`` processes, started now, reads chunks of hosts while the caller goes on (forked on Linux, inheriting
    ``kb``; spawned elsewhere, each loading the guide data, and only with ``SPAWN_MIN_HOSTS_PER_JOB`` hosts a
    job); else this process reads them one by one as the results are asked for. Call ``close()`` on the
    result when done."""
    method = start_method()
    if jobs <= 1 or len(hosts) <= jobs or method is None \
            or (method == "spawn" and len(hosts) < jobs * SPAWN_MIN_HOSTS_PER_JOB):
        return _serial(hosts, base, kb)
    import multiprocessing

    clean = dataclasses.replace(base, progress=None)
    # chunks: big enough to pay for the pickling, small enough that the last ones end together
    chunk = max(1, min(64, len(hosts) // (jobs * 8)))
    try:
        if method == "fork":
            _WORKER.update(base=clean, kb=kb)
            pool = multiprocessing.get_context("fork").Pool(jobs, initializer=_init_worker)
        else:
            pool = multiprocessing.get_context("spawn").Pool(jobs, initializer=_init_worker, initargs=(clean,))
    except (OSError, ImportError):   # no semaphores (/dev/shm), no processes left: the same answer, serially
        _WORKER.clear()
        return _serial(hosts, base, kb)
    return _PoolReads(pool, pool.imap(_work, hosts, chunksize=chunk))
