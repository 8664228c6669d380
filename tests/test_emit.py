"""``--emit`` (issue 5): every artefact is parsed back and compared with what the data says it must hold.

The expected values for the project's samples are worked out by hand from samples/gpresult/advanced-audit.xml,
samples/rules and the guide data (see EXPECTED below, with the reasoning next to each value). Then the
properties: applying the emitted audit.csv makes every emitted audit requirement met, emitting twice gives
byte-identical files, an outcome already enabled is never re-set or lowered, no command disables anything,
Windows line endings where Windows needs them, and the Sysmon merge keeps everything else of the config.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from pathlib import Path

import pytest
from lxml import etree

from conftest import SAMPLES
from logsource_checker import knowledge
from logsource_checker.emit import emit_all, merge_sysmon_config, plan_changes
from logsource_checker.engine import CheckOptions, check
from logsource_checker.policy import read_policy
from logsource_checker.report import build
from logsource_checker.writer import MANIFEST

RULES = SAMPLES / "rules"
GPRESULT = SAMPLES / "gpresult" / "advanced-audit.xml"
SYSMON = SAMPLES / "sysmon" / "partial-config.xml"
KB = knowledge.load()

# subcategory GUIDs the sample rules reach (mappings/auditpol.yaml)
LOGON = "{0CCE9215-69AE-11D9-BED3-505054503030}"             # 4624 success, 4625 failure (primary)
FILE_SHARE = "{0CCE9224-69AE-11D9-BED3-505054503030}"        # 5140 success and failure
DETAILED_SHARE = "{0CCE9244-69AE-11D9-BED3-505054503030}"    # 5145 success and failure
OTHER_OBJECT = "{0CCE9227-69AE-11D9-BED3-505054503030}"      # 4698 success
SYSTEM_EXTENSION = "{0CCE9211-69AE-11D9-BED3-505054503030}"  # 4697 success
PROCESS_CREATION = "{0CCE922B-69AE-11D9-BED3-505054503030}"  # 4688 success
REGISTRY = "{0CCE921E-69AE-11D9-BED3-505054503030}"          # 4657 success (registry_set without Sysmon)

HKLM = "HKEY_LOCAL_MACHINE\\"
CMDLINE = {(HKLM + "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\\Audit",
            "ProcessCreationIncludeCmdLine_Enabled"): 1}
PS = HKLM + "SOFTWARE\\Policies\\Microsoft\\Windows\\PowerShell\\"
MODULE_LOGGING = {(PS + "ModuleLogging", "EnableModuleLogging"): 1, (PS + "ModuleLogging\\ModuleNames", "*"): "*"}
SCRIPT_BLOCK = {(PS + "ScriptBlockLogging", "EnableScriptBlockLogging"): 1}
FORCE = {(HKLM + "System\\CurrentControlSet\\Control\\Lsa", "SCENoApplyLegacyAuditPolicy"): 1}
TASKS = "Microsoft-Windows-TaskScheduler/Operational"

# advanced-audit.xml: the Advanced Audit settings the sample gpresult applies (GPO 'Workstation Audit Baseline')
GPRESULT_AUDIT = [
    ("Audit Credential Validation", "{0CCE923F-69AE-11D9-BED3-505054503030}", 2),
    ("Audit Security Group Management", "{0CCE9237-69AE-11D9-BED3-505054503030}", 1),
    ("Audit User Account Management", "{0CCE9235-69AE-11D9-BED3-505054503030}", 3),
    ("Audit Process Creation", "{0CCE922B-69AE-11D9-BED3-505054503030}", 1),
    ("Audit Logoff", "{0CCE9216-69AE-11D9-BED3-505054503030}", 1),
    ("Audit Logon", LOGON, 3),
    ("Audit Special Logon", "{0CCE921B-69AE-11D9-BED3-505054503030}", 1),
    ("Audit Detailed File Share", DETAILED_SHARE, 3),     # not in the gpresult: added, success and failure
    ("Audit File Share", FILE_SHARE, 3),                  # gpresult: failure (2); success added -> 3
    # "Audit Filtering Platform Packet Drop" is set to No Auditing (0) by the gpresult: not written
    ("Audit Other Object Access Events", OTHER_OBJECT, 3),
    ("Audit Registry", REGISTRY, 1),                      # not in the gpresult: registry_set, native plan
    ("Audit Audit Policy Change", "{0CCE922F-69AE-11D9-BED3-505054503030}", 1),
    ("Audit Sensitive Privilege Use", "{0CCE9228-69AE-11D9-BED3-505054503030}", 3),
    ("Audit Security State Change", "{0CCE9210-69AE-11D9-BED3-505054503030}", 1),
    ("Audit Security System Extension", SYSTEM_EXTENSION, 1),
    ("Audit System Integrity", "{0CCE9212-69AE-11D9-BED3-505054503030}", 3),
]
SYSMON_PLAN_AUDIT = [  # in the data's order (by category)
    ("Audit Logon", LOGON, 3),                         # 4624 (success) and 4625 (failure)
    ("Audit Detailed File Share", DETAILED_SHARE, 3),  # 5145, logged for both outcomes
    ("Audit File Share", FILE_SHARE, 3),               # 5140, logged for both outcomes
    ("Audit Other Object Access Events", OTHER_OBJECT, 1),  # 4698
    ("Audit Security System Extension", SYSTEM_EXTENSION, 1),  # 4697
]
# the native plan adds 4688 for process_creation and 4657 for registry_set (no Sysmon)
NO_POLICY_AUDIT = [("Audit Process Creation", PROCESS_CREATION, 1)] + SYSMON_PLAN_AUDIT[:4] + [
    ("Audit Registry", REGISTRY, 1)] + SYSMON_PLAN_AUDIT[4:]

def _with_defaults(additions):
    """audit.csv rows without a policy input: the additions, plus every Windows default of every role (the role is
    only assumed, and importing the file into a GPO clears what it leaves out), in the data's order."""
    values = {guid: 0 for guid in KB.subcategories}
    for sub in KB.subcategories.values():
        for role in ("client", "server", "dc"):
            values[sub.guid] |= {"none": 0, "success": 1, "failure": 2, "success_and_failure": 3}[sub.defaults[role]]
    for _, guid, value in additions:
        values[guid] |= value
    return [(KB.subcategories[g].gpo_name, g, v) for g, v in values.items() if v]


