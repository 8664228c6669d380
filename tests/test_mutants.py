"""Tests written to kill mutants that survived the rest of the suite (issue 15).

Each test names the decision it guards; docs/TESTING.md lists the mutation each one kills. Inputs are
real Sigma-shaped rules and gpresult / GPO-report / audit.csv documents in the shape Windows writes
them (tests/gpxml.py), never hand-built snapshots where a file can say it.
"""
from __future__ import annotations

import csv
import dataclasses
import io

import pytest

import gpxml
from logsource_checker import knowledge
from logsource_checker.diff import PolicyDiff, rule_coverage
from logsource_checker.ranking import rank_missing
from logsource_checker.policy import merge, read_policy
from logsource_checker.resolve import resolve
from logsource_checker.rules import load_file

KB = knowledge.load()
LSA = "MACHINE\\System\\CurrentControlSet\\Control\\Lsa"
MSV1_0 = LSA + "\\MSV1_0"
FORCE = LSA + "\\SCENoApplyLegacyAuditPolicy"
LOGON = "{0CCE9215-69AE-11D9-BED3-505054503030}"
FILE_SHARE = "{0CCE9224-69AE-11D9-BED3-505054503030}"
REGISTRY_AUDIT = "{0CCE921E-69AE-11D9-BED3-505054503030}"


def _rule(tmp_path, logsource: str, detection: str, name: str = "rule"):
    text = (f"title: {name}\nid: {name}\nstatus: test\nlevel: high\nlogsource:\n"
            + "".join(f"    {line}\n" for line in logsource.split(", "))
            + "detection:\n    selection:\n" + "".join(f"        {line}\n" for line in detection.splitlines())
            + "    condition: selection\n")
    path = tmp_path / f"{name}.yml"
    path.write_text(text, encoding="utf-8")
    loaded = load_file(str(path))
    assert not loaded.errors, loaded.errors
    return loaded.rules


def _resolve(tmp_path, logsource: str, detection: str):
    resolution = resolve(_rule(tmp_path, logsource, detection), KB)
    (res,) = resolution.rules
    return resolution, res


# --------------------------------------------------------------------------- 1. partial vs blind (diff)

REGISTRY_EVENT = "product: windows, category: registry_event"
S12, S13, S14 = "sysmon:12", "sysmon:13", "sysmon:14"
AUDIT_REG = f"audit:{REGISTRY_AUDIT}:success"

# A registry_event rule naming EventIDs 12 and 13 has a general need (the guide's enablement: Sysmon
# 12+13+14; the Audit Registry alternative does not carry the EventType field) and one need per EventID.
# Partial means: every general need met, some EventIDs produced, others not. A missing general need
# makes the rule blind however many of its EventIDs are produced.
COVERAGE_CASES = [
    ({S12: "met", S13: "met", S14: "met"}, "usable", False),
    ({S12: "met", S13: "missing", S14: "met"}, "blind", False),     # 12 produced, 13 not, but 14 missing too
    ({S12: "met", S13: "met", S14: "missing"}, "blind", False),
    ({S12: "missing", S13: "missing", S14: "missing"}, "blind", False),
    ({S12: "met", S13: "met", S14: "unknown"}, "unknown", False),
]
# (the positive partial case, a Security rule with some of its EventIDs produced, is in test_diff.py)


@pytest.mark.parametrize("statuses, coverage, partial", COVERAGE_CASES)
def test_partial_only_when_every_general_need_is_met(tmp_path, statuses, coverage, partial):
    # EventType is a Sysmon-only field: Audit Registry (4657) cannot serve the rule
    _, res = _resolve(tmp_path, REGISTRY_EVENT, "EventID: [12, 13]\nEventType: CreateKey\nTargetObject|contains: '\\Run\\'")
    general = [need for need in res.needs if need.event_id is None]
    assert len(general) == 1 and sorted(n.event_id for n in res.needs if n.event_id) == [12, 13]
    assert set(res.requirement_ids) == set(statuses)
    assert rule_coverage(res, statuses) == coverage
    assert res.partial is partial


# --------------------------------------------------------------------------- 2. security option value (diff)

NTLM = "product: windows, service: ntlm"


