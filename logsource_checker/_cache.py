"""The on-disk pickle caches' shared plumbing (the rule cache in ``loader``, the guide-data cache in
``knowledge``): where they live, how one is read safely, how one is written, how old ones are pruned,
and how a cached object's shape is checked before it is used.

Where: ``$XDG_CACHE_HOME/logsource-checker``, else ``$HOME/.cache/logsource-checker`` (each only when it
is an absolute path; on Windows ``%LOCALAPPDATA%`` stands in for a missing HOME), else a per-user folder
in the system's temporary folder (``logsource-checker-<uid>``). That last one is shared ground, so it is
used only while it is a real folder (not a symlink) owned by the current user with mode 0700; anything
else there means no cache at all. The cache folder is created private (0700).

Reading: unpickling runs code, so a cache file is unpickled only when it is a regular file (not followed
through a symlink, not a pipe), owned by the current user and not writable by group or others. Callers
then check the object's shape (``conforms``): a well-formed pickle of the wrong shape is ignored and
rebuilt like a corrupt one. A cache written ``sealed`` ends with the SHA-256 of its pickle: while the seal
matches, the bytes are exactly what this package wrote and the shape check is skipped (it cost more than
the digest); a file whose seal is missing or does not match is shape-checked as before. A cache that is
read counts as used (its modification time is renewed).

Writing: to a temporary file beside the cache, then renamed over it, so a reader never sees half a
file; the temporary file is removed when anything fails. After each write the folder is pruned (see
``prune``). No failure to read or write a cache ever reaches the caller: a cache that cannot be used is
simply not used.
"""
from __future__ import annotations

import os
import pickle
import re
import stat
import time
from typing import Any, Callable

#: Pruning: at most this many cache files of each kind are kept (the most recently used) ...
MAX_CACHE_FILES = {"rules": 16, "knowledge": 4}
#: ... none unused for longer than this ...
MAX_AGE_DAYS = 30
#: ... and a temporary file older than this is left over from a run that was killed while writing.
STALE_TEMP_SECONDS = 3600
#: A cache read renews its modification time ("last used") when it is older than this.
TOUCH_AFTER_SECONDS = 3600

_CACHE_NAME = re.compile(r"^(rules|knowledge)-[0-9a-f]{24}\.pickle$")
_TEMP_NAME = re.compile(r"^\.(rules|knowledge)-[A-Za-z0-9_]+\.tmp$")


def _absolute(value: str | None) -> str | None:
    return value if value and os.path.isabs(value) else None


def _temp_cache_dir() -> str:
    import tempfile

    owner = str(os.geteuid()) if hasattr(os, "geteuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"logsource-checker-{owner}")


def cache_dir() -> str:
    """The cache folder (see the module docstring); never relative to the working folder."""
    base = _absolute(os.environ.get("XDG_CACHE_HOME"))
    if base is None:
        home = _absolute(os.environ.get("HOME"))
        if home is not None:
            base = os.path.join(home, ".cache")
        elif os.name == "nt":
            base = _absolute(os.environ.get("LOCALAPPDATA"))
    if base is None:
        return _temp_cache_dir()
    return os.path.join(base, "logsource-checker")


def _folder_usable(folder: str, create: bool) -> bool:
    """The per-user temporary folder must be the user's own private folder; other folders are the
    user's choice (XDG_CACHE_HOME, HOME) and are created private when missing."""
    if os.path.normpath(folder) != os.path.normpath(_temp_cache_dir()):
        if create:
            os.makedirs(folder, mode=0o700, exist_ok=True)
        return True
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        if not create:
            return False
        try:
            os.mkdir(folder, 0o700)
            st = os.lstat(folder)
        except OSError:
            return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    if not hasattr(os, "geteuid"):
        return True   # Windows: the temporary folder is the user's own, and modes do not apply
    return st.st_uid == os.geteuid() and not st.st_mode & 0o077


def _trusted(handle: Any) -> bool:
    """Only the user's own regular file, not writable by group or others, is unpickled."""
    st = os.fstat(handle.fileno())
    if not stat.S_ISREG(st.st_mode):
        return False
    if hasattr(os, "geteuid") and (st.st_uid != os.geteuid() or st.st_mode & 0o022):
        return False
    if time.time() - st.st_mtime > TOUCH_AFTER_SECONDS and os.utime in os.supports_fd:
        try:
            os.utime(handle.fileno())   # used now: pruning keeps it
        except OSError:
            pass
    return True


def _open_no_follow(path: str, _flags: int) -> int:
    return os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))