EXPECTED = {
    # The gpresult forces subcategory settings, enables Script Block Logging, audits Logon, Other Object
    # Access and Security System Extension; it sets File Share to failure only and lacks Detailed File Share.
    # It sets no Sysmon config, so the native plan is emitted (no Sysmon): 4688 is audited already, the
    # command line is disabled (enabled here); registry_set needs Audit Registry. Order: the plan's (most
    # rules unblinded, high/critical next, lower volume, then the change's key). The TaskScheduler
    # channel is off by default and the gpresult does not enable it.
    "gpresult": {
        "args": ["--gpresult", GPRESULT],
        "auditpol": [(FILE_SHARE, True, False), (DETAILED_SHARE, True, True), (REGISTRY, True, False)],
        "audit_csv": GPRESULT_AUDIT,
        "registry": {**CMDLINE, **MODULE_LOGGING},
        "channels": {TASKS: None},
        "sysmon": [],
        "force": False,
    },
    # No policy: the native plan, everything the rules need except channels on by default (System,
    # PowerShell/Operational) and what only Sysmon can serve (the renamed-binary rule reads OriginalFileName).
    # Logon first (2 rules), then 1-rule changes with a high/critical rule by volume (low: System Extension,
    # Other Object Access; high: File Share, Process Creation, Detailed File Share), then Registry (medium rule).
    "no-policy": {
        "args": [],
        "auditpol": [(LOGON, True, True), (SYSTEM_EXTENSION, True, False), (OTHER_OBJECT, True, False),
                     (FILE_SHARE, True, True), (PROCESS_CREATION, True, False), (DETAILED_SHARE, True, True),
                     (REGISTRY, True, False)],
        "audit_csv": _with_defaults(NO_POLICY_AUDIT),
        "registry": {**FORCE, **CMDLINE, **MODULE_LOGGING, **SCRIPT_BLOCK},
        "channels": {TASKS: None},
        "sysmon": [],
        "force": True,
    },
    # A Sysmon config alone: the sysmon plan; every audit and registry setting is missing, as without a
    # policy; the config collects process creation (exclude with a condition) but not registry events (an
    # empty include), so RegistryEvent is added (Sysmon runs: the primary option wins the tie with 4657).
    "sysmon-config": {
        "args": ["--sysmon-config", SYSMON],
        "auditpol": [(LOGON, True, True), (SYSTEM_EXTENSION, True, False), (OTHER_OBJECT, True, False),
                     (FILE_SHARE, True, True), (DETAILED_SHARE, True, True)],
        "audit_csv": _with_defaults(SYSMON_PLAN_AUDIT),
        "registry": {**FORCE, **MODULE_LOGGING, **SCRIPT_BLOCK},
        "channels": {TASKS: None},
        "sysmon": [("ProcessCreate", "exclude", 1), ("NetworkConnect", "include", 3),
                   ("ProcessAccess", "include", 0), ("FileCreate", "include", 2), ("DnsQuery", "exclude", 0),
                   ("ImageLoad", "include", 0), ("RegistryEvent", "include", 1)],
        "force": True,
    },
}

# --------------------------------------------------------------------------- strict parsers

AUDITPOL_CMD_RE = re.compile(r'^auditpol /set /subcategory:"(\{[0-9A-F]{8}(?:-[0-9A-F]{4}){3}-[0-9A-F]{12}\})"'
                             r"( /success:enable)?( /failure:enable)?$")
AUDITPOL_PS1_RE = re.compile(r"^& auditpol\.exe /set /subcategory:'(\{[0-9A-F]{8}(?:-[0-9A-F]{4}){3}-[0-9A-F]{12}\})'"
                             r"( /success:enable)?( /failure:enable)?$")
PS1_FIXED = {"$ErrorActionPreference = 'Stop'", "$failed = 0", "if ($LASTEXITCODE -ne 0) { $failed++ }",
             'if ($failed -gt 0) { Write-Error "$failed auditpol commands failed"; exit 1 }'}
COMMENT_RE = re.compile(r"^(?P<category>[^/]+(?:/[^/ ]+)?) / (?P<name>.+): volume (?P<volume>low|medium|high|unknown); "
                        r"unblinds (?P<alone>\d+) rules? on its own, (?P<all>\d+) with every change here; "
                        r"needed by (?P<needed>\d+) rules?$")
WRITE_WARNING_RE = re.compile(r"^Write-Warning '[A-Za-z0-9 .,:;/()_=+#@-]+'$")
WEVTUTIL_RE = re.compile(r'^wevtutil sl "([A-Za-z0-9 ._/\-]+)" /e:true(?: /ms:(\d+))?$')
REG_KEY_RE = re.compile(r"^\[(HKEY_LOCAL_MACHINE\\[A-Za-z0-9 ._\\\-]+)\]$")
REG_VALUE_RE = re.compile(r'^"([^"\\]+)"=(?:dword:([0-9a-f]{8})|"((?:[^"\\]|\\\\)*)")$')
AUDIT_CSV_HEADER = ["Machine Name", "Policy Target", "Subcategory", "Subcategory GUID", "Inclusion Setting",
                    "Exclusion Setting", "Setting Value"]
INCLUSION = {0: "No Auditing", 1: "Success", 2: "Failure", 3: "Success and Failure"}


