"""The command: options, report formats, exit codes, on the project's sample rules."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLES

RULES = SAMPLES / "rules"


def _sample_documents():
    """The sample rules read with plain PyYAML, no project code: (path, merged document) per rule, with
    `action: global` collections merged the simple way these samples need (global keys + each document)."""
    import yaml

    out = []
    for path in sorted(RULES.rglob("*.yml")):
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        base = {}
        for doc in docs:
            if doc.get("action") == "global":
                base = {k: v for k, v in doc.items() if k != "action"}
                continue
            out.append((path, {**base, **doc}))
    return out


def _independent_event_ids(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "EventID":
                yield from (int(v) for v in (value if isinstance(value, list) else [value]))
            else:
                yield from _independent_event_ids(value)
    elif isinstance(node, list):
        for item in node:
            yield from _independent_event_ids(item)


def test_json_report_shape_on_samples(cli):
    result = cli(RULES, "--format", "json")
    assert result.exit_code == 0  # every sample is read and mapped; no policy, so nothing can be missing
    report = result.json()
    summary = report["summary"]
    docs = _sample_documents()
    rules = [(p, d) for p, d in docs if "correlation" not in d]
    assert (summary["rules"], summary["files"], summary["errors"]) == (len(rules), len(set(p for p, _ in docs)), 0)
    assert summary["correlations"] == sum(1 for _, d in docs if "correlation" in d) == 1
    ls = {(x["product"], x["category"], x["service"]): x for x in report["logsources"]}
    security = [d for _, d in rules if d["logsource"].get("service") == "security"]
    assert ls[("windows", None, "security")]["rules"] == len(security)
    assert ls[("windows", None, "security")]["event_ids"] == sorted(
        {e for d in security for e in _independent_event_ids(d["detection"])})
    assert ls[("windows", "process_creation", None)]["event_ids"] == []
    rule = next(r for r in report["rules"] if r["id"] == "0c7d9a11-54e2-4b3f-8f0a-6e1d2c3b4a02")
    assert rule["event_ids"] == [4697, 4698] and rule["level"] == "high" and rule["status"] == "test"
    assert rule["logsource"] == {"product": "windows", "category": None, "service": "security"}
    assert rule["path"].endswith("security_service_install_or_task.yml")


LEVELS = ["informational", "low", "medium", "high", "critical"]


@pytest.mark.parametrize("args, level, statuses", [
    ([], None, None),
    (["--level", "informational"], "informational", None),
    (["--level", "low"], "low", None),
    (["--level", "medium"], "medium", None),
    (["--level", "high"], "high", None),
    (["--level", "critical"], "critical", None),
    (["--status", "stable"], None, {"stable"}),
    (["--status", "STABLE", "--status", "experimental"], None, {"stable", "experimental"}),
    (["--level", "medium", "--status", "test"], "medium", {"test"}),
])
def test_filters(cli, args, level, statuses):
    """Counts derived from the sample files themselves, not from the tool."""
    rules = [d for _, d in _sample_documents() if "correlation" not in d]
    wanted = [d for d in rules
              if (level is None or LEVELS.index(d["level"]) >= LEVELS.index(level))
              and (statuses is None or d["status"] in statuses)]
    report = cli(RULES, "--format", "json", *args).json()
    summary = report["summary"]
    assert summary["rules_checked"] == len(wanted) == len(report["rules"])
    assert {r["title"] for r in report["rules"]} == {d["title"] for d in wanted}
    assert summary["rules"] == len(rules) and summary["filtered_out"] == len(rules) - len(wanted)


@pytest.mark.parametrize("args,message", [
    (["does/not/exist"], "no such file or folder"),
    ([str(RULES), "--gpresult", "missing.xml"], "no such file"),
    ([str(RULES), "--status", "bogus"], "choose from"),
    ([str(RULES), "--format", "yaml"], "yaml"),
    ([str(RULES), "--fail-on", "sometimes"], "sometimes"),
])
def test_bad_invocation_exits_2(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr + result.stdout


def test_errors_give_exit_1_and_are_listed(cli, tmp_path):
    (tmp_path / "bad.yml").write_text("title: [unclosed\n")
    (tmp_path / "good.yml").write_text((RULES / "windows" / "ps_script_download_cradle.yml").read_text())
    result = cli(tmp_path, "--format", "json")
    report = result.json()
    assert result.exit_code == 1
    assert report["summary"]["errors"] == 1 and report["summary"]["rules"] == 1
    assert report["errors"][0]["path"].endswith("bad.yml") and report["errors"][0]["line"] in (1, 2)


@pytest.mark.parametrize("fmt,marker", [("text", "Log sources\n-----------"), ("markdown", "| Log source | Rules |"),
                                        ("terminal", "Changes, native plan"), ("json", '"summary"')])
def test_output_file_each_format(cli, tmp_path, fmt, marker):
    out = tmp_path / "sub" / f"report.{fmt}"
    result = cli(RULES, "--format", fmt, "--output", out)
    assert result.stdout == ""
    text = out.read_text(encoding="utf-8")
    # the terminal report names changes, not log sources (those come with -v)
    assert marker in text and ("security" in text or fmt == "terminal")


def test_installed_console_script_runs_from_any_folder(tmp_path):
    beside = Path(sys.executable).parent / "check-logsources"
    exe = str(beside) if beside.exists() else shutil.which("check-logsources")
    if not exe:
        pytest.skip("check-logsources is not on PATH (package not installed)")
    proc = subprocess.run([exe, str(RULES), "--format", "json", "--no-cache"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["summary"]["rules"] == 13
    assert all(ls["guide"] for ls in report["logsources"])


def test_version_and_help(cli):
    assert cli("--version").stdout.startswith("check-logsources ")
    help_text = cli("--help").stdout
    for option in ("--gpresult", "--auditpol", "--sysmon-config", "--format", "--level", "--fail-on", "--emit"):
        assert option in help_text


def _run_entry_point(code: str, *args: str) -> subprocess.CompletedProcess:
    """The console-script entry point (``cli.run``, which ends the process itself) after ``code``."""
    script = f"import sys\n{code}\nfrom logsource_checker.cli import run\nsys.argv = ['check-logsources', *sys.argv[1:]]\nrun()\n"
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("patch, code, message", [
    ("import logsource_checker.engine as e\ndef boom(o): raise RuntimeError('bad\\nstate')\ne.check = boom",
     3, "internal error"),
    ("import logsource_checker.engine as e\ndef stop(o): raise KeyboardInterrupt\ne.check = stop", 130, None),
])
def test_entry_point_never_shows_a_traceback(patch, code, message):
    proc = _run_entry_point(patch, str(RULES), "--no-cache", "-f", "json")
    assert proc.returncode == code
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") <= 1
    if message:
        assert message in proc.stderr and "bad state" in proc.stderr


def test_typer_internals_changing_shape_keeps_typer_path():
    patch = ("import logsource_checker._typer_fast as t\n"
             "def broken(param):\n    raise AttributeError('typer moved things')\n"
             "t._kind = broken")
    proc = _run_entry_point(patch, str(RULES), "--no-cache", "-f", "json", "--level", "high")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["rules_checked"] == 5


# Every key README's "JSON report" section documents, with a check of its value on the samples.
JSON_KEYS = {
    "format_version": lambda v: v == 1,
    "summary": lambda v: set(v) >= {
        "rules", "rules_checked", "filtered_out", "files", "errors", "correlations", "filters", "logsources",
        "requirements", "unmapped_logsources", "unmapped_event_ids", "policy_checked", "coverage",
        "coverage_by_level", "requirements_status", "missing_requirements", "outside_windows", "unknown_by_input"}
        and v["outside_windows"]["rules"] == sum(v["outside_windows"]["by_source"].values())
        and set(v["coverage"]) == {"usable", "partial", "blind", "unknown", "not_checked"},
    "errors": lambda v: v == [],
    "logsources": lambda v: all(set(x) >= {"product", "category", "service", "rules", "levels", "event_ids",
                                           "guide", "guide_title", "coverage"} for x in v),
    "rules": lambda v: all(set(x) >= {"id", "title", "path", "level", "status", "logsource", "event_ids",
                                      "channels", "providers", "guide", "requirements", "coverage", "partial",
                                      "event_ids_produced", "event_ids_missing", "event_ids_unmapped", "notes",
                                      "document", "tags", "decided_by", "changes", "held_back",
                                      "coverage_after_plan"}
                           for x in v),
    "rule_roots": lambda v: v == [str(RULES)],
    "requirements": lambda v: v and all(set(x) >= {
        "id", "kind", "name", "guid", "success", "failure", "channel", "event_id", "policy", "volume", "reference",
        "how", "rules", "alternatives", "status", "reason", "unblinds", "unblinds_high_critical"} for x in v),
    "unmapped": lambda v: v == {"logsources": [], "event_ids": []},
    "other_documents": lambda v: [(d["kind"], d["title"]) for d in v]
        == [("correlation", "Many Failed Logons From One Source")],
    "recommendations": lambda v: isinstance(v, list),
    "plans": lambda v: [p["name"] for p in v] == ["native", "sysmon"] and [p["chosen"] for p in v] == [True, False]
        and all(set(p) >= {"name", "changes", "unblinds", "unblinds_high_critical", "still_blind", "held_back",
                           "volume"} and set(p["volume"]) == {"low", "medium", "high", "unknown"} for p in v),
    "policy": lambda v: v is None,
    "collectors": lambda v: v == [],
}


@pytest.mark.parametrize("key", sorted(JSON_KEYS))
def test_every_documented_json_key(cli, key):
    report = cli(RULES, "--format", "json").json()
    assert JSON_KEYS[key](report[key]), report[key]


def test_policy_keys_with_a_policy(cli):
    policy = cli(RULES, "--gpresult", SAMPLES / "gpresult" / "advanced-audit.xml", "--format", "json").json()["policy"]
    assert policy["audit_mode"] == "advanced" and "force audit policy subcategory settings" in policy["audit_explanation"]
    assert policy["force_subcategory"] is True and policy["has_computer_results"] is True
    assert [i["format"] for i in policy["inputs"]] == ["gpresult"]
    logon = next(a for a in policy["audit"] if a["name"] == "Logon")
    assert (logon["success"], logon["failure"], logon["setting"]) == (True, True, "success and failure")


def _rule_file(folder, name, logsource, detection, level="high"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yml").write_text(
        f"title: {name}\nid: {name}\nlevel: {level}\nlogsource:\n    {logsource}\n"
        f"detection:\n    selection:\n        {detection}\n    condition: selection\n", encoding="utf-8")


# (rules to write, extra arguments, expected exit code)
EXIT_CASES = [
    ([("ok", "product: windows\n    service: security", "EventID: 4624")], [], 0),
    ([("unmapped_id", "product: windows\n    service: security", "EventID: 4999")], [], 1),
    ([("legacy_id", "product: windows\n    service: security", "EventID: 528")], [], 1),
    ([("no_guide", "product: windows\n    category: no_such_category", "Image: x")], [], 1),
]


@pytest.mark.parametrize("rules, args, code", EXIT_CASES)
def test_exit_status_without_policy(cli, tmp_path, rules, args, code):
    for name, logsource, detection in rules:
        _rule_file(tmp_path / "rules", name, logsource, detection)
    result = cli(tmp_path / "rules", "--format", "json", *args)
    assert result.exit_code == code
    summary = result.json()["summary"]
    assert (summary["unmapped_event_ids"] + summary["unmapped_logsources"] > 0) == (code == 1)


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_verbose_adds_per_rule_detail(cli, fmt):
    title = "Service Installed Or Scheduled Task Created From A Temp Folder"
    plain = cli(RULES, "--format", fmt).stdout
    verbose = cli(RULES, "--format", fmt, "-v").stdout
    assert title not in plain and title in verbose and len(verbose) > len(plain)


@pytest.mark.parametrize("copies, shown", [(250, True), (20, False)])
def test_progress_bar_only_on_a_terminal_for_long_runs(tmp_path, copies, shown):
    """stderr a terminal (a pseudo-terminal here): the bar appears for 200+ files, never for a few; the
    report on stdout is the same either way."""
    import os
    import pty

    source = (RULES / "windows" / "proc_creation_encoded_powershell.yml").read_text(encoding="utf-8")
    folder = tmp_path / "rules"
    folder.mkdir()
    for i in range(copies):
        (folder / f"r{i:03}.yml").write_text(source.replace("2a3b4c5d-6e7f-4809-9a1b-2c3d4e5f6a04", f"id-{i}"),
                                             encoding="utf-8")
    primary, secondary = pty.openpty()
    env = dict(os.environ, COLUMNS="100", TERM="xterm")
    report = tmp_path / "report.json"
    proc = subprocess.Popen([sys.executable, "-m", "logsource_checker", str(folder), "-f", "json", "--no-cache",
                             "-o", str(report)], stdout=subprocess.DEVNULL, stderr=secondary, env=env)
    os.close(secondary)
    import select

    err = b""
    while True:
        if not select.select([primary], [], [], 30)[0]:  # never hang the suite
            proc.kill()
            break
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        err += chunk
    assert proc.wait(timeout=60) == 0
    os.close(primary)
    assert json.loads(report.read_text(encoding="utf-8"))["summary"]["rules"] == copies
    assert (b"reading rules" in err) is shown, err[:300]
