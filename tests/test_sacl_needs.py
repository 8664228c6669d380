"""SACL requirements on the registry and file guides' Security paths, what SACL a plan asks for, and one change
per SACL (success and failure together), as for an audit subcategory.

Microsoft: Audit Registry / Audit File System generate events only for keys / files whose SACL asks for it
(audit-registry.md, audit-file-system.md), so 4657 / 4663 need a SACL as well as the subcategory.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from logsource_checker import knowledge
from logsource_checker.engine import CheckOptions, check
from logsource_checker.plans import unit_key
from logsource_checker.report import build
from logsource_checker.resolve import Requirement

KB = knowledge.load(use_cache=False)
SUB = {sub.name: sub.guid for sub in KB.subcategories.values()}


def _req(rid: str, kind: str, guid: str | None = None) -> Requirement:
    """A requirement as the resolver makes it: a SACL carries its kind id (``sacl:<kind>:<outcome>``)."""
    return Requirement(id=rid, kind=kind, name=rid, guid=guid, sacl=rid.split(":")[1] if kind == "sacl" else None)


# (first requirement, second requirement, whether they are one change)
UNITS = [
    (_req("sacl:file:success", "sacl"), _req("sacl:file:failure", "sacl"), True),
    (_req("sacl:registry_key:success", "sacl"), _req("sacl:registry_key:failure", "sacl"), True),
    (_req("sacl:file:success", "sacl"), _req("sacl:registry_key:success", "sacl"), False),
    (_req("sacl:kernel_object:failure", "sacl"), _req("sacl:process_object:failure", "sacl"), False),
    (_req(f"audit:{SUB['Registry']}:success", "audit_subcategory", SUB["Registry"]),
     _req(f"audit:{SUB['Registry']}:failure", "audit_subcategory", SUB["Registry"]), True),
    (_req(f"audit:{SUB['Registry']}:success", "audit_subcategory", SUB["Registry"]),
     _req("sacl:registry_key:success", "sacl"), False),
    (_req("sysmon:12", "sysmon_event"), _req("sysmon:13", "sysmon_event"), False),
]


@pytest.mark.parametrize("first,second,same", UNITS, ids=[f"{a.id}~{b.id}" for a, b, _ in UNITS])
def test_one_change_per_sacl_whatever_its_outcomes(first, second, same):
    assert (unit_key(first) == unit_key(second)) is same


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


LSASS_HANDLE = """\
    title: LSASS handle requested or opened
    id: 5b8f1c2e-8a44-4c1e-9d55-0a2b3c4d5e6f
    status: test
    level: high
    logsource:
      product: windows
      service: security
    detection:
      selection:
        EventID: 4656
        ObjectType: File
        ObjectName|endswith: '\\Windows\\NTDS\\ntds.dit'
      condition: selection
    """


def test_a_plan_sets_a_sacl_for_success_and_failure_as_one_change(tmp_path):
    """4656 is written for success and failure: the File System option needs the file SACL for both; the plan
    lists that SACL once, with both outcomes."""
    _write(tmp_path, "ntds", LSASS_HANDLE)
    result = check(CheckOptions(paths=[str(tmp_path)], use_cache=False))
    report = build(result)
    (native,) = [p for p in report["plans"] if p["name"] == "native"]
    sacl_steps = [s for s in native["steps"] if s["kind"] == "sacl"]
    assert len(sacl_steps) == 1, sacl_steps
    assert sorted(sacl_steps[0]["requirements"]) == ["sacl:file:failure", "sacl:file:success"]
    assert sacl_steps[0]["outcomes"] == "S+F"


# --------------------------------------------------------------------------- the guides' Security paths

# (guide log source, the SACL kind its Security alternative needs)
OBJECT_GUIDES = [
    (("windows", "registry_set", None), "registry_key"),
    (("windows", "registry_event", None), "registry_key"),
    (("windows", "registry_add", None), "registry_key"),
    (("windows", "registry_delete", None), "registry_key"),
    (("windows", "file_event", None), "file"),
    (("windows", "file_delete", None), "file"),
    (("windows", "file_access", None), "file"),
]


@pytest.mark.parametrize("logsource,kind", OBJECT_GUIDES, ids=[ls[1] for ls, _ in OBJECT_GUIDES])
def test_security_path_of_an_object_guide_needs_the_sacl(logsource, kind):
    guide = KB.by_logsource[logsource]
    (alt,) = [a for a in guide.enablement if any(s.kind == "audit" for s in a.requires)]
    (audit,) = [s for s in alt.requires if s.kind == "audit"]
    sacls = [s for s in alt.requires if s.kind == "sacl"]
    assert [(s.value, s.success, s.failure) for s in sacls] == [(kind, audit.success, audit.failure)]
    assert 0 < sacls[0].access < 2 ** 32   # the rights a global SACL must audit for this source


@pytest.mark.parametrize("access", ["'0x2'", "0", "-1", "4294967296", "true"])
def test_a_bad_access_mask_is_a_data_problem(tmp_path, access):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(knowledge.data_root() / "guides", root / "guides")
    shutil.copytree(knowledge.data_root() / "mappings", root / "mappings")
    guide = root / "guides" / "windows" / "sysmon" / "registry_set.yaml"
    text = guide.read_text(encoding="utf-8")
    start = text.index("        access: ")
    guide.write_text(text[:start] + f"        access: {access}\n" + text[text.index("\n", start) + 1:],
                     encoding="utf-8")
    kb = knowledge.load(str(root), use_cache=False)
    assert any("registry_set" in p and "access" in p for p in knowledge.validate(kb))


def test_every_alternative_with_a_sacl_subcategory_names_its_sacl():
    """Data invariant (validated too): a subcategory that logs only objects with a SACL never stands alone."""
    for guide in KB.guides:
        for alt in guide.enablement:
            needs_sacl = [s for s in alt.requires if s.kind == "audit" and KB.subcategories[s.value].requires_sacl]
            if needs_sacl:
                assert any(s.kind == "sacl" for s in alt.requires), (guide.path, alt.name)


def test_validation_refuses_a_sacl_subcategory_without_its_sacl():
    import copy
    import dataclasses

    kb = copy.copy(KB)
    guide = KB.by_logsource[("windows", "registry_set", None)]
    alts = tuple(dataclasses.replace(a, requires=tuple(s for s in a.requires if s.kind != "sacl"))
                 for a in guide.enablement)
    kb.guides = [dataclasses.replace(g, enablement=alts) if g is guide else g for g in KB.guides]
    problems = knowledge.validate(kb)
    assert any(guide.path in p and "sacl" in p for p in problems), problems


# (corpus rule, the SACL requirement its Security option needs)
CORPUS_RULES = [
    ("rules/windows/registry/registry_set/registry_set_add_load_service_in_safe_mode.yml", "sacl:registry_key:success"),
    ("rules/windows/registry/registry_delete/registry_delete_runmru.yml", "sacl:registry_key:success"),
    ("rules/windows/file/file_event/file_event_win_anydesk_artefact.yml", "sacl:file:success"),
    ("rules/windows/file/file_delete/file_delete_win_delete_backup_file.yml", "sacl:file:success"),
    ("rules/windows/file/file_access/file_access_win_susp_credhist.yml", "sacl:file:success"),
]


@pytest.mark.parametrize("path,sacl", CORPUS_RULES, ids=[Path(p).stem for p, _ in CORPUS_RULES])
def test_corpus_rule_security_option_needs_the_sacl(corpus_rules, path, sacl):
    result = check(CheckOptions(paths=[str(corpus_rules / path)], use_cache=False))
    (res,) = result.resolution.rules
    security = [o for need in res.needs for o in need.options if "Security" in o.name]
    assert security and all(sacl in o.requirements for o in security)
    assert all(sacl not in o.requirements for need in res.needs for o in need.options if "Security" not in o.name)


# --------------------------------------------------------------------------- what SACL a plan asks for

SAFE_MODE = "rules/windows/registry/registry_set/registry_set_add_load_service_in_safe_mode.yml"
WMI_WRITE = "rules/windows/file/file_event/file_event_win_wmi_persistence_script_event_consumer_write.yml"
CREDHIST = "rules/windows/file/file_access/file_access_win_susp_credhist.yml"

# (corpus rules, the SACL kind, the objects named (the positive selections' object fields; no filter value),
#  rules naming none)
STEP_OBJECTS = [
    ([SAFE_MODE], "registry_key",
     ["contains: \\Control\\SafeBoot\\Minimal\\", "contains: \\Control\\SafeBoot\\Network\\", "endswith: \\(Default)"], 0),
    ([WMI_WRITE], "file", [], 1),
    ([CREDHIST], "file", ["endswith: \\Microsoft\\Protect\\CREDHIST"], 0),
    ([WMI_WRITE, CREDHIST], "file", ["endswith: \\Microsoft\\Protect\\CREDHIST"], 1),
]


def _plan_step(report, kind):
    (native,) = [p for p in report["plans"] if p["name"] == "native"]
    (step,) = [s for s in native["steps"] if s["change"] == f"sacl:{kind}"]
    return step


@pytest.mark.parametrize("paths,kind,objects,unnamed", STEP_OBJECTS, ids=["safe-mode", "wmi", "credhist", "both"])
def test_sacl_step_names_the_objects_the_rules_watch(corpus_rules, paths, kind, objects, unnamed):
    result = check(CheckOptions(paths=[str(corpus_rules / p) for p in paths], use_cache=False, plan="native"))
    step = _plan_step(build(result), kind)
    assert step["objects"] == objects
    assert step["rules_without_object"] == unnamed
    assert step["objects_unnamed"] == KB.object_access.sacl_kinds[kind].objects_unnamed


@pytest.mark.parametrize("fmt,needle", [
    ("text", "\\Control\\SafeBoot\\Minimal\\"),
    ("markdown", "\\Control\\SafeBoot\\Minimal\\"),
    ("terminal", "SafeBoot"),
], ids=["text", "markdown", "terminal"])
def test_reports_say_which_sacl_the_plan_needs(cli, corpus_rules, policy_samples, fmt, needle):
    args = [corpus_rules / SAFE_MODE, corpus_rules / WMI_WRITE,
            "--auditpol", policy_samples / "auditpol_backup_full59_with-options.csv"]
    out = cli(*args, *(["-f", fmt] if fmt != "terminal" else []), "-v").stdout
    assert needle in out
    assert KB.object_access.sacl_kinds["file"].objects_unnamed in out


def test_full59_registry_rules_wait_for_the_registry_sacl(corpus_rules, policy_samples):
    """auditpol_backup_full59 audits Registry (success) and its global registry SACL audits failures only: the
    registry_set rule is no longer usable through 4657 alone; its SACL is unknown and the reason says why."""
    result = check(CheckOptions(paths=[str(corpus_rules / SAFE_MODE)], use_cache=False,
                                auditpol=[str(policy_samples / "auditpol_backup_full59_with-options.csv")]))
    (res,) = result.resolution.rules
    req = result.resolution.requirements["sacl:registry_key:success"]
    assert req.status == "unknown" and "RegistryGlobalSacl" in (req.reason or "")
    assert result.resolution.requirements[f"audit:{SUB['Registry']}:success"].status == "met"
    assert res.coverage == "unknown"


def test_corpus_figures_with_sacls(corpus_rules, policy_samples):
    """Every rule a plan serves through Audit Registry / Audit File System on a registry or file guide also gets
    the SACL in the same plan; prints the figures (pytest -s)."""
    for sample in ("gpresult_x_childdc_adlab_2023.xml", "auditpol_backup_full59_with-options.csv"):
        option = "gpresult" if sample.startswith("gpresult") else "auditpol"
        result = check(CheckOptions(paths=[str(corpus_rules)], use_cache=False, **{option: [str(policy_samples / sample)]}))
        report = build(result)
        print(f"\n{sample}: coverage {report['summary']['coverage']}")
        pairs = {SUB["Registry"]: "sacl:registry_key", SUB["File System"]: "sacl:file"}
        for plan in report["plans"]:
            steps = {s["change"]: s for s in plan["steps"]}
            print(f"  {plan['name']}: {len(plan['steps'])} changes, unblinds {plan['unblinds']}, "
                  f"still blind {plan['still_blind']}")
            for guid, sacl in pairs.items():
                audit = steps.get(f"audit:{guid}")
                if audit is not None:
                    print(f"    {audit['label']}: needed by {audit['needed_by']}, unblinds {audit['unblinds']}; "
                          f"{steps[sacl]['label']}: needed by {steps[sacl]['needed_by']}, unblinds "
                          f"{steps[sacl]['unblinds']}, {len(steps[sacl]['objects'])} objects named, "
                          f"{steps[sacl]['rules_without_object']} rules name none")
        object_guides = {ls for ls, _ in OBJECT_GUIDES}
        for res, entry in zip(result.resolution.rules, report["rules"]):
            if res.rule.logsource.key not in object_guides:
                continue
            for guid, sacl in pairs.items():
                if any(c.startswith(f"audit:{guid}") for c in entry["changes"]):
                    assert any(c.startswith(sacl + ":") for c in entry["changes"]), res.rule.path


# --------------------------------------------------------------------------- the rights a global SACL audits

# (corpus rule, SACL kind, access bits its guide needs: event-4663.md access table; registry: Set Value 0x2,
#  Create Subkey 0x4, DELETE 0x10000; files: WriteData/AddFile 0x2, AppendData/AddSubdirectory 0x4, ReadData 0x1,
#  DeleteChild 0x40)
GUIDE_ACCESS = [
    (SAFE_MODE, "Key", 0x2),
    ("rules/windows/registry/registry_delete/registry_delete_runmru.yml", "Key", 0x10002),
    ("rules/windows/file/file_event/file_event_win_anydesk_artefact.yml", "File", 0x6),
    ("rules/windows/file/file_delete/file_delete_win_delete_backup_file.yml", "File", 0x10040),
    (CREDHIST, "File", 0x1),
]


@pytest.mark.parametrize("path,resource,bits", GUIDE_ACCESS, ids=[Path(p).stem for p, _, _ in GUIDE_ACCESS])
def test_global_sacl_command_audits_the_rights_the_guide_needs(cli, corpus_rules, tmp_path, path, resource, bits):
    """A global SACL emitted for registry_set rules must audit Set Value, or 4657 never comes: the access mask
    carries the rights the guide's Security path needs, not only the AccessMask values Security rules name."""
    out = tmp_path / "out"
    result = cli(corpus_rules / path, "--emit", out, "--plan", "native")
    assert result.exit_code in (0, 1), result.stderr
    text = (out / "auditpol.cmd").read_text(encoding="utf-8")
    import re

    (mask,) = re.findall(rf"/resourceSACL /set /type:{resource} /user:\{{S-1-1-0\}} /success /access:(0x[0-9a-f]+)",
                         text)
    assert int(mask, 16) == bits


