"""GptTmpl.inf (security template of a GPO backup / SYSVOL): legacy audit, log sizes, registry values.

[Event Audit]      AuditLogonEvents = 3           (0 none, 1 success, 2 failure, 3 both)
[Registry Values]  MACHINE\\...\\Lsa\\Name=4,1      (type, data; 4 = REG_DWORD, 1 = REG_SZ, 7 = REG_MULTI_SZ)
[Security Log]     MaximumLogSize = 196608        (KB; the section names the classic log)
[File Security] / [Registry Keys]   "path",mode,"SDDL"   (the SACL part, S:..., is kept for object-access rules)
"""
from __future__ import annotations

import csv
import re

from .model import (AuditSetting, ChannelSetting, PolicyInput, PolicyInputError, PolicySnapshot, PolicyVocabulary,
                    RegistryValue, audit_setting_value, small_uint)
from .auditpol import decode_text
from .gpresult import split_key

_SECTION_RE = re.compile(r"^\[([^\]]+)\]\s*$")
_OBJECT_SECTIONS = ("file security", "registry keys")
_SACL_RE = re.compile(r"S:[A-Z]*\(.*$")
_KNOWN_SECTIONS = {"unicode", "version", "event audit", "registry values", "system access", "privilege rights",
                   "system log", "security log", "application log", "kerberos policy", "service general setting",
                   "registry keys", "file security", "group membership"}


def is_gpttmpl(text: str) -> bool:
    sections = {m.group(1).strip().casefold() for line in text.splitlines()[:400]
                if (m := _SECTION_RE.match(line.strip()))}
    return bool(sections & _KNOWN_SECTIONS) and ("version" in sections or "unicode" in sections
                                                 or "event audit" in sections or "registry values" in sections)


def read_gpttmpl(path: str, data: bytes, vocabulary: PolicyVocabulary) -> PolicySnapshot:
    text = decode_text(path, data)
    if not is_gpttmpl(text):
        raise PolicyInputError(path, "not a GptTmpl.inf security template (no [Version]/[Event Audit] sections)")
    snap = PolicySnapshot(inputs=[PolicyInput(path=path, format="gpttmpl")])
    section = section_raw = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        match = _SECTION_RE.match(line)
        if match:
            section_raw = match.group(1).strip()
            section = section_raw.casefold()
            continue
        if section in _OBJECT_SECTIONS:
            _object_sacl(snap, section, line, path)
            continue
        if "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if section == "event audit":
            number = audit_setting_value(value)
            if number is not None:
                snap.legacy_audit[key] = AuditSetting.from_value(number, path)
        elif section == "registry values":
            kind, _, reg_data = value.partition(",")
            reg_data = reg_data.strip()
            if len(reg_data) >= 2 and reg_data[0] == reg_data[-1] == '"':
                reg_data = reg_data[1:-1]
            reg_key, reg_value = split_key(key)
            snap.registry_values.append(RegistryValue(reg_key, reg_value, reg_data, path))
            if vocabulary.is_force_value(reg_value) and small_uint(reg_data) is not None:
                snap.force_subcategory = small_uint(reg_data) != 0
                snap.force_subcategory_source = path
        elif section.endswith(" log") and vocabulary.is_template_size_key(key) and small_uint(value) is not None:
            snap.channels.append(ChannelSetting(name=section_raw[: -len(" log")], max_size_kb=small_uint(value),
                                                source=path))
    if not (snap.legacy_audit or snap.registry_values or snap.channels or snap.object_sacls):
        snap.warn("no [Event Audit], [Registry Values] or log-size settings in the template")
    return snap


def _object_sacl(snap: PolicySnapshot, section: str, line: str, path: str) -> None:
    """One "path",mode,"SDDL" line: keep the SACL part of the descriptor (nothing when it has none)."""
    try:
        fields = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return
    if len(fields) < 3:
        return
    match = _SACL_RE.search(fields[2])
    if match:
        snap.object_sacls.setdefault(section, []).append((fields[0].strip(), match.group(0), path))
