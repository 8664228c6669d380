"""Fast rule loading: a cache keyed on path, size and modification time, and parallel parsing.

The cache lives in the user's cache directory (``$XDG_CACHE_HOME/logsource-checker``, else
``~/.cache/logsource-checker``). It is safe to delete; a corrupt cache or one written by another
version is ignored and rewritten. The cache file is written sealed (``_cache.read_sealed_pickle``: its
pickle followed by its SHA-256); while the seal matches, its entries are exactly what this loader wrote and
are used as they are. Without an intact seal (damage, an edit) every entry is checked for the shape of what
``rules.pack_result`` writes (``_entry_ok``), and a file whose entry does not have it is parsed again. A cache file not owned by the current user, or writable by
others, is never unpickled (unpickling runs code), and an entry is reused only while the file's
size, modification time, change time and inode are all unchanged (a chmod that makes an unreadable
file readable changes its change time).
"""
from __future__ import annotations

import hashlib
import os
import sys
from typing import Any

from . import __version__
from ._cache import cache_dir, read_sealed_pickle, write_pickle_atomically
from .rules import (LoadError, LoadResult, iter_rule_files_stat, load_file, pack_result, parser_fingerprint,
                    prepare_parsers, unpack_result)

#: 3: entries are plain tuples (``rules.pack_result``), not pickled ``LoadResult`` objects; 5: without the
#: logsource ``definition`` and ``has_keywords`` (no stage read them), the file sealed; 6: ``definition``
#: back, last (the Linux access check reads the watches a rule states).
CACHE_FORMAT = 6
#: Below this many files to parse, a second process costs more than it saves.
PARALLEL_THRESHOLD = 400
#: The forked child's share of the bytes to parse, relative to this process's share, is 1 / CHILD_WEIGHT.
CHILD_WEIGHT = 1.1
#: The progress bar (when there is one) is advanced once per this many files parsed.
PROGRESS_STEP = 50


def _cache_path(paths: list[str]) -> str:
    key = "\0".join(os.path.abspath(p) for p in paths).encode("utf-8", "surrogateescape")
    return os.path.join(cache_dir(), f"rules-{hashlib.sha256(key).hexdigest()[:24]}.pickle")


def _cache_tag() -> tuple[Any, ...]:
    """A cache written under another tag is not used: another format, package or Python version, or
    another rules.py or YAML parser (``rules.parser_fingerprint``)."""
    return (CACHE_FORMAT, __version__, sys.version_info[:2], parser_fingerprint())


StatKey = tuple[int, int, int, int]
Packed = tuple[Any, ...]  # rules.pack_result


def _stat_key(st: os.stat_result) -> StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _read_cache(path: str) -> dict[str, tuple[StatKey, Packed]]:
    """``{path: (stat key, packed result)}`` (``_read_sealed_cache`` without the seal)."""
    return _read_sealed_cache(path)[0]


def _read_sealed_cache(path: str) -> tuple[dict[str, tuple[StatKey, Packed]], bool]:
    """(``{path: (stat key, packed result)}``, whether the file's seal is intact); empty when the cache is
    missing, corrupt, foreign or not trusted. Unsealed entries are checked only for their outer shape here,
    each one's content by ``_load`` (``_entry_ok``); ``load_rules_fast`` drops the whole cache if one does
    not unpack."""
    data, sealed = read_sealed_pickle(path)  # None when missing, not trusted or corrupt
    try:
        if type(data) is not dict or data.get("tag") != _cache_tag():
            return {}, False
        entries = data.get("entries")
        if type(entries) is not dict:
            return {}, False
        if not sealed:
            for key, entry in entries.items():
                if type(key) is not str or type(entry) is not tuple or len(entry) != 2 \
                        or type(entry[1]) is not tuple:
                    return {}, False
        return entries, sealed
    except Exception:  # a cache of a foreign shape is simply not used
        return {}, False


def _texts(values: Any, optional: bool = False) -> bool:
    if type(values) is not tuple:
        return False
    for value in values:
        if type(value) is not str and not (optional and value is None):
            return False
    return True


def _selections_ok(selections: Any) -> bool:
    """The shape ``Rule.selections`` has: ((name, branches), ...), a branch a tuple of matches, a match
    (field or None, (modifier, ...), (value text or None, ...))."""
    if type(selections) is not tuple:
        return False
    for selection in selections:
        if type(selection) is not tuple or len(selection) != 2 or type(selection[0]) is not str \
                or type(selection[1]) is not tuple:
            return False
        for branch in selection[1]:
            if type(branch) is not tuple:
                return False
            for match in branch:
                if type(match) is not tuple or len(match) != 3:
                    return False
                name, modifiers, values = match
                if (name is not None and type(name) is not str) or not _texts(modifiers) \
                        or not _texts(values, optional=True):
                    return False
    return True


