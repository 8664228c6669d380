"""Issue 12, the rest: plans x collection, success vs failure in --events, "seen but not required by policy",
measured volume in plans, Telegraf, the WEF second hop."""
from __future__ import annotations

import pytest

from conftest import LOGON_AUDIT_CSV as AUDIT_CSV, logon_rules, write_simple_rule as _rule  # noqa: F401


@pytest.fixture
def setup(tmp_path):
    return logon_rules(tmp_path)


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


# -- 2. success vs failure of one subcategory; 3. seen although the policy says missing ----------------------

EVENT_RULES = (("share", 5145), ("logon_ok", 4624), ("logon_failed", 4625))
AUDIT_LOGON_S = ("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value\n"
                 ",System,Audit Logon,{0cce9215-69ae-11d9-bed3-505054503030},Success,,1\n")


@pytest.fixture
def events_setup(tmp_path):
    for name, eid in EVENT_RULES:
        _rule(tmp_path / "rules", name, "product: windows\n    service: security", f"EventID: {eid}")
    (tmp_path / "audit.csv").write_text(AUDIT_LOGON_S, encoding="utf-8")
    (tmp_path / "audit-sf.csv").write_text(AUDIT_CSV, encoding="utf-8")
    return tmp_path


def _observed(cli, folder, csv_text, audit="audit.csv", *extra):
    (folder / "ev.csv").write_text(csv_text, encoding="utf-8")
    report = cli(folder / "rules", "--auditpol", folder / audit, "--events", folder / "ev.csv", *extra,
                 "--format", "json").json()
    return report, {q["name"]: q for q in report["requirements"]}


# (csv, {requirement: (events, events_outcome_unknown, flag)})
OUTCOME_CASES = [
    # Keywords as text: 5145 success events are no sign of the failure outcome
    ("channel,event_id,count,Keywords\nSecurity,5145,69,Audit Success\n",
     {"Detailed File Share (success)": (69, 0, "seen_despite_policy"),
      "Detailed File Share (failure)": (0, 0, None)}),
    # Keywords as the record's number (0x8010...: AuditFailure bit)
    ("channel,event_id,count,Keywords\nSecurity,5145,7,0x8010000000000000\nSecurity,5145,2,0x8020000000000000\n",
     {"Detailed File Share (success)": (2, 0, "seen_despite_policy"),
      "Detailed File Share (failure)": (7, 0, "seen_despite_policy")}),
    # ECS event.outcome
    ("winlog.channel,winlog.event_id,count,event.outcome\nSecurity,5145,3,failure\n",
     {"Detailed File Share (success)": (0, 0, None), "Detailed File Share (failure)": (3, 0, "seen_despite_policy")}),
    # no outcome column: 5145 is written on success and on failure, so counted for both but not told apart,
    # and no "seen despite policy" on that alone
    ("channel,event_id,count\nSecurity,5145,5\n",
     {"Detailed File Share (success)": (5, 5, None), "Detailed File Share (failure)": (5, 5, None)}),
    # 4625 is only ever a failure: never counted for Logon (success), even without Keywords
    ("channel,event_id,count\nSecurity,4625,10\n",
     {"Logon (success)": (0, 0, None), "Logon (failure)": (10, 0, "seen_despite_policy")}),
    ("channel,event_id,count\nSecurity,4624,4\n",
     {"Logon (success)": (4, 0, None), "Logon (failure)": (0, 0, None)}),
]


@pytest.mark.parametrize("text, expected", OUTCOME_CASES)
def test_outcomes_told_apart(cli, events_setup, text, expected):
    report, reqs = _observed(cli, events_setup, text)
    for name, (events, unsure, flag) in expected.items():
        seen = reqs[name]["observed"]
        assert (seen["events"], seen["events_outcome_unknown"], seen["flag"]) == (events, unsure, flag), name
        assert seen["outcome"] == name.rsplit("(", 1)[1].rstrip(")")
    flagged = [q for q in reqs.values() if (q["observed"] or {}).get("flag") == "seen_despite_policy"]
    assert report["summary"]["requirements_seen_despite_policy"] == len(flagged)
    assert sorted(report["events"]["seen_despite_policy"]) == sorted(q["id"] for q in flagged)


