"""GPO reports and gpresult edge cases that the mutation run (tools/mutation.py) showed untested."""
from __future__ import annotations

import pytest

import gpxml
from logsource_checker.policy import read_policy

LOGON = "{0CCE9215-69AE-11D9-BED3-505054503030}"


# --------------------------------------------------------------------------- GPO reports (policy/gpresult.py)

def _gpo(computer_body: str) -> str:
    return gpxml.GPO_HEAD + computer_body + "</GPO>\n"


EVENT_LOG = "Windows Components/Event Log Service/Security"


@pytest.mark.parametrize("doc, has_results, warning, audit", [
    (gpxml.gpo_report(gpxml.auditing(gpxml.audit_setting("Audit Logon", LOGON, 3))), True, None, 3),
    (_gpo("  <Computer>\n    <Enabled>true</Enabled>\n  </Computer>\n"), False, "no computer settings", None),
    (_gpo("  <User><Enabled>true</Enabled></User>\n"), False, "no computer settings", None),
    (_gpo("  <Computer>\n    <Enabled>false</Enabled>\n" + gpxml.auditing(gpxml.audit_setting("Audit Logon", LOGON, 1))
          + "  </Computer>\n"), True, "Computer/Enabled is false", 1),
    (gpxml.gpo_report(gpxml.auditing()), True, "no audit, security-option, registry or event-log settings found "
                                              "(extensions present: AuditSettings)", None),
])
def test_gpo_report_computer_part(tmp_path, doc, has_results, warning, audit):
    snap = read_policy(gpxml.write(tmp_path, "gpo.xml", doc), "gpresult")
    assert snap.inputs[0].format == "gpo_report" and snap.has_computer_results is has_results
    if warning is None:
        assert snap.warnings == []
    else:
        (line,) = snap.warnings
        assert warning in line and line.startswith(snap.inputs[0].path + ": ")
    assert (snap.audit[LOGON].value if LOGON in snap.audit else None) == audit


@pytest.mark.parametrize("root", [
    '<Rsop xmlns="http://www.microsoft.com/GroupPolicy/Settings"><ComputerResults/></Rsop>',
    '<GPO xmlns="http://www.microsoft.com/GroupPolicy/Rsop"><Computer/></GPO>',
    '<Rsop><ComputerResults/></Rsop>',
])
def test_root_element_and_namespace_must_both_match(tmp_path, root):
    from logsource_checker.policy.model import PolicyInputError

    with pytest.raises(PolicyInputError, match="not a gpresult /x RSoP or GPO report XML"):
        read_policy(gpxml.write(tmp_path, "x.xml", root), "gpresult")


def test_event_log_size_and_switch_of_one_log_are_merged(tmp_path):
    size = gpxml.policy("Specify the maximum log file size (KB)", EVENT_LOG, parts=(
        "<q3:Numeric><q3:Name>Maximum Log Size (KB)</q3:Name><q3:State>Enabled</q3:State>"
        "<q3:Value>196608</q3:Value></q3:Numeric>"))
    switch = gpxml.policy("Turn on logging", "Windows Components/Event Log Service/Setup", state="Enabled")
    also = gpxml.policy("Turn on logging", EVENT_LOG, state="Disabled")
    snap = read_policy(gpxml.write(tmp_path, "gpresult.xml", gpxml.rsop(gpxml.registry(size, switch, also))),
                       "gpresult")
    assert {(c.name, c.enabled, c.max_size_kb) for c in snap.channels} == {
        ("Security", False, 196608), ("Setup", True, None)}


# --------------------------------------------------------------------------- registry values, by element shape
# gpresult /x writes a registry setting set outside a template as <RegistrySetting>: a key alone (no <Value>) for a
# key created by an ADM file, a value with <Number> or <String>; a security option carries <SettingNumber>,
# <SettingString>, or for multi-string options <SettingStrings> (a list this reader does not take as one value).
LSA = "MACHINE\\System\\CurrentControlSet\\Control\\Lsa"
WINLOGON = "Software\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon"


def _registry_setting(key_path: str | None, value: str | None) -> str:
    key = f"<q3:KeyPath>{key_path}</q3:KeyPath>" if key_path is not None else ""
    return (f"        <q3:RegistrySetting>{gpxml._origin(1)}{key}{value or ''}"
            f"<q3:AdmSetting>false</q3:AdmSetting></q3:RegistrySetting>\n")


