"""Event 4661 on SAM objects: which subcategory writes it depends on the machine's role, and it needs Handle
Manipulation as well.

Microsoft Learn event-4661.md: "Subcategories: Audit Directory Service Access and Audit SAM"; "Required Server
Roles: For an Active Directory object, the domain controller role is required. For a SAM object, there is no
required role."; "This event generates only if Success auditing is enabled for the Audit Handle Manipulation
subcategory." audit-directory-service-access.md: "This subcategory makes sense only on domain controllers."
"""
from __future__ import annotations

from pathlib import Path

import pytest

from logsource_checker import knowledge
from logsource_checker.engine import CheckOptions, check
from logsource_checker.report import build

KB = knowledge.load(use_cache=False)
SUB = {sub.name: sub.guid for sub in KB.subcategories.values()}
HANDLE = f"audit:{SUB['Handle Manipulation']}:success"
ROLE_DC = "role:dc"
SAM_RULES = [
    "rules/windows/builtin/security/win_security_account_discovery.yml",          # ObjectType SAM_USER / SAM_GROUP
    "rules/windows/builtin/security/win_security_susp_net_recon_activity.yml",    # SAM_USER / SAM_GROUP
    "rules/windows/builtin/security/win_security_password_policy_enumerated.yml",  # ObjectServer SAM
]
AUDIT_CSV = "audit_msft-baseline_win10-1909_computer.csv"


def _4661_options(result):
    (res,) = result.resolution.rules
    (need,) = [n for n in res.needs if n.event_id == 4661]
    return res, {o.name: set(o.requirements) for o in need.options}


@pytest.mark.parametrize("path", SAM_RULES, ids=[Path(p).stem for p in SAM_RULES])
def test_4661_needs_handle_manipulation_with_either_producer(corpus_rules, path):
    result = check(CheckOptions(paths=[str(corpus_rules / path)], use_cache=False))
    _, options = _4661_options(result)
    assert set(options) == {"SAM + Handle Manipulation", "Directory Service Access + Handle Manipulation"}
    assert all(HANDLE in reqs for reqs in options.values())
    sam = options["SAM + Handle Manipulation"]
    assert f"audit:{SUB['SAM']}:success" in sam and ROLE_DC not in sam
    assert ROLE_DC in options["Directory Service Access + Handle Manipulation"]


# (--role, status of the "domain controller" requirement with a policy input that shows no role)
ROLES = [("dc", "met"), ("server", "missing"), ("client", "missing"), (None, "unknown")]


@pytest.mark.parametrize("role,status", ROLES, ids=[str(r) for r, _ in ROLES])
def test_directory_service_access_serves_sam_objects_only_on_a_dc(corpus_rules, policy_samples, role, status):
    result = check(CheckOptions(paths=[str(corpus_rules / SAM_RULES[0])], use_cache=False, role=role,
                                auditpol=[str(policy_samples / AUDIT_CSV)]))
    req = result.resolution.requirements[ROLE_DC]
    assert req.kind == "machine_role" and req.status == status
    assert ("domain controller" in (req.reason or "")) and (role is None) == ("assumed" in req.reason)


def test_detected_dc_meets_the_role(corpus_rules, policy_samples):
    result = check(CheckOptions(paths=[str(corpus_rules / SAM_RULES[0])], use_cache=False,
                                gpresult=[str(policy_samples / "gpresult_x_childdc_adlab_2023.xml")]))
    req = result.resolution.requirements[ROLE_DC]
    assert req.status == "met" and "detected" in req.reason


def _audit_csv(folder: Path, names: list[str]) -> Path:
    lines = ["Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,"
             "Setting Value"]
    for name in names:
        sub = KB.subcategories[SUB[name]]
        lines.append(f",System,{sub.gpo_name},{sub.guid.lower()},Success and Failure,,3")
    path = folder / "audit.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# (audited subcategories, role, coverage of the SAM_USER rule)
COVERAGE = [
    (["SAM", "Handle Manipulation"], "client", "usable"),
    (["SAM", "Handle Manipulation"], "dc", "usable"),
    (["SAM"], "client", "blind"),                                          # 4661 needs Handle Manipulation
    (["Directory Service Access", "Handle Manipulation"], "client", "blind"),  # DSA: not off a DC
    (["Directory Service Access", "Handle Manipulation"], "dc", "unknown"),    # on a DC: the AD objects' SACL
]


@pytest.mark.parametrize("audited,role,coverage", COVERAGE, ids=[f"{'+'.join(a)}@{r}" for a, r, _ in COVERAGE])
def test_sam_rule_coverage_by_role(corpus_rules, tmp_path, audited, role, coverage):
    result = check(CheckOptions(paths=[str(corpus_rules / SAM_RULES[0])], use_cache=False, role=role,
                                auditpol=[str(_audit_csv(tmp_path, audited))]))
    (res,) = result.resolution.rules
    assert res.coverage == coverage


def test_the_role_is_never_a_change(corpus_rules, tmp_path):
    """A machine's role is not a setting: no plan, recommendation or emitted file asks for it."""
    result = check(CheckOptions(paths=[str(corpus_rules / p) for p in SAM_RULES], use_cache=False, role="client",
                                auditpol=[str(_audit_csv(tmp_path, ["Logon"]))]))
    report = build(result)
    assert result.resolution.requirements[ROLE_DC].status == "missing"
    assert all(ROLE_DC not in p["changes"] for p in report["plans"])
    assert all(r["requirement"] != ROLE_DC for r in report["recommendations"])
    assert all(r.requirement.id != ROLE_DC for r in result.ranked)


DS_OBJECT = """\
title: DS object handle
status: test
level: high
logsource:
  product: windows
  service: security
detection:
  selection:
    EventID: 4661
    ObjectServer: DS
    ObjectType: '%{bf967aba-0de6-11d0-a285-00aa003049e2}'
  condition: selection
"""


@pytest.mark.parametrize("role,status", ROLES, ids=[str(r) for r, _ in ROLES])
def test_active_directory_objects_only_on_a_dc(policy_samples, tmp_path, role, status):
    """event-4661.md: 'For an Active Directory object, the domain controller role is required.'"""
    (tmp_path / "ds.yml").write_text(DS_OBJECT, encoding="utf-8")
    result = check(CheckOptions(paths=[str(tmp_path / "ds.yml")], use_cache=False, role=role,
                                auditpol=[str(policy_samples / AUDIT_CSV)]))
    _, options = _4661_options(result)
    assert list(options) == ["Directory Service Access + Handle Manipulation"]
    assert ROLE_DC in options["Directory Service Access + Handle Manipulation"]
    assert result.resolution.requirements[ROLE_DC].status == status