def test_other_met_producer_explains_the_event(cli, events_setup):
    """4625 is written by Logon and by Account Lockout: with Logon failure met, seeing 4625 is no sign that
    Account Lockout's policy input is stale."""
    _, reqs = _observed(cli, events_setup, "channel,event_id,count\nSecurity,4625,10\n", "audit-sf.csv")
    assert reqs["Account Lockout (failure)"]["status"] == "missing"
    assert reqs["Account Lockout (failure)"]["observed"]["flag"] is None
    _, reqs = _observed(cli, events_setup, "channel,event_id,count\nSecurity,4625,10\n", "audit.csv")
    assert reqs["Account Lockout (failure)"]["observed"]["flag"] == "seen_despite_policy"


@pytest.mark.parametrize("fmt, marker", [("terminal", "seen despite policy: Logon (failure)"),
                                         ("text", "- seen despite policy: Logon (failure)"),
                                         ("markdown", "- Seen despite policy: Logon (failure)")])
def test_seen_despite_policy_in_reports(cli, events_setup, fmt, marker):
    (events_setup / "ev.csv").write_text("channel,event_id,count\nSecurity,4625,10\n", encoding="utf-8")
    out = cli(events_setup / "rules", "--auditpol", events_setup / "audit.csv", "--events",
              events_setup / "ev.csv", "--format", fmt).stdout
    assert " ".join(marker.split()) in " ".join(out.split())


def test_evtx_keywords_split_outcomes(cli, tmp_path):
    """The corpus SharpHound file: 5145 records carry the AuditSuccess bit; an independent count of the
    records' Keywords (record XML) gives the success figure, the failure outcome sees none."""
    import re
    from conftest import shared_dir
    evtx = pytest.importorskip("evtx")
    shared = shared_dir()
    path = shared / "corpus" / "evtx-samples" / "md_ID5140-5145-Bloodhound-SharpHound_enumeration_via_SMB.evtx" \
        if shared else None
    if path is None or not path.is_file():
        pytest.skip("evtx sample not present")
    success = failure = 0
    for record in evtx.PyEvtxParser(str(path)).records():
        xml = record["data"]
        if re.search(r"<EventID[^>]*>5145</EventID>", xml):
            keywords = int(re.search(r"<Keywords>(0x[0-9a-fA-F]+)</Keywords>", xml).group(1), 16)
            success += bool(keywords & (1 << 53))
            failure += bool(keywords & (1 << 52))
    assert success > 0
    for name, eid in EVENT_RULES:
        _rule(tmp_path / "rules", name, "product: windows\n    service: security", f"EventID: {eid}")
    (tmp_path / "audit.csv").write_text(AUDIT_LOGON_S, encoding="utf-8")
    report = cli(tmp_path / "rules", "--auditpol", tmp_path / "audit.csv", "--events", path, "--format", "json").json()
    reqs = {q["name"]: q["observed"] for q in report["requirements"]}
    assert reqs["Detailed File Share (success)"]["events"] == success
    assert reqs["Detailed File Share (failure)"]["events"] == failure
    assert reqs["Detailed File Share (success)"]["events_outcome_unknown"] == 0


# -- 1. measured volume feeds the plans ---------------------------------------------------------------------

TWO_DAYS = "2026-01-01T00:00:00Z,2026-01-03T00:00:00Z"
# (csv rows after the header, --max-volume, {requirement: (volume_guide, volume_measured, per_host_per_day)},
#  requirement ids' names held back by the plan)
DFS = {"Detailed File Share (success)", "Detailed File Share (failure)"}   # one change, guide volume high
VOLUME_CASES = [
    # 69 success 5145 on one host over two days: 34.5 a day, low, though the guide says high: the plan
    # switches the success outcome on; the failure outcome is not measured (guide: high) and is held back
    (f"Security,5145,69,h1,{TWO_DAYS},Audit Success\n", "medium",
     {"Detailed File Share (success)": ("high", "low", 34.5)}, {"Detailed File Share (failure)"}),
    # both outcomes measured low: the change is low, within --max-volume medium
    (f"Security,5145,69,h1,{TWO_DAYS},Audit Success\nSecurity,5145,4,h1,{TWO_DAYS},Audit Failure\n", "medium",
     {"Detailed File Share (success)": ("high", "low", 34.5), "Detailed File Share (failure)": ("high", "low", 2.0)},
     set()),
    # 10,000 4625 over two days on two hosts: 2,500 a day per host, high, though the guide says medium
    (f"Security,4625,5000,h1,{TWO_DAYS},\nSecurity,4625,5000,h2,{TWO_DAYS},\n", "medium",
     {"Logon (failure)": ("medium", "high", 2500.0)}, {"Logon (failure)"} | DFS),
    # 1,000 over two days on one host: 500, medium, within --max-volume medium
    (f"Security,4625,1000,h1,{TWO_DAYS},\n", "medium",
     {"Logon (failure)": ("medium", "medium", 500.0)}, DFS),
]


