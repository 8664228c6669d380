"""Fast rule loading: a cache keyed on path, size and modification time, and parallel parsing.

The cache lives in the user's cache directory (``$XDG_CACHE_HOME/logsource-checker``, else
``~/.cache/logsource-checker``). It is safe to delete; a corrupt cache or one written by another
version is ignored and rewritten. A cache file not owned by the current user, or writable by
others, is never unpickled (unpickling runs code), and an entry is reused only while the file's
size, modification time, change time and inode are all unchanged (a chmod that makes an unreadable
file readable changes its change time).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
import tempfile
from typing import Any

from . import __version__
from .rules import LoadError, LoadResult, load_file, iter_rule_files

CACHE_FORMAT = 2
#: Below this many files to parse, parallel workers cost more than they save.
PARALLEL_THRESHOLD = 400


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "logsource-checker")


def _cache_path(paths: list[str]) -> str:
    key = "\0".join(os.path.abspath(p) for p in paths).encode("utf-8", "surrogateescape")
    return os.path.join(cache_dir(), f"rules-{hashlib.sha256(key).hexdigest()[:24]}.pickle")


def _cache_tag() -> tuple[Any, ...]:
    return (CACHE_FORMAT, __version__, sys.version_info[:2])


StatKey = tuple[int, int, int, int]


def _stat_key(st: os.stat_result) -> StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _trusted_cache_file(handle: Any) -> bool:
    """Only the user's own cache file, not writable by group or others, is unpickled."""
    st = os.fstat(handle.fileno())
    if not stat.S_ISREG(st.st_mode):
        return False
    if hasattr(os, "geteuid") and (st.st_uid != os.geteuid() or st.st_mode & 0o022):
        return False
    return True


def _read_cache(path: str) -> dict[str, tuple[StatKey, LoadResult]]:
    try:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        with open(path, "rb", opener=lambda p, _flags: os.open(p, flags)) as handle:
            if not _trusted_cache_file(handle):
                return {}
            data = pickle.load(handle)
        if not isinstance(data, dict) or data.get("tag") != _cache_tag():
            return {}
        entries = data.get("entries")
        if not isinstance(entries, dict):
            return {}
        return {p: e for p, e in entries.items() if isinstance(p, str) and isinstance(e, tuple) and len(e) == 2
                and isinstance(e[1], LoadResult)}
    except Exception:  # a corrupt or foreign cache is simply not used
        return {}


def _write_cache(path: str, entries: dict[str, tuple[StatKey, LoadResult]]) -> None:
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".rules-", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump({"tag": _cache_tag(), "entries": entries}, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, RecursionError):
        pass  # a read-only home (or anything else) must not break the check


def _parse_many(files: list[str]) -> list[LoadResult]:
    return [load_file(path) for path in files]


def _parse_parallel(files: list[str]) -> list[LoadResult]:
    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or len(files) < PARALLEL_THRESHOLD:
        return _parse_many(files)
    try:
        import multiprocessing

        ctx = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
        if ctx is None:
            return _parse_many(files)
        chunks = [files[i::workers] for i in range(workers)]
        with ctx.Pool(workers) as pool:
            parts = pool.map(_parse_many, chunks)
    except (OSError, ImportError):
        return _parse_many(files)
    by_path: dict[str, LoadResult] = {}
    for chunk, results in zip(chunks, parts):
        for path, result in zip(chunk, results):
            by_path[path] = result
    return [by_path[path] for path in files]


def load_rules_fast(paths: list[str], use_cache: bool = True, progress: Any = None) -> LoadResult:
    result = LoadResult()
    files = list(iter_rule_files(paths, result.errors))
    stats: dict[str, StatKey] = {}
    for path in files:
        try:
            stats[path] = _stat_key(os.stat(path))
        except OSError:
            stats[path] = (-1, -1, -1, -1)
    cache_file = _cache_path(paths) if use_cache else None
    cached = _read_cache(cache_file) if cache_file else {}
    todo = [p for p in files if not (p in cached and cached[p][0] == stats[p] and stats[p][0] >= 0)]
    if progress is not None:
        progress.start(len(todo))
    fresh = dict(zip(todo, _parse_parallel(todo))) if todo else {}
    if progress is not None:
        progress.finish()
    entries: dict[str, tuple[StatKey, LoadResult]] = {}
    for path in files:
        part = fresh[path] if path in fresh else cached[path][1]
        entries[path] = (stats[path], part)
        result.extend(part)
    if cache_file and (todo or len(entries) != len(cached)):
        _write_cache(cache_file, entries)
    return result


__all__ = ["load_rules_fast", "cache_dir", "LoadError"]
