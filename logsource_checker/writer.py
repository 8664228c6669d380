"""The one way this tool writes files (``--emit DIR``, ``--docs DIR``, ``-o FILE``): safely, all or nothing.

- **Atomic.** Every file is first written to a temporary file in its own folder (``.NAME.XXXX.tmp``),
  flushed and fsynced, and each file it replaces gets a backup (a hard link, else a copy); only when
  every file of the output is staged are they renamed into place. If anything fails (a full disk, a
  read-only folder, a rename refused), the files already renamed are put back from their backups,
  every temporary file is removed and folders this run created are removed again: the previous files
  stay exactly as they were.
- **Never someone else's file.** The tool knows which files it wrote from a manifest,
  ``.logsource-checker-manifest.json``, kept in the folder it writes into (the ``--emit``/``--docs``
  folder; for ``-o`` the output file's folder): each file's path and SHA-256. An existing file is
  replaced only when it is listed there with its current hash (the tool wrote it and nobody edited
  it since) or already holds exactly the new content; any other existing file is refused unless
  ``--force``. Re-running into the tool's own output therefore works without ``--force``, and a file
  whose content does not change is not rewritten (identical bytes, same modification time).
- **Refused always, even with --force** (``WriteRefused``: exit 2, one line): a target that is an
  input of the run (the same file (inode) as a rule file, a rule folder or a policy input), a
  symbolic link as the target folder or anywhere on the path of a file written below it (and as the
  ``-o`` file), a file name that would leave the folder (absolute, ``..``), a target that is a folder
  or not a regular file, and a YAML file written into a rule folder (the next run would read it as a
  rule).

Limits: the checks and the renames are separate steps, so a folder swapped for a symlink by someone
with write access to the target folder in between is not detected.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

MANIFEST = ".logsource-checker-manifest.json"
MANIFEST_FORMAT = 1
_SHOWN = 3   # refused file names listed in the one-line message


class WriteRefused(Exception):
    """A target this tool must not write (see the module docstring); the message is one line."""


@dataclass
class Guard:
    """What a write must respect: the run's inputs and whether ``--force`` was given."""

    inputs: Iterable[str] = ()                                  # rule paths as given, policy input files
    rule_files: Callable[[], Iterable[str]] = lambda: ()        # every rule file read (listed when needed)
    force: bool = False
    _folders: list[str] | None = field(default=None, repr=False)
    _given: set[tuple[int, int]] | None = field(default=None, repr=False)
    _rules: set[tuple[int, int]] | None = field(default=None, repr=False)

    def rule_folders(self) -> list[str]:
        if self._folders is None:
            self._folders = [os.path.realpath(p) for p in self.inputs if os.path.isdir(p)]
        return self._folders

    def is_input(self, st: os.stat_result, path: Path | None = None) -> bool:
        """Whether ``st`` is the same file as an input: a given path, or a rule file read from a given
        folder. The rule files (thousands) are stat'ed only when they could be it: when the file has
        other names (hard links) or lies inside a rule folder."""
        if self._given is None:
            self._given = _identities(self.inputs)
        ident = (st.st_dev, st.st_ino)
        if ident in self._given:
            return True
        if path is None or (st.st_nlink < 2 and not _inside(path, self.rule_folders())):
            return False
        if self._rules is None:
            self._rules = _identities(set(self.rule_files()))
        return ident in self._rules


def _identities(paths: Iterable[str]) -> set[tuple[int, int]]:
    found = set()
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue
        found.add((info.st_dev, info.st_ino))
    return found


