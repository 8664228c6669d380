"""The diff: requirement status, rule coverage, what is recommended, and the exit status."""
from __future__ import annotations

from pathlib import Path

import pytest

from logsource_checker import knowledge
from logsource_checker.diff import PolicyDiff, effective_audit
from logsource_checker.ranking import rank_missing
from logsource_checker.policy.model import (AuditSetting, ChannelSetting, PolicyInput, PolicySnapshot,
                                            RegistryPolicySetting, SysmonConfig)
from logsource_checker.resolve import resolve
from logsource_checker.rules import load_file

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
KB = knowledge.load(str(ROOT))


def _sub(name):
    (guid,) = [sub.guid for sub in KB.subcategories.values() if name.casefold() in
               (sub.name.casefold(), sub.gpo_name.casefold())]
    return guid


def _rule_file(tmp_path, name, logsource, detection, level="high"):
    body = "\n".join(f"        {line}" for line in detection.splitlines())
    text = (f"title: {name}\nid: {name}\nlevel: {level}\nlogsource:\n    {logsource}\n"
            f"detection:\n    selection:\n{body}\n    condition: selection\n")
    path = tmp_path / f"{name}.yml"
    path.write_text(text, encoding="utf-8")
    return path


def _check(rule_paths, snapshot):
    rules = []
    for path in rule_paths:
        loaded = load_file(str(path))
        assert not loaded.errors, loaded.errors
        rules += loaded.rules
    resolution = resolve(rules, KB)
    PolicyDiff(KB, snapshot).apply(resolution)
    return resolution


def _audit(**settings):
    """{subcategory name: SettingValue} -> snapshot audit dict."""
    return {_sub(name.replace("_", " ")): AuditSetting.from_value(value, "test")
            for name, value in settings.items()}


SECURITY = "product: windows\n    service: security"
GPRESULT_INPUT = PolicyInput(path="gpresult.xml", format="gpresult")

# (EventIDs of one Security rule, audit settings by subcategory, expected coverage)
SECURITY_CASES = [
    ([4624], {"Logon": 1}, "usable"),
    ([4624], {"Logon": 2}, "blind"),               # failure only: 4624 is a success event
    ([4625], {"Logon": 2}, "usable"),
    ([4625], {"Account_Lockout": 2}, "usable"),    # the other producer of 4625
    ([4625], {"Logon": 1}, "blind"),
    ([4624, 5145], {"Logon": 3}, "partial"),       # some of its EventIDs are produced, not all
    ([4624, 5145], {"Logon": 3, "Detailed_File_Share": 3}, "usable"),
    ([5145], {"Detailed_File_Share": 1}, "blind"),  # 5145 is logged with both outcomes: both needed
    ([4624], {}, "usable"),                        # no advanced audit policy: Logon keeps its default (S+F)
    ([4624], {"Special_Logon": 1}, "blind"),       # advanced audit policy applied: unconfigured Logon is cleared
]


@pytest.mark.parametrize("event_ids, settings, coverage", SECURITY_CASES)
def test_security_rule_coverage(tmp_path, event_ids, settings, coverage):
    path = _rule_file(tmp_path, "r", SECURITY, "EventID: [" + ", ".join(map(str, event_ids)) + "]")
    snapshot = PolicySnapshot(audit=_audit(**settings), force_subcategory=True, inputs=[GPRESULT_INPUT])
    (res,) = _check([path], snapshot).rules
    assert res.coverage == coverage
    if coverage == "partial":
        assert res.event_ids_produced == [4624] and res.event_ids_missing == [5145]


def test_missing_reasons(tmp_path):
    path = _rule_file(tmp_path, "r", SECURITY, "EventID: [4624, 4698]")
    resolution = _check([path], PolicySnapshot(audit=_audit(Logon=2), force_subcategory=True, inputs=[GPRESULT_INPUT]))
    logon = resolution.requirements[f"audit:{_sub('Logon')}:success"]
    assert logon.status == "missing" and "sets failure, success is needed" in logon.reason
    other = resolution.requirements[f"audit:{_sub('Other Object Access Events')}:success"]
    assert other.status == "missing" and other.reason.startswith("not configured by policy")
    assert "Windows clears every subcategory no GPO configures" in other.reason
    assert "Windows default for client (client (workstation)): none does not hold" in other.reason