def parse_auditpol_cmd(text: str) -> list[tuple[str, bool, bool, dict]]:
    """(GUID, success, failure, comment fields) per command; any other line is a REM comment, blank, or
    the ``echo WARNING:`` line of the command that follows (its text in the fields as ``warning``)."""
    lines = text.split("\r\n")
    assert lines[0] == "@echo off"
    out = []
    for i, line in enumerate(lines[1:], 1):
        if not line or line.startswith("REM ") or line.startswith("echo WARNING: "):
            continue
        m = AUDITPOL_CMD_RE.match(line)
        assert m, f"not a strict auditpol command: {line!r}"
        warning = None
        if lines[i - 1].startswith("echo WARNING: "):
            warning, i = lines[i - 1].removeprefix("echo WARNING: "), i - 1
        comment = COMMENT_RE.match(lines[i - 1].removeprefix("REM "))
        assert comment, f"command without its comment: {lines[i - 1]!r}"
        out.append((m.group(1), bool(m.group(2)), bool(m.group(3)), {**comment.groupdict(), "warning": warning}))
    return out


def parse_auditpol_ps1(text: str) -> list[tuple[str, bool, bool]]:
    out = []
    for line in text.split("\n"):
        if not line or line.startswith("# ") or line in PS1_FIXED or WRITE_WARNING_RE.match(line):
            continue
        m = AUDITPOL_PS1_RE.match(line)
        assert m, f"not a strict auditpol command: {line!r}"
        out.append((m.group(1), bool(m.group(2)), bool(m.group(3))))
    return out