@pytest.mark.parametrize("number, status", [
    (2, "met"),        # Enable auditing for all accounts: what the guide needs
    (1, "missing"),    # domain accounts only
    (0, "missing"),    # Disable
    (None, "missing"),  # not configured
])
def test_security_option_is_met_only_with_the_needed_value(tmp_path, number, status):
    resolution, res = _resolve(tmp_path, NTLM, "EventID: 8002")
    items = [gpxml.security_option(MSV1_0 + "\\AuditReceivingNTLMTraffic", number)] if number is not None else []
    items.append(gpxml.security_option(LSA + "\\NoLMHash", 1))
    snapshot = read_policy(gpxml.write(tmp_path, "gpresult.xml", gpxml.rsop(gpxml.security(*items))), "gpresult")
    PolicyDiff(KB, snapshot).apply(resolution)
    req = resolution.requirements["registry:ntlm_audit_incoming"]
    assert req.status == status
    assert res.coverage == ("usable" if status == "met" else "blind")
    if number is not None and status == "missing":
        assert str(number) in (req.reason or "")


# --------------------------------------------------------------------------- 3. best option (resolve)

# registry_event with only fields that the Security-log alternative carries: two options, Sysmon 12+13+14
# (primary, three requirements) and Audit Registry with the SACL on the keys (two requirements: Audit Registry
# logs only keys whose SACL asks for it).
SACL_KEYS = "sacl:registry_key:success"
BEST_OPTION_CASES = [
    ({}, "Sysmon events 12, 13 and 14"),                                       # nothing known: primary
    ({S12: "unknown", S13: "unknown", S14: "unknown", AUDIT_REG: "unknown", SACL_KEYS: "unknown"},
     "Sysmon events 12, 13 and 14"),
    ({S12: "missing", S13: "missing", S14: "missing", AUDIT_REG: "missing", SACL_KEYS: "missing"},   # 3 vs 2
     "Security events 4657 and 4663 (Audit Registry)"),
    ({S12: "met", S13: "missing", S14: "missing", AUDIT_REG: "missing", SACL_KEYS: "missing"},       # 2 vs 2: tie
     "Sysmon events 12, 13 and 14"),
    ({S12: "met", S13: "missing", S14: "missing", AUDIT_REG: "missing", SACL_KEYS: "unknown"},       # 2 vs 1
     "Security events 4657 and 4663 (Audit Registry)"),
    ({S12: "met", S13: "met", S14: "missing", AUDIT_REG: "missing", SACL_KEYS: "missing"}, "Sysmon events 12, 13 and 14"),
    ({S12: "met", S13: "met", S14: "met", AUDIT_REG: "missing", SACL_KEYS: "missing"}, "Sysmon events 12, 13 and 14"),
]


@pytest.mark.parametrize("statuses, expected", BEST_OPTION_CASES)
def test_best_option_fewest_missing_then_primary(tmp_path, statuses, expected):
    _, res = _resolve(tmp_path, REGISTRY_EVENT, "TargetObject|contains: '\\Run\\'")
    (need,) = res.needs
    assert [(o.name, o.primary, len(o.requirements)) for o in need.options] == [
        ("Sysmon events 12, 13 and 14", True, 3), ("Security events 4657 and 4663 (Audit Registry)", False, 2)]
    assert need.best_option(statuses).name == expected


# --------------------------------------------------------------------------- 4. when_event_ids (resolve)

WHEN_EVENT_IDS = [
    # (log source, EventIDs, requirements of the general need's primary option)
    (NTLM, [8001], {"channel:Microsoft-Windows-NTLM/Operational", "registry:ntlm_audit_outgoing"}),
    (NTLM, [8002], {"channel:Microsoft-Windows-NTLM/Operational", "registry:ntlm_audit_incoming"}),
    (NTLM, [8003, 8004], {"channel:Microsoft-Windows-NTLM/Operational", "registry:ntlm_audit_domain"}),
    (NTLM, [8001, 8002], {"channel:Microsoft-Windows-NTLM/Operational", "registry:ntlm_audit_outgoing",
                          "registry:ntlm_audit_incoming"}),
    ("product: windows, service: applocker", [8004],
     {"channel:Microsoft-Windows-AppLocker/EXE and DLL", "external:applocker-policy-and-application-identity-service"}),
    ("product: windows, service: applocker", [8007, 8022],
     {"channel:Microsoft-Windows-AppLocker/MSI and Script", "channel:Microsoft-Windows-AppLocker/Packaged app-Execution",
      "external:applocker-policy-and-application-identity-service"}),
    ("product: windows, service: powershell", [4104],
     {"channel:Microsoft-Windows-PowerShell/Operational", "registry:ps_scriptblock_logging"}),
]


