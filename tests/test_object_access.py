"""Object access: the producer of 4656/4658/4660/4663/4670/4661 follows the rule's object; SACL requirements;
joint requirements ("all of"); events logged whatever their subcategory says; pre-Vista EventIDs."""
from __future__ import annotations

import json
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

from logsource_checker import knowledge
from logsource_checker.engine import CheckOptions, check
from logsource_checker.objects import access_mask, negated_selections, sacl_status
from logsource_checker.report import build
from logsource_checker.rules import load_file

KB = knowledge.load(use_cache=False)
SUB = {sub.name: sub.guid for sub in KB.subcategories.values()}
OBJECT_EVENTS = KB.object_access.events


def _write_rule(folder: Path, name: str, detection: str, title: str | None = None) -> Path:
    path = folder / f"{name}.yml"
    path.write_text(textwrap.dedent(f"""\
        title: {title or name}
        id: 0f0e0d0c-0b0a-4909-8807-{abs(hash(name)) % 10**12:012d}
        status: test
        level: high
        logsource:
          product: windows
          service: security
        detection:
        """) + textwrap.indent(textwrap.dedent(detection), "  "), encoding="utf-8")
    return path


def _audit_csv(folder: Path, rows: dict[str, int], extra: str = "") -> Path:
    lines = ["Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value"]
    text = {1: "Success", 2: "Failure", 3: "Success and Failure"}
    for name, value in rows.items():
        sub = KB.subcategories[SUB[name]]
        lines.append(f",System,{sub.gpo_name},{sub.guid.lower()},{text[value]},,{value}")
    path = folder / "audit.csv"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def _run(folder: Path, *auditpol: Path):
    result = check(CheckOptions(paths=[str(folder)], auditpol=[str(p) for p in auditpol], use_cache=False))
    return result, build(result)


def _options(report, event_id):
    (rule,) = report["rules"]
    (need,) = [n for n in rule["needs"] if n["event_id"] == event_id]
    return rule, [(o["name"], o["primary"], set(o["requirements"])) for o in need["options"]]


def _audit(name, outcome="success"):
    return f"audit:{SUB[name]}:{outcome}"


# (EventID, selection lines, the option names in order, the SACL kinds of the first option)
OBJECTS = [
    (4663, "ObjectType: File\nObjectName|contains: '\\AppData\\Roaming\\Signal\\'", ["File System"], {"file"}),
    (4663, "ObjectName|endswith: '\\wceaux.dll'", ["File System"], {"file"}),
    (4656, "ObjectType: Key\nObjectName|endswith: '\\SAM'", ["Registry"], {"registry_key"}),
    (4656, "ObjectType: 'key'", ["Registry"], {"registry_key"}),              # case does not matter
    (4663, "ObjectName: '\\REGISTRY\\MACHINE\\SOFTWARE\\Microsoft\\ADHealthAgent'", ["Registry"], {"registry_key"}),
    (4656, "ObjectType: Process\nAccessMask: '0x1410'", ["Kernel Object"], {"process_object"}),
    (4663, "ObjectName|endswith: '\\lsass.exe'", ["Kernel Object"], {"process_object"}),
    (4656, "ObjectType: Mutant", ["Kernel Object"], {"kernel_object"}),
    (4663, "ObjectType: File\nObjectName|startswith: '\\Device\\CdRom'", ["Removable Storage"], set()),
    (4663, "ObjectName|startswith: '\\Device\\CdRom0\\'", ["Removable Storage"], set()),
    # 4661 needs Handle Manipulation as well (event-4661.md; tests/test_sam_roles.py)
    (4661, "ObjectType: [SAM_USER, SAM_GROUP]", ["SAM + Handle Manipulation",
                                                 "Directory Service Access + Handle Manipulation"], set()),
    (4661, "ObjectServer: 'Security Account Manager'", ["SAM + Handle Manipulation",
                                                        "Directory Service Access + Handle Manipulation"], set()),
    (4661, "ObjectServer: DS\nObjectType: '%{bf967aba-0de6-11d0-a285-00aa003049e2}'",
     ["Directory Service Access + Handle Manipulation"], {"directory_object"}),
    (4670, "ObjectType: Token", ["Authorization Policy Change"], set()),
    (4670, "ObjectType: File", ["File System"], {"file"}),
    (4656, "ObjectType: [File, Key]", ["File System", "Registry"], {"file"}),
]