def parse_audit_csv(text: str) -> list[tuple[str, str, int]]:
    """The system subcategory rows (name, upper-case GUID, value); Option: and global SACL rows (kept from an
    input audit.csv) are checked for shape and left out."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == AUDIT_CSV_HEADER
    out = []
    for row in rows[1:]:
        assert len(row) == 7, row
        machine, target, name, guid, inclusion, exclusion, value = row
        if not guid:
            assert name.startswith("Option:") or name.endswith("GlobalSacl"), row
            continue
        assert (target, exclusion) == ("System", "")
        assert inclusion == INCLUSION[int(value)]
        out.append((name, guid.upper(), int(value)))
    return out


def parse_reg(text: str) -> dict[tuple[str, str], int | str]:
    lines = text.split("\r\n")
    assert lines[0] == "Windows Registry Editor Version 5.00" and lines[1] == ""
    values: dict[tuple[str, str], int | str] = {}
    key = None
    for line in lines[2:]:
        if not line or line.startswith(";"):
            continue
        m = REG_KEY_RE.match(line)
        if m:
            key = m.group(1)
            continue
        m = REG_VALUE_RE.match(line)
        assert m and key, f"not a .reg key or value line: {line!r}"
        name = m.group(1)
        values[(key, name)] = int(m.group(2), 16) if m.group(2) is not None else m.group(3).replace("\\\\", "\\")
    return values


def parse_channels(text: str) -> dict[str, int | None]:
    lines = text.split("\r\n")
    assert lines[0] == "@echo off"
    out = {}
    for line in lines[1:]:
        if not line or line.startswith("REM ") or line.startswith("echo WARNING: "):
            continue
        m = WEVTUTIL_RE.match(line)
        assert m, f"not a strict wevtutil command: {line!r}"
        out[m.group(1)] = int(m.group(2)) if m.group(2) else None
    return out


def parse_sysmon(data: bytes) -> tuple[etree._Element, list[tuple[str, str, int]]]:
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    assert root.tag == "Sysmon" and re.fullmatch(r"\d+\.\d+", root.get("schemaversion") or "")
    filters = []
    for filtering in root.iter("EventFiltering"):
        for node in filtering:
            if not isinstance(node.tag, str):
                continue
            inner = [n for n in node if isinstance(n.tag, str)] if node.tag == "RuleGroup" else [node]
            assert inner, "a RuleGroup with no filter left in it"
            for f in inner:
                filters.append((f.tag, f.get("onmatch"), len([c for c in f if isinstance(c.tag, str)])))
    return root, filters


# --------------------------------------------------------------------------- helpers

def emit(cli, out: Path, *args) -> dict[str, bytes]:
    result = cli(RULES, *args, "--emit", out, "--format", "json", "--no-cache")
    summary = result.json()["summary"]
    # the samples are all mapped: exit 1 exactly when a policy input leaves a recommended change missing
    assert result.exit_code == (1 if summary["policy_checked"] and summary["missing_requirements"] else 0), \
        result.stderr
    # the writer's manifest (tests/test_writer.py) is not an artefact
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != MANIFEST}


def texts(files: dict[str, bytes]) -> dict[str, str]:
    return {name: data.decode("utf-8") for name, data in files.items()}


def audit_csv(path: Path, rows: list[tuple[str, str, int]]) -> Path:
    lines = [",".join(AUDIT_CSV_HEADER)] + [f",System,{n},{g},{INCLUSION[v]},,{v}" for n, g, v in rows]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- expected content on the samples

@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_artefacts_on_the_samples(cli, tmp_path, case):
    want = EXPECTED[case]
    files = emit(cli, tmp_path / "out", *want["args"])
    # audit.rules: a Linux sample rule; sysmon.xml only with Sysmon event types to add (an empty new
    # configuration, applied with `sysmon -c`, would replace the one a machine runs) or a config to merge into
    with_sysmon = bool(want["sysmon"]) or "--sysmon-config" in want["args"]
    assert sorted(files) == ["audit.csv", "audit.rules", "auditpol.cmd", "auditpol.ps1", "channels.cmd", "gpo.md",
                             "registry.reg", "report.json", "report.md"] + (["sysmon.xml"] if with_sysmon else [])
    text = texts(files)
    commands = parse_auditpol_cmd(text["auditpol.cmd"])
    assert [(g, s, f) for g, s, f, _ in commands] == want["auditpol"]
    assert parse_auditpol_ps1(text["auditpol.ps1"]) == want["auditpol"]
    assert parse_audit_csv(text["audit.csv"]) == want["audit_csv"]
    assert parse_reg(text["registry.reg"]) == want["registry"]
    assert parse_channels(text["channels.cmd"]) == want["channels"]
    if with_sysmon:
        root, filters = parse_sysmon(files["sysmon.xml"])
        assert filters == want["sysmon"]
        if not want["args"]:
            assert root.get("schemaversion") == KB.sysmon_meta["schema_version"]
    force_path = KB.registry_policies[KB.force_subcategory_policy].gpo_path
    assert ("## Security Options" in text["gpo.md"]) is want["force"]
    assert (f"`{force_path}`" in text["gpo.md"]) is want["force"]
    for guid, success, failure in want["auditpol"]:
        assert f"`{KB.subcategories[guid].gpo_path}`" in text["gpo.md"]
    for key, name in want["registry"]:
        if (key, name) not in FORCE:
            pol = next(p for p in KB.registry_policies.values()
                       if any(r.value == name and key.endswith(r.key.split("\\", 1)[1]) for r in p.registry))
            assert f"`{pol.gpo_path}`" in text["gpo.md"]


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_comments_give_name_volume_and_unblinds(cli, tmp_path, case):
    files = texts(emit(cli, tmp_path / "out", *EXPECTED[case]["args"]))
    report = json.loads(files["report.json"])
    by_id = {r["id"]: r for r in report["requirements"]}
    for guid, success, failure, comment in parse_auditpol_cmd(files["auditpol.cmd"]):
        sub = KB.subcategories[guid]
        assert (comment["category"], comment["name"], comment["volume"]) == (sub.category, sub.name, sub.volume)
        assert int(comment["alone"]) <= int(comment["all"]) <= int(comment["needed"])
        ids = [f"audit:{guid}:{o}" for o, on in (("success", success), ("failure", failure)) if on]
        assert int(comment["needed"]) == len(set().union(*(by_id[i]["rules"] for i in ids)))
        if len(ids) == 1 and by_id[ids[0]]["unblinds"] is not None:
            # one requirement: the report's own count (rules it makes usable on its own)
            assert int(comment["alone"]) == by_id[ids[0]]["unblinds"]
    for name in ("registry.reg", "channels.cmd", "auditpol.ps1"):
        for line in files[name].splitlines():
            if line.startswith((";", "REM", "#")) and "needed by" in line:
                assert re.search(r"(unblinds \d+ rules? on its own, \d+ with every change here; )?needed by \d+ rules?$",
                                 line), line


def test_gpresult_case_counts(cli, tmp_path):
    """File Share (success) and Detailed File Share each unblind nothing alone: the share rule needs both.
    Audit Registry alone unblinds nothing either: the registry_set rule needs the SACL on the keys as well
    (native plan)."""
    files = texts(emit(cli, tmp_path / "out", "--gpresult", GPRESULT))
    comments = {g: c for g, _, _, c in parse_auditpol_cmd(files["auditpol.cmd"])}
    assert {g: (c["alone"], c["all"], c["needed"]) for g, c in comments.items()} == {
        FILE_SHARE: ("0", "1", "1"), DETAILED_SHARE: ("0", "1", "1"), REGISTRY: ("0", "1", "1")}
    assert "Module Logging (Windows Components/Windows PowerShell): unblinds 1 rule on its own, 1 with every " \
           "change here; needed by 1 rule" in files["registry.reg"]


# --------------------------------------------------------------------------- properties

@pytest.mark.parametrize("args", [[], ["--gpresult", GPRESULT], ["--sysmon-config", SYSMON],
                                  ["--gpresult", GPRESULT, "--sysmon-config", SYSMON]])
def test_emit_is_idempotent(cli, tmp_path, args):
    first = emit(cli, tmp_path / "out", *args)
    second = emit(cli, tmp_path / "out", *args)
    assert first == second
    other = emit(cli, tmp_path / "elsewhere", *args)
    assert other == first


@pytest.mark.parametrize("args", [[], ["--gpresult", GPRESULT], ["--sysmon-config", SYSMON]])
def test_applying_audit_csv_meets_every_emitted_audit_requirement(cli, tmp_path, monkeypatch, args):
    """Import the emitted audit.csv (it replaces the GPO's advanced audit settings), check again under the
    same plan: nothing of the audit policy is left to emit, and every audit requirement the first run
    emitted is met."""
    plan = "sysmon" if "--sysmon-config" in args else "native"
    out = tmp_path / "out"
    emit(cli, out, *args)
    first = plan_changes(check(CheckOptions(paths=[str(RULES)], use_cache=False,
                                            gpresult=[str(a) for a in args[1:2]] if args[:1] == ["--gpresult"] else [],
                                            sysmon_config=str(SYSMON) if "--sysmon-config" in args else None)))
    emitted = {rid for change in first.audit.values() for rid in change.req_ids}
    assert emitted
    # simulated import: the policy as before, its advanced audit settings replaced by audit.csv
    options = CheckOptions(paths=[str(RULES)], use_cache=False, auditpol=[str(out / "audit.csv")],
                           gpresult=[str(GPRESULT)] if "--gpresult" in args else [], plan=plan)
    applied = read_policy(str(out / "audit.csv"), "auditpol")
    from logsource_checker import engine

    real = engine.read_policies

    def read_policies(opts, kb):
        snapshot = real(CheckOptions(paths=opts.paths, gpresult=opts.gpresult), kb) if opts.gpresult else None
        if snapshot is None:
            return applied
        snapshot.audit = dict(applied.audit)
        return snapshot

    monkeypatch.setattr(engine, "read_policies", read_policies)
    after = check(options)
    statuses = {rid: req.status for rid, req in after.resolution.requirements.items()}
    assert {rid: statuses[rid] for rid in emitted} == dict.fromkeys(emitted, "met")
    assert not plan_changes(after).audit
    # the same through the command line, with the emitted audit.csv as the only policy input
    again = texts(emit(cli, tmp_path / "again", "--auditpol", out / "audit.csv", "--plan", plan))
    assert parse_auditpol_cmd(again["auditpol.cmd"]) == []
    assert "Nothing to change: every audit subcategory the rules need is already enabled." in again["auditpol.cmd"]
    report = json.loads(again["report.json"])
    assert all(r["status"] == "met" for r in report["requirements"] if r["id"] in emitted)


@pytest.mark.parametrize("current,command,merged", [
    (0, (True, True), 3),      # No Auditing: both outcomes enabled
    (1, (False, True), 3),     # success only + failure needed: only /failure:enable, csv 3
    (2, (True, False), 3),     # failure only + success needed: only /success:enable, csv 3
    (3, None, 3),              # already both: nothing to run, the row stays 3
])
def test_only_the_missing_outcome_is_enabled(cli, tmp_path, current, command, merged):
    """Logon is needed for success (4624) and failure (4625) by the sample rules."""
    policy = audit_csv(tmp_path / "policy.csv", [("Audit Logon", LOGON, current),
                                                 ("Audit Special Logon", "{0CCE921B-69AE-11D9-BED3-505054503030}", 1)])
    files = texts(emit(cli, tmp_path / "out", "--auditpol", policy))
    logon = [(s, f) for g, s, f, _ in parse_auditpol_cmd(files["auditpol.cmd"]) if g == LOGON]
    assert logon == ([command] if command else [])
    assert [(s, f) for g, s, f in parse_auditpol_ps1(files["auditpol.ps1"]) if g == LOGON] == logon
    rows = {g: v for _, g, v in parse_audit_csv(files["audit.csv"])}
    assert rows[LOGON] == merged
    assert rows["{0CCE921B-69AE-11D9-BED3-505054503030}"] == 1   # an unrelated current setting is kept


def _csv_rows(data: bytes) -> list[list[str]]:
    from logsource_checker.policy.auditpol import decode_text

    lines = [line for line in decode_text("x", data).splitlines() if line.strip()]
    return [[cell.strip() for cell in row] + [""] * (7 - len(row)) for row in csv.reader(lines[1:])]


CSV_SAMPLES = ["audit_msft-baseline_win10-1909_computer.csv", "audit_dod-stig_server2016_dc.csv",
               "audit_nextinstall_dc-audit.csv", "auditpol_backup_full59_with-options.csv"]


@pytest.mark.parametrize("policy_file", [*CSV_SAMPLES, "gpresult_x_childdc_adlab_2023.xml",
                                         "auditpol_get_r_ws2019-dc_ps-redirect-utf16.csv"])
def test_audit_csv_never_lowers_a_real_policy(cli, tmp_path, policy_samples, policy_file):
    """Round trip: every row of an input audit.csv is written back (Option: and global SACL rows as they were, a
    subcategory row only ever raised); no subcategory is below the effective policy or, where no advanced audit GPO
    clears them today, below Windows' defaults for the machine's role; the commands match the file."""
    path = policy_samples / policy_file
    option = "--gpresult" if path.suffix == ".xml" else "--auditpol"
    files = texts(emit(cli, tmp_path / "out", option, path))
    result = check(CheckOptions(paths=[str(RULES)], use_cache=False,
                                **{option.strip("-"): [str(path)]}))
    before = {g: s.value for g, s in result.audit.settings.items() if g in KB.subcategories}
    if result.audit.defaults_state == "hold":   # importing the file would clear these defaults: written explicitly
        for guid, sub in KB.subcategories.items():
            default = {"none": 0, "success": 1, "failure": 2, "success_and_failure": 3}[sub.defaults[result.role.role]]
            before[guid] = before.get(guid, 0) | default
    written = _csv_rows(files["audit.csv"].encode())
    after = {g: v for _, g, v in parse_audit_csv(files["audit.csv"])}
    assert {g for g, v in before.items() if v} <= set(after)
    for guid, value in before.items():
        assert after.get(guid, 0) | value == after.get(guid, 0), f"{guid}: {value} lowered to {after.get(guid)}"
    if path.name in CSV_SAMPLES:
        rows = _csv_rows(path.read_bytes())
        assert any(r[2].startswith("Option:") for r in rows) is (path.name == CSV_SAMPLES[-1])
        others = [r for r in rows if not r[3]]
        assert [r for r in written if not r[3]] == others           # Option: / SACL rows kept, in order
        for row in (r for r in rows if r[3]):
            (out,) = [w for w in written if w[3].upper() == row[3].upper()]
            if int(out[6]) == int(row[6]):
                assert out == row                                   # an unchanged row is kept as written
            else:
                assert out[:4] == row[:4] and int(out[6]) | int(row[6]) == int(out[6])
        assert len(written) == len(rows) + len(set(after) - {r[3].upper() for r in rows if r[3]})
    for guid, success, failure, _ in parse_auditpol_cmd(files["auditpol.cmd"]):
        current = {g: s.value for g, s in result.audit.settings.items()}.get(guid, 0)
        assert not (success and current & 1) and not (failure and current & 2), "re-enables what is on"
        assert after[guid] | current | success | (2 if failure else 0) == after[guid]


KERBEROS_AS = "{0CCE9242-69AE-11D9-BED3-505054503030}"
CREDENTIAL_VALIDATION = "{0CCE923F-69AE-11D9-BED3-505054503030}"


@pytest.mark.parametrize("args, kerberos_as", [
    ([], 1),                          # no input: the role is only assumed, every role's defaults are written
    (["--role", "client"], 0),        # a client audits no Kerberos by default
    (["--role", "dc"], 1),
    (["--auditpol", "GPO"], 0),       # an advanced audit GPO already clears every default: nothing to keep
])
def test_audit_csv_writes_the_defaults_it_would_clear(cli, tmp_path, args, kerberos_as):
    gpo = audit_csv(tmp_path / "gpo.csv", [("Audit Special Logon", "{0CCE921B-69AE-11D9-BED3-505054503030}", 1)])
    args = [str(gpo) if a == "GPO" else a for a in args]
    rows = {g: v for _, g, v in parse_audit_csv(texts(emit(cli, tmp_path / "out", *args))["audit.csv"])}
    assert rows.get(KERBEROS_AS, 0) == kerberos_as
    assert rows[LOGON] == 3                                       # needed by the rules (and a default)
    assert (CREDENTIAL_VALIDATION in rows) is bool(kerberos_as)   # another DC-only default


def test_audit_csv_keeps_hostile_rows_as_data(cli, tmp_path):
    """Cells of an input row are written back as one CSV cell each, quoted, whatever they hold."""
    path = audit_csv(tmp_path / "in.csv", [("Audit Logon", LOGON, 3)])
    path.write_text(path.read_text() + 'HOST,"A, B",Option:CrashOnAuditFail,,"say ""hi""",,1\r\n'
                    ',,FileGlobalSacl,,,,S:(AU;SA;FA;;;WD)(XA;SA;FA;;;WD;(@User.x == "a,b"))\r\n')
    text = texts(emit(cli, tmp_path / "out", "--auditpol", path))["audit.csv"]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert all(len(r) == 7 for r in rows)
    assert ["HOST", "A, B", "Option:CrashOnAuditFail", "", 'say "hi"', "", "1"] in rows
    assert ["", "", "FileGlobalSacl", "", "", "", 'S:(AU;SA;FA;;;WD)(XA;SA;FA;;;WD;(@User.x == "a,b"))'] in rows
    assert text.count("\r\n") == len(rows) and "\n" not in text.replace("\r\n", "")