@pytest.mark.parametrize("rows, cap, volumes, held", VOLUME_CASES)
def test_measured_volume_feeds_the_plan(cli, events_setup, rows, cap, volumes, held):
    report, reqs = _observed(cli, events_setup, "channel,event_id,count,host,first_seen,last_seen,Keywords\n" + rows,
                             "audit.csv", "--max-volume", cap)
    for name, (guide, measured, rate) in volumes.items():
        seen = reqs[name]["observed"]
        assert (seen["volume_guide"], seen["volume_measured"], seen["per_host_per_day"]) == (guide, measured, rate)
        assert seen["volume_note"].startswith("measured:")
    plan = next(p for p in report["plans"] if p["chosen"])
    assert {reqs_name for step in plan["held_back_steps"] for reqs_name in step["names"]} == held
    for step in plan["steps"] + plan["held_back_steps"]:
        measured = [reqs[n]["observed"]["volume_measured"] for n in step["names"]]
        assert step["volume_source"] == ("measured" if all(measured) else "measured_and_guide" if any(measured)
                                         else "guide")
        if step["volume_source"] == "measured":
            assert step["volume"] == max(measured, key=["low", "medium", "high"].index)


def test_short_sample_is_not_measured(cli, events_setup):
    _, reqs = _observed(cli, events_setup, "channel,event_id,count,first_seen,last_seen\n"
                        "Security,4625,900,2026-01-01T00:00:00Z,2026-01-01T02:00:00Z\n")
    seen = reqs["Logon (failure)"]["observed"]
    assert seen["volume_measured"] is None and "covers 24 hours by itself" in seen["volume_note"]
    assert reqs["Detailed File Share (failure)"]["observed"]["volume_note"].startswith("not measured: none")


@pytest.mark.parametrize("data, problem", [
    ({"min_span_hours": 0, "per_host_per_day": []}, "min_span_hours"),
    ({"min_span_hours": 24, "per_host_per_day": [{"volume": "low", "below": 10}, {"volume": "high", "below": None}]},
     "low, medium, high"),
    ({"min_span_hours": 24, "per_host_per_day": [{"volume": "low", "below": 100}, {"volume": "medium", "below": 50},
                                                  {"volume": "high", "below": None}]}, "rising"),
    ({"min_span_hours": 24, "per_host_per_day": [{"volume": "huge"}]}, "volume of"),
])
def test_volume_scale_is_validated(data, problem):
    from logsource_checker.volume_measured import VolumeScaleError, validate_scale
    with pytest.raises(VolumeScaleError, match=problem):
        validate_scale(data)


def test_shipped_volume_scale(tmp_path):
    from logsource_checker import knowledge
    from logsource_checker.volume_measured import categorise, load_scale
    scale = load_scale(knowledge.load(None, use_cache=False))
    assert [categorise(n, scale) for n in (0, 99.9, 100, 1999, 2000, 10**6)] == \
        ["low", "low", "medium", "medium", "high", "high"]


@pytest.mark.parametrize("fmt, marker", [("markdown", "| low (measured) |"), ("text", "volume low (measured)"),
                                         ("terminal", "low measured")])
def test_measured_volume_is_named_in_reports(cli, events_setup, fmt, marker):
    (events_setup / "ev.csv").write_text(
        "channel,event_id,count,host,first_seen,last_seen,Keywords\n"
        f"Security,5145,69,h1,{TWO_DAYS},Audit Success\nSecurity,5145,4,h1,{TWO_DAYS},Audit Failure\n",
        encoding="utf-8")
    out = cli(events_setup / "rules", "--auditpol", events_setup / "audit.csv", "--events",
              events_setup / "ev.csv", "--format", fmt, "-v").stdout
    assert marker in out


# -- 5. Telegraf [[inputs.win_eventlog]] ---------------------------------------------------------------------

TELEGRAF_SAMPLE = __import__("pathlib").Path(__file__).resolve().parent.parent / "samples" / "collectors" / \
    "telegraf-win_eventlog.conf"