def _inside(path: Path, folders: list[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == folder or real.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders)


class Written(list):
    """The paths an output consists of (a list of ``Path``), with what happened to them."""

    def __init__(self, directory: Path, paths: list[Path], changed: int) -> None:
        super().__init__(paths)
        self.directory = directory
        self.changed = changed
        self.unchanged = len(paths) - changed


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _replace(source: str, target: str) -> None:
    os.replace(source, target)


def _create_temp(folder: str, name: str) -> tuple[int, str]:
    return tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")


def write_file(path: Path, data: bytes | str, guard: Guard | None = None) -> Written:
    """``-o FILE``: one file, recorded in the manifest of its folder."""
    return write_tree(path.parent if str(path.parent) else Path("."), {path.name: data}, guard, own_folder=False)


def write_tree(directory: Path, files: dict[str, bytes | str], guard: Guard | None = None,
               own_folder: bool = True) -> Written:
    """Write ``files`` (``{relative path: content}``) below ``directory``, all or nothing (see the
    module docstring). ``own_folder``: the folder is the output (--emit, --docs), so it must not be a
    symlink either. Raises ``WriteRefused`` (nothing written) or ``OSError`` (nothing changed)."""
    guard = guard or Guard()
    data = {rel: content.encode("utf-8") if isinstance(content, str) else content for rel, content in files.items()}
    for rel in data:
        _check_name(directory, rel)
    _check_folder(directory, guard, own_folder, data)
    manifest, manifest_ours = _read_manifest(directory)
    staged: list[tuple[str, bytes]] = []      # (relative path, content) that must be (re)written
    refused: list[str] = []
    digests = {rel: sha256(content) for rel, content in data.items()}   # each content hashed once
    for rel, content in data.items():
        current = _current(directory, rel, guard)
        if current == digests[rel]:
            continue                          # already exactly this content
        if current is not None and manifest.get(rel) != current and not guard.force:
            refused.append(rel)
        staged.append((rel, content))
    _check_rule_folders(directory, guard, data)
    new_manifest = {k: v for k, v in manifest.items() if k not in data}
    new_manifest.update(digests)
    manifest_bytes = _manifest_bytes(new_manifest)
    if not manifest_ours and not guard.force:
        refused.append(MANIFEST)
    if refused:
        names = ", ".join(refused[:_SHOWN]) + (f" and {len(refused) - _SHOWN} more" if len(refused) > _SHOWN else "")
        raise WriteRefused(f"{directory}: {len(refused)} existing file(s) not written by check-logsources or "
                           f"changed since ({names}); use --force to replace them")
    if staged or _current(directory, MANIFEST, guard) != sha256(manifest_bytes):
        _commit(directory, staged + [(MANIFEST, manifest_bytes)])
    return Written(directory, [directory / rel for rel in data], len(staged))


# --------------------------------------------------------------------------- checks

def _check_name(directory: Path, rel: str) -> None:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or "\\" in rel or "\0" in rel or any(p in ("", ".", "..") for p in parts) \
            or os.path.isabs(rel) or rel == MANIFEST:
        raise WriteRefused(f"{directory}: refusing to write {rel!r}: the name leaves the folder")


def _check_folder(directory: Path, guard: Guard, own_folder: bool, data: dict[str, bytes]) -> None:
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode) and own_folder:
            raise WriteRefused(f"{directory}: is a symbolic link; give the real folder")
        if not stat.S_ISDIR(os.stat(directory).st_mode):
            raise WriteRefused(f"{directory}: exists and is not a folder")
        if guard.is_input(os.stat(directory)):
            raise WriteRefused(f"{directory}: is an input of this run (a rule folder); write elsewhere")


def _check_rule_folders(directory: Path, guard: Guard, data: dict[str, bytes]) -> None:
    if any(rel.endswith((".yml", ".yaml")) for rel in data):
        for folder in guard.rule_folders():
            if _inside(directory, [folder]):
                raise WriteRefused(f"{directory}: is inside the rule folder {folder}; the next run would read "
                                   "the YAML files written there as rules")