HOSTILE = """\
    title: Hostile key
    status: test
    level: high
    logsource:
      product: windows
      category: registry_set
    detection:
      selection:
        TargetObject|contains: "\\\\Run`x` | **b** <img src=x>\\n# heading\\u202e"
      condition: selection
    """


@pytest.mark.parametrize("fmt", ["markdown", "text", "terminal"])
def test_hostile_object_names_stay_one_inert_line(cli, tmp_path, fmt):
    _write(tmp_path, "hostile", HOSTILE)
    out = cli(tmp_path, "--plan", "native", "-v", *(["-f", fmt] if fmt != "terminal" else [])).stdout
    assert "\u202e" not in out
    assert not any(line.startswith("# heading") for line in out.splitlines())
    if fmt == "markdown":
        (line,) = [line for line in out.splitlines() if line.startswith("- SACL on the registry keys")]
        assert "``contains: \\Run`x` | **b** <img src=x> # heading``" in line   # a code span, shown literally


# --------------------------------------------------------------------------- a global SACL in gpresult XML

GLOBAL_SACL = ("        <q4:GlobalSaclSetting><q4:GlobalSaclType>File</q4:GlobalSaclType><q4:SecurityDescriptor>"
               "<q4:SDDL>S:(AU;SA;FA;;;WD)</q4:SDDL></q4:SecurityDescriptor></q4:GlobalSaclSetting>\n")