def _rule_ok(packed_rule: Any) -> bool:
    """One rule as ``rules.pack_result`` packs it (the field order of ``Rule``, the log source flattened)."""
    if type(packed_rule) is not tuple or len(packed_rule) != 17:
        return False
    (path, document, rule_id, title, level, status, product, category, service, event_ids,
     channels, providers, fields, condition, selections, tags, definition) = packed_rule
    if type(path) is not str or type(document) is not int:
        return False
    for text in (rule_id, title, level, status, product, category, service, definition):
        if text is not None and type(text) is not str:
            return False
    if type(event_ids) is not tuple or not all(type(e) is int for e in event_ids):
        return False
    return _texts(channels) and _texts(providers) and _texts(fields) and _texts(condition) \
        and _selections_ok(selections) and _texts(tags)


def _entry_ok(packed: Any) -> bool:
    """Whether a cached entry has exactly the shape ``rules.pack_result`` writes: a pickle of the right
    version whose values have the wrong shape or type (damage, or an edit) is parsed again, never used.
    tests/test_cache_faults.py checks that every entry the loader writes passes."""
    if type(packed) is not tuple or len(packed) != 4:
        return False
    rules, errors, others, files = packed
    if type(rules) is not tuple or type(errors) is not tuple or type(others) is not tuple or type(files) is not int:
        return False
    for error in errors:
        if type(error) is not tuple or len(error) != 3 or type(error[0]) is not str \
                or not (error[1] is None or type(error[1]) is int) or type(error[2]) is not str:
            return False
    for other in others:
        if type(other) is not tuple or len(other) != 5 or type(other[0]) is not str or type(other[1]) is not int \
                or type(other[2]) is not str or not _texts(other[3:], optional=True):
            return False
    for packed_rule in rules:
        if not _rule_ok(packed_rule):
            return False
    return True


def _write_cache(path: str, entries: dict[str, tuple[StatKey, Packed]]) -> None:
    write_pickle_atomically(path, {"tag": _cache_tag(), "entries": entries}, sealed=True)


def _parse_many(files: list[tuple[str, int]], progress: Any = None) -> list[LoadResult]:
    if progress is None:
        return [load_file(path, size) for path, size in files]
    results: list[LoadResult] = []
    for start in range(0, len(files), PROGRESS_STEP):
        chunk = files[start:start + PROGRESS_STEP]
        results.extend([load_file(path, size) for path, size in chunk])
        progress.advance(len(chunk))
    return results


def _parse_packed(files: list[tuple[str, int]]) -> list[Packed]:
    return [pack_result(load_file(path, size)) for path, size in files]


def _shares(files: list[tuple[str, int]]) -> tuple[list[int], list[int]]:
    """Indexes of the files this process parses and of those the child parses, each in file order.
    Split by bytes, largest files first; the child's share is a little smaller (it also forks and marshals
    its answer), so both halves end at about the same time."""
    mine_idx: list[int] = []
    theirs_idx: list[int] = []
    mine_bytes = theirs_bytes = 0
    for i in sorted(range(len(files)), key=lambda i: -files[i][1]):
        if mine_bytes <= theirs_bytes * CHILD_WEIGHT:
            mine_idx.append(i)
            mine_bytes += files[i][1] + 256  # + a per-file cost (open, stat, ...)
        else:
            theirs_idx.append(i)
            theirs_bytes += files[i][1] + 256
    return sorted(mine_idx), sorted(theirs_idx)


def _child(read_fd: int, write_fd: int, theirs: list[tuple[str, int]]) -> None:
    """In the forked child: parse, send, exit without running the parent's clean-up handlers."""
    code = 1
    try:
        os.close(read_fd)
        import marshal

        data = marshal.dumps(_parse_packed(theirs))
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view):]
        code = 0
    except BaseException:  # noqa: BLE001 - the parent parses this share itself
        pass
    finally:
        os._exit(code)


def _child_answer(read_fd: int) -> Any:
    """Everything the child wrote, unmarshalled (None when it is not a complete marshal stream)."""
    chunks = []
    while True:
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    import marshal

    try:
        return marshal.loads(b"".join(chunks))
    except (EOFError, ValueError, TypeError):
        return None


