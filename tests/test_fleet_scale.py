"""--fleet at scale (issue 13): hosts read over the cores (same answer as one by one), the changes per policy
group (--emit, equal to a single run's --emit on the group's first host), collect.ps1, reasons per requirement,
and the one --fail-on decision shared by a single run and a fleet."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from conftest import SAMPLES
from logsource_checker import engine, fleet, fleet_read
from logsource_checker.fleet_emit import COLLECT, folder_name
from logsource_checker.fleet_report import GROUPS_REQUIREMENTS, build, to_json
from test_fleet import GPRESULT, RULES, _base, _put, hosts  # noqa: F401 - the fleet fixture

MANIFEST = ".logsource-checker-manifest.json"


def _fleet_json(folder: Path, jobs: int, role: str | None = None) -> str:
    return to_json(build(fleet.run(_base(role), folder, jobs=jobs)))


@pytest.mark.parametrize("jobs, role", [(2, None), (3, None), (2, "server")])
def test_parallel_equals_serial(hosts: Path, jobs: int, role: str | None) -> None:  # noqa: F811
    assert len(fleet.discover(hosts)[0]) > jobs and fleet_read.can_fork()   # the pool is really used
    assert _fleet_json(hosts, jobs, role) == _fleet_json(hosts, 1, role)


def test_pool_used_and_closed(hosts: Path) -> None:  # noqa: F811
    found, _ = fleet.discover(hosts)
    kb = engine.load_knowledge(_base())
    reads = fleet_read.read_hosts(found, _base(), kb, jobs=2)
    assert isinstance(reads, fleet_read._PoolReads)
    got = list(reads)
    reads.close()
    assert [r.name for r in got] == [h.name for h in found]
    # the first host of each fingerprint carries the snapshot, later ones do not need it
    first: dict[str, str] = {}
    for read in got:
        if read.fingerprint is not None and read.fingerprint not in first:
            first[read.fingerprint] = read.name
            assert read.snapshot is not None
    assert fleet_read._WORKER == {}


@pytest.mark.parametrize("jobs", [1, 2])
def test_reasons_equal_single_run_of_first_host(hosts: Path, jobs: int) -> None:  # noqa: F811
    result = fleet.run(_base(), hosts, jobs=jobs)
    report = build(result)
    found = {h.name: h for h in fleet.discover(hosts)[0]}
    for group in report["groups"]:
        single = engine.check(fleet.host_options(_base(), found[group["hosts"][0]]))
        expected = {rid: (req.status, req.reason) for rid, req in single.resolution.requirements.items()
                    if req.status != "met"}
        assert {n["requirement"]: (n["status"], n["reason"]) for n in group["not_met"]} == expected
        assert [(r["requirement"], r["reason"]) for r in group["recommendations"]] == \
            [(r.requirement.id, r.requirement.reason) for r in single.ranked]


def test_groups_requirements_csv(cli, hosts: Path, tmp_path: Path) -> None:  # noqa: ANN001, F811
    out = tmp_path / "csv"
    report = cli(RULES, "--fleet", hosts, "--fleet-csv", out, "-f", "json", "--no-cache").json()["fleet"]
    rows = list(csv.DictReader(io.StringIO((out / GROUPS_REQUIREMENTS).read_text())))
    expected = [(g["id"], n["requirement"], n["status"], n["reason"]) for g in report["groups"] for n in g["not_met"]]
    assert [(r["group"], r["requirement"], r["status"], r["reason"].lstrip("'")) for r in rows] == expected
    recommended = {(g["id"], r["requirement"]) for g in report["groups"] for r in g["recommendations"]}
    assert {(r["group"], r["requirement"]) for r in rows if r["recommended"] == "yes"} == recommended
    sizes = {g["id"]: str(len(g["hosts"])) for g in report["groups"]}
    assert all(r["hosts"] == sizes[r["group"]] for r in rows)


def test_markdown_gives_reasons(cli, hosts: Path) -> None:  # noqa: ANN001, F811
    text = cli(RULES, "--fleet", hosts, "-f", "markdown", "--no-cache").stdout
    assert "## What each group misses, and why" in text
    report = build(fleet.run(_base(), hosts))
    group = next(g for g in report["groups"] if g["recommendations"])
    assert f"### {group['id']} ({len(group['hosts'])} hosts" in text


# --------------------------------------------------------------------------- --emit per group

def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


@pytest.mark.parametrize("only", [
    [],
    ["--product", "windows"],   # the Linux audit rules of lin1 are ignored: a note in its report, as single
    ["--product", "linux"],     # the Windows policy inputs are ignored: a note in each group's report
])
def test_emit_per_group_equals_single_emit(cli, hosts: Path, tmp_path: Path,  # noqa: ANN001, F811
                                          only: list[str]) -> None:
    out = tmp_path / "changes"
    result = cli(RULES, *only, "--fleet", hosts, "--emit", out, "-f", "json", "--no-cache")
    assert result.exit_code == 1 and "policy groups and collect.ps1" in result.stderr
    report = result.json()["fleet"]
    found = {h.name: h for h in fleet.discover(hosts)[0]}
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == \
        sorted(folder_name(g["fingerprint"]) for g in report["groups"])
    for group in report["groups"]:
        folder = out / folder_name(group["fingerprint"])
        host = found[group["hosts"][0]]
        single = tmp_path / f"single-{group['id']}"
        args = [f"--{k}={p}" for k, opt in (("gpresult", "gpresult"), ("auditpol", "auditpol"),
                                             ("auditd-rules", "auditd"), ("collector", "collector"))
                for p in host.files[opt]]
        args += [f"--sysmon-config={p}" for p in host.files["sysmon"]]
        done = cli(RULES, *only, *args, "--emit", single, "--no-cache")
        assert done.exit_code in (0, 1), done.stderr
        emitted = _files(folder)
        assert emitted.pop("hosts.txt").decode().splitlines() == group["hosts"]
        assert group["id"] in emitted.pop("README.md").decode()
        assert emitted == _files(single), group["id"]
    index = (out / "README.md").read_text()
    assert all(folder_name(g["fingerprint"]) in index for g in report["groups"])
    # written by the tool: a second run replaces its own files without --force
    again = cli(RULES, *only, "--fleet", hosts, "--emit", out, "-f", "json", "--no-cache")
    assert again.exit_code == 1, again.stderr


def test_emit_refuses_foreign_file(cli, hosts: Path, tmp_path: Path) -> None:  # noqa: ANN001, F811
    out = tmp_path / "changes"
    out.mkdir()
    (out / COLLECT).write_text("mine\n")
    result = cli(RULES, "--fleet", hosts, "--emit", out, "--no-cache")
    assert result.exit_code == 2 and "--force" in result.stderr
    assert (out / COLLECT).read_text() == "mine\n"


_CHANGING = ("/set", "/clear", "/remove", "/restore", "Set-ItemProperty", "New-ItemProperty", "Remove-Item", "reg ",
             "-accepteula", " -i ", " -u ", "Invoke-Expression", "iex ", "Start-Process")


def test_collect_script_reads_only_and_holds_no_input(cli, tmp_path: Path) -> None:  # noqa: ANN001
    scripts = []
    for name in ("plain", "$(Remove-Item C:\\ -Recurse)'; calc #"):
        root = tmp_path / f"hosts{len(scripts)}"
        _put(GPRESULT / "advanced-audit.xml", root / name / "gpresult.xml")
        out = tmp_path / f"out{len(scripts)}"
        result = cli(RULES, "--fleet", root, "--emit", out, "--no-cache")
        assert result.exit_code in (0, 1), result.stderr
        scripts.append((out / COLLECT).read_bytes())
    assert scripts[0] == scripts[1]          # nothing from the hosts or rules is in it
    text = scripts[0].decode("utf-8")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    for command in ("gpresult.exe') /scope computer /x", "auditpol.exe') /get /category:* /r", "-c |"):
        assert command in text
    after_help = text.split("#>", 1)[1]
    body = "\n".join(line for line in after_help.splitlines() if not line.lstrip().startswith("#"))
    assert not [word for word in _CHANGING if word in body]
    # the files it writes are the names --fleet reads as those kinds
    for name, kind in (("gpresult.xml", "gpresult"), ("auditpol.csv", "auditpol"), ("sysmon.xml", "sysmon")):
        assert f"'{name}'" in body
        assert fleet._kind_of(Path(name)) == kind


def test_emit_refused_with_other_outputs(cli, hosts: Path, tmp_path: Path) -> None:  # noqa: ANN001, F811
    result = cli(RULES, "--fleet", hosts, "--emit", tmp_path / "a", "--docs", tmp_path / "b")
    assert result.exit_code == 2


@pytest.mark.parametrize("args", [["--jobs", "2"], ["--fleet", "{hosts}", "--jobs", "0"],
                                  ["--fleet", "{hosts}", "--jobs", "two"], ["--fleet", "{hosts}", "--jobs", "-1"]])
def test_jobs_needs_fleet_and_a_positive_count(cli, hosts: Path, args: list[str]) -> None:  # noqa: ANN001, F811
    result = cli(RULES, *[a.format(hosts=hosts) for a in args])
    assert result.exit_code == 2
    assert "--jobs" in result.stderr


def test_jobs_option_same_report(cli, hosts: Path) -> None:  # noqa: ANN001, F811
    one = cli(RULES, "--fleet", hosts, "--jobs", "1", "-f", "json", "--no-cache")
    two = cli(RULES, "--fleet", hosts, "--jobs", "2", "-f", "json", "--no-cache")
    assert one.exit_code == two.exit_code == 1
    assert json.loads(one.stdout) == json.loads(two.stdout)


def test_identical_inputs_read_once_same_answer(hosts: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    with_cache = _fleet_json(hosts, 1)
    calls: list[str] = []
    real = fleet_read.read_host

    def counting(options, kb):  # noqa: ANN001, ANN202
        calls.append(options.gpresult[0] if options.gpresult else "")
        return real(options, kb)

    monkeypatch.setattr(fleet_read, "read_host", counting)
    _fleet_json(hosts, 1)
    found = [h for h in fleet.discover(hosts)[0] if not h.errors]
    distinct = {fleet_read.content_key(h) for h in found}
    assert len(calls) == len(distinct) < len(found)   # ws1/ws2/ws3 are copies: parsed once
    monkeypatch.setattr(fleet_read, "SAME_MAX", 0)    # nothing remembered: every host parsed
    calls.clear()
    assert _fleet_json(hosts, 1) == with_cache
    assert len(calls) == len(found)


@pytest.mark.parametrize("change", ["bytes", "extension", "kind"])
def test_content_key_tells_inputs_apart(tmp_path: Path, change: str) -> None:
    first = fleet_read.HostInputs("a")
    path = tmp_path / "a" / "gpresult.xml"
    _put(GPRESULT / "advanced-audit.xml", path)
    first.files["gpresult"].append(str(path))
    second = fleet_read.HostInputs("b")
    other = tmp_path / "b" / ("gpresult.inf" if change == "extension" else "gpresult.xml")
    _put(GPRESULT / "advanced-audit.xml", other)
    if change == "bytes":
        other.write_bytes(other.read_bytes() + b" ")
    second.files["auditpol" if change == "kind" else "gpresult"].append(str(other))
    same = fleet_read.HostInputs("c", files={**{k: [] for k in fleet_read.KINDS}, "gpresult": [str(path)]})
    assert fleet_read.content_key(first) == fleet_read.content_key(same)
    assert fleet_read.content_key(first) != fleet_read.content_key(second)


@pytest.mark.parametrize("option, where", [("--emit", "changes"), ("--fleet-csv", "csv"), ("-o", "report.json")])
def test_outputs_not_inside_the_fleet_folder(cli, hosts: Path, option: str, where: str) -> None:  # noqa: ANN001, F811
    before = sorted(p.name for p in hosts.iterdir())
    result = cli(RULES, "--fleet", hosts, option, hosts / where, "-f", "json", "--no-cache")
    assert result.exit_code == 2 and "inside the fleet folder" in result.stderr
    assert sorted(p.name for p in hosts.iterdir()) == before


def test_group_made_even_when_the_first_read_has_no_snapshot(hosts: Path,  # noqa: F811
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader (another engine) may send a group's snapshot with a later host: the group is still assessed."""
    expected = _fleet_json(hosts, 1)
    real = fleet.read_hosts

    def without_snapshots(found, base, kb, jobs=1):  # noqa: ANN001, ANN202
        reads = list(real(found, base, kb, jobs))
        for read in reads:
            read.snapshot, read.collectors = None, []
        return iter_closing(reads)

    class iter_closing(list):  # noqa: N801
        def close(self) -> None:
            pass

    monkeypatch.setattr(fleet, "read_hosts", without_snapshots)
    assert _fleet_json(hosts, 1) == expected


