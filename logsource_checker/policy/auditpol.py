"""Audit policy as CSV: ``audit.csv`` (GPO backups, ``auditpol /backup``) and ``auditpol /get /category:* /r``.

audit.csv has seven columns (the last, Setting Value, is 0 none / 1 success / 2 failure / 3 both);
``auditpol /get /r`` has six and states the setting only as Inclusion Setting text. Rows are keyed on
the Subcategory GUID: names are localized on non-English hosts and sometimes garbled by code pages.
Columns are taken by position (the layout is fixed; localized headers keep it).
"""
from __future__ import annotations

import csv
import re

from .model import (AuditSetting, PolicyInput, PolicyInputError, PolicySnapshot, PolicyVocabulary, audit_setting_value,
                    normalize_guid, small_uint)
from .xmlsafe import one_line, sniff_encoding

GUID_RE = re.compile(r"^\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?$")


def decode_text(path: str, data: bytes) -> str:
    """Text of a CSV/INF input: by BOM, else UTF-16 by its NUL pattern, else UTF-8, else Windows-1252."""
    encoding, skip = sniff_encoding(data)
    body = data[skip:]
    if encoding:
        try:
            return body.decode(encoding)
        except UnicodeDecodeError as exc:
            raise PolicyInputError(path, f"cannot decode as {encoding}: {one_line(exc.reason)}") from None
    if b"\x00" in body[:4096]:
        raise PolicyInputError(path, "binary data, not a text file")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace")


def is_audit_csv(text: str) -> bool:
    return _header_index(text.splitlines()) is not None


def _header_index(lines: list[str]) -> int | None:
    """Index of the header line: the first line with 6+ fields whose 4th names a GUID column, or the line
    before the first row carrying a GUID in the 4th column (localized headers)."""
    for i, line in enumerate(lines[:50]):
        fields = line.split(",")
        if len(fields) >= 6 and "guid" in fields[3].casefold():
            return i
    for i, line in enumerate(lines[:60]):
        fields = line.split(",")
        if len(fields) >= 6 and GUID_RE.match(fields[3].strip()):
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            return j if j >= 0 and len(lines[j].split(",")) >= 6 else None
    return None


def read_auditpol(path: str, data: bytes, vocabulary: PolicyVocabulary) -> PolicySnapshot:
    text = decode_text(path, data)
    lines = text.splitlines()
    header_at = _header_index(lines)
    if header_at is None:
        raise PolicyInputError(path, "not an audit.csv or 'auditpol /r' CSV (no 'Machine Name,Policy Target,"
                                     "Subcategory,Subcategory GUID,...' header)")
    header = next(csv.reader([lines[header_at]]))
    columns = len(header)
    live = columns < 7  # 'auditpol /get /r' has no Setting Value column
    fmt = "auditpol_r" if live else "audit_csv"
    snap = PolicySnapshot(inputs=[PolicyInput(path=path, format=fmt)])
    warn = snap.warn
    rows = [row for row in csv.reader(line for line in lines[header_at + 1:] if line.strip())]
    unknown_text: set[str] = set()
    for row in rows:
        row = [cell.strip() for cell in row]
        if len(row) < 5:
            continue
        target, subcategory, guid = row[1], row[2], row[3]
        inclusion = row[4]
        value_text = row[6] if len(row) > 6 else ""
        if subcategory.casefold().startswith("option:"):
            option = subcategory.split(":", 1)[1].strip()
            flag = _option_value(value_text, inclusion)
            if vocabulary.is_force_value(option):
                if flag is not None:
                    snap.force_subcategory = flag
                    snap.force_subcategory_source = path
            elif flag is not None and option:
                snap.audit_options[option.casefold()] = (flag, path)
            continue
        if not guid:
            if subcategory.casefold().endswith("globalsacl") and value_text.upper().startswith("S:"):
                snap.global_sacls[subcategory.casefold()] = (one_line(value_text, 400), path)
            continue  # FileGlobalSacl / RegistryGlobalSacl and other rows without a subcategory
        if not GUID_RE.match(guid):
            warn(f"row for {subcategory or '?'} has a malformed GUID {one_line(guid, 60)!r}; skipped")
            continue
        if target and target.casefold() != "system":
            continue  # per-user audit policy (Policy Target is a user/group): not the machine policy
        value = audit_setting_value(value_text)
        if value is None:
            value = vocabulary.inclusion_value(inclusion)  # English 'Inclusion Setting' text
        if value is None:
            unknown_text.add(inclusion)
            continue
        snap.audit[normalize_guid(guid)] = AuditSetting.from_value(value, path)
    if unknown_text:
        shown = ", ".join(sorted(repr(one_line(t, 40)) for t in unknown_text)[:5])
        warn(f"setting text not understood (localized output without a Setting Value column?): {shown}; "
             "those subcategories are treated as not configured")
    if not snap.audit and snap.force_subcategory is None:
        warn("no subcategory settings in the file")
    return snap


def _option_value(value_text: str, inclusion: str) -> bool | None:
    number = small_uint(value_text)
    if number is not None:
        return number != 0
    text = inclusion.casefold()
    if text in ("enabled", "enable", "1"):
        return True
    if text in ("disabled", "disable", "0"):
        return False
    return None




def read_rows(path: str) -> list[list[str]]:
    """The data rows of an audit.csv as written (cells stripped, blank lines skipped), for writing it back:
    subcategory rows, per-user rows, ``Option:`` rows and global SACL rows alike."""
    from .xmlsafe import read_limited

    lines = decode_text(path, read_limited(path)).splitlines()
    header_at = _header_index(lines)
    if header_at is None:
        return []
    return [[cell.strip() for cell in row]
            for row in csv.reader(line for line in lines[header_at + 1:] if line.strip()) if row]