def _parse_parallel(files: list[tuple[str, int]], progress: Any = None) -> list[LoadResult | Packed]:
    """Parse ``(path, size)`` files; the result for each, in order (a ``LoadResult``, or packed when it
    comes from the child). ``progress`` (optional) is advanced as files are parsed: by this process
    every ``PROGRESS_STEP`` files, by the child's whole share when its answer is in.

    With 2+ CPUs and enough files (Linux only), one forked child parses part of the list while this
    process parses the rest; the child sends its results back through a pipe as marshalled tuples (the
    child is a copy of this process, so marshal, which is fast and version-bound, is safe here). If the
    child cannot be started or its answer is incomplete, this process parses its share itself.
    """
    if (os.cpu_count() or 1) < 2 or len(files) < PARALLEL_THRESHOLD or not sys.platform.startswith("linux") \
            or not hasattr(os, "fork"):
        return _parse_many(files, progress)  # type: ignore[return-value]
    prepare_parsers()  # imported once, before the fork
    mine_idx, theirs_idx = _shares(files)
    theirs = [files[i] for i in theirs_idx]
    try:
        read_fd, write_fd = os.pipe()
    except OSError:
        return _parse_many(files, progress)  # type: ignore[return-value]
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return _parse_many(files, progress)  # type: ignore[return-value]
    if pid == 0:
        _child(read_fd, write_fd, theirs)
    os.close(write_fd)
    results: list[LoadResult | Packed | None] = [None] * len(files)
    child_results: Any = None
    try:
        for i, mine_result in zip(mine_idx, _parse_many([files[i] for i in mine_idx], progress)):
            results[i] = mine_result
        child_results = _child_answer(read_fd)
    finally:
        os.close(read_fd)
        try:
            _pid, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = -1
    if status != 0 or type(child_results) is not list or len(child_results) != len(theirs):
        child_results = _parse_packed(theirs)
    if progress is not None:
        progress.advance(len(theirs))
    for i, packed in zip(theirs_idx, child_results):
        results[i] = packed
    return results  # type: ignore[return-value]


def load_rules_fast(paths: list[str], use_cache: bool = True, progress: Any = None) -> LoadResult:
    walk_errors: list[LoadError] = []
    # one stat per file, by the walk: it decides what is a rule file and keys the cache
    stats = {path: _stat_key(st) for path, st in iter_rule_files_stat(paths, walk_errors)}
    cache_file = _cache_path(paths) if use_cache else None
    cached, sealed = _read_sealed_cache(cache_file) if cache_file else ({}, False)
    try:
        return _load(stats, walk_errors, cached, cache_file, progress, sealed)
    except (TypeError, ValueError):
        if not cached:
            raise
        # a malformed cache entry (the cache is trusted, so this is damage, not an attack): parse everything
        return _load(stats, walk_errors, {}, cache_file, progress)


def _load(stats: dict[str, StatKey], walk_errors: list[LoadError], cached: dict[str, tuple[StatKey, Packed]],
          cache_file: str | None, progress: Any, sealed: bool = False) -> LoadResult:
    result = LoadResult(errors=list(walk_errors))
    usable: dict[str, Packed] = {}
    for path, key in stats.items():
        entry = cached.get(path)
        if entry is not None and entry[0] == key and (sealed or _entry_ok(entry[1])):
            usable[path] = entry[1]
    todo = [p for p in stats if p not in usable]
    if progress is not None:
        progress.start(len(todo))
    try:
        fresh = dict(zip(todo, _parse_parallel([(p, stats[p][0]) for p in todo], progress))) if todo else {}
    finally:
        if progress is not None:
            progress.finish()
    entries: dict[str, tuple[StatKey, Packed]] = {}
    logsources: dict = {}   # one LogSource object per distinct log source
    for path, key in stats.items():
        if path in usable:
            unpack_result(usable[path], result, logsources)
            if cache_file:
                entries[path] = (key, usable[path])
            continue
        item = fresh[path]
        if type(item) is LoadResult:
            result.extend(item)
            if cache_file:
                entries[path] = (key, pack_result(item))
        else:
            unpack_result(item, result, logsources)
            if cache_file:
                entries[path] = (key, item)
    if cache_file and (todo or len(entries) != len(cached) or (cached and not sealed)):   # unsealed: seal it
        _write_cache(cache_file, entries)
    return result


__all__ = ["load_rules_fast", "cache_dir", "LoadError"]
