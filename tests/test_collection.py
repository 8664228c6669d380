"""--collector end to end: requirement and rule verdicts, JSON keys, reports, exit codes."""
from __future__ import annotations

import pytest

from conftest import LOGON_AUDIT_CSV as AUDIT_CSV, logon_rules, write_simple_rule as _rule  # noqa: F401


@pytest.fixture
def setup(tmp_path):
    return logon_rules(tmp_path)


# (collector file text, {rule: (coverage, collection_reason)}, {requirement name: (status, collected)})
CASES = [
    ("winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624\n",
     {"logon_ok": ("usable", None), "logon_failed": ("blind", "not_collected"), "both": ("partial", "not_collected")},
     {"Logon (success)": ("met", True), "Logon (failure)": ("not_collected", False)}),
    ("winlogbeat.event_logs:\n  - name: Security\n",
     {"logon_ok": ("usable", None), "logon_failed": ("usable", None), "both": ("usable", None)},
     {"Logon (success)": ("met", True), "Logon (failure)": ("met", True)}),
    ("winlogbeat.event_logs:\n  - name: System\n",
     {"logon_ok": ("blind", "not_collected"), "logon_failed": ("blind", "not_collected"),
      "both": ("blind", "not_collected")},
     {"Logon (success)": ("not_collected", False), "Logon (failure)": ("not_collected", False)}),
    ("winlogbeat.event_logs:\n  - name: Security\n    level: error\n",
     {"logon_ok": ("unknown", "collection_unknown"), "logon_failed": ("unknown", "collection_unknown"),
      "both": ("unknown", "collection_unknown")},
     {"Logon (success)": ("met", None), "Logon (failure)": ("met", None)}),
    ("[WinEventLog://Security]\ndisabled = 1\n",
     {"logon_ok": ("blind", "not_collected"), "logon_failed": ("blind", "not_collected"),
      "both": ("blind", "not_collected")},
     {"Logon (success)": ("not_collected", False), "Logon (failure)": ("not_collected", False)}),
]


@pytest.mark.parametrize("text, rules, reqs", CASES)
def test_verdicts(cli, setup, text, rules, reqs):
    name = "inputs.conf" if text.startswith("[") else "winlogbeat.yml"
    (setup / name).write_text(text, encoding="utf-8")
    report = cli(setup / "rules", "--auditpol", setup / "audit.csv", "--collector", setup / name,
                 "--format", "json").json()
    got = {r["id"]: (r["coverage"], r["collection_reason"]) for r in report["rules"]}
    assert got == rules
    by_name = {q["name"]: q for q in report["requirements"]}
    for req_name, (status, collected) in reqs.items():
        q = by_name[req_name]
        assert (q["status"], q["collected"]) == (status, collected), q
        assert set(q["collection"]) == {"file", "stanza", "reason"}
    assert report["policy"]["collectors"] == report["collectors"]
    assert report["collectors"][0]["path"] == str(setup / name)


def test_not_collected_is_never_recommended(cli, setup):
    """No policy change sends an event on: a not-collected requirement is no recommendation."""
    (setup / "w.yml").write_text("winlogbeat.event_logs:\n  - name: System\n", encoding="utf-8")
    report = cli(setup / "rules", "--auditpol", setup / "audit.csv", "--collector", setup / "w.yml",
                 "--format", "json").json()
    assert report["summary"]["rules_not_collected"] == 3
    assert not any(r["requirement"].startswith("audit") and "Logon" in r["name"] for r in report["recommendations"])


def test_without_collector_nothing_changes(cli, setup):
    report = cli(setup / "rules", "--auditpol", setup / "audit.csv", "--format", "json").json()
    assert report["collectors"] == [] and report["summary"]["collectors"] == 0
    assert all(q["collected"] is None and q["collection"] is None for q in report["requirements"])
    assert all(r["collection_reason"] is None for r in report["rules"])


@pytest.mark.parametrize("fmt, marker", [("terminal", "not collected: "), ("markdown", "Not collected: "),
                                         ("text", "not collected: ")])
