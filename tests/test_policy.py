"""Policy inputs: gpresult / GPO reports, audit CSVs, GptTmpl.inf, registry.pol, Sysmon configs, merge.

The expected values for the real files in ../shared/corpus/policy-samples were read by hand from those
files (counted rows, looked up single GUIDs and registry policies); they are not computed by the code
under test.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES
from logsource_checker.knowledge import SysmonEvent
from logsource_checker.policy import merge, read_policy
from logsource_checker.policy.model import PolicyInputError, PolicySnapshot
from logsource_checker.policy.xmlsafe import parse_xml_bytes

GP = SAMPLES / "gpresult"


def G(short: str) -> str:
    """The braced upper-case GUID of an audit subcategory from its first block (all share the tail)."""
    return "{%s-69AE-11D9-BED3-505054503030}" % short.upper()


def kind_for(name: str) -> str:
    return "auditpol" if name.endswith(".csv") else "gpresult"


def policy(snap: PolicySnapshot, name: str, category: str | None = None):
    found = [p for p in snap.registry_policies
             if p.name == name and (category is None or p.category == category)]
    assert len(found) == 1, (name, [p.name for p in snap.registry_policies])
    return found[0]


def reg_value(snap: PolicySnapshot, key: str, value: str) -> str | None:
    for rv in snap.registry_values:
        if rv.key.casefold() == key.casefold() and rv.value.casefold() == value.casefold():
            return rv.data
    return None


def channel(snap: PolicySnapshot, name: str):
    return next((c for c in snap.channels if c.name == name), None)


# --------------------------------------------------------------------------- the real corpus

# file -> (format, subcategories, explicit "No Auditing" subcategories, {GUID: SettingValue} spot checks,
#          legacy {key: value}, force_subcategory)
CORPUS = {
    "gpresult_x_childdc_adlab_2023.xml": ("gpresult", 0, 0, {}, {}, None),
    "gpreport_nsa-shb_dod-win10-stig_computer.xml": (
        "gpo_report", 21, 0,
        {G("0cce923f"): 3, G("0cce922b"): 1, G("0cce9248"): 1, G("0cce9217"): 3, G("0cce9210"): 1}, {}, True),
    "audit_msft-baseline_win10-1909_computer.csv": (
        "audit_csv", 23, 0, {G("0cce923f"): 3, G("0cce9217"): 2, G("0cce922b"): 1, G("0cce9237"): 1}, {}, None),
    "audit_dod-stig_server2016_dc.csv": (
        "audit_csv", 25, 0, {G("0cce9236"): 1, G("0cce9235"): 3, G("0cce9212"): 3}, {}, None),
    "audit_nextinstall_dc-audit.csv": (
        "audit_csv", 27, 0, {G("0cce9242"): 3, G("0cce9240"): 3, G("0cce9239"): 3}, {}, None),
    "auditpol_backup_full59_with-options.csv": (
        "audit_csv", 59, 12, {G("0cce9232"): 0, G("0cce9214"): 2, G("0cce9233"): 1, G("0cce9228"): 3}, {}, None),
    "auditpol_get_r_ws2019-dc_ps-redirect-utf16.csv": (
        "auditpol_r", 59, None,
        {G("0cce9211"): 0, G("0cce9212"): 3, G("0cce9210"): 1, G("0cce9240"): 1, G("0cce923f"): 1,
         G("0cce923d"): 0}, {}, None),
    "GptTmpl_nextinstall_dc-audit.inf": (
        "gpttmpl", 0, 0, {},
        {"AuditLogonEvents": 3, "AuditPrivilegeUse": 3, "AuditAccountManage": 3, "AuditAccountLogon": 3}, None),
    "registry_nsa-shb_dod-win10-stig.pol": ("registry_pol", 0, 0, {}, {}, None),
}


def test_corpus_table_covers_every_file(policy_samples):
    files = {p.name for p in policy_samples.iterdir() if p.is_file() and p.suffix != ".md"}
    assert files == set(CORPUS), "a new sample in the corpus needs expected values here"


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_file(policy_samples, name):
    fmt, count, no_auditing, spot, legacy, force = CORPUS[name]
    path = str(policy_samples / name)
    snap = read_policy(path, kind_for(name))
    assert [i.format for i in snap.inputs] == [fmt]
    assert snap.has_computer_results
    assert len(snap.audit) == count
    if no_auditing is not None:  # "No Auditing" set on purpose (SettingValue 0)
        assert sum(1 for s in snap.audit.values() if s.value == 0) == no_auditing
    for guid, value in spot.items():
        assert snap.audit[guid].value == value, guid
        assert snap.audit[guid].source == path
    assert all(g == g.upper() and g.startswith("{") and g.endswith("}") for g in snap.audit)
    assert {k: v.value for k, v in snap.legacy_audit.items()} == legacy
    assert snap.force_subcategory is force


def test_corpus_audit_csv_also_accepted_through_gpresult_option(policy_samples):
    snap = read_policy(str(policy_samples / "audit_msft-baseline_win10-1909_computer.csv"), "gpresult")
    assert len(snap.audit) == 23


# (file, read as, registry key, value name, expected data; None: must not be read as a value)
REG_VALUES = [
    ("gpresult_x_childdc_adlab_2023.xml", "gpresult",
     r"MACHINE\System\CurrentControlSet\Services\NTDS\Parameters", "LDAPServerIntegrity", "1"),
    ("gpresult_x_childdc_adlab_2023.xml", "gpresult",
     r"MACHINE\Software\Microsoft\Windows\CurrentVersion\Policies\System", "InactivityTimeoutSecs", "900"),
    ("gpresult_x_childdc_adlab_2023.xml", "gpresult", r"MACHINE\System\CurrentControlSet\Control\Lsa",
     "NoLMHash", "1"),
    ("gpreport_nsa-shb_dod-win10-stig_computer.xml", "gpresult", r"MACHINE\System\CurrentControlSet\Control\Lsa",
     "SCENoApplyLegacyAuditPolicy", "1"),
    ("registry_nsa-shb_dod-win10-stig.pol", "gpresult",
     r"HKLM\Software\Policies\Microsoft\Windows\PowerShell\ScriptBlockLogging", "EnableScriptBlockLogging", "1"),
    ("registry_nsa-shb_dod-win10-stig.pol", "gpresult",
     r"HKLM\Software\Microsoft\Windows\CurrentVersion\Policies\System\Audit",
     "ProcessCreationIncludeCmdLine_Enabled", "1"),
    ("registry_nsa-shb_dod-win10-stig.pol", "gpresult", r"HKLM\Software\Policies\Microsoft\Windows\EventLog\Security",
     "MaxSize", "196608"),
    ("registry_nsa-shb_dod-win10-stig.pol", "gpresult",
     r"HKLM\Software\Policies\Microsoft\Windows\PowerShell\ScriptBlockLogging",
     "**del.EnableScriptBlockInvocationLogging", None),
    ("GptTmpl_nextinstall_dc-audit.inf", "auditpol", r"MACHINE\System\CurrentControlSet\Control\Lsa\MSV1_0",
     "AuditReceivingNTLMTraffic", "2"),
    ("GptTmpl_nextinstall_dc-audit.inf", "auditpol", r"MACHINE\System\CurrentControlSet\Services\Netlogon\Parameters",
     "AuditNTLMInDomain", "7"),
]


@pytest.mark.parametrize("name,kind,key,value,expected", REG_VALUES,
                         ids=[f"{r[0].split('_')[0]}-{r[3]}" for r in REG_VALUES])
def test_real_registry_values(policy_samples, name, kind, key, value, expected):
    snap = read_policy(str(policy_samples / name), kind)
    assert reg_value(snap, key, value) == expected


def test_real_gpresult_security_options(policy_samples):
    snap = read_policy(str(policy_samples / "gpresult_x_childdc_adlab_2023.xml"), "gpresult")
    # six SecurityOptions carry a KeyName (two others are SystemAccessPolicyName entries)
    assert len(snap.registry_values) == 6
    # the Registry extension is present but empty; no Advanced Audit extension at all
    assert snap.registry_policies == [] and snap.audit == {}
    assert snap.force_subcategory is None


def test_real_gpo_report_registry_policies(policy_samples):
    path = str(policy_samples / "gpreport_nsa-shb_dod-win10-stig_computer.xml")
    snap = read_policy(path, "gpresult")
    assert len(snap.registry_policies) == 73
    sbl = policy(snap, "Turn on PowerShell Script Block Logging", "Windows Components/Windows PowerShell")
    assert sbl.state == "Enabled" and sbl.source == path
    assert sbl.settings == (("Log script block invocation start / stop events:", "Disabled"),)
    cmdline = policy(snap, "Include command line in process creation events")
    assert (cmdline.category, cmdline.state, cmdline.settings) == ("System/Audit Process Creation", "Enabled", ())
    vbs = dict(policy(snap, "Turn On Virtualization Based Security").settings)
    assert vbs["Credential Guard Configuration:"] == "Enabled with UEFI lock"
    assert vbs["Select Platform Security Level:"] == "Secure Boot and DMA Protection"
    unc = dict(policy(snap, "Hardened UNC Paths").settings)
    assert unc["Hardened UNC Paths:"] == r"\\*\NETLOGON,\\*\SYSVOL"
    gp = dict(policy(snap, "Configure registry policy processing").settings)
    assert gp == {"Do not apply during periodic background processing": "Disabled",
                  "Process even if the Group Policy objects have not changed": "Enabled"}
    assert dict(policy(snap, "Minimum PIN length").settings) == {"Minimum PIN length": "6"}
    # three "Specify the maximum log file size (KB)" policies, one per classic log
    sizes = [p for p in snap.registry_policies if p.name == "Specify the maximum log file size (KB)"]
    assert len(sizes) == 3
    assert {c.name: c.max_size_kb for c in snap.channels} == {"Application": 32768, "Security": 196608,
                                                               "System": 32768}
    # 41 SecurityOptions with a KeyName, incl. the force option
    assert len(snap.registry_values) == 41  # the force option's value: REG_VALUES
    assert snap.force_subcategory_source == path


def test_real_registry_pol(policy_samples):
    snap = read_policy(str(policy_samples / "registry_nsa-shb_dod-win10-stig.pol"), "gpresult")
    assert len(snap.registry_values) == 82  # 87 entries, 5 of them **del. instructions (values: REG_VALUES)


def test_real_gpttmpl(policy_samples):
    snap = read_policy(str(policy_samples / "GptTmpl_nextinstall_dc-audit.inf"), "auditpol")
    assert {c.name: c.max_size_kb for c in snap.channels} == {"Application": 32768, "Security": 196608,
                                                               "System": 32768}
    # its [Registry Values]: REG_VALUES


def test_real_auditpol_backup_options_and_sacl_rows_ignored(policy_samples):
    snap = read_policy(str(policy_samples / "auditpol_backup_full59_with-options.csv"), "auditpol")
    assert not snap.warnings
    other = snap.audit[G("0cce9214")]  # Other System Events: failure only
    assert (other.success, other.failure) == (False, True)


# --------------------------------------------------------------------------- the project's samples

def test_sample_advanced_audit_is_utf16_rsop():
    data = (GP / "advanced-audit.xml").read_bytes()
    assert data[:2] == b"\xff\xfe" and b"\r\x00\n\x00" in data
    snap = read_policy(str(GP / "advanced-audit.xml"), "gpresult")
    assert snap.inputs[0].format == "gpresult" and snap.has_computer_results
    assert len(snap.audit) == 15
    want = {G("0cce9215"): 3, G("0cce922b"): 1, G("0cce9237"): 1, G("0cce9227"): 3, G("0cce9211"): 1,
            G("0cce923f"): 2, G("0cce9224"): 2, G("0cce9225"): 0}
    assert {g: snap.audit[g].value for g in want} == want
    for absent in ("0cce9244", "0cce9217", "0cce923c", "0cce9242", "0cce9240"):  # not configured
        assert G(absent) not in snap.audit
    assert snap.audit[G("0cce9225")].describe() == "no auditing"
    assert snap.force_subcategory is True
    assert policy(snap, "Turn on PowerShell Script Block Logging").state == "Enabled"
    assert policy(snap, "Include command line in process creation events",
                  "System/Audit Process Creation").state == "Disabled"
    assert not [p for p in snap.registry_policies if p.name == "Turn on Module Logging"]
    assert {c.name: c.max_size_kb for c in snap.channels} == {"Security": 196608, "System": 65536}


def test_sample_legacy_only():
    snap = read_policy(str(GP / "legacy-only.xml"), "gpresult")
    assert snap.audit == {} and snap.force_subcategory is None
    assert {k: v.value for k, v in snap.legacy_audit.items()} == {
        "AuditAccountLogon": 3, "AuditAccountManage": 3, "AuditLogonEvents": 3, "AuditObjectAccess": 2,
        "AuditPolicyChange": 1, "AuditPrivilegeUse": 0, "AuditProcessTracking": 1, "AuditSystemEvents": 3}
    assert "AuditDSAccess" not in snap.legacy_audit


def test_sample_no_computer_results_warns():
    snap = read_policy(str(GP / "no-computer-results.xml"), "gpresult")
    assert snap.has_computer_results is False
    assert len(snap.warnings) == 1 and "no computer results" in snap.warnings[0]
    assert "elevated" in snap.warnings[0]
    assert snap.audit == {} and snap.registry_policies == []  # the user-side policy is not machine policy


# --------------------------------------------------------------------------- the old checker's failure modes

def _rsop_text() -> str:
    return (GP / "advanced-audit.xml").read_bytes()[2:].decode("utf-16-le")


def _write(tmp_path: Path, name: str, text: str, encoding: str = "utf-16") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_registry_policies_in_another_order_and_other_prefixes(tmp_path):
    text = _rsop_text()
    start = text.index("<q3:Policy>")
    end = text.rindex("</q3:Policy>") + len("</q3:Policy>")
    blocks = [b + "</q3:Policy>" for b in text[start:end].split("</q3:Policy>")[:-1]]
    shuffled = text[:start] + "".join(reversed(blocks)) + text[end:]
    # and rename every prefix: q3 -> q9, q4 -> q1, q1 -> q4 (prefixes must never matter)
    renamed = shuffled.replace("q3:", "q9:").replace("xmlns:q3=", "xmlns:q9=")
    renamed = renamed.replace("q1:", "qX:").replace("xmlns:q1=", "xmlns:qX=")
    renamed = renamed.replace("q4:", "q1:").replace("xmlns:q4=", "xmlns:q1=")
    renamed = renamed.replace("qX:", "q4:").replace("xmlns:qX=", "xmlns:q4=")
    original = read_policy(str(GP / "advanced-audit.xml"), "gpresult")
    other = read_policy(_write(tmp_path, "reordered.xml", renamed), "gpresult")
    assert {p.name: (p.category, p.state, p.settings) for p in other.registry_policies} == \
        {p.name: (p.category, p.state, p.settings) for p in original.registry_policies}
    assert {g: s.value for g, s in other.audit.items()} == {g: s.value for g, s in original.audit.items()}
    assert other.force_subcategory is True


def test_sub_settings_in_another_order(tmp_path):
    text = _rsop_text()
    a = "<q3:CheckBox>\r\n            <q3:Name>Include invocation headers</q3:Name>"
    assert a in text
    swapped = text.replace("Include invocation headers", "@@").replace(
        "Transcript output directory", "Include invocation headers").replace("@@", "Transcript output directory")
    snap = read_policy(_write(tmp_path, "swapped.xml", swapped), "gpresult")
    settings = dict(policy(snap, "Turn on PowerShell Transcription").settings)
    assert settings["Transcript output directory"] == "Enabled"  # names are read, not positions


def test_failure_only_setting_is_not_success():
    snap = read_policy(str(GP / "advanced-audit.xml"), "gpresult")
    cred = snap.audit[G("0cce923f")]
    assert (cred.success, cred.failure, cred.value) == (False, True, 2)


def test_gpo_report_wrapper_instead_of_rsop(tmp_path):
    """The same Extension payload under <GPO><Computer> is read like an RSoP (format gpo_report)."""
    body = _rsop_text()
    ext = body[body.index("<ExtensionData>"): body.rindex("</ExtensionData>") + len("</ExtensionData>")]
    ext = ext.replace(' xmlns="http://www.microsoft.com/GroupPolicy/Settings"', "")
    report = ('<?xml version="1.0" encoding="utf-16"?>\r\n'
              '<GPO xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
              'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
              'xmlns="http://www.microsoft.com/GroupPolicy/Settings">\r\n'
              '  <Name>Test</Name>\r\n  <Computer>\r\n    <VersionDirectory>1</VersionDirectory>\r\n'
              '    <VersionSysvol>1</VersionSysvol>\r\n    <Enabled>true</Enabled>\r\n    '
              + ext + '\r\n  </Computer>\r\n  <User>\r\n    <Enabled>false</Enabled>\r\n  </User>\r\n</GPO>')
    snap = read_policy(_write(tmp_path, "report.xml", report), "gpresult")
    assert snap.inputs[0].format == "gpo_report"
    assert len(snap.audit) == 15 and snap.force_subcategory is True
    assert policy(snap, "Turn on PowerShell Script Block Logging").state == "Enabled"


def test_policy_category_absent_altogether(tmp_path):
    text = _rsop_text()
    start = text.index("    <ExtensionData>\r\n      <Extension xmlns:q3=")
    end = text.index("</ExtensionData>", start) + len("</ExtensionData>\r\n")
    no_registry = text[:start] + text[end:]
    snap = read_policy(_write(tmp_path, "noreg.xml", no_registry), "gpresult")
    assert snap.registry_policies == [] and len(snap.audit) == 15
    start = text.index("    <ExtensionData>\r\n      <Extension xmlns:q4=")
    end = text.index("</ExtensionData>", start) + len("</ExtensionData>\r\n")
    snap = read_policy(_write(tmp_path, "noaudit.xml", text[:start] + text[end:]), "gpresult")
    assert snap.audit == {} and len(snap.registry_policies) == 4


def test_rsop_precedence_decides_not_document_order(tmp_path):
    """An RSoP may list losing GPOs' settings too (Precedence 2, 3, ...): precedence 1 wins wherever it is."""
    text = _rsop_text()
    loser = ("<q4:AuditSetting>\r\n"
             '          <Precedence xmlns="http://www.microsoft.com/GroupPolicy/Settings/Base">2</Precedence>\r\n'
             "          <q4:PolicyTarget>System</q4:PolicyTarget>\r\n"
             "          <q4:SubcategoryName>Audit Logon</q4:SubcategoryName>\r\n"
             "          <q4:SubcategoryGuid>{0cce9215-69ae-11d9-bed3-505054503030}</q4:SubcategoryGuid>\r\n"
             "          <q4:SettingValue>0</q4:SettingValue>\r\n"
             "        </q4:AuditSetting>\r\n        ")
    first = text.index("<q4:AuditSetting>")
    last = text.rindex("</q4:AuditSetting>") + len("</q4:AuditSetting>")
    variants = [text[:first] + loser + text[first:], text[:last] + "\r\n        " + loser.rstrip() + text[last:]]
    for n, variant in enumerate(variants):
        snap = read_policy(_write(tmp_path, f"prec{n}.xml", variant), "gpresult")
        assert snap.audit[G("0cce9215")].value == 3