@pytest.mark.parametrize("channel, event_id, expected", [
    ("Security", 4624, True), ("Security", 5152, False), ("Security", 5158, False), ("Security", 5159, True),
    ("Microsoft-Windows-Sysmon/Operational", 1, True),
    ("Microsoft-Windows-PowerShell/Operational", 4104, True),
    ("Microsoft-Windows-PowerShell/Operational", 4105, False),
    ("Microsoft-Windows-PowerShell/Operational", 4106, False),
    ("System", 7045, None),     # read by no input: no verdict from the file itself (CollectionCheck says False)
])
def test_telegraf_sample_verdicts(channel, event_id, expected):
    from logsource_checker.collectors import read_collector
    from logsource_checker.collectors.xpath import Event
    config = read_collector(str(TELEGRAF_SAMPLE))
    assert config.format == "telegraf" and config.warnings == []
    assert [(i.channel, i.stanza) for i in config.inputs] == [
        ("Security", "[[inputs.win_eventlog]] 1 Query 0"),
        ("Microsoft-Windows-Sysmon/Operational", "[[inputs.win_eventlog]] 1 Query 1"),
        ("Microsoft-Windows-PowerShell/Operational", "[[inputs.win_eventlog]] 2")]
    verdicts = [i.test(Event(channel, event_id)) for i in config.inputs if i.channel.casefold() == channel.casefold()]
    assert (verdicts[0][0] if verdicts else None) is expected


# (the input table's body, event (channel, EventID, provider), verdict, words in the reason)
TELEGRAF_CASES = [
    ('eventlog_name = "Security"\n  xpath_query = "Event/System[EventID=4624 or EventID=4625]"',
     ("Security", 4625, None), True, "select"),
    ('eventlog_name = "Security"\n  xpath_query = "Event/System[EventID=4624 or EventID=4625]"',
     ("Security", 4688, None), False, "does not select"),
    ('eventlog_name = "Security"\n  xpath_query = "*[System[Level=2]]"', ("Security", 4688, None), None, "Level"),
    ('eventlog_name = "Security"\n  [inputs.win_eventlog.tagpass]\n    EventID = ["46*"]',
     ("Security", 4688, None), True, "pass"),
    ('eventlog_name = "Security"\n  [inputs.win_eventlog.tagpass]\n    EventID = ["46*"]',
     ("Security", 4720, None), False, "tagpass"),
    ('eventlog_name = "Security"\n  [inputs.win_eventlog.tagpass]\n    Computer = ["dc*"]',
     ("Security", 4720, None), None, "cannot know"),
    ('eventlog_name = "Security"\n  [inputs.win_eventlog.tagdrop]\n    Source = ["Microsoft-Windows-Security-*"]',
     ("Security", 4720, "Microsoft-Windows-Security-Auditing"), False, "tagdrop"),
    # EventID is no tag of this input (event_tags leaves it out): a tagpass on it never matches
    ('eventlog_name = "Security"\n  event_tags = ["Channel"]\n  [inputs.win_eventlog.tagpass]\n    EventID = ["4720"]',
     ("Security", 4720, None), False, "tagpass"),
    ('eventlog_name = "Security"\n  namedrop = ["win_*"]', ("Security", 4720, None), False, "namedrop"),
    ('eventlog_name = "Security"\n  name_override = "winsec"\n  namepass = ["win_eventlog"]',
     ("Security", 4720, None), False, "namepass"),
    ('eventlog_name = "Security"\n  metricpass = "fields.Message != \'\'"', ("Security", 4720, None), None, "metricpass"),
    ('eventlog_name = "Security"\n  exclude_fields = ["*"]', ("Security", 4720, None), False, "disabled"),
    ('eventlog_name = "Security"\n  exclude_fields = ["Message"]\n  event_batch_size = 5', ("Security", 4720, None),
     True, "every event"),
]


@pytest.mark.parametrize("body, event, verdict, words", TELEGRAF_CASES)
def test_telegraf_corner_cases(tmp_path, body, event, verdict, words):
    from logsource_checker.collection import CollectionCheck
    from logsource_checker.collectors import read_collector
    from logsource_checker.collectors.xpath import Event
    from logsource_checker import knowledge
    path = tmp_path / "telegraf.conf"
    path.write_text(f"[[inputs.win_eventlog]]\n  {body}\n", encoding="utf-8")
    config = read_collector(str(path))
    assert config.format == "telegraf"
    found = CollectionCheck([config], knowledge.load(None)).event(Event(*event))
    assert found.collected is verdict, found
    assert words in found.reason