def test_reports_list_uncollected_requirements(cli, setup, fmt, marker):
    (setup / "w.yml").write_text("winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624\n")
    out = cli(setup / "rules", "--auditpol", setup / "audit.csv", "--collector", setup / "w.yml",
              "--format", fmt).stdout
    lines = [line for line in out.splitlines() if marker in line]
    # 4625 comes from Logon (failure) and, as its alternative, Account Lockout (failure): neither is forwarded
    assert len(lines) == 2, out
    assert "Logon (failure)" in lines[0] and "Account Lockout (failure)" in lines[1], out
    assert "Logon (success)" not in out.split("Collection")[-1]


@pytest.mark.parametrize("text", ["hello\n", "<Sysmon/>", ""])
def test_unknown_collector_file_exits_2_with_one_line(cli, setup, text):
    (setup / "x.conf").write_text(text, encoding="utf-8")
    result = cli(setup / "rules", "--collector", setup / "x.conf", "--format", "json")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "x.conf" in result.stderr


def test_missing_collector_file_exits_2(cli, setup):
    result = cli(setup / "rules", "--collector", setup / "nope.yml")
    assert result.exit_code == 2 and "nope.yml" in result.stderr


# a rule naming no EventID needs every event of its guide (ps_classic_start: 400 and 403)
@pytest.mark.parametrize("event_ids, coverage, reason", [
    ("400, 403", "usable", None),
    ("400", "partial", "not_collected"),
    ("600", "blind", "not_collected"),
])
def test_rule_without_event_id_needs_each_guide_event(cli, tmp_path, event_ids, coverage, reason):
    _rule(tmp_path / "rules", "classic", "product: windows\n    category: ps_classic_start", "Data|contains: x")
    (tmp_path / "audit.csv").write_text(AUDIT_CSV, encoding="utf-8")
    (tmp_path / "w.yml").write_text(f"winlogbeat.event_logs:\n  - name: Windows PowerShell\n    event_id: {event_ids}\n")
    report = cli(tmp_path / "rules", "--auditpol", tmp_path / "audit.csv", "--collector", tmp_path / "w.yml",
                 "--format", "json").json()
    rule = report["rules"][0]
    assert (rule["coverage"], rule["collection_reason"]) == (coverage, reason), rule
    if coverage == "partial":
        assert "only EventIDs 400 arrive, 403 not" in rule["not_collected"][0]


@pytest.mark.parametrize("collector, coverage, reason", [
    ("winlogbeat.event_logs:\n  - name: Security\n", "usable", None),
    ("winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624\n", "blind", "not_collected"),
    ("[WinEventLog://Security]\nblacklist = 1102\n", "blind", "not_collected"),
])
def test_always_logged_events_must_arrive_too(cli, tmp_path, collector, coverage, reason):
    """1102 (the audit log was cleared) needs no policy, but it still has to be forwarded."""
    _rule(tmp_path / "rules", "cleared", "product: windows\n    service: security", "EventID: 1102")
    (tmp_path / "audit.csv").write_text(AUDIT_CSV, encoding="utf-8")
    name = "inputs.conf" if collector.startswith("[") else "w.yml"
    (tmp_path / name).write_text(collector, encoding="utf-8")
    report = cli(tmp_path / "rules", "--auditpol", tmp_path / "audit.csv", "--collector", tmp_path / name,
                 "--format", "json").json()
    rule = report["rules"][0]
    assert (rule["coverage"], rule["collection_reason"]) == (coverage, reason), rule
    if reason:
        assert "1102" in rule["not_collected"][0]