def _current(directory: Path, rel: str, guard: Guard) -> str | None:
    """The hash of the file now at ``rel`` (None when there is none); refuses what must never be written."""
    path = directory
    parts = rel.split("/")
    for i, part in enumerate(parts):
        path = path / part
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            raise WriteRefused(f"{path.parent}: is not a folder") from None
        if stat.S_ISLNK(st.st_mode):
            raise WriteRefused(f"{path}: is a symbolic link; refusing to write through it")
        if i < len(parts) - 1:
            if not stat.S_ISDIR(st.st_mode):
                raise WriteRefused(f"{path}: is not a folder")
            continue
        if stat.S_ISDIR(st.st_mode):
            raise WriteRefused(f"{path}: is a folder")
        if not stat.S_ISREG(st.st_mode):
            raise WriteRefused(f"{path}: is not a regular file")
        if guard.is_input(st, path):
            raise WriteRefused(f"{path}: is an input of this run (a rule file or policy input); write elsewhere")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _read_manifest(directory: Path) -> tuple[dict[str, str], bool]:
    """(file -> hash) from the folder's manifest, and whether the manifest is ours (or absent)."""
    path = directory / MANIFEST
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return {}, True
    if not stat.S_ISREG(st.st_mode):
        raise WriteRefused(f"{path}: is not a regular file")
    try:
        data = json.loads(path.read_bytes())
        files = data["files"]
        if data.get("format") == MANIFEST_FORMAT and isinstance(files, dict) \
                and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            return files, True
    except (ValueError, KeyError, TypeError, OSError):
        pass
    return {}, False


def _manifest_bytes(files: dict[str, str]) -> bytes:
    body = {"about": "Files written by check-logsources (logsource_checker), with their SHA-256. The next run "
                     "replaces a listed file only while its hash still matches; any other file is left alone "
                     "unless --force. Deleting this file makes every file here count as not written by the tool.",
            "format": MANIFEST_FORMAT, "files": dict(sorted(files.items()))}
    return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# --------------------------------------------------------------------------- staging and committing

def _file_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _make_folders(folder: Path, created: list[Path]) -> None:
    missing = []
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        os.mkdir(path)
        created.append(path)


@dataclass
class _Staged:
    target: Path
    temp: str
    existed: bool
    backup: str | None = None     # the replaced file's backup (removed once every rename succeeded)
    done: bool = False


def _commit(directory: Path, files: list[tuple[str, bytes]]) -> None:
    created: list[Path] = []
    staged: list[_Staged] = []
    try:
        for rel, content in files:
            target = directory / rel
            _make_folders(target.parent, created)
            fd, temp = _create_temp(str(target.parent), target.name)
            staged.append(_Staged(target, temp, os.path.lexists(target)))
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, _file_mode(target))
                _write_all(fd, content)
                os.fsync(fd)
            finally:
                os.close(fd)
            if staged[-1].existed:
                staged[-1].backup = _backup(target)
        for item in staged:   # nothing can run out of space from here on: only renames
            _replace(item.temp, str(item.target))
            item.done = True
    except BaseException:
        _roll_back(staged, created)
        raise
    for item in staged:
        if item.backup:
            _unlink(item.backup)
    for folder in {str(item.target.parent) for item in staged}:
        _fsync_folder(folder)


def _backup(target: Path) -> str:
    """A copy of the file about to be replaced (a hard link, else a real copy), made before anything is
    renamed, to put it back if a later rename fails. Raises when neither can be made (then nothing has
    been replaced yet)."""
    fd, name = _create_temp(str(target.parent), target.name + ".bak")
    os.close(fd)
    try:
        os.unlink(name)
        try:
            _link(target, name)
        except OSError:   # a file system without hard links (FAT, some network shares): copy it
            import shutil

            shutil.copy2(target, name)
    except BaseException:
        _unlink(name)
        raise
    return name


def _link(source: Path, name: str) -> None:
    os.link(source, name)


def _roll_back(staged: list[_Staged], created: list[Path]) -> None:
    for item in reversed(staged):
        if item.done:
            if item.backup:
                try:
                    os.replace(item.backup, item.target)
                    item.backup = None
                except OSError:
                    pass
            elif not item.existed:
                _unlink(str(item.target))
        else:
            _unlink(item.temp)
        if item.backup:
            _unlink(item.backup)
    for folder in reversed(created):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the files themselves are synced
        pass
    finally:
        os.close(fd)


__all__ = ["Guard", "MANIFEST", "WriteRefused", "Written", "write_file", "write_tree"]
