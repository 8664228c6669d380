"""The machine's role (issue 10 part 3): detected from the inputs (DC markers are data), or --role, else assumed;
Windows' audit defaults for that role count for a subcategory no input configures, but only while no advanced audit
GPO clears them; event volumes follow the role."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from logsource_checker import knowledge
from logsource_checker.diff import PolicyDiff
from logsource_checker.policy import read_policy
from logsource_checker.policy.model import AuditSetting, PolicyInput, PolicySnapshot
from logsource_checker.resolve import resolve
from logsource_checker.roles import decide_role, detect_role, volume_for
from logsource_checker.rules import load_file

ROOT = Path(__file__).resolve().parent.parent
KB = knowledge.load(str(ROOT))
SECURITY_RULE = ("title: r\nid: r\nlevel: high\nlogsource:\n    product: windows\n    service: security\n"
                 "detection:\n    selection:\n        EventID: {ids}\n    condition: selection\n")
DC_GPRESULT = "gpresult_x_childdc_adlab_2023.xml"
DC_AUDITPOL = "auditpol_get_r_ws2019-dc_ps-redirect-utf16.csv"


def sub(name: str):
    found = next((s for s in KB.subcategories.values() if name.casefold() in (s.name.casefold(), s.gpo_name.casefold())),
                 None)
    assert found is not None, name
    return found


# --------------------------------------------------------------------------- detection

@pytest.mark.parametrize("sample, role, why", [
    (DC_GPRESULT, "dc", "-516 (a domain controllers group)"),   # the computer's Domain Controllers group
    ("gpreport_nsa-shb_dod-win10-stig_computer.xml", None, None),  # a GPO named for Windows 10: no role shown
    ("audit_dod-stig_server2016_dc.csv", None, None),              # an audit.csv carries no machine facts
    ("audit_msft-baseline_win10-1909_computer.csv", None, None),
    ("audit_nextinstall_dc-audit.csv", None, None),
    (DC_AUDITPOL, None, None),                                     # a machine name only
    ("GptTmpl_nextinstall_dc-audit.inf", None, None),
    ("registry_nsa-shb_dod-win10-stig.pol", None, None),
])
def test_role_detected_per_sample(policy_samples, sample, role, why):
    kind = "auditpol" if sample.endswith(".csv") else "gpresult"
    found = detect_role(read_policy(str(policy_samples / sample), kind), KB)
    if role is None:
        assert found is None
    else:
        assert found is not None and found[0] == role and found[1].endswith(why) and sample in found[1]


@pytest.mark.parametrize("evidence, role", [
    ({"sids": ["S-1-5-9"]}, "dc"),                                  # Enterprise Domain Controllers
    ({"sids": ["S-1-5-21-1-2-3-516"]}, "dc"),                       # <domain>-516 Domain Controllers
    ({"sids": ["S-1-5-21-1-2-3-521"]}, "dc"),                       # <domain>-521 Read-only Domain Controllers
    ({"sids": ["S-1-5-21-1-2-3-515", "S-1-5-21-1-2-3-5160", "S-1-5-32-516"]}, None),  # Domain Computers; look-alikes
    ({"som": ["corp.example/Domain Controllers"]}, "dc"),
    ({"som": ["CN=DC1,OU=Domain Controllers,DC=corp,DC=example"]}, "dc"),
    ({"som": ["corp.example/Servers/Domain Controllers Backup"]}, None),
    ({"som": ["Domain Controllers"]}, None),                        # no container path: not the OU
    ({"gpo_names": ["default domain controllers policy"]}, "dc"),   # matched regardless of case
    ({"gpo_names": ["Default Domain Policy", "Local Group Policy"]}, None),
    ({}, None),
])
def test_dc_markers(evidence, role):
    snapshot = PolicySnapshot(role_evidence={k: [(v, "in.xml") for v in vs] for k, vs in evidence.items()})
    found = detect_role(snapshot, KB)
    assert (found[0] if found else None) == role


def test_a_gpo_report_of_the_default_domain_controllers_policy_means_a_dc(tmp_path):
    path = tmp_path / "gpreport.xml"
    path.write_text('<?xml version="1.0"?><GPO xmlns="http://www.microsoft.com/GroupPolicy/Settings">'
                    "<Name>Default Domain Controllers Policy</Name><Computer><Enabled>true</Enabled>"
                    "<ExtensionData/></Computer></GPO>", encoding="utf-8")
    decision = decide_role(read_policy(str(path), "gpresult"), KB, None)
    assert (decision.role, decision.known) == ("dc", True)
    assert "'Default Domain Controllers Policy' applies" in decision.reason


@pytest.mark.parametrize("option, detected_dc, role, known, reason, warns", [
    (None, True, "dc", True, "detected: ", False),
    (None, False, "client", False, "assumed: ", False),
    ("server", False, "server", True, "given with --role server", False),
    ("client", True, "client", True, "given with --role client", True),   # --role wins, but the report warns
    ("dc", True, "dc", True, "given with --role dc", False),
])
def test_role_decision(option, detected_dc, role, known, reason, warns):
    snapshot = PolicySnapshot(role_evidence={"sids": [("S-1-5-9", "in.xml")]} if detected_dc else {})
    decision = decide_role(snapshot, KB, option)
    assert (decision.role, decision.known) == (role, known) and decision.reason.startswith(reason)
    assert (snapshot.role, snapshot.role_reason) == (decision.role, decision.reason)
    assert any("input shows a domain controller" in w for w in snapshot.warnings) is warns


# --------------------------------------------------------------------------- defaults

def _status(tmp_path, role, formats, audit=None, legacy=None, subcategory="Logon", outcome="success", ids="[4624]"):
    path = tmp_path / "r.yml"
    path.write_text(SECURITY_RULE.format(ids=ids), encoding="utf-8")
    snapshot = PolicySnapshot(
        inputs=[PolicyInput(path=f"in.{f}", format=f) for f in formats], force_subcategory=None,
        audit={sub(n).guid: AuditSetting.from_value(v, "in") for n, v in (audit or {}).items()},
        legacy_audit={k: AuditSetting.from_value(v, "in") for k, v in (legacy or {}).items()})
    resolution = resolve(load_file(str(path)).rules, KB)
    PolicyDiff(KB, snapshot, role).apply(resolution)
    req = resolution.requirements[f"audit:{sub(subcategory).guid}:{outcome}"]
    return req.status, req.reason


KERBEROS = {"subcategory": "Kerberos Authentication Service", "ids": "[4768]"}
GROUPS = {"subcategory": "Security Group Management", "ids": "[4728]"}


@pytest.mark.parametrize("role, formats, audit, legacy, target, status, reason", [
    # no advanced audit policy anywhere: the role's default counts
    ("client", ["gpresult"], {}, {}, {"outcome": "failure", "ids": "[4625]"}, "met", "Windows default for client"),
    ("client", ["gpresult"], {}, {}, KERBEROS, "missing", "Windows default for client (client (workstation)): none"),
    ("server", ["gpresult"], {}, {}, KERBEROS, "missing", "Windows default for server (member server): none"),
    ("dc", ["gpresult"], {}, {}, KERBEROS, "met", "Windows default for dc (domain controller): success"),
    ("server", ["gpo_report"], {}, {}, GROUPS, "met", "assuming no other GPO applies advanced audit policy"),
    ("client", ["gpresult"], {}, {}, GROUPS, "met", "Windows default for client"),     # knowledge-audit E1
    # legacy category settings cover their categories; the others keep their defaults
    ("client", ["gpttmpl"], {}, {"AuditLogonEvents": 2}, {}, "missing", "legacy"),
    ("dc", ["gpttmpl"], {}, {"AuditLogonEvents": 2}, KERBEROS, "met", "Windows default for dc"),
    # an advanced audit GPO clears every subcategory it leaves out: no default survives
    ("dc", ["gpresult"], {"Special Logon": 1}, {}, KERBEROS, "missing", "Windows clears every subcategory"),
    ("dc", ["audit_csv"], {"Special Logon": 0}, {}, KERBEROS, "missing", "does not hold"),
    # the live state lists every subcategory: a default is never assumed
    ("dc", ["auditpol_r"], {}, {}, KERBEROS, "missing", "auditpol /get /r"),
    # inputs that do not show the audit policy at all
    ("dc", ["sysmon_config"], {}, {}, KERBEROS, "missing", "no input shows the audit policy"),
])
def test_default_status(tmp_path, role, formats, audit, legacy, target, status, reason):
    got_status, got_reason = _status(tmp_path, role, formats, audit, legacy, **target)
    assert got_status == status and reason in got_reason, got_reason


def test_dc_gpresult_equals_the_dcs_live_auditpol(cli, corpus_rules, policy_samples, tmp_path):
    """The real DC gpresult carries no advanced audit policy, so the DC defaults hold: every audit requirement of
    the SigmaHQ corpus gets the status the DC's real 'auditpol /get /r' output gives it (the same defaults)."""
    reports = {}
    for name, args in (("gpresult", ["--gpresult", policy_samples / DC_GPRESULT]),
                       ("auditpol", ["--auditpol", policy_samples / DC_AUDITPOL, "--role", "dc"])):
        out = tmp_path / f"{name}.json"
        cli(corpus_rules, *args, "--format", "json", "--output", out, "--no-cache")
        reports[name] = json.loads(out.read_text(encoding="utf-8"))
    status = {name: {r["id"]: r["status"] for r in rep["requirements"] if r["kind"] == "audit_subcategory"}
              for name, rep in reports.items()}
    assert status["gpresult"] == status["auditpol"]
    met = [r for r in reports["gpresult"]["requirements"] if r["kind"] == "audit_subcategory" and r["status"] == "met"]
    assert met and all(r["reason"].startswith("Windows default for dc") for r in met)
    coverage = {name: {r["id"]: r["coverage"] for r in rep["rules"]} for name, rep in reports.items()}
    assert coverage["gpresult"] == coverage["auditpol"]
    usable = [r for r in reports["gpresult"]["rules"]
              if (r["logsource"] or {}).get("service") == "security" and r["coverage"] == "usable"]
    assert usable   # Security rules usable through the DC's defaults alone
    policy = reports["gpresult"]["policy"]
    assert policy["role"] == "dc" and policy["role_reason"].startswith("detected: ")
    # as a member server, the Kerberos and credential-validation defaults are gone: fewer usable rules
    out = tmp_path / "server.json"
    cli(corpus_rules, "--gpresult", policy_samples / DC_GPRESULT, "--role", "server", "--format", "json",
        "--output", out, "--no-cache")
    server = json.loads(out.read_text(encoding="utf-8"))
    assert server["summary"]["coverage"]["usable"] < reports["gpresult"]["summary"]["coverage"]["usable"]
    assert any("input shows a domain controller" in w for w in server["policy"]["warnings"])


