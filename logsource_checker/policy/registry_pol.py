"""registry.pol (PReg, version 1): the registry values a GPO's Administrative Templates set.

Layout: b"PReg", uint32 version 1, then entries ``[key;value;type;size;data]`` where the brackets and
semicolons are UTF-16LE characters, key and value are NUL-terminated UTF-16LE, type and size are
little-endian uint32 and data is ``size`` raw bytes. A Machine registry.pol is relative to HKLM.
Special value names (``**del.X``, ``**DeleteValues``, ...) delete rather than set: they are skipped.
"""
from __future__ import annotations

import struct

from .model import PolicyInput, PolicyInputError, PolicySnapshot, RegistryValue, norm_registry_key, rooted_registry_key

MAGIC = b"PReg"
_OPEN, _SEMI, _CLOSE = "[".encode("utf-16-le"), ";".encode("utf-16-le"), "]".encode("utf-16-le")
REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_DWORD_BE, REG_MULTI_SZ, REG_QWORD = 1, 2, 3, 4, 5, 7, 11


def is_registry_pol(data: bytes) -> bool:
    return data[:4] == MAGIC


def _read_string(data: bytes, pos: int, path: str) -> tuple[str, int]:
    end = pos
    while True:
        if end + 1 >= len(data):
            raise PolicyInputError(path, "truncated registry.pol entry")
        if data[end] == 0 and data[end + 1] == 0:
            break
        end += 2
    try:
        text = data[pos:end].decode("utf-16-le")
    except UnicodeDecodeError:
        raise PolicyInputError(path, "registry.pol entry is not UTF-16LE text") from None
    return text, end + 2


def _expect(data: bytes, pos: int, token: bytes, path: str) -> int:
    if data[pos:pos + 2] != token:
        raise PolicyInputError(path, f"malformed registry.pol at byte {pos}: expected {token.decode('utf-16-le')!r}")
    return pos + 2


def _render(kind: int, raw: bytes) -> str:
    if kind == REG_DWORD and len(raw) >= 4:
        return str(struct.unpack("<I", raw[:4])[0])
    if kind == REG_DWORD_BE and len(raw) >= 4:
        return str(struct.unpack(">I", raw[:4])[0])
    if kind == REG_QWORD and len(raw) >= 8:
        return str(struct.unpack("<Q", raw[:8])[0])
    if kind in (REG_SZ, REG_EXPAND_SZ):
        return raw.decode("utf-16-le", errors="replace").split("\x00", 1)[0]
    if kind == REG_MULTI_SZ:
        return ",".join(p for p in raw.decode("utf-16-le", errors="replace").split("\x00") if p)
    return raw.hex()


def read_registry_pol(path: str, data: bytes) -> PolicySnapshot:
    if not is_registry_pol(data):
        raise PolicyInputError(path, "not a registry.pol file (no 'PReg' signature)")
    if len(data) < 8 or struct.unpack("<I", data[4:8])[0] != 1:
        raise PolicyInputError(path, "registry.pol version is not 1")
    snap = PolicySnapshot(inputs=[PolicyInput(path=path, format="registry_pol")])
    values: dict[tuple[str, str], RegistryValue] = {}
    pos = 8
    while pos < len(data):
        pos = _expect(data, pos, _OPEN, path)
        key, pos = _read_string(data, pos, path)
        pos = _expect(data, pos, _SEMI, path)
        value, pos = _read_string(data, pos, path)
        pos = _expect(data, pos, _SEMI, path)
        if pos + 4 > len(data):
            raise PolicyInputError(path, "truncated registry.pol entry")
        kind = struct.unpack("<I", data[pos:pos + 4])[0]
        pos = _expect(data, pos + 4, _SEMI, path)
        if pos + 4 > len(data):
            raise PolicyInputError(path, "truncated registry.pol entry")
        size = struct.unpack("<I", data[pos:pos + 4])[0]
        pos = _expect(data, pos + 4, _SEMI, path)
        if pos + size > len(data):
            raise PolicyInputError(path, "truncated registry.pol entry (data runs past the end)")
        raw = data[pos:pos + size]
        pos = _expect(data, pos + size, _CLOSE, path)
        if not value or value.startswith("**"):
            continue  # key creation, or a deletion instruction (**del., **DeleteValues, ...)
        full_key = rooted_registry_key(key)
        values[(norm_registry_key(full_key), value.casefold())] = RegistryValue(full_key, value, _render(kind, raw), path)
    snap.registry_values.extend(values.values())
    if not values:
        snap.warn("no registry values set in the file")
    return snap