def test_nothing_missing_says_so(cli, tmp_path):
    """A policy that provides everything the rules need: every artefact says there is nothing to change."""
    rules = tmp_path / "rules"
    rules.mkdir()
    for name in ("security_failed_logons_admin.yml", "security_share_access.yml"):   # Logon, File Share, Detailed
        (rules / name).write_bytes((RULES / "windows" / name).read_bytes())
    current = [("Audit Logon", LOGON, 3), ("Audit Detailed File Share", DETAILED_SHARE, 3),
               ("Audit File Share", FILE_SHARE, 3)]
    policy = audit_csv(tmp_path / "policy.csv", current)
    policy.write_text(policy.read_text() + ",System,Option:SCENoApplyLegacyAuditPolicy,,Enabled,,1\r\n")
    result = cli(rules, "--auditpol", policy, "--emit", tmp_path / "out", "--format", "json", "--no-cache")
    # every rule is usable: Account Lockout (the other producer of 4625) is missing but not needed
    assert result.exit_code == 0
    assert {r["coverage"] for r in result.json()["rules"]} == {"usable"}
    files = texts({p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()})
    assert parse_auditpol_cmd(files["auditpol.cmd"]) == []
    assert parse_auditpol_ps1(files["auditpol.ps1"]) == []
    assert parse_channels(files["channels.cmd"]) == {}
    assert parse_reg(files["registry.reg"]) == {}
    assert "sysmon.xml" not in files   # nothing to add: no new (empty) configuration that would replace one
    for name, phrase in (("auditpol.cmd", "REM Nothing to change"), ("auditpol.ps1", "# Nothing to change"),
                         ("channels.cmd", "REM Nothing to change"), ("registry.reg", "; Nothing to change"),
                         ("gpo.md", "Nothing to change")):
        assert phrase in files[name], name
    assert "## Security Options" not in files["gpo.md"]
    assert parse_audit_csv(files["audit.csv"]) == current   # the current settings, unchanged