def test_extra_registry_settings_become_registry_values(tmp_path):
    text = _rsop_text()
    extra = ("<q3:RegistrySetting>\r\n"
             "          <q3:KeyPath>Software\\Policies\\Microsoft\\Windows\\PowerShell\\ModuleLogging</q3:KeyPath>\r\n"
             "          <q3:AdmSetting>false</q3:AdmSetting>\r\n"
             "          <q3:Value>\r\n            <q3:Name>EnableModuleLogging</q3:Name>\r\n"
             "            <q3:Number>1</q3:Number>\r\n          </q3:Value>\r\n"
             "        </q3:RegistrySetting>\r\n        ")
    at = text.index("<q3:Policy>")
    snap = read_policy(_write(tmp_path, "extra.xml", text[:at] + extra + text[at:]), "gpresult")
    assert reg_value(snap, r"HKLM\Software\Policies\Microsoft\Windows\PowerShell\ModuleLogging",
                     "EnableModuleLogging") == "1"


def test_utf8_rsop_and_localized_auditpol(tmp_path):
    text = _rsop_text().replace('encoding="utf-16"', 'encoding="utf-8"')
    snap = read_policy(_write(tmp_path, "utf8.xml", text, "utf-8"), "gpresult")
    assert len(snap.audit) == 15
    snap = read_policy(_write(tmp_path, "utf8bom.xml", text, "utf-8-sig"), "gpresult")
    assert len(snap.audit) == 15
    # 'auditpol /get /r' captured in a console: code-page preamble, localized header and names,
    # English setting text (auditpol /r keeps it), cp850-garbled umlauts
    csv_text = ("Aktive Codepage: 850.\r\n"
                "Computername,Richtlinienziel,Unterkategorie,Unterkategorie-GUID,Inklusionseinstellung,"
                "Ausschlusseinstellung\r\n"
                "PC01,System,Anmelden,{0CCE9215-69AE-11D9-BED3-505054503030},Success and Failure,\r\n"
                "PC01,System,Prozesserstellung,{0CCE922B-69AE-11D9-BED3-505054503030},Success,\r\n"
                "PC01,System,Kontosperrung,{0cce9217-69ae-11d9-bed3-505054503030},Failure,\r\n"
                "PC01,System,Gruppenmitgliedschaft \x84nderung,{0CCE9249-69AE-11D9-BED3-505054503030},No Auditing,\r\n")
    path = tmp_path / "auditpol_de.csv"
    path.write_bytes(csv_text.encode("latin-1"))
    snap = read_policy(str(path), "auditpol")
    assert snap.inputs[0].format == "auditpol_r"
    assert {g: s.value for g, s in snap.audit.items()} == {
        G("0cce9215"): 3, G("0cce922b"): 1, G("0cce9217"): 2, G("0cce9249"): 0}