def test_telegraf_short_xpath_without_channel_is_unknown(tmp_path):
    from logsource_checker.collection import CollectionCheck
    from logsource_checker.collectors import read_collector
    from logsource_checker.collectors.xpath import Event
    from logsource_checker import knowledge
    path = tmp_path / "t.conf"
    path.write_text('[[inputs.win_eventlog]]\n  xpath_query = "Event/System[EventID=1]"\n', encoding="utf-8")
    config = read_collector(str(path))
    assert "eventlog_name" in config.warnings[0]
    assert CollectionCheck([config], knowledge.load(None)).event(Event("Security", 1)).collected is None


@pytest.mark.parametrize("text, words", [
    ("[[inputs.win_eventlog]]\n  only_first_line_of_message = true\n", "neither xpath_query nor eventlog_name"),
    ("[[inputs.win_eventlog]]\n  eventlog_name = 'Security\n", "not valid TOML"),
    ("[[inputs.win_eventlog]]\n  xpath_query = '''<!DOCTYPE x [<!ENTITY a 'b'>]><QueryList/>'''\n", "DOCTYPE"),
    ("[[inputs.win_eventlog]]\n  eventlog_name = 'Security'\n  x = " + "[" * 50000 + "\n", "nested too deeply"),
    ("[[inputs.win_eventlog]]\n  eventlog_name = 'Security'\n\x00\x01\x02", "binary"),
])
def test_telegraf_bad_files_exit_2(cli, setup, text, words):
    (setup / "t.conf").write_text(text, encoding="utf-8")
    run = cli(setup / "rules", "--auditpol", setup / "audit.csv", "--collector", setup / "t.conf")
    assert run.exit_code == 2
    assert len(run.stderr.strip().splitlines()) == 1 and words in run.stderr, run.stderr


def test_telegraf_emit_in_toml(cli, setup, tmp_path):
    import tomllib
    (setup / "t.conf").write_text('[[inputs.win_eventlog]]\n  eventlog_name = "System"\n', encoding="utf-8")
    cli(setup / "rules", "--auditpol", setup / "audit.csv", "--collector", setup / "t.conf", "--emit", tmp_path / "o")
    text = (tmp_path / "o" / "collectors" / "1-telegraf-telegraf.conf").read_text(encoding="utf-8")
    doc = tomllib.loads(text)
    query = doc["inputs"]["win_eventlog"][0]["xpath_query"]
    assert '<Select Path="Security">*[System[(EventID=4624 or EventID=4625)]]</Select>' in query
    from logsource_checker.collectors.telegraf import read
    again = read("x", text)
    assert [i.channel for i in again.inputs] == ["Security"]


# -- 6. the WEF second hop -----------------------------------------------------------------------------------

def _subscription(log: str | None, selects: str) -> str:
    logfile = f"<LogFile>{log}</LogFile>" if log else ""
    return ('<Subscription xmlns="http://schemas.microsoft.com/2006/03/windows/events/subscription">'
            "<SubscriptionId>Sub</SubscriptionId><Enabled>true</Enabled>"
            f"<Query><![CDATA[<QueryList><Query Id=\"0\">{selects}</Query></QueryList>]]></Query>{logfile}"
            "</Subscription>")


SECURITY_4624_4625 = '<Select Path="Security">*[System[(EventID=4624 or EventID=4625)]]</Select>'
# (subscription <LogFile>, forwarder file name and text, event, verdict, words in the reason)
HOP_CASES = [
    # default log: ForwardedEvents; the forwarder reads it, but only 4624
    (None, "w.yml", "winlogbeat.event_logs:\n  - name: ForwardedEvents\n    event_id: 4624\n",
     ("Security", 4624), True, "puts it in ForwardedEvents"),
    (None, "w.yml", "winlogbeat.event_logs:\n  - name: ForwardedEvents\n    event_id: 4624\n",
     ("Security", 4625), False, "hop 2 (forwarder on the collector host) fails"),
    # the subscription does not select 4688: hop 1 fails
    (None, "w.yml", "winlogbeat.event_logs:\n  - name: ForwardedEvents\n",
     ("Security", 4688), False, "hop 1 (WEF subscription) fails"),
    # a custom log the forwarder does not read
    ("WEC-Auth", "inputs.conf", "[WinEventLog://ForwardedEvents]\ndisabled = 0\n",
     ("Security", 4624), False, "WEC-Auth is in no collector configuration"),
    ("WEC-Auth", "inputs.conf", "[WinEventLog://WEC-Auth]\ndisabled = 0\n", ("Security", 4624), True, "WEC-Auth"),
    # an agent on the source host reading Security itself: no hop needed
    ("WEC-Auth", "w.yml", "winlogbeat.event_logs:\n  - name: Security\n", ("Security", 4688), True, "every event"),
    # the forwarder's filter on the collector's log cannot be judged: unknown, on hop 2
    (None, "w.yml", "winlogbeat.event_logs:\n  - name: ForwardedEvents\n    level: error\n",
     ("Security", 4624), None, "hop 2"),
]


