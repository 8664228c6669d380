"""The resolver on the project's sample rules: each kind of requirement, alternatives, unmapped items."""
from __future__ import annotations

from pathlib import Path

import pytest

from logsource_checker import knowledge
from logsource_checker.engine import CheckOptions, check
from logsource_checker.report import build
from logsource_checker.resolve import resolve
from logsource_checker.rules import load_file

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "samples" / "rules"

LOGON = "{0CCE9215-69AE-11D9-BED3-505054503030}"
ACCOUNT_LOCKOUT = "{0CCE9217-69AE-11D9-BED3-505054503030}"
PROCESS_CREATION = "{0CCE922B-69AE-11D9-BED3-505054503030}"
SECURITY_SYSTEM_EXTENSION = "{0CCE9211-69AE-11D9-BED3-505054503030}"
OTHER_OBJECT_ACCESS = "{0CCE9227-69AE-11D9-BED3-505054503030}"
FILE_SHARE = "{0CCE9224-69AE-11D9-BED3-505054503030}"
DETAILED_FILE_SHARE = "{0CCE9244-69AE-11D9-BED3-505054503030}"


@pytest.fixture(scope="module")
def report():
    return build(check(CheckOptions(paths=[str(RULES)], use_cache=False)))


def _rule(report, title):
    (rule,) = [r for r in report["rules"] if r["title"] == title]
    return rule


def _options(rule):
    """Each need as a list of (option name, primary, frozenset of requirement ids)."""
    return [[(o["name"], o["primary"], frozenset(o["requirements"])) for o in need["options"]]
            for need in rule["needs"]]


# title -> the needs, each as the sets of requirement ids of its options, primary option first
EXPECTED_NEEDS = [
    ("Encoded PowerShell Command Line",
     [[{"sysmon:1"},
       {f"audit:{PROCESS_CREATION}:success", "registry:process_creation_include_cmdline"}]]),
    ("Renamed Windows Binary", [[{"sysmon:1"}]]),  # OriginalFileName: 4688 does not have it
    ("Failed Logon Attempts Against The Builtin Administrator",
     [[{f"audit:{LOGON}:failure"}, {f"audit:{ACCOUNT_LOCKOUT}:failure"}]]),
    ("Service Installed Or Scheduled Task Created From A Temp Folder",
     [[{f"audit:{SECURITY_SYSTEM_EXTENSION}:success"}], [{f"audit:{OTHER_OBJECT_ACCESS}:success"}]]),
    ("Admin Share Access Or Logon From A New Host",
     [[{f"audit:{LOGON}:success"}],
      [{f"audit:{FILE_SHARE}:success", f"audit:{FILE_SHARE}:failure"}],
      [{f"audit:{DETAILED_FILE_SHARE}:success", f"audit:{DETAILED_FILE_SHARE}:failure"}]]),
    ("PowerShell Download Cradle In A Script Block",
     [[{"registry:ps_scriptblock_logging", "channel:Microsoft-Windows-PowerShell/Operational"},
       {"registry:pwsh_scriptblock_logging", "channel:PowerShellCore/Operational"}]]),
    ("Invoke-Expression Seen By Module Logging",
     [[{"registry:ps_module_logging", "channel:Microsoft-Windows-PowerShell/Operational"},
       {"registry:pwsh_module_logging", "channel:PowerShellCore/Operational"}]]),
    ("Scheduled Task Registered By An Unusual User",
     [[{"channel:Microsoft-Windows-TaskScheduler/Operational"}]]),
    ("Service Control Manager Oddities", [[{"channel:System"}]]),
    ("Service Start Type Changed To Disabled", [[{"channel:System"}]]),
]


@pytest.mark.parametrize("title, expected", EXPECTED_NEEDS)
def test_sample_rule_needs(report, title, expected):
    rule = _rule(report, title)
    got = [[set(reqs) for _, _, reqs in need] for need in _options(rule)]
    assert got == expected
    for need in _options(rule):
        assert need[0][1] is True  # the primary option comes first
        assert [primary for _, primary, _ in need].count(True) == 1