@pytest.mark.parametrize("logsource, event_ids, expected", WHEN_EVENT_IDS)
def test_requirements_follow_the_rules_event_ids(tmp_path, logsource, event_ids, expected):
    _, res = _resolve(tmp_path, logsource, "EventID: [" + ", ".join(map(str, event_ids)) + "]")
    general = [need for need in res.needs if need.event_id is None]
    primary = next(o for o in general[0].options if o.primary)
    assert set(primary.requirements) == expected


# --------------------------------------------------------------------------- 5. empty ComputerResults (gpresult)

@pytest.mark.parametrize("computer, has_results", [
    ("  <ComputerResults />\n", False),
    ("  <ComputerResults></ComputerResults>\n", False),
    ("  <ComputerResults>\n  </ComputerResults>\n", False),
    ("", False),
    (None, True),
])
def test_empty_computer_results_have_no_results(tmp_path, computer, has_results):
    text = gpxml.rsop(gpxml.auditing(gpxml.audit_setting("Audit Logon", LOGON, 3)), computer=computer)
    snap = read_policy(gpxml.write(tmp_path, "gpresult.xml", text), "gpresult")
    assert snap.has_computer_results is has_results
    assert any("without elevation" in w for w in snap.warnings) is not has_results
    assert (LOGON in snap.audit) is has_results


# --------------------------------------------------------------------------- 6. force option precedence (gpresult)

@pytest.mark.parametrize("settings, expected", [
    ([(1, 0), (2, 1)], False),   # the winning GPO (precedence 1) disables it
    ([(2, 1), (1, 0)], False),   # document order does not matter
    ([(2, 0), (1, 1)], True),
    ([(1, 1), (3, 0), (2, 0)], True),
    ([(3, 1)], True),
])
def test_force_option_takes_the_winning_gpo(tmp_path, settings, expected):
    items = [gpxml.security_option(FORCE, number, precedence) for precedence, number in settings]
    snap = read_policy(gpxml.write(tmp_path, "gpresult.xml", gpxml.rsop(gpxml.security(*items))), "gpresult")
    assert snap.force_subcategory is expected


# --------------------------------------------------------------------------- 7. ListBox ExplicitValue (gpresult)

MODULE_LOGGING = ("Turn on Module Logging", "Windows Components/Windows PowerShell")
HARDENED_UNC = ("Hardened UNC Paths", "Network/Network Provider")
UNC = [("\\\\*\\NETLOGON", "RequireMutualAuthentication=1,RequireIntegrity=1"),
       ("\\\\*\\SYSVOL", "RequireMutualAuthentication=1,RequireIntegrity=1")]

LIST_BOX_CASES = [
    # explicit lists name each entry (the value name) and give its data: the names are the entries
    (HARDENED_UNC, "Hardened UNC Paths:", UNC, True, "\\\\*\\NETLOGON,\\\\*\\SYSVOL"),
    (MODULE_LOGGING, "Module Names", [("*", "1")], True, "*"),
    (MODULE_LOGGING, "Module Names", [("Microsoft.PowerShell.*", "1"), ("PSReadLine", "1")], True,
     "Microsoft.PowerShell.*,PSReadLine"),
    # plain lists: the data is the entry
    (MODULE_LOGGING, "Module Names", [(None, "*")], False, "*"),
    (MODULE_LOGGING, "Module Names", [("ignored", "Microsoft.PowerShell.*")], False, "Microsoft.PowerShell.*"),
    (MODULE_LOGGING, "Module Names", [("*", None)], False, "*"),
]


@pytest.mark.parametrize("policy_id, box, elements, explicit, expected", LIST_BOX_CASES)
def test_list_box_entries(tmp_path, policy_id, box, elements, explicit, expected):
    name, category = policy_id
    doc = gpxml.gpo_report(gpxml.registry(gpxml.policy(name, category, parts=gpxml.list_box(box, elements, explicit))))
    snap = read_policy(gpxml.write(tmp_path, "gpo.xml", doc), "gpresult")
    (pol,) = snap.registry_policies
    assert pol.settings == ((box, expected),)


@pytest.mark.parametrize("elements, explicit, status", [
    ([("*", "1")], True, "met"),
    ([("PSReadLine", "*")], True, "missing"),   # an explicit list whose only entry is PSReadLine
    ([(None, "*")], False, "met"),
])
def test_module_names_decide_module_logging(tmp_path, elements, explicit, status):
    resolution, _ = _resolve(tmp_path, "product: windows, service: powershell", "EventID: 4103")
    doc = gpxml.gpo_report(gpxml.registry(gpxml.policy(*MODULE_LOGGING, parts=gpxml.list_box(
        "Module Names", elements, explicit))))
    PolicyDiff(KB, read_policy(gpxml.write(tmp_path, "gpo.xml", doc), "gpresult")).apply(resolution)
    assert resolution.requirements["registry:ps_module_logging"].status == status