def test_audit_csv_utf8_bom_and_utf16(tmp_path, policy_samples):
    raw = (policy_samples / "audit_msft-baseline_win10-1909_computer.csv").read_bytes()
    for enc, name in (("utf-8-sig", "bom.csv"), ("utf-16", "u16.csv")):
        path = tmp_path / name
        path.write_bytes(raw.decode("utf-8").encode(enc))
        assert len(read_policy(str(path), "auditpol").audit) == 23


def test_option_force_row_in_audit_csv(tmp_path):
    text = ("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,"
            "Setting Value\n,System,Audit Logon,{0cce9215-69ae-11d9-bed3-505054503030},Success,,1\n"
            ",,Option:SCENoApplyLegacyAuditPolicy,,Enabled,,1\n")
    path = tmp_path / "audit.csv"
    path.write_text(text)
    snap = read_policy(str(path), "auditpol")
    assert snap.force_subcategory is True and snap.force_subcategory_source == str(path)


# --------------------------------------------------------------------------- hostile and broken inputs

XXE = (b'<?xml version="1.0"?>\n<!DOCTYPE Rsop [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
       b'<Rsop xmlns="http://www.microsoft.com/GroupPolicy/Rsop"><ComputerResults><Name>&xxe;</Name>'
       b'</ComputerResults></Rsop>')
LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
          + b"".join(b' <!ENTITY lol%d "%s">\n' % (i, b"".join(b"&lol%s;" % (str(i - 1).encode() if i > 1 else b"")
                                                                for _ in range(10))) for i in range(1, 10))
          + b']>\n<Rsop xmlns="http://www.microsoft.com/GroupPolicy/Rsop">&lol9;</Rsop>')
HOSTILE = {
    "xxe_file_entity": XXE,
    "xxe_utf16": b"\xff\xfe" + XXE.decode().encode("utf-16-le"),
    "billion_laughs": LAUGHS,
    "external_dtd": (b'<?xml version="1.0"?><!DOCTYPE Rsop SYSTEM "http://127.0.0.1:9/evil.dtd">'
                     b'<Rsop xmlns="http://www.microsoft.com/GroupPolicy/Rsop"/>'),
    "parameter_entity": (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/hostname"> %p;]>'
                         b'<r/>'),
    "truncated": (GP / "advanced-audit.xml").read_bytes()[:20001],
    "wrong_encoding_declaration": (b'<?xml version="1.0" encoding="utf-16"?>\n'
                                   b'<Rsop xmlns="http://www.microsoft.com/GroupPolicy/Rsop"/>'),
    "unknown_encoding_declaration": b'<?xml version="1.0" encoding="x-klingon"?><Rsop/>',
    "latin1_bytes_declared_utf8": '<?xml version="1.0" encoding="utf-8"?><Rsop>Caf\xe9</Rsop>'.encode("latin-1"),
    "non_policy_xml": b'<?xml version="1.0"?><html><body><p>hello</p></body></html>',
    "sysmon_config_as_gpresult": (SAMPLES / "sysmon" / "partial-config.xml").read_bytes(),
    "deep_nesting": b"<Rsop>" + b"<a>" * 100000 + b"</a>" * 100000 + b"</Rsop>",
    "not_xml": b"this is not a policy file\r\n",
    "binary": bytes(range(256)) * 8,
    "empty": b"",
    "utf16_bom_only": b"\xff\xfe",
    "bad_registry_pol": b"PReg\x01\x00\x00\x00[\x00S\x00",
}


