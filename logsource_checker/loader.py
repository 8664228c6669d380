"""Fast rule loading: a cache keyed on path, size and modification time, and parallel parsing.

The cache lives in the user's cache directory (``$XDG_CACHE_HOME/logsource-checker``, else
``~/.cache/logsource-checker``). It is safe to delete; a corrupt cache or one written by another
version is ignored and rewritten.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from typing import Any

from . import __version__
from .rules import LoadError, LoadResult, load_file, iter_rule_files

CACHE_FORMAT = 1
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


def _read_cache(path: str) -> dict[str, tuple[int, int, LoadResult]]:
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle)
        if not isinstance(data, dict) or data.get("tag") != _cache_tag():
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}
    except Exception:  # a corrupt or foreign cache is simply not used
        return {}


def _write_cache(path: str, entries: dict[str, tuple[int, int, LoadResult]]) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".rules-", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump({"tag": _cache_tag(), "entries": entries}, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home must not break the check


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
    stats: dict[str, tuple[int, int]] = {}
    for path in files:
        try:
            st = os.stat(path)
            stats[path] = (st.st_size, st.st_mtime_ns)
        except OSError:
            stats[path] = (-1, -1)
    cache_file = _cache_path(paths) if use_cache else None
    cached = _read_cache(cache_file) if cache_file else {}
    todo = [p for p in files if not (p in cached and cached[p][:2] == stats[p] and stats[p][0] >= 0)]
    if progress is not None:
        progress.start(len(todo))
    fresh = dict(zip(todo, _parse_parallel(todo))) if todo else {}
    if progress is not None:
        progress.finish()
    entries: dict[str, tuple[int, int, LoadResult]] = {}
    for path in files:
        part = fresh[path] if path in fresh else cached[path][2]
        entries[path] = (*stats[path], part)
        result.extend(part)
    if cache_file and (todo or len(entries) != len(cached)):
        _write_cache(cache_file, entries)
    return result


__all__ = ["load_rules_fast", "cache_dir", "LoadError"]