def read_trusted_pickle(path: str) -> Any:
    """The object pickled in ``path``; None when the file is missing, not trusted (see the module
    docstring) or cannot be unpickled."""
    return read_sealed_pickle(path)[0]


def read_sealed_pickle(path: str) -> tuple[Any, bool]:
    """(the object pickled in ``path`` or None, whether the file carries the intact seal
    ``write_pickle_atomically(..., sealed=True)`` wrote). A sealed file holds exactly the bytes this
    package pickled, so its caller may skip the shape check; an unsealed or altered one is unpickled as
    before (a trusted file) and must be checked. The pickle is hashed as it is read (no copy in memory)."""
    try:
        if not _folder_usable(os.path.dirname(path), create=False):
            return None, False
        with open(path, "rb", opener=_open_no_follow) as handle:
            if not _trusted(handle):
                return None, False
            reader = _Hashing(handle)
            obj = pickle.load(reader)
            # exactly the seal must follow (one byte more is read so that anything after it breaks it)
            sealed = handle.read(len(_SEAL) + _DIGEST_SIZE + 1) == _SEAL + reader.digest.digest()
        return obj, sealed
    except Exception:  # a missing, corrupt or foreign cache is simply not used
        return None, False


#: A sealed cache file: the pickle, then this marker and the SHA-256 of the pickle's bytes (``pickle.load``
#: stops at the end of the pickle, so a reader that knows nothing of seals still reads the object).
_SEAL = b"\n#logsource-checker seal sha256:"
_DIGEST_SIZE = 32


class _Hashing:
    """A binary file seen through ``pickle``: every byte written or read through it is hashed (SHA-256)."""

    def __init__(self, handle: Any) -> None:
        import hashlib

        self.handle = handle
        self.digest = hashlib.sha256()

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return self.handle.write(data)

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self.handle.readline(size)
        self.digest.update(data)
        return data

    def readinto(self, buffer: Any) -> int:
        count = self.handle.readinto(buffer)
        self.digest.update(memoryview(buffer)[:count])
        return count