# (read as, HOSTILE case): every case as a gpresult, and every case but a real Sysmon config as a Sysmon config
HOSTILE_CASES = ([("gpresult", name) for name in sorted(HOSTILE)]
                 + [("sysmon", name) for name in sorted(HOSTILE) if name != "sysmon_config_as_gpresult"])


@pytest.mark.parametrize("kind,name", HOSTILE_CASES, ids=[f"{k}-{n}" for k, n in HOSTILE_CASES])
def test_hostile_or_broken_input_is_one_line_error(tmp_path, kind, name):
    path = tmp_path / f"{name}.xml"
    path.write_bytes(HOSTILE[name])
    with pytest.raises(PolicyInputError) as info:
        read_policy(str(path), kind, sysmon_events=SYSMON_EVENTS)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert len(message) < 400
    assert message.startswith(str(path))
    assert "root:" not in message and "lollol" not in message  # nothing from an entity leaks


def test_parse_xml_bytes_refuses_doctype_and_returns_root():
    with pytest.raises(PolicyInputError):
        parse_xml_bytes("x", XXE)
    root = parse_xml_bytes("x", (SAMPLES / "sysmon" / "partial-config.xml").read_bytes())
    assert root.tag == "Sysmon" and root.find("EventFiltering") is not None


def test_oversized_file_refused_unread(tmp_path):
    path = tmp_path / "huge.xml"
    with open(path, "wb") as handle:
        handle.truncate(65 * 1024 * 1024)  # sparse: nothing is written
    with pytest.raises(PolicyInputError) as info:
        read_policy(str(path), "gpresult")
    assert "limit" in info.value.reason


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(PolicyInputError) as info:
        read_policy(str(tmp_path / "nope.xml"), "gpresult")
    assert info.value.reason == "no such file"
    with pytest.raises(PolicyInputError):
        read_policy(str(tmp_path), "auditpol")