@pytest.mark.parametrize("event_id, lines, names, sacls", OBJECTS)
def test_producer_follows_the_object(tmp_path, event_id, lines, names, sacls):
    detection = f"selection:\n  EventID: {event_id}\n" + textwrap.indent(lines, "  ") + "\ncondition: selection\n"
    _write_rule(tmp_path, "r", detection)
    _, report = _run(tmp_path)
    rule, options = _options(report, event_id)
    assert [name for name, _, _ in options] == names
    assert sum(primary for _, primary, _ in options) == 1
    kinds = {r["sacl"] for r in report["requirements"] if r["id"] in options[0][2] and r["kind"] == "sacl"}
    assert kinds == sacls
    assert _audit(names[0].split(" + ")[0]) in options[0][2]   # "SAM + Handle Manipulation": SAM first
    assert not any("plausible producers" in n for n in rule["notes"])


@pytest.mark.parametrize("detection, why", [
    ("selection:\n  EventID: 4663\n  ObjectName|contains: '\\Microsoft\\Teams\\Cookies'\ncondition: selection\n",
     "names no ObjectType"),
    ("selection:\n  EventID: 4663\nfilter:\n  ObjectType: File\ncondition: selection and not filter\n",
     "names no ObjectType"),                                        # a negated selection says nothing
    ("selection:\n  EventID: 4663\nfilter_main_x:\n  ObjectType: Key\ncondition: selection and not 1 of filter_*\n",
     "names no ObjectType"),
    ("selection:\n  EventID: 4656\n  ObjectType: 'SC_MANAGER OBJECT'\ncondition: selection\n",
     "object type 'SC_MANAGER OBJECT' is not in mappings/object_access.yaml"),
    ("selection:\n  EventID: 4656\n  ObjectType: SAM_DOMAIN\ncondition: selection\n",
     "is not one that writes EventID 4656"),
])
def test_without_a_usable_object_the_plausible_producers_are_listed(tmp_path, detection, why):
    _write_rule(tmp_path, "r", detection)
    _, report = _run(tmp_path)
    event_id = report["rules"][0]["event_ids"][0]
    rule, options = _options(report, event_id)
    names = [name for name, _, _ in options]
    assert names == ["File System", "Kernel Object", "Registry"]      # never Removable Storage
    (note,) = [n for n in rule["notes"] if "plausible producers" in n]
    assert why in note and "Removable Storage only for objects it alone covers" in note


def test_each_event_gets_the_object_of_its_own_branch(tmp_path):
    _write_rule(tmp_path, "r", """\
        selection_file:
          EventID: 4663
          ObjectType: File
        selection_key:
          EventID: 4656
          ObjectType: Key
        condition: 1 of selection_*
        """)
    _, report = _run(tmp_path)
    assert [n for n, _, _ in _options(report, 4663)[1]] == ["File System"]
    assert [n for n, _, _ in _options(report, 4656)[1]] == ["Registry"]


def test_4658_needs_handle_manipulation_as_well(tmp_path):
    _write_rule(tmp_path, "r", "selection:\n  EventID: 4658\n  ObjectType: File\ncondition: selection\n")
    policy = _audit_csv(tmp_path, {"File System": 1}, "")
    _, report = _run(tmp_path, policy)
    rule, options = _options(report, 4658)
    assert options == [("File System + Handle Manipulation", True,
                        {_audit("File System"), _audit("Handle Manipulation"), "sacl:file:success"})]
    status = {r["id"]: r["status"] for r in report["requirements"]}
    assert status[_audit("Handle Manipulation")] == "missing" and rule["coverage"] == "blind"
    both = _audit_csv(tmp_path, {"File System": 1, "Handle Manipulation": 1},
                      ",,FileGlobalSacl,,,,S:(AU;SA;FRFW;;;WD)\n")
    _, report = _run(tmp_path, both)
    assert report["rules"][0]["coverage"] == "usable"


def test_handle_manipulation_alone_writes_no_4658(tmp_path):
    assert "Handle Manipulation" not in {sub.name for sub, _ in KB.producers[4658]}
    _write_rule(tmp_path, "r", "selection:\n  EventID: 4658\n  ObjectType: File\ncondition: selection\n")
    policy = _audit_csv(tmp_path, {"Handle Manipulation": 3})
    _, report = _run(tmp_path, policy)
    assert report["rules"][0]["coverage"] == "blind"