# --------------------------------------------------------------------------- 8. merge order (policy)

HEADER = "Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value"
LABEL = {1: "Success", 2: "Failure", 3: "Success and Failure"}


def _audit_csv(tmp_path, name: str, guid: str, value: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER.split(","))
    writer.writerow(["", "System", "Audit Logon", guid, LABEL[value], "", value])
    path = tmp_path / name
    path.write_text(out.getvalue(), encoding="utf-8-sig")
    return str(path)


@pytest.mark.parametrize("inputs, winner", [
    # (input kind, SettingValue for Logon) in command-line order; winner: index of the input that wins
    ([("csv", 1), ("csv", 2)], 1),              # same rank: the later one
    ([("csv", 2), ("csv", 1)], 1),
    ([("csv", 1), ("csv", 2), ("csv", 3)], 2),
    ([("rsop", 1), ("csv", 2)], 0),             # gpresult outranks a single GPO whatever the order
    ([("csv", 2), ("rsop", 1)], 1),
    ([("rsop", 1), ("rsop", 3)], 1),
])
def test_merge_later_input_wins_within_a_rank(tmp_path, inputs, winner):
    snaps = []
    for index, (kind, value) in enumerate(inputs):
        if kind == "csv":
            path = _audit_csv(tmp_path, f"audit{index}.csv", LOGON, value)
        else:
            path = gpxml.write(tmp_path, f"gpresult{index}.xml",
                               gpxml.rsop(gpxml.auditing(gpxml.audit_setting("Audit Logon", LOGON, value))))
        snaps.append(read_policy(path, "gpresult"))
    merged = merge(snaps)
    assert merged.audit[LOGON].value == inputs[winner][1]
    assert merged.audit[LOGON].source == snaps[winner].inputs[0].path
    disagreements = {v for _, v in inputs} != {inputs[winner][1]}
    assert bool(merged.conflicts) is disagreements
    if disagreements:
        assert merged.conflicts[-1].split("; ")[-1].startswith(f"{snaps[winner].inputs[0].path} wins")


# --------------------------------------------------------------------------- 9. force option emitted (emit)

@pytest.mark.parametrize("force, emitted", [(1, False), (0, True), (None, True)])
def test_force_option_emitted_unless_the_policy_enables_it(cli, tmp_path, force, emitted):
    _rule(tmp_path, "product: windows, service: security", "EventID: 5140")
    items = [gpxml.security_option(FORCE, force)] if force is not None else [
        gpxml.security_option(LSA + "\\NoLMHash", 1)]
    doc = gpxml.rsop(gpxml.security(*items), gpxml.auditing(gpxml.audit_setting("Audit File Share", FILE_SHARE, 2)))
    out = tmp_path / "out"
    result = cli(tmp_path / "rule.yml", "--gpresult", gpxml.write(tmp_path, "gpresult.xml", doc), "--emit", out,
                 "-f", "json", "-o", tmp_path / "report.json")
    assert result.exit_code == 1, result.stderr
    # the audit change is there either way: File Share success is missing
    assert f'/subcategory:"{FILE_SHARE}" /success:enable' in (out / "auditpol.cmd").read_text()
    registry = (out / "registry.reg").read_text(encoding="utf-8")
    assert ('"SCENoApplyLegacyAuditPolicy"=dword:00000001' in registry) is emitted
    assert ("Force audit policy subcategory settings" in (out / "gpo.md").read_text()) is emitted
    # said for what it is (it unblinds nothing on its own), and not again among the templates
    assert ("makes the advanced audit policy changes take effect over legacy category settings" in registry) is emitted
    if emitted:
        assert (out / "gpo.md").read_text().count("Force audit policy subcategory settings") == 1


# --------------------------------------------------------------------------- found by tools/mutation.py

SCRIPT_BLOCK_KEY = "SOFTWARE\\Policies\\Microsoft\\Windows\\PowerShell\\ScriptBlockLogging"