def test_bad_csv_is_one_line_error(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(PolicyInputError) as info:
        read_policy(str(path), "auditpol")
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- Sysmon configuration

SYSMON_EVENTS = [
    SysmonEvent(1, "Process creation", "ProcessCreate", True),
    SysmonEvent(3, "Network connection", "NetworkConnect", True),
    SysmonEvent(4, "Sysmon service state changed", None, False),
    SysmonEvent(7, "Image loaded", "ImageLoad", True),
    SysmonEvent(10, "Process accessed", "ProcessAccess", True),
    SysmonEvent(11, "File created", "FileCreate", True),
    SysmonEvent(12, "Registry object added or deleted", "RegistryEvent", True),
    SysmonEvent(13, "Registry value set", "RegistryEvent", True),
    SysmonEvent(17, "Pipe created", "PipeEvent", True, when_unmentioned="not_logged",
                unmentioned_basis='manifest.xml ruledefault="exclude"'),
    SysmonEvent(22, "DNS query", "DnsQuery", True),
]


def test_sysmon_config_collected():
    path = str(SAMPLES / "sysmon" / "partial-config.xml")
    snap = read_policy(path, "sysmon", sysmon_events=SYSMON_EVENTS)
    cfg = snap.sysmon
    assert cfg is not None and cfg.source == path and cfg.schema_version == "4.90"
    assert cfg.status == {1: "met", 3: "unknown", 4: "met", 7: "missing", 10: "missing", 11: "unknown",
                          12: "missing", 13: "missing", 17: "missing", 22: "met"}
    assert cfg.collected == {i: s == "met" for i, s in cfg.status.items()}
    assert "include conditions match" in cfg.reasons[3] and "compared" in cfg.reasons[3]
    assert "exclude conditions do not match" in cfg.reasons[1]
    assert "matches nothing" in cfg.reasons[12]
    assert "not mentioned" in cfg.reasons[17] and "ruledefault" in cfg.reasons[17]
    assert "cannot be filtered" in cfg.reasons[4]
    assert snap.inputs[0].format == "sysmon_config"


def test_sysmon_config_not_a_sysmon_file():
    with pytest.raises(PolicyInputError) as info:
        read_policy(str(GP / "no-computer-results.xml"), "sysmon", sysmon_events=SYSMON_EVENTS)
    assert "not a Sysmon configuration" in info.value.reason


# --------------------------------------------------------------------------- merge

def test_merge_precedence_and_conflicts(policy_samples, tmp_path):
    report = read_policy(str(policy_samples / "gpreport_nsa-shb_dod-win10-stig_computer.xml"), "gpresult")
    baseline = read_policy(str(policy_samples / "audit_msft-baseline_win10-1909_computer.csv"), "auditpol")
    live = read_policy(str(policy_samples / "auditpol_get_r_ws2019-dc_ps-redirect-utf16.csv"), "auditpol")
    rsop = read_policy(str(GP / "advanced-audit.xml"), "gpresult")
    merged = merge([report, baseline])
    # same rank: the later input (audit.csv) wins; Account Lockout 3 in the report, 2 in the baseline
    assert merged.audit[G("0cce9217")].value == 2
    assert merged.audit[G("0cce9217")].source.endswith("audit_msft-baseline_win10-1909_computer.csv")
    lockout = [c for c in merged.conflicts if G("0cce9217") in c]
    assert len(lockout) == 1 and "later input" in lockout[0]
    assert "gpreport_nsa" in lockout[0] and "audit_msft" in lockout[0]
    assert "success and failure" in lockout[0] and "failure" in lockout[0]
    # the live state outranks the RSoP even when given first
    merged = merge([live, rsop])
    assert merged.audit[G("0cce9211")].value == 0  # live: No Auditing; RSoP: success
    line = next(c for c in merged.conflicts if G("0cce9211") in c)
    assert "live" in line and line.index("advanced-audit.xml") < line.index("wins")
    # the RSoP outranks a single GPO even when the GPO comes later
    merged = merge([rsop, report])
    assert policy(merged, "Include command line in process creation events").state == "Disabled"
    assert any("Include command line" in c and "RSoP" in c for c in merged.conflicts)
    assert merged.force_subcategory is True
    assert [i.format for i in merged.inputs] == ["gpresult", "gpo_report"]
    for line in merged.conflicts:
        assert "\n" not in line


def test_merge_force_conflict_and_live_drops_legacy(tmp_path, policy_samples):
    off = tmp_path / "off.csv"
    off.write_text("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,"
                   "Setting Value\n,,Option:SCENoApplyLegacyAuditPolicy,,Disabled,,0\n")
    rsop = read_policy(str(GP / "advanced-audit.xml"), "gpresult")
    merged = merge([rsop, read_policy(str(off), "auditpol")])
    assert merged.force_subcategory is True and merged.force_subcategory_source.endswith("advanced-audit.xml")
    assert any("SCENoApplyLegacyAuditPolicy" in c for c in merged.conflicts)
    legacy = read_policy(str(GP / "legacy-only.xml"), "gpresult")
    live = read_policy(str(policy_samples / "auditpol_get_r_ws2019-dc_ps-redirect-utf16.csv"), "auditpol")
    merged = merge([legacy, live])
    assert merged.legacy_audit == {} and len(merged.audit) == 59
    assert any("legacy category audit settings" in w for w in merged.warnings)


def test_merge_single_and_sysmon():
    rsop = read_policy(str(GP / "advanced-audit.xml"), "gpresult")
    assert merge([rsop]) is rsop
    sysmon = read_policy(str(SAMPLES / "sysmon" / "partial-config.xml"), "sysmon", sysmon_events=SYSMON_EVENTS)
    merged = merge([rsop, sysmon])
    assert merged.sysmon is sysmon.sysmon and len(merged.audit) == 15 and not merged.conflicts


def test_merge_keeps_no_computer_results_warning():
    empty = read_policy(str(GP / "no-computer-results.xml"), "gpresult")
    rsop = read_policy(str(GP / "advanced-audit.xml"), "gpresult")
    merged = merge([empty, rsop])
    assert merged.has_computer_results is False
    assert any("no computer results" in w for w in merged.warnings)


# --------------------------------------------------------------------------- end to end

def test_cli_check_with_advanced_audit_sample(cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = cli("samples/rules", "--gpresult", "samples/gpresult/advanced-audit.xml", "--format", "json")
    assert result.exit_code == 1, result.stderr  # requirements are missing
    report = result.json()
    assert report["summary"]["policy_checked"] is True
    pol = report["policy"]
    assert pol["inputs"] == [{"path": "samples/gpresult/advanced-audit.xml", "format": "gpresult", "warnings": []}]
    assert pol["force_subcategory"] is True
    by_id = {r["id"]: r["status"] for r in report["requirements"]}
    # the sample RSoP enables Script Block Logging, disables the command line and leaves Module Logging out
    assert by_id["registry:ps_scriptblock_logging"] == "met"
    assert by_id["registry:ps_module_logging"] == "missing"
    assert by_id["registry:process_creation_include_cmdline"] == "missing"
    # Audit Logon success and failure (value 3) are set; Account Lockout (not configured) is not
    assert by_id["audit:%s:success" % G("0cce9215")] == "met"
    assert by_id["audit:%s:failure" % G("0cce9215")] == "met"
    assert by_id["audit:%s:failure" % G("0cce9217")] == "missing"


@pytest.mark.parametrize("name", ["xxe_file_entity", "billion_laughs", "non_policy_xml"])
def test_cli_hostile_gpresult_exits_2(cli, tmp_path, name):
    path = tmp_path / "bad.xml"
    path.write_bytes(HOSTILE[name])
    result = cli(str(SAMPLES / "rules"), "--gpresult", str(path), "--format", "json")
    assert result.exit_code == 2
    err = (result.stderr or result.stdout).strip()
    assert err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "root:" not in result.stdout + result.stderr