@pytest.mark.parametrize("document", ["rsop", "gpo_report"])
def test_a_global_sacl_in_gpo_xml_is_not_silently_ignored(corpus_rules, tmp_path, document):
    """Global Object Access Auditing in a gpresult / GPO report (GlobalSaclSetting; no public sample shows its
    values, so it is not read): the input gets a warning naming what would be read instead, and the SACL stays
    unknown rather than being judged from it."""
    import gpxml

    body = gpxml.auditing(gpxml.audit_setting("Audit Registry", SUB["Registry"], 3), GLOBAL_SACL)
    path = gpxml.write(tmp_path, "policy.xml", getattr(gpxml, document)(body))
    result = check(CheckOptions(paths=[str(corpus_rules / SAFE_MODE)], use_cache=False, gpresult=[path]))
    assert any("GlobalSaclSetting" in w and "--auditpol" in w for w in result.snapshot.warnings)
    assert result.resolution.requirements["sacl:registry_key:success"].status == "unknown"


# --------------------------------------------------------------------------- a global SACL is looked at first

REGISTRY_SET_RULE = """\
    title: Run key set
    id: 7c1e2a9b-3d4f-4e5a-8b6c-1d2e3f4a5b6c
    status: test
    level: high
    logsource:
      product: windows
      category: registry_set
    detection:
      selection:
        TargetObject|contains: '\\CurrentVersion\\Run\\'
      condition: selection
"""