def test_baseline_audit_csv_keeps_no_default(policy_samples, tmp_path):
    """A GPO's audit.csv applies advanced audit policy: a subcategory it leaves out is cleared, DC or not."""
    path = policy_samples / "audit_dod-stig_server2016_dc.csv"
    snapshot = read_policy(str(path), "auditpol")
    kerberos_sto = sub("Kerberos Service Ticket Operations")
    assert kerberos_sto.guid not in snapshot.audit   # the STIG leaves it out
    rule = tmp_path / "r.yml"
    rule.write_text(SECURITY_RULE.format(ids="[4769]"), encoding="utf-8")
    resolution = resolve(load_file(str(rule)).rules, KB)
    PolicyDiff(KB, snapshot, "dc").apply(resolution)
    req = resolution.requirements[f"audit:{kerberos_sto.guid}:success"]
    assert req.status == "missing" and "Windows clears every subcategory" in req.reason


# --------------------------------------------------------------------------- volumes and reports

@pytest.mark.parametrize("name, role, volume", [
    ("Credential Validation", None, "high"),        # role unknown: the highest over roles
    ("Credential Validation", "client", "low"),
    ("Credential Validation", "dc", "high"),
    ("Detailed File Share", "server", "high"),      # file servers are member servers
    ("Detailed File Share", "client", "low"),
    ("Directory Service Access", "server", "low"),  # only logged on domain controllers
    ("Filtering Platform Connection", "client", "high"),   # no per-role statement: the general volume
    ("IPsec Driver", "dc", "unknown"),              # no Microsoft statement (knowledge-audit E5)
    ("Central Policy Staging", None, "unknown"),
    ("RPC Events", "server", "high"),
])
def test_volume_for_role(name, role, volume):
    assert volume_for(sub(name), role) == volume