@pytest.mark.parametrize("legacy, advanced, force, mode, logon_success", [
    ({"AuditLogonEvents": 1}, {}, None, "legacy", True),
    ({"AuditLogonEvents": 1}, {"Logon": 2}, True, "advanced", False),
    ({"AuditLogonEvents": 1}, {"Logon": 2}, False, "legacy_overrides", True),
    ({}, {}, None, "none", False),
])
def test_effective_audit_policy(legacy, advanced, force, mode, logon_success):
    snapshot = PolicySnapshot(audit=_audit(**advanced), force_subcategory=force,
                              legacy_audit={k: AuditSetting.from_value(v, "gpttmpl") for k, v in legacy.items()})
    eff = effective_audit(snapshot, KB)
    assert eff.mode == mode and eff.explanation
    setting = eff.settings.get(_sub("Logon"))
    assert bool(setting and setting.success) is logon_success
    if mode == "legacy":  # a legacy category applies to every subcategory of its category
        assert eff.settings[_sub("Special Logon")].success


SYSMON_RULE = ("product: windows\n    category: process_creation", "OriginalFileName: Cmd.Exe")


@pytest.mark.parametrize("collected, coverage", [
    (None, "unknown"),       # no Sysmon configuration given: the inputs cannot show it
    ({1: True}, "usable"),
    ({1: False}, "blind"),
])
def test_sysmon_requirement(tmp_path, collected, coverage):
    path = _rule_file(tmp_path, "r", *SYSMON_RULE)
    sysmon = None if collected is None else SysmonConfig(source="s.xml", schema_version="4.90", collected=collected)
    (res,) = _check([path], PolicySnapshot(sysmon=sysmon)).rules
    assert res.coverage == coverage


@pytest.mark.parametrize("channels, status", [
    ([], "unknown"),                                   # off by default, nothing shows it was enabled
    ([ChannelSetting("Microsoft-Windows-TaskScheduler/Operational", True, source="gp")], "met"),
    ([ChannelSetting("microsoft-windows-taskscheduler/operational", False, source="gp")], "missing"),
])
def test_channel_requirement(tmp_path, channels, status):
    path = _rule_file(tmp_path, "r", "product: windows\n    service: taskscheduler", "EventID: 106")
    resolution = _check([path], PolicySnapshot(channels=channels))
    assert resolution.requirements["channel:Microsoft-Windows-TaskScheduler/Operational"].status == status


@pytest.mark.parametrize("state, settings, status", [
    ("Enabled", (), "met"),
    ("Disabled", (), "missing"),
    ("Enabled", (("Module Names", "Microsoft.PowerShell.*"),), "missing"),   # not every module
    ("Enabled", (("Module Names", "Microsoft.PowerShell.*, *"),), "met"),
])
def test_module_logging_policy(tmp_path, state, settings, status):
    path = _rule_file(tmp_path, "r", "product: windows\n    category: ps_module", "Payload|contains: iex")
    policy = RegistryPolicySetting("Turn on Module Logging", "Windows Components\\Windows PowerShell", state,
                                   settings, "gp")
    resolution = _check([path], PolicySnapshot(registry_policies=[policy]))
    assert resolution.requirements["registry:ps_module_logging"].status == status