# (emitted file, the line that lists the global SACL in place, the line that says /set may update an entry)
GLOBAL_SACL_FILES = [
    ("auditpol.cmd", "REM First list the global SACL in place: auditpol /resourceSACL /view /type:Key",
     "REM /set adds an entry for this trustee or updates the one it has"),
    ("auditpol.ps1", "# First list the global SACL in place: auditpol /resourceSACL /view /type:Key",
     "# /set adds an entry for this trustee or updates the one it has"),
    ("gpo.md", "first list the one in place with `auditpol /resourceSACL /view /type:Key`",
     "`/set` adds an entry for this trustee or updates the one it has"),
]


@pytest.mark.parametrize("name,view,update", GLOBAL_SACL_FILES, ids=[n for n, _, _ in GLOBAL_SACL_FILES])
def test_the_global_sacl_command_says_to_look_at_the_one_in_place(tmp_path, name, view, update):
    """auditpol /resourceSACL /set adds or updates the trustee's entry (Microsoft Learn): before the commented
    command, every emitted file says how to list the global SACL a machine has and that /set may update it."""
    from logsource_checker.cli import app
    from typer.testing import CliRunner

    rules = tmp_path / "rules"
    rules.mkdir()
    _write(rules, "run_key", REGISTRY_SET_RULE)
    out = tmp_path / "out"
    done = CliRunner().invoke(app, [str(rules), "--plan", "native", "--emit", str(out), "--no-cache"])
    assert done.exit_code in (0, 1), done.output
    text = (out / name).read_text(encoding="utf-8")
    assert view in text and update in text
    if name != "gpo.md":   # in the scripts, before the commented command (gpo.md says it on the command's line)
        assert text.index(view) < text.index(update) < text.index("/resourceSACL /set /type:Key")