@pytest.mark.parametrize("title, kind", [
    ("CloudTrail Logging Stopped", "external"),
    ("Shadow File Read Through Auditd", "auditd_rule"),
    ("Run Key Value Pointing To A Public Folder", "sysmon_event"),
])
def test_primary_requirement_kind(report, title, kind):
    rule = _rule(report, title)
    by_id = {r["id"]: r for r in report["requirements"]}
    primary = rule["needs"][0]["options"][0]["requirements"]
    assert primary and all(by_id[rid]["kind"] == kind for rid in primary)


def test_requirement_records(report):
    by_id = {r["id"]: r for r in report["requirements"]}
    logon_failure = by_id[f"audit:{LOGON}:failure"]
    assert (logon_failure["kind"], logon_failure["guid"], logon_failure["success"], logon_failure["failure"]) == (
        "audit_subcategory", LOGON, False, True)
    assert f"audit:{ACCOUNT_LOCKOUT}:failure" in logon_failure["alternatives"]
    assert logon_failure["reference"].startswith("https://")
    sysmon = by_id["sysmon:1"]
    assert sysmon["event_id"] == 1 and sysmon["channel"] == "Microsoft-Windows-Sysmon/Operational"
    channel = by_id["channel:Microsoft-Windows-TaskScheduler/Operational"]
    assert channel["kind"] == "event_channel" and channel["channel"] == "Microsoft-Windows-TaskScheduler/Operational"
    external = [r for r in report["requirements"] if r["kind"] == "external"]
    assert external and all(r["how"] and r["reference"].startswith("https://") for r in external)
    for req in report["requirements"]:
        assert req["rules"], req["id"]
        assert req["status"] == "not_checked"
    # every log source of the samples has a guide
    assert all(ls["guide"] for ls in report["logsources"])


def _resolve_text(tmp_path, text):
    path = tmp_path / "rule.yml"
    path.write_text(text, encoding="utf-8")
    loaded = load_file(str(path))
    assert not loaded.errors
    return resolve(loaded.rules, knowledge.load())


UNMAPPED = [
    # (logsource lines, detection lines, expected (event_id, reason fragment) or None for the log source)
    ("product: windows\n    service: security", "EventID: 528", (528, "pre-Vista")),
    ("product: windows\n    service: security", "EventID: 4999", (4999, "no known audit subcategory")),
    ("product: windows\n    service: taskscheduler", "EventID: 9999", (9999, "not listed in guide")),
    ("product: windows\n    category: no_such_category", "Image: x", None),
]


@pytest.mark.parametrize("logsource, detection, expected", UNMAPPED)
def test_nothing_silent(tmp_path, logsource, detection, expected):
    text = (f"title: t\nid: 11111111-2222-4333-8444-555555555555\nlogsource:\n    {logsource}\n"
            f"detection:\n    selection:\n        {detection}\n    condition: selection\nlevel: high\n")
    resolution = _resolve_text(tmp_path, text)
    if expected is None:
        assert list(resolution.unmapped_logsources) == [("windows", "no_such_category", None)]
        assert resolution.rules[0].notes
        return
    event_id, reason = expected
    (entry,) = resolution.unmapped_events.values()
    assert entry.event_id == event_id and reason in entry.reason
    assert [r.path for r in entry.rules] == [str(tmp_path / "rule.yml")]


def test_always_logged_event_needs_nothing(tmp_path):
    text = ("title: t\nlogsource:\n    product: windows\n    service: security\n"
            "detection:\n    selection:\n        EventID: 1102\n    condition: selection\n")
    resolution = _resolve_text(tmp_path, text)
    res = resolution.rules[0]
    assert res.always_logged_event_ids == [1102] and not res.needs and not resolution.unmapped_events


def test_cmdline_policy_only_when_rule_reads_commandline(tmp_path):
    text = ("title: t\nlogsource:\n    product: windows\n    category: process_creation\n"
            "detection:\n    selection:\n        Image|endswith: '\\\\whoami.exe'\n    condition: selection\n")
    resolution = _resolve_text(tmp_path, text)
    options = resolution.rules[0].needs[0].options
    assert [set(o.requirements) for o in options] == [{"sysmon:1"}, {f"audit:{PROCESS_CREATION}:success"}]