def test_recommendations_skip_alternatives_of_met_needs(tmp_path):
    # 4625 is met through Logon: Account Lockout (its other producer) is missing but not recommended.
    # 4698 is missing: Other Object Access Events is recommended.
    path = _rule_file(tmp_path, "r", SECURITY, "EventID: [4625, 4698]")
    resolution = _check([path], PolicySnapshot(audit=_audit(Logon=3), force_subcategory=True))
    lockout = f"audit:{_sub('Account Lockout')}:failure"
    assert resolution.requirements[lockout].status == "missing"
    ranked = rank_missing(resolution)
    assert [r.requirement.id for r in ranked] == [f"audit:{_sub('Other Object Access Events')}:success"]
    assert ranked[0].unblinds == 1 and ranked[0].unblinds_high_critical == 1


def test_recommendation_prefers_the_option_closest_to_met(tmp_path):
    # Neither producer of 4625 audits failure; Account Lockout audits success already, Logon nothing:
    # both options miss one requirement, so the primary (Logon) is recommended.
    path = _rule_file(tmp_path, "r", SECURITY, "EventID: 4625")
    resolution = _check([path], PolicySnapshot(audit=_audit(Account_Lockout=1), force_subcategory=True))
    assert [r.requirement.id for r in rank_missing(resolution)] == [f"audit:{_sub('Logon')}:failure"]
    # process creation reading CommandLine, with Sysmon not collecting and 4688 audited but without the
    # command line: both options miss one requirement, Sysmon (primary) is recommended
    pc = _rule_file(tmp_path, "pc", "product: windows\n    category: process_creation", "CommandLine|contains: x")
    snapshot = PolicySnapshot(audit=_audit(Process_Creation=1), force_subcategory=True,
                              sysmon=SysmonConfig(source="s.xml", schema_version="4.90", collected={1: False}))
    assert [r.requirement.id for r in rank_missing(_check([pc], snapshot))] == ["sysmon:1"]


def _sample_folder(tmp_path, names):
    folder = tmp_path / "rules"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes((SAMPLES / "rules" / "windows" / name).read_bytes())
    return folder


# The sample gpresult audits Logon S+F, File Share F only, no Detailed File Share, no Module Logging.
# (sample rules, --fail-on, exit code): the low ps_module rule is blind, the high share-access rule partial.
FAIL_ON = [
    (["ps_module_invoke_expression.yml", "security_failed_logons_admin.yml"], "missing", 1),
    (["ps_module_invoke_expression.yml", "security_failed_logons_admin.yml"], "critical", 0),  # only a low rule
    (["ps_module_invoke_expression.yml", "security_failed_logons_admin.yml"], "never", 0),
    (["security_share_access.yml"], "critical", 1),                                          # a high rule
    (["security_share_access.yml"], "never", 0),
    (["security_failed_logons_admin.yml"], "missing", 0),                                    # all met
]


@pytest.mark.parametrize("names, fail_on, code", FAIL_ON)
def test_exit_status_with_policy(cli, tmp_path, names, fail_on, code):
    result = cli(_sample_folder(tmp_path, names), "--gpresult", SAMPLES / "gpresult" / "advanced-audit.xml",
                 "--format", "json", "--fail-on", fail_on, "--no-cache")
    assert result.exit_code == code, result.stderr


def test_recommendations_on_the_samples(cli):
    """Worked out by hand from the sample gpresult and the guide data. Missing by status: Module Logging
    (the ps_module rule is blind; Windows PowerShell is the primary alternative), File Share success (the
    policy audits failure only) and Detailed File Share success and failure (not configured). The
    recommendations are the native plan (no Sysmon configuration given): those four, and what the plan
    assumes off because the inputs cannot show it: the command-line policy for 4688 (Audit Process
    Creation is on), Audit Registry and the SACL on the keys for the registry rule (Audit Registry logs only
    keys whose SACL asks for it), and the off-by-default TaskScheduler channel.
    First the change whose rule is high and whose volume is low (the command line, which adds no event)."""
    result = cli(SAMPLES / "rules" / "windows", "--gpresult", SAMPLES / "gpresult" / "advanced-audit.xml",
                 "--format", "json", "--no-cache")
    assert result.exit_code == 1
    report = result.json()
    fs, dfs, reg = _sub("File Share"), _sub("Detailed File Share"), _sub("Registry")
    assert {r["requirement"] for r in report["recommendations"]} == {
        "registry:ps_module_logging", f"audit:{fs}:success", f"audit:{dfs}:success", f"audit:{dfs}:failure",
        "registry:process_creation_include_cmdline", f"audit:{reg}:success", "sacl:registry_key:success",
        "channel:Microsoft-Windows-TaskScheduler/Operational"}
    assert report["summary"]["missing_requirements"] == 4   # requirements whose status is missing
    assert report["recommendations"][0]["requirement"] == "registry:process_creation_include_cmdline"
    assert all(r["plan"] == "native" for r in report["recommendations"])


