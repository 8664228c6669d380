"""The emitted audit.csv: what the machine audits today, plus the additions, ready to import into a GPO.

Importing it must never make the machine audit less than it does now:

- Every row of an audit.csv given as input is kept: ``Option:`` rows (CrashOnAuditFail, ...), global object
  access SACL rows (FileGlobalSacl, RegistryGlobalSacl), per-user rows, subcategories we do not know, and
  "No Auditing" rows as written. A subcategory row is only rewritten to raise it.
- No value is lower than the effective one: the input's row, the effective policy (all inputs merged) and the
  additions are OR-ed together.
- Windows clears every subcategory no GPO configures once advanced audit policy is applied by Group Policy
  (Microsoft's Advanced security auditing FAQ; docs/AUDIT-DEFAULTS.md). So where a Windows default is in
  force today (no advanced audit GPO applies, or the inputs cannot show it), that default is written
  explicitly: for the machine's role when it is known, else for every role together.

Cells coming from an input are written as they were (one line, CSV-quoted when needed).
"""
from __future__ import annotations

from typing import Any

from .knowledge import GUID_RE, ROLES
from .policy.model import audit_setting_value
from .roles import default_value
from .templating import Trusted, one_line

_COLUMNS = 7


def _cell(value: Any) -> Trusted:
    """One CSV cell: a single printable line, quoted when it holds a comma or a quote."""
    text = one_line(value)
    if any(ch in text for ch in ',"') or text != text.strip():
        text = '"' + text.replace('"', '""') + '"'
    return Trusted(text)


def _row_value(row: list[str], by_text: dict[str, int]) -> int | None:
    """A row's setting: its Setting Value, else its Inclusion Setting text (labels from the guide data)."""
    value = audit_setting_value(row[6])
    if value is None:
        value = by_text.get(" ".join(row[4].casefold().split()))
    return value


def _other_key(row: list[str]) -> Any:
    """Rows that set the same thing: an audit option by name, a per-user setting by user and subcategory. Global
    SACL rows are all kept (the client merges their ACEs, MS-GPAC 3.2.5), exact repeats once."""
    name = row[2].strip().casefold()
    if name.startswith("option:"):
        return ("option", name)
    if row[3]:
        return ("user", row[1].casefold(), row[3].strip("{}").upper())
    return ("row", tuple(row))


def _input_rows(result: Any) -> list[list[str]]:
    """Rows of every audit.csv input, in command-line order, each padded to the seven columns."""
    from .policy.auditpol import read_rows

    rows: list[list[str]] = []
    snapshot = result.snapshot
    for inp in snapshot.inputs if snapshot is not None else []:
        if inp.format != "audit_csv":
            continue
        for row in read_rows(inp.path):
            if len(row) > _COLUMNS:   # an unquoted comma in the last cell (a SACL): keep it whole
                row = row[:_COLUMNS - 1] + [",".join(row[_COLUMNS - 1:])]
            rows.append(row + [""] * (_COLUMNS - len(row)))
    return rows


def _defaults_today(result: Any) -> tuple[str, ...]:
    """The roles whose Windows defaults may be in force today, so must be written explicitly; () when none."""
    audit = result.audit
    state = "not_shown" if audit is None else audit.defaults_state
    if state not in ("hold", "not_shown"):
        return ()   # cleared by an advanced audit GPO already, or the live state lists every value
    decision = result.role
    return (decision.role,) if decision is not None and decision.known else ROLES


def audit_csv_rows(result: Any, additions: dict[str, tuple[bool, bool]]) -> list[list[Trusted]]:
    """The rows (cells) of the audit.csv to emit; ``additions``: GUID -> (success, failure) to switch on."""
    kb = result.knowledge
    labels = kb.inclusion_settings    # SettingValue -> 'Inclusion Setting' text (mappings/auditpol.yaml)
    by_text = {text.casefold(): value for value, text in labels.items()}
    values: dict[str, int] = {}
    if result.audit is not None:
        for guid, setting in result.audit.settings.items():
            if guid in kb.subcategories:
                values[guid] = setting.value
    roles = _defaults_today(result)
    if roles:
        for guid, sub in kb.subcategories.items():
            if guid not in values:
                values[guid] = default_value(sub, roles)
    kept_system: dict[str, list[str]] = {}
    unknown_system: list[list[str]] = []
    others: dict[Any, list[str]] = {}   # in first-seen order; a later input's row with the same key replaces it
    for row in _input_rows(result):
        guid = row[3]
        if guid and GUID_RE.match("{" + guid.strip("{}").upper() + "}") and row[1].casefold() in ("system", ""):
            key = "{" + guid.strip("{}").upper() + "}"
            if key in kb.subcategories:
                kept_system[key] = row   # a later input's row replaces an earlier one
                values[key] = values.get(key, 0) | (_row_value(row, by_text) or 0)
            else:
                unknown_system.append(row)
        else:   # per-user, Option:, FileGlobalSacl / RegistryGlobalSacl rows
            others[_other_key(row)] = row
    for guid, (success, failure) in additions.items():
        values[guid] = values.get(guid, 0) | (1 if success else 0) | (2 if failure else 0)
    out: list[list[Trusted]] = []
    for guid, sub in kb.subcategories.items():   # data order: by category, as Windows lists them
        value = values.get(guid, 0)
        row = kept_system.get(guid)
        if row is not None:
            current = _row_value(row, by_text)
            if current != value and not (current is None and value == 0):
                row = row[:4] + [labels[value], row[5], str(value)]
            out.append([_cell(c) for c in row])
        elif value:
            out.append([Trusted(""), Trusted("System"), Trusted(sub.gpo_name), Trusted(sub.guid),
                        Trusted(labels[value]), Trusted(""), Trusted(str(value))])
    out.extend([_cell(c) for c in row] for row in unknown_system + list(others.values()))
    return out


__all__ = ["audit_csv_rows"]