@pytest.mark.parametrize("event_id, producer", [(4626, "User / Device Claims"), (4627, "Group Membership")])
def test_claims_and_group_membership_need_logon(tmp_path, event_id, producer):
    _write_rule(tmp_path, "r", f"selection:\n  EventID: {event_id}\ncondition: selection\n")
    _, report = _run(tmp_path)
    _, options = _options(report, event_id)
    assert options == [(f"{producer} + Logon", True, {_audit(producer), _audit("Logon")})]


@pytest.mark.parametrize("event_id, regardless", [
    (4715, True), (4719, True), (4817, True), (4906, True), (4908, True), (4912, True),
    (4902, False), (4904, False), (4905, False), (4907, False),
])
def test_audit_policy_change_events_logged_regardless(tmp_path, event_id, regardless):
    _write_rule(tmp_path, "r", f"selection:\n  EventID: {event_id}\ncondition: selection\n")
    policy = _audit_csv(tmp_path, {"Logon": 3})       # Audit Policy Change not configured
    _, report = _run(tmp_path, policy)
    rule = report["rules"][0]
    assert rule["coverage"] == ("usable" if regardless else "blind")
    assert (event_id in KB.always_logged) is regardless
    if regardless:
        assert "audit-audit-policy-change" in (KB.always_logged[event_id].reference or "")
        assert rule["event_ids_produced"] == [event_id] and rule["requirements"] == []


SACLS = [
    ("file", "success", ",,FileGlobalSacl,,,,S:(AU;SA;FRFW;;;WD)\n", "met", "audits success for WD"),
    ("file", "success", ",,FileGlobalSacl,,,,S:(AU;FA;FA;;;WD)\n", "unknown", "audits no success"),
    ("file", "failure", ",,FileGlobalSacl,,,,S:(AU;FA;FA;;;WD)\n", "met", "audits failure"),
    ("file", "success", ",,RegistryGlobalSacl,,,,S:(AU;SA;KA;;;WD)\n", "unknown", "FileGlobalSacl row"),
    ("registry_key", "success", ",,RegistryGlobalSacl,,,,S:(AU;SAFA;KA;;;WD)\n", "met", "RegistryGlobalSacl"),
    ("kernel_object", "success", ",,Option:AuditBaseObjects,,Enabled,,1\n", "met", "AuditBaseObjects is enabled"),
    ("kernel_object", "success", ",,Option:AuditBaseObjects,,Disabled,,0\n", "unknown", "Option:AuditBaseObjects"),
    ("process_object", "success", ",,FileGlobalSacl,,,,S:(AU;SA;FA;;;WD)\n", "unknown", "no policy input shows it"),
    ("directory_object", "success", "", "unknown", "dsacls"),
]


@pytest.mark.parametrize("kind, outcome, rows, status, reason", SACLS)
def test_sacl_status_from_the_inputs(tmp_path, kind, outcome, rows, status, reason):
    from logsource_checker.policy import read_policy

    snap = read_policy(str(_audit_csv(tmp_path, {"File System": 3}, rows)), "auditpol")
    got, why = sacl_status(KB.object_access.sacl_kinds[kind], outcome, snap)
    assert got == status and reason in why


def test_sacl_requirement_in_the_report(tmp_path):
    _write_rule(tmp_path, "r", "selection:\n  EventID: 4663\n  ObjectType: File\ncondition: selection\n")
    policy = _audit_csv(tmp_path, {"File System": 1})
    _, report = _run(tmp_path, policy)
    (sacl,) = [r for r in report["requirements"] if r["kind"] == "sacl"]
    assert (sacl["id"], sacl["sacl"], sacl["status"]) == ("sacl:file:success", "file", "unknown")
    assert "FileGlobalSacl" in sacl["reason"] and sacl["reference"].startswith("https://")
    assert report["rules"][0]["coverage"] == "unknown"    # File System is on; whether the files have a SACL is not


@pytest.mark.parametrize("event_ids, unmapped, note", [
    ([528, 4624], [], "EventID 528 is a pre-Vista ID"),
    ([517, 1102], [], "EventID 517 is a pre-Vista ID"),
    ([528], [528], None),                       # alone it stays unmapped
    ([528, 4625], [528], None),                 # 4625 does not replace 528
])
def test_pre_vista_ids(tmp_path, event_ids, unmapped, note):
    _write_rule(tmp_path, "r", "selection:\n  EventID: [" + ", ".join(map(str, event_ids)) + "]\ncondition: selection\n")
    _, report = _run(tmp_path)
    rule = report["rules"][0]
    assert rule["event_ids_unmapped"] == unmapped
    assert [u["event_id"] for u in report["unmapped"]["event_ids"]] == unmapped
    assert any(n.startswith(note) for n in rule["notes"]) if note else not any("pre-Vista" in n for n in rule["notes"])