@pytest.mark.parametrize("data, status, reason", [
    (1, "met", "registry values set by policy"),
    (0, "missing", "registry values set to other data by policy"),
    (None, "missing", "not configured by policy"),
])
def test_registry_pol_values_decide_an_administrative_template(tmp_path, data, status, reason):
    """A GPO's registry.pol shows no policy names, only the values behind them: they decide the policy."""
    resolution, _ = _resolve(tmp_path, "product: windows, service: powershell", "EventID: 4104")
    entries = [("SOFTWARE\\Policies\\Microsoft\\Windows\\EventLog\\Security", "MaxSize", 196608)]
    if data is not None:
        entries.append((SCRIPT_BLOCK_KEY, "EnableScriptBlockLogging", data))
    path = tmp_path / "registry.pol"
    path.write_bytes(gpxml.registry_pol(entries))
    PolicyDiff(KB, read_policy(str(path), "gpresult")).apply(resolution)
    req = resolution.requirements["registry:ps_scriptblock_logging"]
    assert (req.status, req.reason) == (status, reason)


@pytest.mark.parametrize("other, rid", [("audit", f"audit:{LOGON}:success"),
                                        ("registry", "registry:ps_scriptblock_logging")])
def test_an_input_with_settings_outweighs_a_gpresult_without_computer_results(tmp_path, other, rid):
    """gpresult run without elevation shows nothing of the machine: what another input shows is still used."""
    blind = read_policy(gpxml.write(tmp_path, "user-only.xml", gpxml.rsop(computer="")), "gpresult")
    if other == "audit":
        resolution, _ = _resolve(tmp_path, "product: windows, service: security", "EventID: 4624")
        second = read_policy(_audit_csv(tmp_path, "audit.csv", LOGON, 1), "auditpol")
    else:
        resolution, _ = _resolve(tmp_path, "product: windows, service: powershell", "EventID: 4104")
        path = tmp_path / "registry.pol"
        path.write_bytes(gpxml.registry_pol([(SCRIPT_BLOCK_KEY, "EnableScriptBlockLogging", 1)]))
        second = read_policy(str(path), "gpresult")
    for snapshots, status in (([blind], "unknown"), ([blind, second], "met")):
        merged = merge(snapshots)
        assert merged.has_computer_results is False
        PolicyDiff(KB, merged).apply(resolution)
        req = resolution.requirements[rid]
        assert req.status == status, req.reason


SECURITY = "product: windows, service: security"
DETAILED_SHARE = "{0CCE9244-69AE-11D9-BED3-505054503030}"


def _check_rules(tmp_path, rules: list[tuple[str, str, str, str]], snapshot):
    """[(name, logsource, detection, level)] -> resolution with the diff applied."""
    loaded = []
    for name, logsource, detection, level in rules:
        (rule,) = _rule(tmp_path, logsource, detection, name)
        loaded.append(dataclasses.replace(rule, level=level))
    resolution = resolve(loaded, KB)
    PolicyDiff(KB, snapshot).apply(resolution)
    return resolution


def _audit_snapshot(tmp_path, settings: dict[str, int], force: int | None = 1, legacy: dict[str, int] | None = None):
    items = [gpxml.audit_setting("Audit", guid, value) for guid, value in settings.items()]
    security = [gpxml.security_option(FORCE, force)] if force is not None else []
    security += [gpxml.legacy_audit(key, value) for key, value in (legacy or {}).items()]
    extensions = [gpxml.auditing(*items)] if items else []
    if security:
        extensions.append(gpxml.security(*security))
    return read_policy(gpxml.write(tmp_path, "gpresult.xml", gpxml.rsop(*extensions)), "gpresult")


@pytest.mark.parametrize("logsource, detection, coverage", [
    ("product: windows, category: no_such_category", "Image|endswith: '\\a.exe'", "unknown"),   # no guide
    (SECURITY, "EventID: 4999", "unknown"),      # only an EventID nothing produces
    (SECURITY, "EventID: 528", "unknown"),       # only a pre-Vista EventID
    (SECURITY, "EventID: 4624", "usable"),
    (SECURITY, "EventID: [4624, 5145]", "partial"),
])
def test_coverage_with_a_policy(tmp_path, logsource, detection, coverage):
    resolution = _check_rules(tmp_path, [("r", logsource, detection, "high")], _audit_snapshot(tmp_path, {LOGON: 3}))
    (res,) = resolution.rules
    assert (res.coverage, res.partial) == (coverage, coverage == "partial")


def test_without_a_policy_every_rule_is_not_checked(tmp_path):
    resolution = _check_rules(tmp_path, [("a", SECURITY, "EventID: [4624, 5145]", "high"),
                                         ("b", "product: windows, category: no_such_category", "Image: x", "low")], None)
    assert [(r.coverage, r.partial) for r in resolution.rules] == [("not_checked", False)] * 2
    assert {r.status for r in resolution.requirements.values()} == {"not_checked"}


