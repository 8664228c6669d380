"""Finding rule files below the given paths and reading one as text (size limit, encodings, no blocking)."""
from __future__ import annotations

import os
import stat
from typing import Iterable, Iterator

from .model import LoadError

#: Files larger than this are refused without being read (see README, "Bad input").
MAX_RULE_FILE_BYTES = 5 * 1024 * 1024
RULE_SUFFIXES = (".yml", ".yaml")
NOT_REGULAR = "not a regular file (device, pipe or socket); not read"


def display_path(path: str) -> str:
    """A path as reports show it: a file name that is not valid UTF-8 (undecodable bytes, which
    Python keeps as lone surrogates) gets ``\\xNN`` escapes, so every report can be written as UTF-8."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def iter_rule_files(paths: Iterable[str], errors: list[LoadError]) -> Iterator[str]:
    """Yield rule files below ``paths`` in sorted order, each real file once, never looping."""
    for path, _st in iter_rule_files_stat(paths, errors):
        yield path


def iter_rule_files_stat(paths: Iterable[str], errors: list[LoadError]) -> Iterator[tuple[str, os.stat_result]]:
    """As ``iter_rule_files``, with each file's ``os.stat`` result (taken once, by the walk)."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()

    def fail(path: str, message: str) -> None:
        errors.append(LoadError(display_path(path), None, message))

    def entries(directory: str) -> list | None:
        """The folder's entries in name order; None when it cannot be read or was walked already."""
        try:
            st = os.stat(directory)
        except OSError as exc:
            fail(directory, _cannot_read("folder", exc))
            return None
        ident = (st.st_dev, st.st_ino)
        if ident in seen_dirs:
            return None  # a symlink back into a folder already walked
        seen_dirs.add(ident)
        try:
            with os.scandir(directory) as it:
                return sorted(it, key=_entry_name)
        except OSError as exc:
            fail(directory, _cannot_read("folder", exc))
            return None

    def walk(directory: str) -> Iterator[tuple[str, os.stat_result]]:
        # depth first in name order, with a stack of the open folders' entries (one generator, however deep)
        top = entries(directory)
        stack = [iter(top)] if top is not None else []
        while stack:
            for entry in stack[-1]:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    if entry.name.startswith("."):
                        continue  # .git and friends
                    below = entries(entry.path)
                    if below is not None:
                        stack.append(iter(below))
                        break
                elif entry.name.lower().endswith(RULE_SUFFIXES):
                    found = one_file(entry.path)
                    if found is not None:
                        yield found
            else:
                stack.pop()

    def one_file(path: str) -> tuple[str, os.stat_result] | None:
        try:
            st = os.stat(path)
        except OSError as exc:
            fail(path, _cannot_read("file", exc))
            return None
        if not stat.S_ISREG(st.st_mode):
            fail(path, NOT_REGULAR)
            return None
        ident = (st.st_dev, st.st_ino)
        if ident in seen_files:
            return None
        seen_files.add(ident)
        return path, st

    for path in paths:
        if os.path.isdir(path):
            yield from walk(path)
        else:
            found = one_file(path)
            if found is not None:
                yield found


def _cannot_read(what: str, exc: OSError) -> str:
    return f"cannot read {what}: {exc.strerror or exc}"


def _entry_name(entry: os.DirEntry) -> str:  # type: ignore[type-arg]
    return entry.name


# --------------------------------------------------------------------------- reading files

def _open_nonblocking(path: str, flags: int) -> int:
    # non-blocking: a pipe swapped in after the folder walk must not hang the run
    return os.open(path, flags | _O_NONBLOCK)


_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def read_text(path: str, size: int | None = None) -> str:
    """Read a rule file as text: UTF-8 with or without BOM, UTF-16 with BOM. Raises ValueError.

    ``size``: the file's size from a ``stat`` the caller just made (the folder walk); else it is looked up.
    Either way a file over the limit is never opened, and no more than the limit + 1 bytes are read."""
    if size is None:
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise ValueError(_cannot_read("file", exc)) from None
    if size > MAX_RULE_FILE_BYTES:
        raise ValueError(f"file is {size} bytes, over the {MAX_RULE_FILE_BYTES} byte limit; not read")
    try:
        with open(path, "rb", buffering=0, opener=_open_nonblocking) as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ValueError(NOT_REGULAR)
            # one read of the whole file (its size + 1 shows growth), then on to the end, never past the limit
            want = min(st.st_size, MAX_RULE_FILE_BYTES) + 1
            chunks: list[bytes] = []
            total = 0
            while total <= MAX_RULE_FILE_BYTES:
                chunk = handle.read(want)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                want = min(MAX_RULE_FILE_BYTES + 1 - total, 1 << 16)
    except OSError as exc:
        raise ValueError(_cannot_read("file", exc)) from None
    if total > MAX_RULE_FILE_BYTES:
        raise ValueError(f"file is over the {MAX_RULE_FILE_BYTES} byte limit; not read")
    return decode_rule_bytes(chunks[0] if len(chunks) == 1 else b"".join(chunks))


def decode_rule_bytes(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ValueError("not valid UTF-16 text") from None
    if b"\x00" in data:
        raise ValueError("binary file (contains NUL bytes), not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (invalid byte at offset {exc.start})") from None