def test_negated_selections():
    rule = load_file(str(_write_rule(Path(__import__("tempfile").mkdtemp()), "n", """\
        selection:
          EventID: 4663
        filter_main_a:
          ObjectType: File
        filter_optional_b:
          ObjectType: Key
        other:
          ObjectType: Process
        condition: selection and other and not 1 of filter_main_* and not filter_optional_b
        """))).rules[0]
    assert negated_selections(rule) == {"filter_main_a", "filter_optional_b"}


def test_access_mask_from_the_rules(tmp_path):
    _write_rule(tmp_path, "a", """\
        selection:
          EventID: 4663
          AccessMask: '0x6'
          AccessList|contains: ['%%4417', '%%1537']
        filter:
          AccessMask: '0x80000'
        condition: selection and not filter
        """)
    rules = load_file(str(tmp_path / "a.yml")).rules
    assert access_mask(rules, KB.object_access) == 0x6 | 0x2 | 0x10000


def test_emit_gives_the_sacl_to_set_and_escapes_rule_text(tmp_path, cli):
    rules = tmp_path / "rules"
    rules.mkdir()
    _write_rule(rules, "f", """\
        selection:
          EventID: 4663
          ObjectType: File
          ObjectName|contains: "\\\\Secret`| <b>x</b> & %PATH%"
          AccessList|contains: '%%4417'
        condition: selection
        """)
    out = tmp_path / "out"
    result = cli(rules, "--emit", out, "--format", "json")
    assert result.exit_code == 0, result.stderr
    gpo = (out / "gpo.md").read_text(encoding="utf-8")
    command = "auditpol /resourceSACL /set /type:File /user:{S-1-1-0} /success /access:0x2"
    assert "## SACLs on the audited objects" in gpo and command in gpo
    assert "Global Object Access Auditing\\File system" in gpo
    assert "  - ``contains: \\Secret`| <b>x</b> & %PATH%``\n" in gpo        # a code span, shown literally
    cmd = (out / "auditpol.cmd").read_text(encoding="utf-8")
    assert f"REM {command}" in cmd and "%PATH%" not in cmd and "Secret" not in cmd
    ps1 = (out / "auditpol.ps1").read_text(encoding="utf-8")
    assert "# & auditpol.exe /resourceSACL /set /type:File '/user:{S-1-1-0}' /success /access:0x2" in ps1
    assert not any(line.lstrip().startswith(("auditpol /resourceSACL", "& auditpol.exe /resourceSACL"))
                   for line in (cmd + ps1).splitlines())                 # offered, never run unasked


@pytest.mark.parametrize("change, problem", [
    ("        sacl: file\n", "requires a SACL but the producer names no sacl kind"),
    ("refines: file", "refines unknown class"),
    ("'^\\\\REGISTRY\\\\'", "is not a regular expression"),
    ("'{S-1-1-0}'", "is not a SID in braces"),
])
def test_object_access_data_is_validated(tmp_path, change, problem):
    import shutil

    data = tmp_path / "data"
    for part in ("guides", "mappings", "templates"):
        shutil.copytree(knowledge.data_root() / part, data / part)
    path = data / "mappings" / "object_access.yaml"
    text = path.read_text(encoding="utf-8")
    broken = {"        sacl: file\n": "", "refines: file": "refines: nothing",
              "'^\\\\REGISTRY\\\\'": "'^(\\\\REGISTRY'", "'{S-1-1-0}'": "'Everyone & calc'"}[change]
    assert change in text
    path.write_text(text.replace(change, broken, 1), encoding="utf-8")
    problems = knowledge.validate(knowledge.load(str(data), use_cache=False))
    assert any(problem in p for p in problems), problems


# --------------------------------------------------------------------------- real policies and the corpus

POLICIES = [("--auditpol", "audit_dod-stig_server2016_dc.csv"), ("--auditpol", "audit_msft-baseline_win10-1909_computer.csv"),
            ("--auditpol", "audit_nextinstall_dc-audit.csv"), ("--auditpol", "auditpol_backup_full59_with-options.csv"),
            ("--auditpol", "auditpol_get_r_ws2019-dc_ps-redirect-utf16.csv"),
            ("--gpresult", "gpreport_nsa-shb_dod-win10-stig_computer.xml"),
            ("--gpresult", "gpresult_x_childdc_adlab_2023.xml")]