@pytest.mark.parametrize("settings, force, legacy, mode, origin, words", [
    ({LOGON: 3}, 1, {}, "advanced", "advanced audit policy", "the policy enables"),
    ({LOGON: 3}, None, {}, "advanced", "advanced audit policy", "Windows' default applies to"),
    ({LOGON: 3}, 1, {"AuditLogonEvents": 1}, "advanced", "advanced audit policy", "legacy category settings in the "
                                                                                 "input are ignored"),
    ({LOGON: 2}, 0, {"AuditLogonEvents": 1}, "legacy_overrides", "legacy category policy", "override"),
    ({FILE_SHARE: 3}, 0, {"AuditLogonEvents": 1}, "legacy_overrides", "legacy category policy", "override"),
    ({}, None, {"AuditLogonEvents": 1}, "legacy", "legacy Audit logon events", "only legacy category"),
])
def test_effective_audit_says_which_settings_apply(tmp_path, settings, force, legacy, mode, origin, words):
    snapshot = _audit_snapshot(tmp_path, settings, force, legacy)
    resolution = _check_rules(tmp_path, [("r", SECURITY, "EventID: 4624", "high")], snapshot)
    diff = PolicyDiff(KB, snapshot)
    assert diff.audit.mode == mode and words in diff.audit.explanation
    req = resolution.requirements[f"audit:{LOGON}:success"]
    assert req.status == "met"   # Logon success: set by the advanced or by the legacy setting
    assert req.reason.startswith(f"{origin} ({snapshot.inputs[0].path}): ")
    if FILE_SHARE in settings:
        assert diff.audit.origin[FILE_SHARE] == "advanced audit policy"


def test_ranking_counts_high_and_critical_rules(tmp_path):
    rules = [(f"r{i}", SECURITY, "EventID: 5145", level) for i, level in enumerate(("high", "critical", "low"))]
    resolution = _check_rules(tmp_path, rules, _audit_snapshot(tmp_path, {LOGON: 3}))
    ranked = rank_missing(resolution)
    # success and failure of Detailed File Share (5145 is logged for both): one change, counted together
    assert [(r.requirement.id, r.rules, r.high_critical, r.unblinds, r.unblinds_high_critical) for r in ranked] == [
        (f"audit:{DETAILED_SHARE}:failure", 3, 2, 3, 2), (f"audit:{DETAILED_SHARE}:success", 3, 2, 3, 2)]


def test_a_requirement_lists_every_rule_that_needs_it(tmp_path):
    """Two guides needing the same requirement share one Requirement that names both rules."""
    resolution = resolve(_rule(tmp_path, "product: windows, service: powershell", "EventID: 4103", "a")
                         + _rule(tmp_path, "product: windows, category: ps_module", "Payload|contains: x", "b"), KB)
    assert list(resolution.requirements["registry:ps_module_logging"].rules) == ["a", "b"]


def test_unmapped_events_of_rules_resolved_from_the_memo(tmp_path):
    """The second rule with the same log source and EventIDs is resolved from the memo: its unmapped
    EventIDs are still recorded."""
    rules = _rule(tmp_path, SECURITY, "EventID: [4624, 4999]", "a") + _rule(tmp_path, SECURITY,
                                                                           "EventID: [4624, 4999]", "b")
    resolution = resolve(rules, KB)
    assert [r.unmapped_event_ids for r in resolution.rules] == [[4999], [4999]]
    (entry,) = resolution.unmapped_events.values()
    assert [r.id for r in entry.rules] == ["a", "b"]


@pytest.mark.parametrize("detection, label, notes, sacl", [
    ("EventID: 4624", "EventID 4624 (An account was successfully logged on.)", [None], [False]),
    # no object named: File System, Kernel Object, Registry (never Removable Storage), each with its SACL
    # as a requirement of its own (no note needed)
    ("EventID: 4663", "EventID 4663 (An attempt was made to access an object.)", [None] * 3, [True] * 3),
])
def test_security_need_labels_and_notes(tmp_path, detection, label, notes, sacl):
    _, res = _resolve(tmp_path, SECURITY, detection)
    (need,) = res.needs
    assert need.label == label
    assert [o.notes for o in need.options] == notes
    assert [any(rid.startswith("sacl:") for rid in o.requirements) for o in need.options] == sacl


def test_security_rule_without_event_id_says_why(tmp_path):
    _, res = _resolve(tmp_path, SECURITY, "SubjectUserName: admin")
    assert res.needs == [] and res.notes == ["rule names no EventID: which audit subcategories it needs "
                                             "cannot be told"]