def test_exit_status_zero_when_policy_meets_everything(cli, tmp_path):
    rule = _rule_file(tmp_path, "logon", SECURITY, "EventID: 4624")
    csv = tmp_path / "audit.csv"
    csv.write_text("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,"
                   f"Setting Value\n,System,Audit Logon,{_sub('Logon')},Success and Failure,,3\n", encoding="utf-8")
    result = cli(rule, "--auditpol", csv, "--format", "json", "--no-cache")
    assert result.exit_code == 0, result.stdout
    assert result.json()["summary"]["coverage"]["usable"] == 1


def test_both_outcomes_of_one_subcategory_are_counted_together(tmp_path):
    # 5145 is logged with success and failure: neither outcome alone makes the rule usable, both together do
    path = _rule_file(tmp_path, "r", SECURITY, "EventID: 5145")
    ranked = rank_missing(_check([path], PolicySnapshot(audit=_audit(Logon=3), force_subcategory=True)))
    dfs = _sub("Detailed File Share")
    assert sorted(r.requirement.id for r in ranked) == [f"audit:{dfs}:failure", f"audit:{dfs}:success"]
    assert [r.unblinds for r in ranked] == [1, 1]


def test_gpresult_without_computer_results_shows_unknown_not_blind(cli):
    """An unelevated gpresult says nothing about the machine's audit or registry policy: those needs are
    unknown (with a warning saying how to get computer results), not missing."""
    result = cli(SAMPLES / "rules" / "windows", "--gpresult", SAMPLES / "gpresult" / "no-computer-results.xml",
                 "--format", "json", "--no-cache")
    report = result.json()
    assert result.exit_code == 0 and report["summary"]["coverage"]["blind"] == 0
    assert any("no computer results" in w and "elevated" in w for w in report["policy"]["warnings"])
    statuses = {r["kind"]: r["status"] for r in report["requirements"] if r["kind"] != "event_channel"}
    assert statuses["audit_subcategory"] == statuses["registry_policy"] == "unknown"


def test_coverage_shape_numbers_equal_keys_alike_and_never_trusts_a_copied_number():
    """diff.coverage_shape numbers coverage_key per process: equal keys, equal numbers; a record that comes
    from another process (pickled, with that process's number) is numbered again here."""
    import pickle

    from logsource_checker.diff import coverage_key, coverage_shape
    from logsource_checker.resolve import Need, Option, RuleResolution
    from logsource_checker.rules import LogSource, Rule

    def record(event_id: int) -> RuleResolution:
        rule = Rule("r.yml", 0, f"r{event_id}", "t", "high", "test", LogSource("windows", None, "security"))
        need = Need(f"EventID {event_id}", [Option("Logon", True, ("audit:x:success",))], event_id)
        return RuleResolution(rule=rule, guide=object(), needs=[need])  # type: ignore[arg-type]

    first, same, other = record(4624), record(4624), record(4625)
    assert coverage_key(first) == coverage_key(same) != coverage_key(other)
    assert coverage_shape(first) == coverage_shape(same) != coverage_shape(other)
    copied = pickle.loads(pickle.dumps(other))
    copied.__dict__["_coverage_shape"] = (object(), coverage_shape(first))   # another process's table
    assert coverage_shape(copied) == coverage_shape(other)