def _removable_object(rule) -> bool:
    names = [v for _, branches in rule.selections for branch in branches for field, _, values in branch
             if field and field.casefold() == "objectname" for v in values if v]
    return any(v.casefold().startswith("\\device\\cdrom") for v in names)


@pytest.mark.parametrize("option, name", POLICIES)
def test_real_policies_no_rule_usable_through_removable_storage_unless_removable(corpus_rules, policy_samples,
                                                                                 option, name):
    key = "auditpol" if option == "--auditpol" else "gpresult"
    result = check(CheckOptions(paths=[str(corpus_rules)], use_cache=False, **{key: [str(policy_samples / name)]}))
    statuses = {rid: req.status for rid, req in result.resolution.requirements.items()}
    removable = SUB["Removable Storage"]
    seen = 0
    for res in result.resolution.rules:
        for need in res.needs:
            if need.event_id not in OBJECT_EVENTS:
                continue
            seen += 1
            for opt in need.options:
                through_removable = any(rid.startswith(f"audit:{removable}:") for rid in opt.requirements)
                if through_removable:
                    assert _removable_object(res.rule), (res.rule.title, opt.name)
                if through_removable and all(statuses[r] == "met" for r in opt.requirements):
                    assert res.coverage in ("usable", "unknown", "partial"), res.rule.title
    assert seen > 0


def test_corpus_object_access_rules_by_producer(corpus_rules):
    """Prints the object-access rules of the corpus by producer (the README's figure) and checks that every
    option follows the rule's object: a rule with ObjectType Key only gets Registry, Process only Kernel Object,
    File only File System (or Removable Storage on a CD-ROM device)."""
    result = check(CheckOptions(paths=[str(corpus_rules)], use_cache=False))
    by_producer: defaultdict = defaultdict(set)
    rules_with = set()
    fallback = set()
    expect = {"key": {"Registry"}, "process": {"Kernel Object"}, "file": {"File System", "Removable Storage"}}
    for res in result.resolution.rules:
        needs = [n for n in res.needs if n.event_id in OBJECT_EVENTS]
        if not needs:
            continue
        rules_with.add(res.rule.ref)
        if any("plausible producers" in n for n in res.notes):
            fallback.add(res.rule.ref)
        types = {v.casefold() for _, branches in res.rule.selections for branch in branches
                 for field, _, values in branch if field == "ObjectType" for v in values if v}
        for need in needs:
            names = {o.name.split(" + ")[0] for o in need.options}
            for name in names:
                by_producer[name].add(res.rule.ref)
            if len(types) == 1 and next(iter(types)) in expect and res.rule.ref not in fallback:
                assert names <= expect[next(iter(types))], (res.rule.title, names)
    print(f"\n{len(rules_with)} rules on object-access events, {len(fallback)} without a usable object:")
    for name, refs in sorted(by_producer.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"  {len(refs):3} rules can be served by {name}")
    assert by_producer["Removable Storage"] == {res.rule.ref for res in result.resolution.rules
                                                if res.rule.ref in rules_with and _removable_object(res.rule)}
    assert rules_with and len(fallback) < len(rules_with)


