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
