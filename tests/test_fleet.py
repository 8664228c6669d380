"""--fleet: every host's policy at once, grouped by effective policy, each group equal to a single run."""
from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from conftest import SAMPLES, shared_dir
from logsource_checker import engine, fleet
from logsource_checker.fleet_report import HOSTS_REQUIREMENTS, HOSTS_RULES, build

RULES = SAMPLES / "rules"
GPRESULT = SAMPLES / "gpresult"
CORPUS_FILES = {   # corpus policy sample -> (host folder name, file name in it)
    "gpresult_x_childdc_adlab_2023.xml": [("dc1", "gpresult.xml"), ("dc2", "rsop-export.xml")],
    "auditpol_get_r_ws2019-dc_ps-redirect-utf16.csv": [("live1", "auditpol.csv")],
    "audit_msft-baseline_win10-1909_computer.csv": [("base1", "audit.csv"), ("base2", "audit.csv")],
}


def _put(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    """A fleet folder: several hosts per shape, folders and flat HOST.<kind>.<ext> files, a broken input, an
    unelevated gpresult, Linux audit rules, and (when the corpus is present) real policy exports."""
    root = tmp_path / "hosts"
    root.mkdir()
    for name in ("ws1", "ws2"):
        _put(GPRESULT / "advanced-audit.xml", root / name / f"{name}-gpresult.xml")
    _put(GPRESULT / "advanced-audit.xml", root / "ws3.corp.example.gpresult.xml")   # flat, a dotted host name
    for name in ("sm1", "sm2"):
        _put(GPRESULT / "advanced-audit.xml", root / name / "gpresult.xml")
        _put(SAMPLES / "sysmon" / "partial-config.xml", root / name / "sysmon.xml")
    for name in ("old1", "old2"):
        _put(GPRESULT / "legacy-only.xml", root / name / "policy.xml")
    for name in ("user1", "user2"):
        _put(GPRESULT / "no-computer-results.xml", root / f"{name}.gpresult.xml")
    _put(SAMPLES / "auditd" / "server-baseline.rules", root / "lin1" / "server-baseline.rules")
    forward = "winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624\n"
    for name in ("fwd1", "fwd2"):   # a collector that forwards one Security event only
        _put(GPRESULT / "advanced-audit.xml", root / name / "gpresult.xml")
        (root / name / "winlogbeat.yml").write_text(forward)
    _put(GPRESULT / "advanced-audit.xml", root / "fwd3.gpresult.xml")
    (root / "fwd3.collector.yml").write_text(forward)
    (root / "broken1").mkdir()
    (root / "broken1" / "gpresult.xml").write_text("this is not XML\n")
    shared = shared_dir()
    samples = shared / "corpus" / "policy-samples" if shared else None
    if samples is not None and samples.is_dir():
        for source, targets in CORPUS_FILES.items():
            if (samples / source).is_file():
                for host, name in targets:
                    _put(samples / source, root / host / name)
    return root


def _single(options: engine.CheckOptions):
    result = engine.check(options)
    return ([res.coverage for res in result.resolution.rules],
            {rid: req.status for rid, req in result.resolution.requirements.items()}, result.role.role,
            [(r.requirement.id, r.rules, r.unblinds, r.unblinds_high_critical) for r in result.ranked])


def _base(role: str | None = None) -> engine.CheckOptions:
    return engine.CheckOptions(paths=[str(RULES)], use_cache=False, role=role)


@pytest.mark.parametrize("role", [None, "server"])
def test_groups_equal_single_runs(hosts: Path, role: str | None) -> None:
    result = fleet.run(_base(role), hosts)
    by_name = {h["name"]: h for h in result.hosts}
    groups = {g.id: g for g in result.groups}
    found, _ = fleet.discover(hosts)
    checked = 0
    for host in found:
        row = by_name[host.name]
        if row["group"] is None:
            continue
        coverage, statuses, single_role, ranked = _single(fleet.host_options(_base(role), host))
        group = groups[row["group"]]
        assert group.coverage == coverage, host.name
        assert [(r.requirement.id, r.rules, r.unblinds, r.unblinds_high_critical) for r in group.ranked] == ranked
        assert group.statuses == statuses, host.name
        assert group.role.role == single_role == row["role"] == (role or single_role), host.name
        checked += 1
    assert checked == len(result.hosts) - 1   # all but broken1
    assert all(g.snapshot is None and g.collectors == [] for g in result.groups)   # only verdicts are kept


def _group_of(result: fleet.FleetResult) -> dict[str, str | None]:
    return {h["name"]: h["group"] for h in result.hosts}


@pytest.mark.parametrize("same", [("ws1", "ws2", "ws3.corp.example"), ("sm1", "sm2"), ("old1", "old2"),
                                  ("user1", "user2"), ("fwd1", "fwd2", "fwd3"), ("dc1", "dc2"), ("base1", "base2")])
def test_same_policy_same_group(hosts: Path, same: tuple[str, ...]) -> None:
    groups = _group_of(fleet.run(_base(), hosts))
    if not all(name in groups for name in same):
        pytest.skip("the corpus policy samples are not present")
    assert len({groups[name] for name in same}) == 1
    assert groups[same[0]] is not None


def test_different_policies_different_groups(hosts: Path) -> None:
    groups = _group_of(fleet.run(_base(), hosts))
    firsts = ["ws1", "sm1", "old1", "user1", "lin1", "fwd1"] + [h for h in ("dc1", "live1", "base1") if h in groups]
    assert len({groups[name] for name in firsts}) == len(firsts)
    assert len({g for g in groups.values() if g is not None}) == len(firsts)


def test_broken_host_listed_and_run_goes_on(hosts: Path) -> None:
    result = fleet.run(_base(), hosts)
    broken = next(h for h in result.hosts if h["name"] == "broken1")
    assert broken["group"] is None and broken["role"] is None
    assert len(broken["errors"]) == 1 and "gpresult.xml" in broken["errors"][0]
    assert all(h["group"] for h in result.hosts if h["name"] != "broken1")


def test_rules_resolved_once_groups_assessed_once(hosts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from logsource_checker import diff, resolve

    calls = {"resolve": 0, "apply": 0}
    real_resolve, real_apply = resolve.resolve, diff.PolicyDiff.apply

    def counting_resolve(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["resolve"] += 1
        return real_resolve(*args, **kwargs)

    def counting_apply(self, resolution):  # noqa: ANN001, ANN202
        calls["apply"] += 1
        return real_apply(self, resolution)

    monkeypatch.setattr(resolve, "resolve", counting_resolve)
    monkeypatch.setattr(diff.PolicyDiff, "apply", counting_apply)
    result = fleet.run(_base(), hosts)
    assert calls == {"resolve": 1, "apply": len(result.groups)}
    assert len(result.groups) < len(result.hosts) - 1


@pytest.mark.parametrize("name, expected", [
    ("web01.gpresult.xml", ("web01", "gpresult")),
    ("web01.corp.local.auditpol.csv", ("web01.corp.local", "auditpol")),
    ("lin7.auditd.rules", ("lin7", "auditd")),
    ("ws9.SYSMON.xml", ("ws9", "sysmon")),
    ("ws9.collector.yml", ("ws9", "collector")),
    ("gpresult.xml", None),            # no host name
    ("web01.xml", None),               # no kind
    ("web01.gpresult", None),          # no extension after the kind
    ("notes.txt", None),
])
def test_flat_names(name: str, expected: tuple[str, str] | None) -> None:
    found = fleet._flat_name(name)
    assert (found if found is None or found[0] else None) == expected


@pytest.mark.parametrize("name, content, kind", [
    ("gpresult.xml", "<Rsop/>", "gpresult"),
    ("audit.csv", "Machine Name,Policy Target\n", "auditpol"),
    ("Sysmon-config.xml", "<Sysmon/>", "sysmon"),
    ("config.xml", "<Sysmon schemaversion='4.90'/>", "sysmon"),
    ("export.xml", "<?xml version='1.0'?><Rsop/>", "gpresult"),
    ("baseline.rules", "-w /etc/passwd -p wa\n", "auditd"),
    ("loaded.txt", "-a always,exit -F arch=b64 -S execve\n", "auditd"),
    ("winlogbeat.yml", "winlogbeat.event_logs: []\n", "collector"),
    ("GptTmpl.inf", "[Unicode]\n", "gpresult"),
    ("notes.txt", "hello\n", None),
    ("sysmon-config.xml", "<?xml version='1.0'?>\n<!-- no root element yet -->", "sysmon"),   # by name
    ("ws1_gpresult_2024.xml", "<Sysmon/>", "gpresult"),            # the name decides over the content
    ("my-audit-rules.rules", "-w /etc/passwd -p wa\n", "auditd"),   # the extension over the 'audit' alias
    ("gpo-backup.xml", "<x/>", "gpresult"),
])
def test_kind_in_host_folder(tmp_path: Path, name: str, content: str, kind: str | None) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert fleet._kind_of(path) == kind


def test_layout_problems_reported(tmp_path: Path) -> None:
    root = tmp_path / "hosts"
    (root / "empty").mkdir(parents=True)
    (root / "two").mkdir()
    for name in ("sysmon-a.xml", "sysmon-b.xml"):
        _put(SAMPLES / "sysmon" / "partial-config.xml", root / "two" / name)
    (root / "odd").mkdir()
    (root / "odd" / "notes.txt").write_text("hello\n")
    (root / "stray.txt").write_text("hello\n")
    (root / ".hidden").write_text("skipped\n")
    found, errors = fleet.discover(root)
    by_name = {h.name: h for h in found}
    assert by_name["empty"].errors == ["no input files"]
    assert "2 Sysmon configurations" in by_name["two"].errors[0]
    assert "notes.txt" in by_name["odd"].errors[0]
    assert len(errors) == 1 and "stray.txt" in errors[0]
    assert sorted(by_name) == ["empty", "odd", "two"]


def test_fingerprint_ignores_paths_not_settings(tmp_path: Path) -> None:
    kb = engine.load_knowledge(_base())
    one = fleet.HostInputs("a", errors=[])
    one.files["gpresult"].append(str(_copy(GPRESULT / "advanced-audit.xml", tmp_path / "a" / "x.xml")))
    two = fleet.HostInputs("b", errors=[])
    two.files["gpresult"].append(str(_copy(GPRESULT / "advanced-audit.xml", tmp_path / "b" / "other-name.xml")))
    three = fleet.HostInputs("c", errors=[])
    three.files["gpresult"].append(str(_copy(GPRESULT / "legacy-only.xml", tmp_path / "c" / "x.xml")))
    prints = []
    for host in (one, two, three):
        snapshot, collectors, role = fleet.read_host(fleet.host_options(_base(), host), kb)
        prints.append(fleet.fingerprint(snapshot, collectors, role, fleet._host_paths(host)))
    assert prints[0] == prints[1] != prints[2]


def test_same_policy_other_security_groups_same_group(hosts: Path) -> None:
    """A host's own security groups (role evidence) do not split a group while the role decided is the same;
    file names of other lengths neither."""
    dc1 = hosts / "dc1" / "gpresult.xml"
    if not dc1.is_file():
        pytest.skip("the corpus policy samples are not present")
    text = dc1.read_bytes()
    sid, other = "-3530825558-1001".encode("utf-16-le"), "-3530825558-1107".encode("utf-16-le")   # a UTF-16 export
    assert sid in text
    (hosts / "dc3").mkdir()
    (hosts / "dc3" / "a-much-longer-gpresult-file-name.xml").write_bytes(text.replace(sid, other))
    _put(SAMPLES / "sysmon" / "partial-config.xml", hosts / "dc3" / "s.sysmon.xml")
    _put(SAMPLES / "sysmon" / "partial-config.xml", hosts / "dc1" / "sysmon-config-of-dc1.xml")
    result = fleet.run(_base(), hosts)
    groups = _group_of(result)
    assert groups["dc3"] == groups["dc1"] != groups["dc2"]
    assert next(h for h in result.hosts if h["name"] == "dc3")["role"] == "dc"


def _copy(source: Path, target: Path) -> Path:
    _put(source, target)
    return target


def test_json_report(cli, hosts: Path) -> None:  # noqa: ANN001
    result = cli(RULES, "--fleet", hosts, "-f", "json", "--no-cache")
    assert result.exit_code == 1   # a host not read
    report = result.json()["fleet"]
    expected = build(fleet.run(_base(), hosts))
    assert report["hosts"] == expected["hosts"]
    assert [g["hosts"] for g in report["groups"]] == [g["hosts"] for g in expected["groups"]]
    size = {g["id"]: len(g["hosts"]) for g in report["groups"]}
    assert sum(size.values()) == report["summary"]["hosts_read"] == len(report["hosts"]) - 1
    for rule in report["rules"]:
        assert sum(rule[f"{c}_hosts"] for c in fleet.COVERAGES) == sum(size.values())
        assert sum(size[g] for g in rule["blind_groups"]) == rule["blind_hosts"]
    for change in report["changes"]:   # hosts and unblinds add up over the groups recommending it
        recs = {g["id"]: r for g in report["groups"] for r in g["recommendations"]
                if r["requirement"] == change["requirement"]}
        assert sorted(recs) == sorted(change["groups"])
        assert change["hosts"] == sum(size[g] for g in recs)
        assert change["unblinds"] == sum(size[g] * r["unblinds"] for g, r in recs.items())
    unblinds = [c["unblinds"] for c in report["changes"]]
    assert unblinds == sorted(unblinds, reverse=True)


def test_csv_matrices(cli, hosts: Path, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "csv"
    result = cli(RULES, "--fleet", hosts, "--fleet-csv", out, "-f", "json", "--no-cache")
    report = result.json()["fleet"]
    groups = {g.id: g for g in fleet.run(_base(), hosts).groups}
    reqs = list(csv.reader(io.StringIO((out / HOSTS_REQUIREMENTS).read_text())))
    rules = list(csv.reader(io.StringIO((out / HOSTS_RULES).read_text())))
    assert [row[0] for row in reqs[1:]] == [row[0] for row in rules[1:]] == [h["name"] for h in report["hosts"]]
    assert rules[0][4:] == [r["id"] for r in report["rules"]]
    for req_row, rule_row in zip(reqs[1:], rules[1:]):
        group = groups.get(req_row[1])
        if group is None:
            assert req_row[3] and set(req_row[4:]) == {""} and set(rule_row[4:]) == {""}
            continue
        assert dict(zip(reqs[0][4:], req_row[4:])) == group.statuses
        assert rule_row[4:] == group.coverage


@pytest.mark.parametrize("fmt, marker", [("markdown", "| Group | Hosts |"), ("text", "| Group | Hosts |")])
def test_summary(cli, hosts: Path, fmt: str, marker: str) -> None:  # noqa: ANN001
    result = cli(RULES, "--fleet", hosts, "-f", fmt, "--no-cache")
    assert marker in result.stdout
    assert "broken1" in result.stdout and "Hosts not read" in result.stdout
    assert "Verdict: exit 1" in result.stderr or result.stderr == ""


def test_csv_formula_cells_are_defused(cli, tmp_path: Path) -> None:  # noqa: ANN001
    root = tmp_path / "hosts"
    _put(GPRESULT / "advanced-audit.xml", root / "=cmd|calc" / "gpresult.xml")
    out = tmp_path / "csv"
    result = cli(RULES, "--fleet", root, "--fleet-csv", out, "-f", "json", "--no-cache")
    assert result.exit_code in (0, 1)
    rows = list(csv.reader(io.StringIO((out / HOSTS_RULES).read_text())))
    assert rows[1][0] == "'=cmd|calc"


@pytest.mark.parametrize("extra", [["--gpresult", str(GPRESULT / "advanced-audit.xml")], ["-f", "sarif"]])
def test_fleet_refuses_single_host_options(cli, hosts: Path, extra: list[str]) -> None:  # noqa: ANN001
    result = cli(RULES, "--fleet", hosts, *extra)
    assert result.exit_code == 2


def test_empty_fleet_folder_fails(cli, tmp_path: Path) -> None:  # noqa: ANN001
    (tmp_path / "hosts").mkdir()
    result = cli(RULES, "--fleet", tmp_path / "hosts", "-f", "json", "--no-cache")
    assert result.exit_code == 1
    assert result.json()["fleet"]["summary"]["hosts"] == 0


def test_fleet_must_be_a_folder(cli) -> None:  # noqa: ANN001
    assert cli(RULES, "--fleet", GPRESULT / "advanced-audit.xml").exit_code == 2


def test_flat_files_join_the_host_folder(tmp_path: Path) -> None:
    root = tmp_path / "hosts"
    _put(GPRESULT / "advanced-audit.xml", root / "web01" / "gpresult.xml")
    _put(SAMPLES / "sysmon" / "partial-config.xml", root / "web01.sysmon.xml")
    found, errors = fleet.discover(root)
    assert errors == [] and [h.name for h in found] == ["web01"]
    assert [len(found[0].files[k]) for k in ("gpresult", "sysmon")] == [1, 1]


def test_fleet_csv_needs_fleet(cli, tmp_path: Path) -> None:  # noqa: ANN001
    assert cli(RULES, "--fleet-csv", tmp_path / "csv").exit_code == 2


def test_fingerprints_stable_across_processes(hosts: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    seen = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run([sys.executable, "-m", "logsource_checker", str(RULES), "--fleet", str(hosts),
                               "-f", "json", "--no-cache"], capture_output=True, text=True, env=env, check=False)
        seen.append([(g["hosts"], g["fingerprint"]) for g in json.loads(done.stdout)["fleet"]["groups"]])
    assert seen[0] == seen[1] and len(seen[0]) > 5


def test_markdown_escapes_host_names(cli, tmp_path: Path) -> None:  # noqa: ANN001
    root = tmp_path / "hosts"
    _put(GPRESULT / "advanced-audit.xml", root / "a|b<script>" / "gpresult.xml")
    result = cli(RULES, "--fleet", root, "-f", "markdown", "--no-cache")
    row = next(line for line in result.stdout.splitlines() if line.startswith("| G1 |"))
    assert "<script>" not in result.stdout and row.count(" | ") == 8 - 1 and "a\\|b" in row


def test_fleet_refuses_events_beside_it(cli, tmp_path):
    """--events is a per-run input: with --fleet it would be silently ignored, so it is refused."""
    hosts = tmp_path / "hosts"
    (hosts / "a").mkdir(parents=True)
    counts = tmp_path / "counts.csv"
    counts.write_text("channel,event_id,count\nSecurity,4624,3\n", encoding="utf-8")
    result = cli(SAMPLES / "rules", "--fleet", hosts, "--events", counts)
    assert result.exit_code == 2 and "--events" in result.stderr



@pytest.mark.parametrize("role", ["dc", "client", "server"])
def test_shared_resolution_keeps_no_group_state(tmp_path: Path, role: str) -> None:
    """Role volumes and collection verdicts are the group's own records: the group's resolution has them, and
    after the run the resolution every group was assessed on has the fields a fresh resolution has."""
    from logsource_checker.resolve import resolve

    root = tmp_path / "hosts"
    _put(GPRESULT / "advanced-audit.xml", root / "fwd1" / "gpresult.xml")
    (root / "fwd1" / "winlogbeat.yml").write_text("winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624\n")
    seen = []
    result = fleet.run(_base(role), root, on_group=lambda group, resolution, *_: seen.append(resolution))
    base = _base(role)
    fresh = resolve(engine.select_rules(base, engine.load_rules(base).rules), engine.load_knowledge(base))

    def state(resolution):  # noqa: ANN001, ANN202
        return ({rid: (r.volume, r.collected, r.collection) for rid, r in resolution.requirements.items()},
                [(r.collection_reason, r.not_collected) for r in resolution.rules])

    assert len(seen) == 1 and state(seen[0]) != state(fresh)   # the group had verdicts of its own
    assert any(r.collected is False for r in seen[0].requirements.values())
    assert state(result.resolution) == state(fresh)


LOGON_ONLY_CSV = ("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,"
                  "Setting Value\n,System,Audit Logon,{0cce9215-69ae-11d9-bed3-505054503030},Success,,1\n"
                  ",System,Audit Process Creation,{0cce922b-69ae-11d9-bed3-505054503030},No Auditing,,0\n")
SYSMON_NO_PROCESSES = ('<Sysmon schemaversion="4.90"><EventFiltering><RuleGroup name="" groupRelation="or">'
                       '<ProcessCreate onmatch="include" /></RuleGroup></EventFiltering></Sysmon>\n')


@pytest.mark.parametrize("collector, sysmon, some_unblind", [
    ("winlogbeat.event_logs:\n  - name: System\n", False, False),                        # nothing of Security arrives
    ("winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624\n", False, False),   # only the audited logon
    # process creation: Sysmon 1 is the cheaper way but only 4688 is forwarded: 4688 is ranked and unblinds it
    ("winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624,4688\n", True, True),
    (None, False, True),
    (None, True, True),
])
def test_group_ranking_counts_only_what_arrives_as_single(tmp_path: Path, collector: str | None,
                                                          sysmon: bool, some_unblind: bool) -> None:
    """With collectors, a group's ranking (what each change unblinds) is a single run's: rules whose events
    no collector forwards are not counted as unblinded, nor are changes whose own events are not forwarded."""
    rules = tmp_path / "rules"
    rules.mkdir()
    for eid in (4624, 4625, 5145):
        (rules / f"r{eid}.yml").write_text(
            f"title: r{eid}\nid: r{eid}\nlevel: high\nlogsource:\n    product: windows\n    service: security\n"
            f"detection:\n    selection:\n        EventID: {eid}\n    condition: selection\n", encoding="utf-8")
    (rules / "proc.yml").write_text(
        "title: proc\nid: proc\nlevel: high\nlogsource:\n    product: windows\n    category: process_creation\n"
        "detection:\n    selection:\n        Image|endswith: '\\evil.exe'\n    condition: selection\n",
        encoding="utf-8")
    root = tmp_path / "hosts"
    (root / "h1").mkdir(parents=True)
    (root / "h1" / "audit.csv").write_text(LOGON_ONLY_CSV, encoding="utf-8")
    if collector is not None:
        (root / "h1" / "winlogbeat.yml").write_text(collector, encoding="utf-8")
    if sysmon:
        (root / "h1" / "sysmon.xml").write_text(SYSMON_NO_PROCESSES, encoding="utf-8")
    base = engine.CheckOptions(paths=[str(rules)], use_cache=False)
    result = fleet.run(base, root)
    single = engine.check(fleet.host_options(base, fleet.discover(root)[0][0]))
    ranked = [(r.requirement.id, r.rules, r.unblinds) for r in single.ranked]
    assert [(r.requirement.id, r.rules, r.unblinds) for r in result.groups[0].ranked] == ranked
    assert any(unblinds for *_, unblinds in ranked) is some_unblind
