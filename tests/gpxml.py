"""Small gpresult /x and GPO-report XML documents for tests, in the shape Windows writes them.

Modelled on real ``gpresult /x`` RSoP output and ``Get-GPOReport -ReportType Xml`` reports (see
samples/gpresult/ and the public policy samples): each ``<ExtensionData>`` holds one ``<Extension>``
whose ``xsi:type`` and settings use a numbered prefix; every setting carries the GPO it came from and
its RSoP ``<Precedence>`` (1 = the winning GPO).
"""
from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

RSOP_HEAD = ('<?xml version="1.0" encoding="utf-16"?>\n'
             '<Rsop xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
             'xmlns="http://www.microsoft.com/GroupPolicy/Rsop">\n'
             '  <ReadTime>2024-03-14T08:15:02.4417285Z</ReadTime>\n  <DataType>LoggedData</DataType>\n')
GPO_HEAD = ('<?xml version="1.0" encoding="utf-16"?>\n'
            '<GPO xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns="http://www.microsoft.com/GroupPolicy/Settings">\n'
            '  <Name>Test GPO</Name>\n')
_BASE = "http://www.microsoft.com/GroupPolicy/Settings/Base"
_TYPES = "http://www.microsoft.com/GroupPolicy/Types"
GPO_IDS = {1: "{5B0E1F4A-2C7D-4E63-9A18-7F3C2D4B6E90}", 2: "{31B2F340-016D-11D2-945F-00C04FB984F9}",
           3: "{C3A94E21-8B5F-4A0D-B7E6-1D2F3A4B5C6D}"}


def _origin(precedence: int) -> str:
    return (f'<GPO xmlns="{_BASE}"><Identifier xmlns="{_TYPES}">{GPO_IDS.get(precedence, GPO_IDS[1])}</Identifier>'
            f'<Domain xmlns="{_TYPES}">corp.example.org</Domain></GPO>'
            f'<Precedence xmlns="{_BASE}">{precedence}</Precedence>')


def _extension(prefix: str, uri_tail: str, type_name: str, body: str) -> str:
    return (f'    <ExtensionData>\n      <Extension xmlns:{prefix}="http://www.microsoft.com/GroupPolicy/Settings/'
            f'{uri_tail}" xsi:type="{prefix}:{type_name}" xmlns="http://www.microsoft.com/GroupPolicy/Settings">\n'
            f'{body}      </Extension>\n      <Name xmlns="http://www.microsoft.com/GroupPolicy/Settings">'
            f'{type_name}</Name>\n    </ExtensionData>\n')


def security_option(key_name: str, number: int, precedence: int = 1) -> str:
    """A security option as gpresult shows it: MACHINE\\...\\ValueName and its DWORD."""
    return (f'        <q1:SecurityOptions>{_origin(precedence)}<q1:KeyName>{escape(key_name)}</q1:KeyName>'
            f'<q1:SettingNumber>{number}</q1:SettingNumber></q1:SecurityOptions>\n')


def security(*items: str) -> str:
    return _extension("q1", "Security", "SecuritySettings", "".join(items))


def audit_setting(name: str, guid: str, value: int, precedence: int = 1) -> str:
    return (f'        <q4:AuditSetting>{_origin(precedence)}<q4:PolicyTarget>System</q4:PolicyTarget>'
            f'<q4:SubcategoryName>{escape(name)}</q4:SubcategoryName><q4:SubcategoryGuid>{guid.lower()}'
            f'</q4:SubcategoryGuid><q4:SettingValue>{value}</q4:SettingValue></q4:AuditSetting>\n')


def auditing(*items: str) -> str:
    return _extension("q4", "Auditing", "AuditSettings", "".join(items))


def list_box(name: str, elements: list[tuple[str | None, str | None]], explicit: bool) -> str:
    """An Administrative Template ListBox; elements are (Name, Data) pairs, None leaves the element out."""
    parts = []
    for elem_name, elem_data in elements:
        inner = (f"<q3:Name>{escape(elem_name)}</q3:Name>" if elem_name is not None else "") + (
            f"<q3:Data>{escape(elem_data)}</q3:Data>" if elem_data is not None else "")
        parts.append(f"<q3:Element>{inner}</q3:Element>")
    return (f"<q3:ListBox><q3:Name>{escape(name)}</q3:Name><q3:State>Enabled</q3:State>"
            f"<q3:ExplicitValue>{'true' if explicit else 'false'}</q3:ExplicitValue><q3:Additive>true</q3:Additive>"
            f"<q3:Value>{''.join(parts)}</q3:Value></q3:ListBox>")


def policy(name: str, category: str, state: str = "Enabled", parts: str = "", precedence: int = 1) -> str:
    return (f'        <q3:Policy>{_origin(precedence)}<q3:Name>{escape(name)}</q3:Name><q3:State>{state}</q3:State>'
            f'<q3:Explain>...</q3:Explain><q3:Supported>At least Windows 7</q3:Supported>'
            f'<q3:Category>{escape(category)}</q3:Category>{parts}</q3:Policy>\n')


def registry(*items: str) -> str:
    return _extension("q3", "Registry", "RegistrySettings", "".join(items))


def rsop(*extensions: str, computer: str | None = None) -> str:
    """A gpresult /x document; ``computer`` replaces the whole <ComputerResults> element when given."""
    if computer is None:
        computer = ("  <ComputerResults>\n    <Version>2228228</Version>\n    <Name>CORP\\WS042$</Name>\n"
                    + "".join(extensions) + "  </ComputerResults>\n")
    return (RSOP_HEAD + computer + "  <UserResults>\n    <Version>1</Version>\n    <Name>CORP\\alice</Name>\n"
            "  </UserResults>\n</Rsop>\n")


def gpo_report(*extensions: str) -> str:
    return (GPO_HEAD + "  <Computer>\n    <VersionDirectory>3</VersionDirectory>\n    <Enabled>true</Enabled>\n"
            + "".join(extensions) + "  </Computer>\n</GPO>\n")


def write(folder: Path, name: str, text: str) -> str:
    """Write as Windows does: UTF-16 little endian with a byte-order mark."""
    path = folder / name
    path.write_bytes(text.encode("utf-16"))
    return str(path)


def registry_pol(entries: list[tuple[str, str, int]]) -> bytes:
    """A Machine registry.pol (PReg version 1) setting REG_DWORD values: (key without hive, value, data)."""
    import struct

    out = b"PReg" + struct.pack("<I", 1)
    for key, value, data in entries:
        raw = struct.pack("<I", data)
        out += ("[" + key + "\x00;" + value + "\x00;").encode("utf-16-le") + struct.pack("<I", 4) + \
            ";".encode("utf-16-le") + struct.pack("<I", len(raw)) + ";".encode("utf-16-le") + raw + \
            "]".encode("utf-16-le")
    return out


def legacy_audit(key: str, value: int, precedence: int = 1) -> str:
    """A legacy (category) audit setting, e.g. AuditLogonEvents, as gpresult's security extension shows it."""
    return (f'        <q1:Audit>{_origin(precedence)}<q1:Name>{escape(key)}</q1:Name>'
            f'<q1:SuccessAttempts>{"true" if value & 1 else "false"}</q1:SuccessAttempts>'
            f'<q1:FailureAttempts>{"true" if value & 2 else "false"}</q1:FailureAttempts></q1:Audit>\n')
