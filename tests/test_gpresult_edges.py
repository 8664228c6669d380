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
