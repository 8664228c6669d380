"""Two assessments of the same resolved rules (a fleet's policy groups, a library caller checking two
machines) must not see each other's role volumes or collector verdicts: the role and collection stages
return new records and leave the resolution they were given as it was."""
from __future__ import annotations

import pytest

from logsource_checker.collectors import read_collector
from logsource_checker.diff import PolicyDiff
from logsource_checker.knowledge import load
from logsource_checker.policy import read_policy
from logsource_checker.resolve import resolve
from logsource_checker.roles import decide_role
from logsource_checker.rules import load_paths

AUDIT_CSV = ("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value\n"
             ",System,Audit Logon,{0cce9215-69ae-11d9-bed3-505054503030},Success and Failure,,3\n"
             ",System,Audit Credential Validation,{0cce923f-69ae-11d9-bed3-505054503030},Success and Failure,,3\n"
             ",System,Audit Kerberos Authentication Service,{0cce9242-69ae-11d9-bed3-505054503030},Success and Failure,,3\n")

RULES = {   # name: (logsource, EventIDs)
    "logon": ("service: security", "4624"),
    "ntlm_validation": ("service: security", "4776"),
    "kerberos_tgt": ("service: security", "4768"),
    "logon_and_tgt": ("service: security", "[4624, 4768]"),
}

# (role given, collector file or None), each run on its own and after the other
ASSESSMENTS = {
    "dc, only 4624 forwarded": ("dc", "winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624\n"),
    "dc, System only forwarded": ("dc", "winlogbeat.event_logs:\n  - name: System\n"),
    "client, all of Security forwarded": ("client", "winlogbeat.event_logs:\n  - name: Security\n"),
    "role assumed, no collector": (None, None),
    "server, no collector": ("server", None),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("assess")
    rules = folder / "rules"
    rules.mkdir()
    for name, (logsource, ids) in RULES.items():
        (rules / f"{name}.yml").write_text(
            f"title: {name}\nid: {name}\nlevel: high\nlogsource:\n    product: windows\n    {logsource}\n"
            f"detection:\n    selection:\n        EventID: {ids}\n    condition: selection\n", encoding="utf-8")
    (folder / "audit.csv").write_text(AUDIT_CSV, encoding="utf-8")
    kb = load()
    loaded = load_paths([str(rules)])
    assert not loaded.errors and len(loaded.rules) == len(RULES)
    return folder, kb, loaded.rules


def _inputs(folder, kb, name):
    role_option, collector_text = ASSESSMENTS[name]
    snapshot = read_policy(str(folder / "audit.csv"), "auditpol", vocabulary=kb.policy_vocabulary())
    collectors = []
    if collector_text is not None:
        path = folder / (name.replace(" ", "_").replace(",", "") + ".yml")
        path.write_text(collector_text, encoding="utf-8")
        collectors = [read_collector(str(path))]
    return snapshot, decide_role(snapshot, kb, role_option), collectors


def assess(resolution, kb, snapshot, role, collectors):
    """What engine._check does after resolving, through the pure stages."""
    from logsource_checker.collection import judge_collection
    from logsource_checker.roles import role_volumes

    resolution = role_volumes(resolution, kb, role)
    PolicyDiff(kb, snapshot, role.role).apply(resolution)
    if collectors:
        resolution, _check = judge_collection(resolution, collectors, kb)
    return resolution


def role_and_collection(resolution):
    """The fields the role and collection stages decide."""
    reqs = {rid: (q.volume, q.collected, q.collection, q.status == "not_collected")
            for rid, q in resolution.requirements.items()}
    rules = {r.rule.id: (r.collection_reason, tuple(r.not_collected)) for r in resolution.rules}
    return reqs, rules


def verdicts(resolution):
    """Everything an assessment decides about requirements and rules."""
    reqs = {rid: (q.status, q.reason, q.volume, q.collected, q.collection)
            for rid, q in resolution.requirements.items()}
    rules = {r.rule.id: (r.coverage, r.partial, tuple(r.event_ids_produced), tuple(r.event_ids_missing),
                         r.collection_reason, tuple(r.not_collected)) for r in resolution.rules}
    return reqs, rules


PAIRS = [(a, b) for a in ASSESSMENTS for b in ASSESSMENTS if a != b]


@pytest.mark.parametrize("first, second", PAIRS)
def test_assessments_do_not_leak(world, first, second):
    folder, kb, rules = world
    alone = verdicts(assess(resolve(rules, kb), kb, *_inputs(folder, kb, second)))

    shared = resolve(rules, kb)
    general = {rid: q.volume for rid, q in shared.requirements.items()}
    one = assess(shared, kb, *_inputs(folder, kb, first))
    one_fields = role_and_collection(one)
    two = assess(shared, kb, *_inputs(folder, kb, second))
    assert verdicts(two) == alone                     # the second sees nothing of the first
    assert role_and_collection(one) == one_fields     # and changes nothing the first decided
    # the resolution itself keeps the general volumes and no collector verdict
    assert {rid: q.volume for rid, q in shared.requirements.items()} == general
    assert all(q.collected is None and q.collection is None for q in shared.requirements.values())
    assert all(r.collection_reason is None and not r.not_collected for r in shared.rules)


def test_the_assessments_differ(world):
    """The cases are worth comparing: the role changes volumes and the collectors change verdicts."""
    folder, kb, rules = world
    seen = {name: verdicts(assess(resolve(rules, kb), kb, *_inputs(folder, kb, name))) for name in ASSESSMENTS}
    volumes = {name: {q[2] for q in reqs.values()} for name, (reqs, _) in seen.items()}
    assert "high" in volumes["dc, only 4624 forwarded"] and "high" not in volumes["server, no collector"]
    reasons = {name: {r[4] for r in rules_.values()} for name, (_, rules_) in seen.items()}
    assert reasons["dc, only 4624 forwarded"] == {None, "not_collected"}
    assert reasons["dc, System only forwarded"] == {"not_collected"}
    assert reasons["client, all of Security forwarded"] == {None}
    assert reasons["role assumed, no collector"] == {None}