@pytest.mark.parametrize("args", [[], ["--gpresult", GPRESULT], ["--sysmon-config", SYSMON]])
def test_no_command_disables_anything(cli, tmp_path, args):
    files = texts(emit(cli, tmp_path / "out", *args))
    for name in ("auditpol.cmd", "auditpol.ps1", "channels.cmd"):
        for line in files[name].splitlines():
            if line.startswith(("REM", "#")):
                continue
            assert not re.search(r"disable|/remove|/clear|/e:false|/restore|wevtutil (cl|um)", line, re.I), line
    for line in files["registry.reg"].splitlines():
        assert not line.startswith("[-") and "=-" not in line, line
        assert not re.fullmatch(r'".*"=dword:00000000', line), line


@pytest.mark.parametrize("args", [[], ["--gpresult", GPRESULT]])
def test_windows_line_endings_and_ascii(cli, tmp_path, args):
    files = emit(cli, tmp_path / "out", *args)
    for name in ("auditpol.cmd", "channels.cmd", "registry.reg", "audit.csv"):
        data = files[name]
        assert data.count(b"\n") == data.count(b"\r\n") > 0, name
        assert data.endswith(b"\r\n"), name
        data.decode("ascii")
    files["auditpol.ps1"].decode("ascii")


def test_channel_size_comes_from_the_data(tmp_path):
    result = check(CheckOptions(paths=[str(RULES)], use_cache=False))
    kb = result.knowledge
    key = TASKS.casefold()
    kb.channels[key] = dataclasses.replace(kb.channels[key], recommended_max_size_mb=128)
    emit_all(result, build(result, verbose=True), tmp_path)
    text = (tmp_path / "channels.cmd").read_text()
    assert parse_channels(text.replace("\n", "\r\n").replace("\r\r\n", "\r\n")) == {TASKS: 128 * 1024 * 1024}
    assert "maximum size 128 MB" in text
    assert "| 128 MB |" in (tmp_path / "gpo.md").read_text()


# --------------------------------------------------------------------------- Sysmon merge