@pytest.mark.parametrize("args, volume, role_line", [
    ([], "high", None),                                       # no policy, no role: the general volume
    (["--role", "client"], "low", None),
    (["--gpresult", "DC"], "high", "Machine role: dc (detected: "),
    (["--gpresult", "DC", "--role", "client"], "low", "Machine role: client (given with --role client)"),
])
def test_requirement_volume_and_report_follow_the_role(cli, tmp_path, policy_samples, args, volume, role_line):
    rule = tmp_path / "r.yml"
    rule.write_text(SECURITY_RULE.format(ids="[4776]"), encoding="utf-8")
    args = [str(policy_samples / DC_GPRESULT) if a == "DC" else a for a in args]
    report = cli(rule, *args, "--format", "json", "--no-cache").json()
    (req,) = [r for r in report["requirements"] if r["name"].startswith("Credential Validation (success)")]
    assert req["volume"] == volume
    markdown = cli(rule, *args, "--format", "markdown", "--no-cache").stdout
    if role_line is None:
        assert "Machine role" not in markdown
    else:
        assert role_line in markdown and "Windows audit defaults: " in markdown


@pytest.mark.parametrize("change, problem", [
    ({"defaults": {"client": "none", "server": "none"}}, "defaults must name every role"),
    ({"defaults": {"client": "none", "server": "none", "dc": "sometimes"}}, "default dc='sometimes'"),
    ({"volume_by_role": {"kiosk": "low"}}, "volume_by_role kiosk='low'"),
    ({"volume_by_role": {"dc": "huge"}}, "volume_by_role dc='huge'"),
])
def test_role_data_is_validated(change, problem):
    import copy
    import dataclasses

    kb = copy.copy(KB)
    kb.subcategories = dict(KB.subcategories)
    logon = sub("Logon")
    kb.subcategories[logon.guid] = dataclasses.replace(logon, **change)
    assert any(problem in p for p in knowledge.validate(kb)), knowledge.validate(kb)
    assert knowledge.validate(KB) == []


@pytest.mark.parametrize("roles, problem", [
    ({"assumed": "laptop", "dc_markers": {}}, "roles.assumed 'laptop'"),
    ({"assumed": "client", "dc_markers": {"sids": "S-1-5-9"}}, "roles.dc_markers must map"),
])
def test_role_markers_are_validated(roles, problem):
    import copy

    kb = copy.copy(KB)
    kb.roles = roles
    assert any(problem in p for p in knowledge.validate(kb))


@pytest.mark.parametrize("name, cell", [
    ("Kerberos Authentication Service", "none / none / success"),
    ("Security Group Management", "success / success / success"),
    ("Logon", "success and failure / success and failure / success and failure"),
    ("Process Creation", "none / none / none"),
])
def test_docs_show_the_defaults_per_role(cli, tmp_path, name, cell):
    cli(ROOT / "samples" / "rules", "--docs", tmp_path / "site", "--no-cache")
    page = next(p for p in (tmp_path / "site").rglob("*.md") if "Advanced audit policy" in p.read_text(encoding="utf-8"))
    (row,) = [line for line in page.read_text(encoding="utf-8").splitlines() if line.startswith(f"| [{name}](")]
    assert f"| {cell} |" in row
