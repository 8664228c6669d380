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


def test_json_report_shape_on_samples(cli):
    result = cli(RULES, "--format", "json")
    report = result.json()
    summary = report["summary"]
    assert (summary["rules"], summary["files"], summary["errors"]) == (13, 13, 0)
    assert summary["correlations"] == 1
    for key in ("summary", "errors", "logsources", "rules", "requirements", "unmapped", "policy"):
        assert key in report
    ls = {(x["product"], x["category"], x["service"]): x for x in report["logsources"]}
    assert ls[("windows", None, "security")]["rules"] == 3
    assert ls[("windows", None, "security")]["event_ids"] == [4624, 4625, 4697, 4698, 5140, 5145]
    assert ls[("windows", "process_creation", None)]["event_ids"] == []
    rule = next(r for r in report["rules"] if r["id"] == "0c7d9a11-54e2-4b3f-8f0a-6e1d2c3b4a02")
    assert rule["event_ids"] == [4697, 4698] and rule["level"] == "high" and rule["status"] == "test"
    assert rule["logsource"] == {"product": "windows", "category": None, "service": "security"}
    assert rule["path"].endswith("security_service_install_or_task.yml")


@pytest.mark.parametrize("args,expected_rules", [
    ([], 13),
    (["--level", "high"], 5),
    (["--level", "critical"], 1),
    (["--status", "stable"], 2),
    (["--status", "stable", "--status", "experimental"], 4),
    (["--level", "medium", "--status", "test"], 9),
])
def test_filters(cli, args, expected_rules):
    summary = cli(RULES, "--format", "json", *args).json()["summary"]
    assert summary["rules_checked"] == expected_rules
    assert summary["rules"] == 13 and summary["filtered_out"] == 13 - expected_rules


@pytest.mark.parametrize("args,message", [
    (["does/not/exist"], "no such file or folder"),
    ([str(RULES), "--gpresult", "missing.xml"], "no such file"),
    ([str(RULES), "--status", "bogus"], "choose from"),
])
def test_bad_invocation_exits_2(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr + result.stdout


def test_bad_option_value_exits_2(cli):
    assert cli(RULES, "--format", "yaml").exit_code == 2


def test_errors_give_exit_1_and_are_listed(cli, tmp_path):
    (tmp_path / "bad.yml").write_text("title: [unclosed\n")
    (tmp_path / "good.yml").write_text((RULES / "windows" / "ps_script_download_cradle.yml").read_text())
    result = cli(tmp_path, "--format", "json")
    report = result.json()
    assert result.exit_code == 1
    assert report["summary"]["errors"] == 1 and report["summary"]["rules"] == 1
    assert report["errors"][0]["path"].endswith("bad.yml") and report["errors"][0]["line"] in (1, 2)


@pytest.mark.parametrize("fmt,marker", [("text", "Log sources\n-----------"), ("markdown", "| Log source | Rules |"),
                                        ("terminal", "Log sources"), ("json", '"summary"')])
def test_output_file_each_format(cli, tmp_path, fmt, marker):
    out = tmp_path / "sub" / f"report.{fmt}"
    result = cli(RULES, "--format", fmt, "--output", out)
    assert result.stdout == ""
    text = out.read_text(encoding="utf-8")
    assert marker in text and "security" in text


def test_installed_console_script_runs_from_any_folder(tmp_path):
    beside = Path(sys.executable).parent / "check-logsources"
    exe = str(beside) if beside.exists() else shutil.which("check-logsources")
    if not exe:
        pytest.skip("check-logsources is not on PATH (package not installed)")
    proc = subprocess.run([exe, str(RULES), "--format", "json", "--no-cache"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
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
    patch = ("import logsource_checker.cli as c\n"
             "def broken(params):\n    raise AttributeError('typer moved things')\n"
             "c._fast_coercion = broken")
    proc = _run_entry_point(patch, str(RULES), "--no-cache", "-f", "json", "--level", "high")
    assert proc.returncode in (0, 1), proc.stderr
    assert json.loads(proc.stdout)["summary"]["rules_checked"] == 5