SYSMON_CASES = {
    # config, elements to add, expected filters after the merge
    "empty include replaced, its group removed with its comment": (
        '<Sysmon schemaversion="4.50">\n  <EventFiltering>\n    <RuleGroup name="" groupRelation="or">\n'
        '      <!-- nothing -->\n      <RegistryEvent onmatch="include"/>\n    </RuleGroup>\n'
        '    <ProcessCreate onmatch="exclude"/>\n  </EventFiltering>\n</Sysmon>\n',
        ["RegistryEvent"], [("ProcessCreate", "exclude", 0), ("RegistryEvent", "exclude", 0)]),
    "group kept when another filter is in it": (
        '<Sysmon schemaversion="4.90">\n  <EventFiltering>\n    <RuleGroup name="" groupRelation="or">\n'
        '      <ImageLoad onmatch="include"/>\n      <DriverLoad onmatch="exclude"/>\n    </RuleGroup>\n'
        '  </EventFiltering>\n</Sysmon>\n',
        ["ImageLoad"], [("DriverLoad", "exclude", 0), ("ImageLoad", "exclude", 0)]),
    "include with conditions elsewhere is kept": (
        '<Sysmon schemaversion="4.90">\n  <EventFiltering>\n    <FileCreate onmatch="include">\n'
        '      <TargetFilename condition="end with">.exe</TargetFilename>\n    </FileCreate>\n'
        '    <PipeEvent onmatch="include"/>\n  </EventFiltering>\n</Sysmon>\n',
        ["PipeEvent"], [("FileCreate", "include", 1), ("PipeEvent", "exclude", 0)]),
    "no EventFiltering at all": (
        '<Sysmon schemaversion="4.90">\n  <HashAlgorithms>sha256</HashAlgorithms>\n</Sysmon>\n',
        ["ProcessCreate", "NetworkConnect"], [("ProcessCreate", "exclude", 0), ("NetworkConnect", "exclude", 0)]),
}


def _element(name: str) -> dict:
    return {"element": name, "event_ids": [1], "rules": 2, "unblinds": 1, "unblinds_all": 2}


def _others(root, names) -> list[bytes]:
    """Every element of the config except the filters named (and their RuleGroups), canonicalised."""
    out = []
    for node in root.iter():
        if not isinstance(node.tag, str) or node.tag in ("Sysmon", "EventFiltering", "RuleGroup"):
            continue
        if any(a.tag in names for a in [node, *node.iterancestors()]):
            continue
        if node.getparent() is not None and node.getparent().tag in ("EventFiltering", "RuleGroup"):
            out.append(etree.tostring(node, method="c14n").strip())
        elif node.getparent() is root:
            out.append(etree.tostring(node, method="c14n").strip())
    return out


@pytest.mark.parametrize("case", sorted(SYSMON_CASES))
def test_sysmon_merge(case):
    config, names, expected = SYSMON_CASES[case]
    merged = merge_sysmon_config(config.encode(), [_element(n) for n in names])
    root, filters = parse_sysmon(merged)
    assert sorted(filters) == sorted(expected)
    original = etree.fromstring(config.encode())
    assert root.get("schemaversion") == original.get("schemaversion")
    assert _others(root, names) == _others(original, names)
    assert merge_sysmon_config(config.encode(), [_element(n) for n in names]) == merged
    for line in merged.decode().splitlines():
        assert line == line.rstrip() or not line.strip(), repr(line)


def test_sysmon_merge_of_the_sample_keeps_everything_else(cli, tmp_path):
    files = emit(cli, tmp_path / "out", "--sysmon-config", SYSMON)
    merged, _ = parse_sysmon(files["sysmon.xml"])
    original = etree.fromstring(SYSMON.read_bytes())
    assert _others(merged, {"RegistryEvent"}) == _others(original, {"RegistryEvent"})
    for tag in ("HashAlgorithms", "CheckRevocation"):
        assert merged.find(tag).text == original.find(tag).text
    comments = [c.text for c in merged.iter(etree.Comment)]
    assert " an include filter without conditions: nothing is logged " not in comments   # went with its group
    assert any("added by logsource_checker: Sysmon event 13; unblinds 1 rule on its own" in c for c in comments)


def test_sysmon_config_that_needs_nothing_is_unchanged():
    config = SYSMON.read_bytes()
    merged = merge_sysmon_config(config, [])
    assert b"nothing to add" in merged
    root, filters = parse_sysmon(merged)
    assert etree.tostring(root, method="c14n") == etree.tostring(etree.fromstring(config), method="c14n")


# --------------------------------------------------------------------------- the whole corpus

@pytest.mark.parametrize("policy", [None, "audit_msft-baseline_win10-1909_computer.csv"])
def test_corpus_artefacts_parse(cli, tmp_path, corpus_rules, policy_samples, policy):
    args = ["--auditpol", policy_samples / policy] if policy else []
    # the sysmon plan, so that every artefact has something in it
    result = cli(corpus_rules, *args, "--plan", "sysmon", "--emit", tmp_path / "out", "--format", "json")
    assert result.exit_code in (0, 1)
    files = texts({p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()})
    commands = parse_auditpol_cmd(files["auditpol.cmd"])
    assert commands and [c[:3] for c in commands] == parse_auditpol_ps1(files["auditpol.ps1"])
    assert all(guid in KB.subcategories for guid, *_ in commands)
    rows = parse_audit_csv(files["audit.csv"])
    assert {g for g, *_ in commands} <= {g for _, g, _ in rows}
    registry = parse_reg(files["registry.reg"])
    known = {(r.key.replace("HKLM\\", HKLM), r.value) for p in KB.registry_policies.values() for r in p.registry}
    assert set(registry) <= known
    channels = parse_channels(files["channels.cmd"])
    # only channels that are off by default are ever enabled: one that is on by default is met by default,
    # with or without a policy input (an audit.csv says nothing about channels)
    assert channels and all(KB.channel(name) is not None and not KB.channel(name).enabled_by_default
                            for name in channels)
    _, filters = parse_sysmon(files["sysmon.xml"].encode())
    elements = {e.element for e in KB.sysmon_events.values() if e.element}
    blocking = {e.element for e in KB.sysmon_events.values() if e.blocking}
    assert filters and all(tag in elements - blocking for tag, _, _ in filters)
    # an exclude is only ever an empty one (collect everything); includes carry the rules' conditions
    assert all(count == 0 if onmatch == "exclude" else onmatch == "include" and count > 0
               for _, onmatch, count in filters)