@pytest.mark.parametrize("detection, options", [
    # a rule whose fields are exactly those of the Security-log alternative still gets it
    ("TargetObject: x\nDetails: y\nImage: z\nProcessId: 1", 2),
    ("TargetObject: x\nNewName: y", 1),       # NewName only Sysmon has
])
def test_alternatives_by_the_fields_a_rule_reads(tmp_path, detection, options):
    _, res = _resolve(tmp_path, REGISTRY_EVENT, detection)
    (need,) = res.needs
    assert len(need.options) == options


@pytest.mark.parametrize("logsource, event_ids, unmapped", [
    ("product: aws, service: cloudtrail", [4624], []),        # the guide lists no events: none is unmapped
    ("product: windows, service: taskscheduler", [106, 9999], [9999]),
])
def test_event_ids_are_checked_only_against_guides_that_list_events(tmp_path, logsource, event_ids, unmapped):
    _, res = _resolve(tmp_path, logsource, "EventID: [" + ", ".join(map(str, event_ids)) + "]")
    assert res.guide is not None and res.unmapped_event_ids == unmapped



# one setting of each kind, in a gpresult's extensions, with a value 1 or 2 (the two inputs agree or not)
def _one_setting(kind: str, value: int) -> str:
    if kind == "audit":
        return gpxml.auditing(gpxml.audit_setting("Audit Logon", LOGON, value))
    if kind == "legacy":
        return gpxml.security(gpxml.legacy_audit("AuditLogonEvents", value))
    if kind == "registry value":
        return gpxml.security(gpxml.security_option(LSA + "\\LmCompatibilityLevel", value + 3))
    if kind == "force":   # 1: enabled, 2: disabled
        return gpxml.security(gpxml.security_option(FORCE, 2 - value))
    if kind == "event log":
        return gpxml.security(f'        <q1:EventLog>{gpxml._origin(1)}<q1:Name>MaximumLogSize</q1:Name><q1:SettingNumber>'
                              f'{value * 65536}</q1:SettingNumber><q1:Log>Security</q1:Log></q1:EventLog>\n')
    return gpxml.registry(gpxml.policy("Turn on Module Logging", "Windows Components/Windows PowerShell",
                                       "Enabled" if value == 1 else "Disabled"))


CONFLICT_LABELS = {"audit": f"audit {LOGON}", "legacy": "legacy audit AuditLogonEvents",
                   "registry value": f"registry value {LSA}\\LmCompatibilityLevel", "event log": "event log Security",
                   "policy": "policy 'Turn on Module Logging' (Windows Components/Windows PowerShell)",
                   "force": "'force audit policy subcategory settings' (SCENoApplyLegacyAuditPolicy)"}


@pytest.mark.parametrize("kind", sorted(CONFLICT_LABELS))
@pytest.mark.parametrize("first, second, why", [
    ("gpo_report", "gpo_report", "same rank, the later input on the command line wins"),
    ("rsop", "gpo_report", "gpresult RSoP (what the machine applied) outranks a single GPO"),
    ("gpo_report", "rsop", "gpresult RSoP (what the machine applied) outranks a single GPO"),
])
@pytest.mark.parametrize("values", [(1, 1), (1, 2)])
def test_merge_records_each_disagreement_once_with_its_reason(tmp_path, kind, first, second, why, values):
    """Every kind of setting: inputs that agree give no conflict; inputs that disagree give one line naming
    both files, both values, the winner and why it wins."""
    paths = []
    for index, (shape, value) in enumerate(zip((first, second), values)):
        build = gpxml.rsop if shape == "rsop" else gpxml.gpo_report
        paths.append(gpxml.write(tmp_path, f"{index}-{shape}.xml", build(_one_setting(kind, value))))
    merged = merge([read_policy(p, "gpresult") for p in paths])
    if values[0] == values[1]:
        assert merged.conflicts == []
        return
    winner = paths[0] if first == "rsop" and second != "rsop" else paths[1]
    loser = paths[1] if winner == paths[0] else paths[0]
    (line,) = [c for c in merged.conflicts if c.startswith(CONFLICT_LABELS[kind] + ": ")]
    assert len(merged.conflicts) == (2 if kind == "force" else 1)   # the force option is also a registry value
    assert line.startswith(f"{CONFLICT_LABELS[kind]}: {loser} sets ")
    assert f", {winner} sets " in line and line.endswith(f"; {winner} wins ({why})")
    if kind == "force":
        shown = {paths[0]: "enabled", paths[1]: "disabled"}
        assert f"{loser} sets {shown[loser]}, {winner} sets {shown[winner]};" in line