def write_pickle_atomically(path: str, obj: Any, sealed: bool = False) -> None:
    """Pickle ``obj`` to ``path`` through a temporary file in the same (private) folder, then prune the
    folder; never raises. ``sealed``: follow the pickle with its digest (``read_sealed_pickle``)."""
    tmp = None
    try:
        folder = os.path.dirname(path)
        if not _folder_usable(folder, create=True):
            return
        import tempfile  # only when a cache is written

        prefix = "." + os.path.basename(path).split("-", 1)[0] + "-"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            writer = _Hashing(handle)
            pickle.dump(obj, writer, protocol=pickle.HIGHEST_PROTOCOL)
            if sealed:
                handle.write(_SEAL + writer.digest.digest())
        os.replace(tmp, path)
        tmp = None
        prune(folder, keep=os.path.basename(path))
    except Exception:  # a read-only home (or anything else) must not break the check
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def prune(folder: str, keep: str = "", now: float | None = None) -> None:
    """Remove this tool's cache files that were not used for ``MAX_AGE_DAYS``, all but the
    ``MAX_CACHE_FILES`` most recently used of each kind, and temporary files older than
    ``STALE_TEMP_SECONDS``. Only files named as this tool names them are ever removed; ``keep`` (the
    file just written) never is."""
    now = time.time() if now is None else now
    by_kind: dict[str, list[tuple[float, str]]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or entry.name == keep:
                continue
            cache = _CACHE_NAME.match(entry.name)
            if cache:
                by_kind.setdefault(cache.group(1), []).append((st.st_mtime, entry.name))
            elif _TEMP_NAME.match(entry.name) and now - st.st_mtime > STALE_TEMP_SECONDS:
                _remove(folder, entry.name)
    for kind, files in by_kind.items():
        files.sort(reverse=True)
        room = MAX_CACHE_FILES.get(kind, 1) - (1 if _CACHE_NAME.match(keep) and keep.startswith(kind + "-") else 0)
        for i, (mtime, name) in enumerate(files):
            if i >= room or now - mtime > MAX_AGE_DAYS * 86400:
                _remove(folder, name)


def _remove(folder: str, name: str) -> None:
    try:
        os.unlink(os.path.join(folder, name))
    except OSError:
        pass


# --------------------------------------------------------------------------- shape of cached objects

_CHECKERS: dict[Any, Callable[[Any], bool]] = {}
_SEEN: set[int] = set()   # dataclass instances already checked in the current ``conforms`` call


def conforms(value: Any, hint: Any) -> bool:
    """Whether ``value`` has the shape its type annotation ``hint`` says, deeply: dataclasses (exact
    class, every field), ``str``/``int``/``bool``/``None``, ``X | None``, ``tuple[X, ...]``,
    ``tuple[A, B]``, ``list``, ``frozenset``, ``dict``, ``Path``; ``Any`` accepts anything. A shared
    instance is checked once. Used on unpickled caches, never on input."""
    _SEEN.clear()
    try:
        return _checker(hint)(value)
    except RecursionError:
        return False
    finally:
        _SEEN.clear()


def _checker(hint: Any) -> Callable[[Any], bool]:
    found = _CHECKERS.get(hint)
    if found is None:
        found = _compile(hint)
        _CHECKERS[hint] = found
    return found


def _compile(hint: Any) -> Callable[[Any], bool]:  # noqa: C901 - one branch per kind of annotation
    import dataclasses
    import types
    import typing
    from pathlib import PurePath

    if hint is Any:
        return lambda v: True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is None:
        if hint is None or hint is type(None):
            return lambda v: v is None
        if isinstance(hint, type) and issubclass(hint, PurePath):
            return lambda v: isinstance(v, PurePath)
        if dataclasses.is_dataclass(hint):
            return _dataclass_checker(hint)
        return lambda v: type(v) is hint
    if origin in (typing.Union, types.UnionType):
        parts = [_checker(a) for a in args]
        return lambda v: any(part(v) for part in parts)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _checker(args[0])
        return lambda v: type(v) is tuple and all(map(item, v))
    if origin is tuple:
        items = [_checker(a) for a in args]
        return lambda v: type(v) is tuple and len(v) == len(items) and all(c(x) for c, x in zip(items, v))
    if origin in (list, set, frozenset):
        item = _checker(args[0]) if args else _checker(Any)
        return lambda v: type(v) is origin and all(map(item, v))
    if origin is dict:
        key, val = (_checker(args[0]), _checker(args[1])) if args else (_checker(Any), _checker(Any))
        return lambda v: type(v) is dict and all(map(key, v)) and all(map(val, v.values()))
    if origin is re.Pattern:
        return lambda v: isinstance(v, re.Pattern) and (not args or type(v.pattern) is args[0])
    raise TypeError(f"no shape check for {hint!r}")


def _dataclass_checker(cls: type) -> Callable[[Any], bool]:
    import dataclasses
    import typing

    fields: list[tuple[str, Callable[[Any], bool]]] = []

    def check(value: Any) -> bool:
        if type(value) is not cls:
            return False
        if id(value) in _SEEN:
            return True
        _SEEN.add(id(value))
        attrs = getattr(value, "__dict__", None)
        if attrs is None:
            return False
        for name, field_check in fields:
            if name not in attrs or not field_check(attrs[name]):
                return False
        return True

    _CHECKERS[cls] = check   # before the fields: a dataclass may refer to itself
    try:
        hints = typing.get_type_hints(cls)
    except NameError:
        # an annotation names a type its module imports only for type checkers (to avoid an import
        # cycle): resolve it among the package's loaded modules
        import sys

        package = cls.__module__.rpartition(".")[0]
        names: dict[str, Any] = {}
        for module_name, module in list(sys.modules.items()):
            if module is not None and module_name.startswith(package + "."):
                names.update(vars(module))
        hints = typing.get_type_hints(cls, localns=names)
    fields.extend((f.name, _checker(hints[f.name])) for f in dataclasses.fields(cls))
    return check


__all__ = ["cache_dir", "conforms", "prune", "read_sealed_pickle", "read_trusted_pickle", "write_pickle_atomically"]