def test_audit_csv_two_inputs_keep_one_row_per_option(cli, tmp_path):
    """Two audit.csv inputs setting the same audit option: one row, the later input's (as for subcategories);
    global SACL rows of both are kept (Windows merges their ACEs)."""
    first = audit_csv(tmp_path / "a.csv", [("Audit Logon", LOGON, 1)])
    first.write_text(first.read_text() + ",,Option:CrashOnAuditFail,,Enabled,,1\r\n,,FileGlobalSacl,,,,S:(AU;FA;FA;;;WD)\r\n")
    second = audit_csv(tmp_path / "b.csv", [("Audit Logon", LOGON, 2)])
    second.write_text(second.read_text() + ",,Option:CrashOnAuditFail,,Disabled,,0\r\n,,FileGlobalSacl,,,,S:(AU;SA;FA;;;BA)\r\n")
    text = texts(emit(cli, tmp_path / "out", "--auditpol", first, "--auditpol", second))["audit.csv"]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [r for r in rows if r[2].startswith("Option:")] == [["", "", "Option:CrashOnAuditFail", "", "Disabled", "", "0"]]
    assert [r[6] for r in rows if r[2] == "FileGlobalSacl"] == ["S:(AU;FA;FA;;;WD)", "S:(AU;SA;FA;;;BA)"]
    assert {g: v for _, g, v in parse_audit_csv(text)}[LOGON] == 3   # raised, never lowered (the rules need both)


def test_warning_lines_always_name_the_change(cli, tmp_path, corpus_rules):
    """Every visible warning in gpo.md names its change (SACL changes had an empty label)."""
    shared = corpus_rules.parent / "policy-samples" / "gpresult_x_childdc_adlab_2023.xml"
    out = tmp_path / "out"
    result = cli(corpus_rules / "rules" / "windows" / "builtin" / "security", "--gpresult", shared, "--emit", out,
                 "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    gpo = (out / "gpo.md").read_text(encoding="utf-8")
    warnings = [line for line in gpo.splitlines() if line.startswith("- **Warning:**")]
    assert warnings and any("SACL" in line for line in warnings)
    assert not [line for line in warnings if line.startswith("- **Warning:** :")]


# --------------------------------------------------------------------------- the last line of defence
# knowledge.validate refuses unsafe names in the data; emit checks again before a value enters a command

@pytest.mark.parametrize("what, name, unsafe", [
    ("channel", "Microsoft-Windows-TaskScheduler/Operational", False),
    ("channel", "Microsoft-Windows-TaskScheduler/Operational & calc.exe", True),
    ("channel", 'Microsoft-Windows-TaskScheduler/Operational" /e:true', True),
    ("channel", "Microsoft-Windows-TaskScheduler/Operational\r\nwevtutil cl Security", True),
    ("guid", "{0CCE9215-69AE-11D9-BED3-505054503030}", False),
    ("guid", "{0CCE9215-69AE-11D9-BED3-505054503030} & calc", True),
    ("guid", "0CCE9215", True),
])
def test_emit_refuses_unsafe_names_from_the_data(tmp_path, what, name, unsafe):
    from logsource_checker.emit import UnsafeValue

    result = check(CheckOptions(paths=[str(SAMPLES / "rules" / "windows")]))
    kb = result.knowledge = dataclasses.replace(result.knowledge, channels=dict(result.knowledge.channels),
                                                subcategories=dict(result.knowledge.subcategories))  # a private copy
    if what == "channel":
        key = "microsoft-windows-taskscheduler/operational"
        kb.channels[key] = dataclasses.replace(kb.channels[key], name=name)
    else:
        guid = "{0CCE9215-69AE-11D9-BED3-505054503030}"
        kb.subcategories[guid] = dataclasses.replace(kb.subcategories[guid], guid=name)
    report = build(result)
    if unsafe:
        with pytest.raises(UnsafeValue):
            emit_all(result, report, tmp_path / "out")
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    else:
        emit_all(result, report, tmp_path / "out")
        assert name in (tmp_path / "out" / ("channels.cmd" if what == "channel" else "auditpol.cmd")).read_text()


@pytest.mark.parametrize("args, intro", [
    ([], "No policy input was given: every setting the rules need is listed"),
    (["--gpresult", GPRESULT], "Only settings the given policy does not already provide are listed."),
])
def test_gpo_md_intro_warnings_and_the_full_report(cli, tmp_path, args, intro):
    """gpo.md says whether a policy was given; its warning list holds only changes with a warning (each line
    names the change and the warning); report.md beside it has the per-rule table (the verbose report)."""
    files = texts(emit(cli, tmp_path / "out", *args))
    gpo = files["gpo.md"]
    assert intro in gpo
    warning_lines = [line for line in gpo.splitlines() if line.startswith("- **Warning:**")]
    assert warning_lines and all(re.fullmatch(r"- \*\*Warning:\*\* \S.*: \S.*\.", line) for line in warning_lines)
    assert not any(line.endswith(": .") for line in warning_lines)
    report = files["report.md"]
    assert "## Rules" in report and "| Coverage | Rule | Level | Path |" in report
    rules = json.loads(files["report.json"])["rules"]
    assert all(f"| {r['title']} |" in report for r in rules)