def test_benchmark_fleet_is_reproducible_and_distinct(tmp_path: Path) -> None:
    """benchmarks/fleet_gen.py: the same seed gives the same bytes; every file differs unless copies."""
    import hashlib
    import sys

    from conftest import shared_dir

    shared = shared_dir()
    samples = shared / "corpus" / "policy-samples" if shared else None
    if samples is None or not samples.is_dir():
        pytest.skip("no policy samples (LOGSOURCE_CHECKER_SHARED)")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import fleet_gen

    def digests(folder: Path, copies: bool) -> list[str]:
        fleet_gen.make_fleet(folder, samples, 12, 4, 7, copies)
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("gpresult.xml"))]

    first, again = digests(tmp_path / "a", False), digests(tmp_path / "b", False)
    assert first == again and len(set(first)) == 12
    assert len(set(digests(tmp_path / "c", True))) < 12
    result = fleet.run(_base(), tmp_path / "a", jobs=1)
    assert len(result.groups) >= 3 and not any(h["errors"] for h in result.hosts)


def test_spawned_workers_give_the_same_answer(hosts: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Where fork is not available (Windows, macOS) the workers are spawned and load the guide data themselves."""
    expected = _fleet_json(hosts, 1)
    monkeypatch.setattr(fleet_read, "start_method", lambda: "spawn")
    monkeypatch.setattr(fleet_read, "SPAWN_MIN_HOSTS_PER_JOB", 1)
    found, _ = fleet.discover(hosts)
    reads = fleet_read.read_hosts(found, _base(), engine.load_knowledge(_base()), jobs=2)
    assert isinstance(reads, fleet_read._PoolReads)
    reads.close()
    assert _fleet_json(hosts, 2) == expected


def test_no_pool_possible_reads_serially(hosts: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import multiprocessing

    expected = _fleet_json(hosts, 1)

    class NoPool:
        def Pool(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202, N802
            raise OSError(38, "Function not implemented")

    monkeypatch.setattr(multiprocessing, "get_context", lambda method: NoPool())
    assert _fleet_json(hosts, 2) == expected