# --emit: the addition for each collector, in its own syntax, only for what does not arrive
EMIT_CASES = [
    ("w.yml", "winlogbeat.event_logs:\n  - name: System\n", "1-winlogbeat-winlogbeat.yml",
     ["  - name: Security", "    event_id: 4624-4625"]),
    ("w.yml", "winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624\n", "1-winlogbeat-winlogbeat.yml",
     # stanza names pass through the comment filter ([ ] become _), nothing of the user's file is rewritten
     ["# Security: read by winlogbeat.event_logs_0_, but EventID 4625 is not in", "#   add EventIDs 4625 there"]),
    ("inputs.conf", "[WinEventLog://System]\n", "1-splunk-inputs.conf",
     ["[WinEventLog://Security]", "disabled = 0", "whitelist = 4624-4625"]),
    ("sub.xml", "<QueryList><Query Id='0'><Select Path='System'>*</Select></Query></QueryList>",
     "1-wef-subscription-query.xml", ['<Select Path="Security">*[System[(EventID=4624 or EventID=4625)]]</Select>']),
    ("ossec.conf", "<ossec_config><localfile><location>System</location><log_format>eventchannel</log_format>"
     "</localfile></ossec_config>", "1-wazuh-ossec-localfile.xml",
     ["<location>Security</location>", "<query>Event/System[EventID=4624 or EventID=4625]</query>"]),
    ("fluent-bit.conf", "[INPUT]\n    Name winlog\n    Channels System\n", "1-fluentbit-other.txt",
     ["- Security: EventIDs 4624-4625; needed by 3 rules, unblinds 3"]),
]


@pytest.mark.parametrize("name, text, out, lines", EMIT_CASES)
def test_emit_collector_additions(cli, setup, name, text, out, lines):
    (setup / name).write_text(text, encoding="utf-8")
    result = cli(setup / "rules", "--auditpol", setup / "audit.csv", "--collector", setup / name,
                 "--emit", setup / "out")
    assert result.exit_code in (0, 1), result.stderr
    written = (setup / "out" / "collectors" / out).read_text(encoding="utf-8")
    for line in lines:
        assert any(got.strip().startswith(line.strip()) for got in written.splitlines()), written


def test_emit_nothing_to_add(cli, setup):
    (setup / "w.yml").write_text("winlogbeat.event_logs:\n  - name: Security\n", encoding="utf-8")
    cli(setup / "rules", "--auditpol", setup / "audit.csv", "--collector", setup / "w.yml", "--emit", setup / "out")
    written = (setup / "out" / "collectors" / "1-winlogbeat-winlogbeat.yml").read_text(encoding="utf-8")
    assert "Nothing to add" in written and "- name:" not in written


def test_emit_keeps_rule_text_in_comments(cli, tmp_path):
    """A hostile rule id cannot add a stanza to the emitted inputs.conf."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "evil.yml").write_text(
        'title: evil\nid: "x\\n[WinEventLog://Evil]\\ndisabled = 0"\nlevel: high\n'
        "logsource:\n    product: windows\n    service: security\n"
        "detection:\n    selection:\n        EventID: 4625\n    condition: selection\n", encoding="utf-8")
    (tmp_path / "audit.csv").write_text(AUDIT_CSV, encoding="utf-8")
    (tmp_path / "inputs.conf").write_text("[WinEventLog://System]\n", encoding="utf-8")
    cli(rules, "--auditpol", tmp_path / "audit.csv", "--collector", tmp_path / "inputs.conf", "--emit", tmp_path / "o")
    written = (tmp_path / "o" / "collectors" / "1-splunk-inputs.conf").read_text(encoding="utf-8")
    stanzas = [line for line in written.splitlines() if line.startswith("[")]
    assert stanzas == ["[WinEventLog://Security]"], written


def test_recommendation_says_whether_its_events_would_arrive(cli, tmp_path):
    """A change the plan recommends whose events the collector drops is flagged collected: false."""
    _rule(tmp_path / "rules", "svc", "product: windows\n    service: security", "EventID: 4697")
    (tmp_path / "audit.csv").write_text(AUDIT_CSV, encoding="utf-8")
    (tmp_path / "w.yml").write_text("winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624\n")
    report = cli(tmp_path / "rules", "--auditpol", tmp_path / "audit.csv", "--collector", tmp_path / "w.yml",
                 "--format", "json").json()
    recs = [r for r in report["recommendations"] if r["kind"] == "audit_subcategory"]
    assert recs and all(r["collected"] is False for r in recs), recs
