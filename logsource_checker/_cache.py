"""The on-disk pickle caches' shared plumbing (the rule cache in ``loader``, the guide-data cache in
``knowledge``): where they live, how one is read safely and how one is written.

Both live in ``$XDG_CACHE_HOME/logsource-checker`` (else ``~/.cache/logsource-checker``), a folder
created private (0700). Unpickling runs code, so a cache file is unpickled only when it is a regular
file (not followed through a symlink, not a pipe), owned by the current user and not writable by group
or others. A cache is written to a temporary file beside it, then renamed over it, so a reader never
sees half a file; the temporary file is removed when anything fails. No failure to read or write a
cache ever reaches the caller: a cache that cannot be used is simply not used.
"""
from __future__ import annotations

import os
import pickle
import stat
from typing import Any


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "logsource-checker")


def _trusted(handle: Any) -> bool:
    """Only the user's own regular file, not writable by group or others, is unpickled."""
    st = os.fstat(handle.fileno())
    if not stat.S_ISREG(st.st_mode):
        return False
    if hasattr(os, "geteuid") and (st.st_uid != os.geteuid() or st.st_mode & 0o022):
        return False
    return True


def _open_no_follow(path: str, _flags: int) -> int:
    return os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))


def read_trusted_pickle(path: str) -> Any:
    """The object pickled in ``path``; None when the file is missing, not trusted (see the module
    docstring) or cannot be unpickled."""
    try:
        with open(path, "rb", opener=_open_no_follow) as handle:
            if not _trusted(handle):
                return None
            return pickle.load(handle)
    except Exception:  # a missing, corrupt or foreign cache is simply not used
        return None


def write_pickle_atomically(path: str, obj: Any) -> None:
    """Pickle ``obj`` to ``path`` through a temporary file in the same (private) folder; never raises."""
    tmp = None
    try:
        folder = os.path.dirname(path)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        import tempfile  # only when a cache is written

        prefix = "." + os.path.basename(path).split("-", 1)[0] + "-"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        tmp = None
    except Exception:  # a read-only home (or anything else) must not break the check
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


__all__ = ["cache_dir", "read_trusted_pickle", "write_pickle_atomically"]