@pytest.mark.parametrize("item, want", [
    (_registry_setting(WINLOGON, "<q3:Value><q3:Name>CachedLogonsCount</q3:Name><q3:String>4</q3:String></q3:Value>"),
     [("HKLM\\" + WINLOGON, "CachedLogonsCount", "4")]),
    (_registry_setting(WINLOGON, "<q3:Value><q3:Name>AutoAdminLogon</q3:Name><q3:Number>0</q3:Number></q3:Value>"),
     [("HKLM\\" + WINLOGON, "AutoAdminLogon", "0")]),
    (_registry_setting(WINLOGON, "<q3:Value><q3:Name>Number and string</q3:Name><q3:Number>1</q3:Number>"
                                 "<q3:String>x</q3:String></q3:Value>"), [("HKLM\\" + WINLOGON, "Number and string", "1")]),
    (_registry_setting(WINLOGON, None), []),                                                  # a key alone
    (_registry_setting(WINLOGON, "<q3:Value><q3:Name>Empty</q3:Name></q3:Value>"), []),       # no data
    (_registry_setting(None, "<q3:Value><q3:Name>NoKey</q3:Name><q3:Number>1</q3:Number></q3:Value>"), []),
    (_registry_setting("", "<q3:Value><q3:Name>EmptyKey</q3:Name><q3:Number>1</q3:Number></q3:Value>"), []),
])
def test_registry_settings_by_shape(tmp_path, item, want):
    snap = read_policy(gpxml.write(tmp_path, "gpresult.xml", gpxml.rsop(gpxml.registry(item))), "gpresult")
    assert [(v.key, v.value, v.data) for v in snap.registry_values] == want


@pytest.mark.parametrize("item, want", [
    (gpxml.security_option(LSA + "\\NoLMHash", 1), [(LSA, "NoLMHash", "1")]),
    (f"        <q1:SecurityOptions>{gpxml._origin(1)}<q1:KeyName>{LSA}\\LmCompatibilityLevel</q1:KeyName>"
     "<q1:SettingString>5</q1:SettingString></q1:SecurityOptions>\n", [(LSA, "LmCompatibilityLevel", "5")]),
    (f"        <q1:SecurityOptions>{gpxml._origin(1)}<q1:KeyName>MACHINE\\System\\CurrentControlSet\\Control\\"
     "SecurePipeServers\\Winreg\\AllowedExactPaths\\Machine</q1:KeyName><q1:SettingStrings><q1:Value>System\\"
     "CurrentControlSet\\Control\\ProductOptions</q1:Value></q1:SettingStrings></q1:SecurityOptions>\n", []),
    (f"        <q1:SecurityOptions>{gpxml._origin(1)}<q1:SystemAccessPolicyName>LSAAnonymousNameLookup"
     "</q1:SystemAccessPolicyName><q1:SettingNumber>0</q1:SettingNumber></q1:SecurityOptions>\n", []),
])
def test_security_options_by_shape(tmp_path, item, want):
    snap = read_policy(gpxml.write(tmp_path, "gpresult.xml", gpxml.rsop(gpxml.security(item))), "gpresult")
    assert [(v.key, v.value, v.data) for v in snap.registry_values] == want


def test_items_of_other_namespaces_are_not_read(tmp_path):
    """Only elements in the extension's own namespace are its settings (prefixes differ from file to file)."""
    foreign = (f'        <x:Policy xmlns:x="urn:example:other">{gpxml._origin(1)}<x:Name>Turn on Module Logging</x:Name>'
               '<x:State>Enabled</x:State><x:Category>Windows Components/Windows PowerShell</x:Category></x:Policy>\n'
               f'        <q3:Blocked>false</q3:Blocked>\n')
    own = gpxml.policy("Turn on Script Block Logging", "Windows Components/Windows PowerShell")
    snap = read_policy(gpxml.write(tmp_path, "gpresult.xml", gpxml.rsop(gpxml.registry(foreign + own))), "gpresult")
    assert [p.name for p in snap.registry_policies] == ["Turn on Script Block Logging"]


@pytest.mark.parametrize("extra, types", [
    ('    <ExtensionData>\n      <Extension xmlns="http://www.microsoft.com/GroupPolicy/Settings"><Blob/></Extension>\n'
     '      <Name xmlns="http://www.microsoft.com/GroupPolicy/Settings">Untyped</Name>\n    </ExtensionData>\n', "none"),
    (gpxml._extension("q9", "Scripts", "Scripts", "        <q9:Script><q9:Command>a.cmd</q9:Command></q9:Script>\n"),
     "Scripts"),
])
def test_extensions_without_a_known_type_are_skipped(tmp_path, extra, types):
    """An <Extension> without xsi:type, or of a kind this reader does not read, is passed over and named."""
    snap = read_policy(gpxml.write(tmp_path, "gpresult.xml", gpxml.rsop(extra)), "gpresult")
    assert not snap.audit and not snap.registry_values
    (line,) = snap.warnings
    assert line.endswith(f"(extensions present: {types})")
    with_audit = gpxml.rsop(extra, gpxml.auditing(gpxml.audit_setting("Audit Logon", LOGON, 3)))
    assert read_policy(gpxml.write(tmp_path, "gpresult2.xml", with_audit), "gpresult").audit[LOGON].value == 3
