"""A plan prefers, among the options of a need, one whose events the collectors forward (--collector): a
change that would not arrive unblinds nothing. Every other choice is as without collectors."""
from __future__ import annotations

import pytest

PROCESS_RULE = ("title: evil\nid: evil\nlevel: high\nlogsource:\n    product: windows\n    category: process_creation\n"
                "detection:\n    selection:\n        Image|endswith: '\\evil.exe'\n    condition: selection\n")
# Sysmon deployed (so it costs nothing more in the sysmon plan) but process creation filtered out entirely
SYSMON_NO_PROCESSES = ('<Sysmon schemaversion="4.90">\n  <EventFiltering>\n    <RuleGroup name="" groupRelation="or">\n'
                       '      <ProcessCreate onmatch="include" />\n    </RuleGroup>\n  </EventFiltering>\n</Sysmon>\n')
SECURITY_4688 = "winlogbeat.event_logs:\n  - name: Security\n    event_id: 4688\n"
SYSMON_CHANNEL = "winlogbeat.event_logs:\n  - name: Microsoft-Windows-Sysmon/Operational\n"
BOTH = SECURITY_4688 + "  - name: Microsoft-Windows-Sysmon/Operational\n"
NEITHER = "winlogbeat.event_logs:\n  - name: System\n"

AUDIT, SYSMON = "audit_subcategory", "sysmon_event"
NO_PROCESS_AUDIT = ("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,"
                    "Setting Value\n,System,Audit Process Creation,{0cce922b-69ae-11d9-bed3-505054503030},"
                    "No Auditing,,0\n")


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "evil.yml").write_text(PROCESS_RULE, encoding="utf-8")
    (tmp_path / "sysmon.xml").write_text(SYSMON_NO_PROCESSES, encoding="utf-8")
    (tmp_path / "audit.csv").write_text(NO_PROCESS_AUDIT, encoding="utf-8")
    return tmp_path


def _plans(cli, folder, collector: str | None, sysmon: bool) -> tuple[dict, dict]:
    args = [folder / "rules", "--auditpol", folder / "audit.csv", "--format", "json", "--no-cache"]
    if collector is not None:
        (folder / "winlogbeat.yml").write_text(collector, encoding="utf-8")
        args += ["--collector", folder / "winlogbeat.yml"]
    if sysmon:
        args += ["--sysmon-config", folder / "sysmon.xml"]
    report = cli(*args).json()
    return {p["name"]: p for p in report["plans"]}, {r["id"]: r for r in report["requirements"]}


def _kinds(plan: dict, reqs: dict) -> list[str]:
    return [reqs[rid]["kind"] for step in plan["steps"] for rid in step["requirements"]]


# (collector, Sysmon configuration given, kind the sysmon plan chooses, whether it arrives, rules it unblinds,
#  rules the native plan unblinds: its only way is the audit subcategory, which unblinds nothing when 4688 is
#  not forwarded, even though another way's events would arrive)
CASES = [
    # the cheaper option's events are not forwarded, the other's are: the forwarded one is chosen
    (SECURITY_4688, True, AUDIT, True, 1, 1),      # without a collector: Sysmon (deployed, one change)
    (SYSMON_CHANNEL, False, SYSMON, True, 1, 0),   # without a collector: audit (no software to deploy)
    # both or neither forwarded, or the cheaper one forwarded: the choice without collectors
    (SECURITY_4688, False, AUDIT, True, 1, 1),
    (SYSMON_CHANNEL, True, SYSMON, True, 1, 0),
    (BOTH, True, SYSMON, True, 1, 1),
    (BOTH, False, AUDIT, True, 1, 1),
    (NEITHER, True, SYSMON, False, 0, 0),
    (NEITHER, False, AUDIT, False, 0, 0),
]


@pytest.mark.parametrize("collector, sysmon, kind, arrives, unblinds, native", CASES)
def test_plan_prefers_an_option_whose_events_arrive(cli, folder, collector, sysmon, kind, arrives, unblinds, native):
    plans, reqs = _plans(cli, folder, collector, sysmon)
    chosen = [rid for step in plans["sysmon"]["steps"] for rid in step["requirements"]]
    assert _kinds(plans["sysmon"], reqs) == [kind]
    assert reqs[chosen[0]]["collected"] is arrives
    assert plans["sysmon"]["unblinds"] == unblinds
    # the native plan has one way only (the audit subcategory): chosen whether it arrives or not
    assert _kinds(plans["native"], reqs) == [AUDIT]
    assert plans["native"]["unblinds"] == native
    assert [step["unblinds"] for step in plans["native"]["steps"]] == [native]
    if sysmon:   # both ways known missing: ranked; the ranking agrees, a change unblinds only if it arrives
        ranked = [req for req in reqs.values() if req["unblinds"] is not None]
        assert ranked and all(req["unblinds"] == int(req["collected"] is not False) for req in ranked)


@pytest.mark.parametrize("sysmon, kind", [(True, SYSMON), (False, AUDIT)])
def test_without_collector_the_choice_is_the_cheapest(cli, folder, sysmon, kind):
    plans, reqs = _plans(cli, folder, None, sysmon)
    assert _kinds(plans["sysmon"], reqs) == [kind]
    assert all(reqs[rid]["collected"] is None for step in plans["sysmon"]["steps"] for rid in step["requirements"])


# (collector, the kind of the one requirement the ranking recommends: the way whose events arrive)
RANKING_CASES = [(SECURITY_4688, AUDIT), (SYSMON_CHANNEL, SYSMON)]


@pytest.mark.parametrize("collector, kind", RANKING_CASES, ids=["4688-forwarded", "sysmon-forwarded"])
def test_ranking_recommends_the_way_whose_events_arrive(cli, folder, collector, kind):
    """Both ways missing (audit policy and Sysmon configuration given), one forwarded: the ranking, like the
    plan, recommends the forwarded way, not one whose events would never arrive."""
    _, reqs = _plans(cli, folder, collector, True)
    ranked = [req for req in reqs.values() if req["unblinds"] is not None]
    assert [req["kind"] for req in ranked] == [kind]
    assert ranked[0]["collected"] is True and ranked[0]["unblinds"] == 1
