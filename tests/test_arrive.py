"""Issue 12, the rest: plans x collection, success vs failure in --events, "seen but not required by policy",
measured volume in plans, Telegraf, the WEF second hop."""
from __future__ import annotations

import pytest

AUDIT_CSV = ("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value\n"
             ",System,Audit Logon,{0cce9215-69ae-11d9-bed3-505054503030},Success and Failure,,3\n"
             ",System,Audit Process Creation,{0cce922b-69ae-11d9-bed3-505054503030},Success,,1\n")


def _rule(folder, name, logsource, detection, level="high"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yml").write_text(
        f"title: {name}\nid: {name}\nlevel: {level}\nlogsource:\n    {logsource}\n"
        f"detection:\n    selection:\n        {detection}\n    condition: selection\n", encoding="utf-8")


@pytest.fixture
def setup(tmp_path):
    rules = tmp_path / "rules"
    _rule(rules, "logon_ok", "product: windows\n    service: security", "EventID: 4624")
    _rule(rules, "logon_failed", "product: windows\n    service: security", "EventID: 4625")
    _rule(rules, "both", "product: windows\n    service: security", "EventID: [4624, 4625]")
    (tmp_path / "audit.csv").write_text(AUDIT_CSV, encoding="utf-8")
    return tmp_path


# -- 4. plan figures: a rule blind only because an EventID is not forwarded is not usable in the what-if --

# (collector text, {plan name: (still_blind, still_partial)})
PLAN_CASES = [
    ("winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624\n", (1, 1)),
    ("winlogbeat.event_logs:\n  - name: System\n", (3, 0)),
    ("winlogbeat.event_logs:\n  - name: Security\n", (0, 0)),
]


@pytest.mark.parametrize("text, figures", PLAN_CASES)
def test_plan_counts_rules_blind_for_collection(cli, setup, text, figures):
    (setup / "w.yml").write_text(text, encoding="utf-8")
    report = cli(setup / "rules", "--auditpol", setup / "audit.csv", "--collector", setup / "w.yml",
                 "--format", "json").json()
    coverage = {r["id"]: r["coverage"] for r in report["rules"]}
    assert sum(1 for c in coverage.values() if c == "blind") == figures[0]
    for plan in report["plans"]:
        assert (plan["still_blind"], plan["still_partial"]) == figures, plan["name"]
        assert plan["unblinds"] == 0


def test_plan_mixed_requirement_rule_stays_blind(cli, setup):
    """Logon (success) forwards 4624 but not 4648: the requirement stays met, the 4648 rule is blind, and the
    plan must not count it as usable (the what-if alone would: its requirement is met)."""
    _rule(setup / "rules", "explicit", "product: windows\n    service: security", "EventID: 4648")
    (setup / "w.yml").write_text("winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624,4625\n",
                                 encoding="utf-8")
    report = cli(setup / "rules", "--auditpol", setup / "audit.csv", "--collector", setup / "w.yml",
                 "--format", "json").json()
    by_id = {r["id"]: r for r in report["rules"]}
    assert by_id["explicit"]["coverage"] == "blind"
    assert {q["name"]: q["status"] for q in report["requirements"]}["Logon (success)"] == "met"
    for plan in report["plans"]:
        assert plan["still_blind"] == 1, plan["name"]
        assert plan["unblinds"] == 0