@pytest.mark.parametrize("log, name, text, event, verdict, words", HOP_CASES)
def test_wef_second_hop(tmp_path, log, name, text, event, verdict, words):
    from logsource_checker import knowledge
    from logsource_checker.collection import CollectionCheck
    from logsource_checker.collectors import read_collector
    from logsource_checker.collectors.xpath import Event
    (tmp_path / "sub.xml").write_text(_subscription(log, SECURITY_4624_4625), encoding="utf-8")
    (tmp_path / name).write_text(text, encoding="utf-8")
    configs = [read_collector(str(tmp_path / "sub.xml")), read_collector(str(tmp_path / name))]
    found = CollectionCheck(configs, knowledge.load(None)).event(Event(*event))
    assert found.collected is verdict, found
    assert words in found.reason, found.reason
    alone = CollectionCheck(configs[:1], knowledge.load(None)).event(Event(*event))
    assert alone.collected is (event[1] in (4624, 4625))   # the subscription alone: its own verdict, as before


# (subscription file, event (channel, EventID, provider), verdict, stanza, words in the reason): read by hand
# from the files: palantir's subscriptions store into WEC-* logs, DetectionLab's inputs.conf reads those logs;
# its WEC-Process-Execution stanza has a Message blacklist (osquery), which cannot be judged for an event
REAL_HOPS = [
    ("wef_palantir_Sysmon.xml", ("Microsoft-Windows-Sysmon/Operational", 1, "Microsoft-Windows-Sysmon"), True,
     "[WinEventLog://WEC6-Sysmon]", "puts it in WEC6-Sysmon on the collector host, then forwarded"),
    ("wef_palantir_Process-Execution.xml", ("Security", 4688, "Microsoft-Windows-Security-Auditing"), None,
     "[WinEventLog://WEC-Process-Execution]", "hop 2: Subscription Process-Execution Query 0 puts it in "
                                               "WEC-Process-Execution"),
    ("wef_palantir_Process-Execution.xml", ("Security", 4624, "Microsoft-Windows-Security-Auditing"), False,
     "Subscription Process-Execution Query 0", "hop 1 (WEF subscription) fails"),
    ("wef_palantir_Powershell.xml", ("Microsoft-Windows-PowerShell/Operational", 4104, None), True,
     "[WinEventLog://WEC-Powershell]", "WEC-Powershell"),
]


@pytest.mark.parametrize("subscription, event, verdict, stanza, words", REAL_HOPS)
def test_wef_second_hop_on_real_files(subscription, event, verdict, stanza, words):
    from conftest import shared_dir
    from logsource_checker import knowledge
    from logsource_checker.collection import CollectionCheck
    from logsource_checker.collectors import read_collector
    from logsource_checker.collectors.xpath import Event
    shared = shared_dir()
    samples = shared / "corpus" / "collector-samples" if shared else None
    if samples is None or not samples.is_dir():
        pytest.skip("collector samples not present")
    configs = [read_collector(str(samples / subscription)),
               read_collector(str(samples / "splunk_DetectionLab_wef_inputs.conf"))]
    found = CollectionCheck(configs, knowledge.load(None)).event(Event(*event))
    assert (found.collected, found.stanza) == (verdict, stanza), found
    assert words in found.reason, found.reason