def _live_auditpol(tmp_path) -> str:
    """'auditpol /get /category:* /r' output (no Setting Value column): the live state."""
    path = tmp_path / "live.csv"
    path.write_text("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting\r\n"
                    f"WS042,System,Logon,{LOGON},Success and Failure,\r\n", encoding="utf-8")
    return str(path)


def _input(tmp_path, kind: str) -> str:
    if kind == "live":
        return _live_auditpol(tmp_path)
    if kind == "csv":
        return _audit_csv(tmp_path, "audit.csv", LOGON, 1)
    if kind == "legacy gpresult":
        return gpxml.write(tmp_path, "legacy.xml", gpxml.rsop(gpxml.security(gpxml.legacy_audit("AuditLogonEvents", 3))))
    if kind == "dc gpresult":
        computer = ("  <ComputerResults>\n    <Name>CORP\\DC01$</Name>\n    <SecurityGroup><SID xmlns=\"http://www.microsoft"
                    ".com/GroupPolicy/Types\">S-1-5-21-1004336348-1177238915-682003330-516</SID></SecurityGroup>\n"
                    + gpxml.auditing(gpxml.audit_setting("Audit Logon", LOGON, 3)) + "  </ComputerResults>\n")
        return gpxml.write(tmp_path, "dc.xml", gpxml.rsop(computer=computer))
    return gpxml.write(tmp_path, "empty.xml", gpxml.rsop(computer="  <ComputerResults />\n"))   # unelevated


@pytest.mark.parametrize("inputs, computer_results, legacy_kept, dc_evidence", [
    (["csv", "legacy gpresult"], True, True, False),
    (["legacy gpresult", "csv"], True, True, False),
    (["legacy gpresult", "live"], True, False, False),   # the live state already shows the legacy policy's effect
    (["live", "csv"], True, None, False),
    (["unelevated gpresult", "csv"], False, None, False),
    (["csv", "unelevated gpresult"], False, None, False),
    (["csv", "dc gpresult"], True, None, True),
    (["dc gpresult", "live"], True, None, True),
])
def test_merge_flags_legacy_policy_and_role_evidence(tmp_path, inputs, computer_results, legacy_kept, dc_evidence):
    merged = merge([read_policy(_input(tmp_path, kind), "auditpol" if kind in ("csv", "live") else "gpresult")
                    for kind in inputs])
    assert merged.has_computer_results is computer_results
    dropped = [w for w in merged.warnings if w.startswith("legacy category audit settings")]
    if legacy_kept is None:
        assert merged.legacy_audit == {} and dropped == []
    else:
        assert bool(merged.legacy_audit) is legacy_kept and bool(dropped) is not legacy_kept
    sids = [sid for sid, _ in merged.role_evidence.get("sids", [])]
    assert sids == (["S-1-5-21-1004336348-1177238915-682003330-516"] if dc_evidence else [])


def test_merge_keeps_the_later_sysmon_config_and_the_audit_rules(tmp_path):
    """Two Sysmon configurations: the later wins, said in one conflict line. Linux audit rules beside a Windows
    input: kept whole, in a copy (merging never changes the snapshot it was given)."""
    from conftest import SAMPLES

    events = list(KB.sysmon_events.values())
    second = tmp_path / "second.xml"
    second.write_bytes((SAMPLES / "sysmon" / "partial-config.xml").read_bytes())
    configs = [read_policy(str(SAMPLES / "sysmon" / "partial-config.xml"), "sysmon", events),
               read_policy(str(second), "sysmon", events)]
    auditd = read_policy(str(SAMPLES / "auditd" / "server-baseline.rules"), "auditd")
    rules_before = list(auditd.auditd.rules)
    merged = merge(configs + [auditd, read_policy(_audit_csv(tmp_path, "a.csv", LOGON, 1), "auditpol")])
    assert merged.sysmon is configs[1].sysmon
    assert [c for c in merged.conflicts if c.startswith("Sysmon configuration: ")] == [
        f"Sysmon configuration: {configs[0].sysmon.source} and {second} both given; {second} wins (the later input)"]
    assert merged.auditd.rules == rules_before and merged.auditd.rules is not auditd.auditd.rules
    assert merged.auditd.sources == auditd.auditd.sources and merged.auditd.enabled == auditd.auditd.enabled
    assert auditd.auditd.rules == rules_before
