"""Shared fixtures: the project root, the optional ../shared corpus, and a CLI runner."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def shared_dir() -> Path | None:
    env = os.environ.get("LOGSOURCE_CHECKER_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared")
    for candidate in candidates:
        if (candidate / "corpus").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def corpus_rules() -> Path:
    shared = shared_dir()
    path = shared / "corpus" / "sigmahq-rules" if shared else None
    if path is None or not path.is_dir():
        pytest.skip("../shared/corpus/sigmahq-rules is not present")
    return path


@pytest.fixture(scope="session")
def policy_samples() -> Path:
    shared = shared_dir()
    path = shared / "corpus" / "policy-samples" if shared else None
    if path is None or not path.is_dir():
        pytest.skip("../shared/corpus/policy-samples is not present")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache directory: no test reads another's cache or the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


class CliResult:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    def json(self) -> dict:
        return json.loads(self.stdout)


@pytest.fixture
def cli():
    """Run the command in-process: cli("rules/", "--format", "json") -> CliResult."""
    from typer.testing import CliRunner

    from logsource_checker.cli import app

    def run(*args: str) -> CliResult:
        try:
            runner = CliRunner(mix_stderr=False)
        except TypeError:  # newer Click keeps stderr apart by default
            runner = CliRunner()
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        stderr = result.stderr if hasattr(result, "stderr") else ""
        return CliResult(result.exit_code, result.stdout, stderr)

    return run


# Three Security rules (4624, 4625, both) and an audit.csv with Logon (S+F) and Process Creation (S): the
# collector and --events tests (test_collection.py, test_arrive.py) start from it.
LOGON_AUDIT_CSV = (
    "Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value\n"
    ",System,Audit Logon,{0cce9215-69ae-11d9-bed3-505054503030},Success and Failure,,3\n"
    ",System,Audit Process Creation,{0cce922b-69ae-11d9-bed3-505054503030},Success,,1\n")


def write_simple_rule(folder, name, logsource, detection, level="high"):
    """One Sigma rule file ``folder/name.yml`` with one selection (``detection``: its YAML body)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yml").write_text(
        f"title: {name}\nid: {name}\nlevel: {level}\nlogsource:\n    {logsource}\n"
        f"detection:\n    selection:\n        {detection}\n    condition: selection\n", encoding="utf-8")


def logon_rules(tmp_path):
    rules = tmp_path / "rules"
    security = "product: windows\n    service: security"
    write_simple_rule(rules, "logon_ok", security, "EventID: 4624")
    write_simple_rule(rules, "logon_failed", security, "EventID: 4625")
    write_simple_rule(rules, "both", security, "EventID: [4624, 4625]")
    (tmp_path / "audit.csv").write_text(LOGON_AUDIT_CSV, encoding="utf-8")
    return tmp_path