def test_wef_second_hop_end_to_end(cli, setup):
    """Through the CLI: the hop that fails is in the requirement's collection reason and the rule is blind."""
    (setup / "sub.xml").write_text(_subscription("WEC-Auth", SECURITY_4624_4625), encoding="utf-8")
    (setup / "inputs.conf").write_text("[WinEventLog://ForwardedEvents]\ndisabled = 0\n", encoding="utf-8")
    report = cli(setup / "rules", "--auditpol", setup / "audit.csv", "--collector", setup / "sub.xml",
                 "--collector", setup / "inputs.conf", "--format", "json").json()
    reqs = {q["name"]: q for q in report["requirements"]}
    assert reqs["Logon (success)"]["status"] == "not_collected"
    assert reqs["Logon (success)"]["collection"]["reason"].startswith("hop 2 (forwarder on the collector host) fails")
    assert {r["id"]: r["coverage"] for r in report["rules"]}["logon_ok"] == "blind"


def test_only_samples_covering_a_day_are_measured(cli, events_setup):
    """A two-day export of one host and a one-hour recording of 9,000 failed logons: the rate comes from the
    two-day file alone (1,000 / 2 days = 500, medium); the short burst would have made it high."""
    (events_setup / "long.csv").write_text("channel,event_id,count,host,first_seen,last_seen\n"
                                           f"Security,4625,1000,h1,{TWO_DAYS}\n", encoding="utf-8")
    (events_setup / "burst.csv").write_text("channel,event_id,count,host,first_seen,last_seen\n"
                                            "Security,4625,9000,h1,2026-02-01T00:00:00Z,2026-02-01T01:00:00Z\n",
                                            encoding="utf-8")
    report = cli(events_setup / "rules", "--auditpol", events_setup / "audit.csv", "--events", events_setup / "long.csv",
                 "--events", events_setup / "burst.csv", "--format", "json").json()
    seen = {q["name"]: q["observed"] for q in report["requirements"]}["Logon (failure)"]
    assert seen["events"] == 10000
    assert (seen["volume_measured"], seen["per_host_per_day"]) == ("medium", 500.0)


def test_wef_chain_emit_names_the_file_to_change(cli, setup, tmp_path):
    """Hop 2 fails (the subscription stores into WEC-Auth, the forwarder reads only ForwardedEvents): the
    forwarder gets a stanza for WEC-Auth, the subscription nothing for it; 4688, which no subscription selects
    (hop 1), goes into the subscription only."""
    _rule(setup / "rules", "proc", "product: windows\n    service: security", "EventID: 4688")
    (setup / "sub.xml").write_text(_subscription("WEC-Auth", SECURITY_4624_4625), encoding="utf-8")
    (setup / "inputs.conf").write_text("[WinEventLog://ForwardedEvents]\ndisabled = 0\n", encoding="utf-8")
    cli(setup / "rules", "--auditpol", setup / "audit.csv", "--collector", setup / "sub.xml",
        "--collector", setup / "inputs.conf", "--emit", tmp_path / "o")
    sub = (tmp_path / "o" / "collectors" / "1-wef-subscription-query.xml").read_text(encoding="utf-8")
    fwd = (tmp_path / "o" / "collectors" / "2-splunk-inputs.conf").read_text(encoding="utf-8")
    assert [line.strip() for line in sub.splitlines() if "<Select" in line] == [
        '<Select Path="Security">*[System[(EventID=4688)]]</Select>']
    assert [line for line in fwd.splitlines() if line.startswith("[")] == ["[WinEventLog://WEC-Auth]"]


def test_requirement_unblinds_count_only_rules_whose_events_arrive(cli, events_setup):
    """requirements[].unblinds (the ranking) agrees with the plan: a change whose events no collector forwards
    unblinds nothing (Logon failure, Detailed File Share: 1 each without the collector)."""
    (events_setup / "w.yml").write_text("winlogbeat.event_logs:\n  - name: System\n", encoding="utf-8")
    args = (events_setup / "rules", "--auditpol", events_setup / "audit.csv", "--format", "json")
    without = {q["name"]: q["unblinds"] for q in cli(*args).json()["requirements"]}
    assert without["Logon (failure)"] == 1 and without["Detailed File Share (success)"] == 1
    report = cli(*args, "--collector", events_setup / "w.yml").json()
    assert {q["name"]: q["unblinds"] for q in report["requirements"]}["Logon (failure)"] == 0
    assert all(not q["unblinds"] for q in report["requirements"]), report["requirements"]
    assert all(r["unblinds"] == 0 for r in report["recommendations"])