def test_corpus_without_policy_exits_0(cli, corpus_rules):
    result = cli(corpus_rules, "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["summary"]["unmapped_event_ids"] == 0


def test_real_auditpol_backup_global_sacls(policy_samples):
    from logsource_checker.policy import read_policy

    path = str(policy_samples / "auditpol_backup_full59_with-options.csv")
    snap = read_policy(path, "auditpol")
    assert set(snap.global_sacls) == {"fileglobalsacl", "registryglobalsacl"}
    assert snap.global_sacls["registryglobalsacl"] == ("S:(AU;FA;KA;;;WD)", path)
    assert snap.audit_options["auditbaseobjects"] == (False, path)
    kinds = KB.object_access.sacl_kinds
    # the sample audits failed access only: a rule that needs successful access is not known to be served
    assert sacl_status(kinds["file"], "failure", snap)[0] == "met"
    assert sacl_status(kinds["file"], "success", snap)[0] == "unknown"
    assert sacl_status(kinds["kernel_object"], "success", snap)[0] == "unknown"


GPTTMPL = """[Unicode]
Unicode=yes
[Version]
signature="$CHICAGO$"
Revision=1
[Registry Values]
MACHINE\\System\\CurrentControlSet\\Control\\Lsa\\AuditBaseObjects=4,{base}
[File Security]
"%SystemRoot%\\system32\\config\\SAM",2,"D:PAR(A;OICI;FA;;;BA)S:PAR(AU;OICISA;FRFW;;;WD)"
"%SystemDrive%\\Public",2,"D:PAR(A;OICI;FA;;;BA)"
[Registry Keys]
"MACHINE\\SOFTWARE\\Secret",2,"D:PAR(A;CI;KA;;;BA)S:(AU;CIFA;KA;;;WD)"
"""


@pytest.mark.parametrize("kind, outcome, base, status, reason", [
    ("kernel_object", "success", 1, "met", "security option AuditBaseObjects is set to 1"),
    ("kernel_object", "success", 0, "unknown", "Audit: Audit the access of global system objects"),
    ("file", "success", 0, "unknown", "audits success on 1 named object(s) (%SystemRoot%\\system32\\config\\SAM)"),
    ("file", "failure", 0, "unknown", "the inputs cannot show the SACL on the files or folders"),
    ("registry_key", "failure", 0, "unknown", "[Registry Keys] of"),
])
def test_sacl_status_from_a_security_template(tmp_path, kind, outcome, base, status, reason):
    from logsource_checker.diff import PolicyDiff
    from logsource_checker.policy import read_policy
    from logsource_checker.resolve import Requirement

    path = tmp_path / "GptTmpl.inf"
    path.write_text(GPTTMPL.format(base=base), encoding="utf-16")
    snap = read_policy(str(path), "gpresult")
    req = Requirement(id=f"sacl:{kind}:{outcome}", kind="sacl", name=kind, success=outcome == "success",
                      failure=outcome == "failure", sacl=kind)
    got, why = PolicyDiff(KB, snap).status(req)
    assert got == status and reason in why, why


def test_policy_json_shows_global_sacls(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    _write_rule(rules, "r", "selection:\n  EventID: 4663\n  ObjectType: Key\ncondition: selection\n")
    policy = _audit_csv(tmp_path, {"Registry": 1},
                        ",,RegistryGlobalSacl,,,,S:(AU;SA;KW;;;WD)\n,,Option:AuditBaseObjects,,Enabled,,1\n")
    _, report = _run(rules, policy)
    assert report["policy"]["global_sacls"] == [{"name": "registryglobalsacl", "sddl": "S:(AU;SA;KW;;;WD)",
                                                 "source": str(policy)}]
    assert report["policy"]["audit_options"] == {"auditbaseobjects": True}
    assert report["rules"][0]["coverage"] == "usable"


@pytest.mark.parametrize("old, new, problem", [
    ("        also_requires: [{audit: '{0CCE9223-69AE-11D9-BED3-505054503030}', success: true}]",
     "        also_requires: [{audit: '{0CCE9FFF-69AE-11D9-BED3-505054503030}', success: true}]",
     "also_requires: audit subcategory {0CCE9FFF-69AE-11D9-BED3-505054503030} not in mappings/auditpol.yaml"),
    ("        also_requires: [{audit: '{0CCE9223-69AE-11D9-BED3-505054503030}', success: true}]",
     "        also_requires: [{channel: Security}]", "also_requires must name audit subcategories"),
])
def test_joint_requirements_are_validated(tmp_path, old, new, problem):
    import shutil

    data = tmp_path / "data"
    for part in ("guides", "mappings", "templates"):
        shutil.copytree(knowledge.data_root() / part, data / part)
    path = data / "mappings" / "auditpol.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    problems = knowledge.validate(knowledge.load(str(data), use_cache=False))
    assert any(problem in p for p in problems), problems


NEGATION_CASES = [
    # (condition, the selections whose object counts): a parenthesised or quantified negation excludes too
    ("selection and not filter", {"selection"}),
    ("selection and not (filter or other)", {"selection"}),
    ("selection and not 1 of filter*", {"selection"}),
    ("not (not selection) and not filter", {"selection"}),
]


@pytest.mark.parametrize("condition, positive", NEGATION_CASES)
def test_object_hints_skip_negated_selections(condition, positive):
    from logsource_checker.objects import negated_selections
    from logsource_checker.rules import LogSource, Rule

    names = ("selection", "filter", "other", "filter_b")
    rule = Rule(path="r.yml", document=0, id="r", title="t", level="high", status="test",
                logsource=LogSource("windows", None, "security"), condition=(condition,),
                selections=tuple((name, ((("ObjectType", (), ("Key",)),),)) for name in names))
    assert set(names) - negated_selections(rule) == positive
