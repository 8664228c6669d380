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
