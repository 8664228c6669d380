"""--fail-on: one decision (failon.decide) behind a single run (cli.verdict) and a fleet (fleet_report.verdict)."""
from __future__ import annotations

import pytest

from logsource_checker.cli import verdict as single_verdict
from logsource_checker.fleet_report import verdict as fleet_verdict


def _single(problem: bool, weak: bool, missing: bool, checked: bool = True) -> dict:
    return {"summary": {"errors": int(problem), "unmapped_logsources": 0, "unmapped_event_ids": 0,
                        "policy_checked": checked, "missing_requirements": 2 if missing else 0},
            "rules": [{"level": "high", "coverage": "blind" if weak else "usable"},
                      {"level": "low", "coverage": "blind"}]}


def _fleet(problem: bool, weak: bool, missing: bool) -> dict:
    return {"summary": {"hosts": 3, "hosts_not_read": int(problem), "rule_errors": 0}, "errors": [],
            "rules": [{"level": "critical", "blind_hosts": 0, "partial_hosts": 2 if weak else 0},
                      {"level": "medium", "blind_hosts": 3, "partial_hosts": 0}],
            "changes": [{"requirement": "a"}, {"requirement": "b"}] if missing else []}


# fail_on, a problem reading input, a high/critical rule blind or partial, a change missing -> exit status, why
CASES = [
    ("never", True, True, True, 0, "the run completed (--fail-on never); listed: 1 "),
    ("never", False, False, False, 0, "the run completed (--fail-on never)"),
    ("missing", True, False, False, 1, "1 "),
    ("critical", True, False, False, 1, "1 "),
    ("missing", False, False, True, 1, "2 recommended changes are missing"),
    ("missing", False, True, False, 0, "nothing required is missing"),
    ("missing", False, False, False, 0, "nothing required is missing"),
    ("critical", False, True, False, 1, "1 high or critical rules are blind or partial"),
    ("critical", False, False, True, 0, "no high or critical rule is blind or partial"),
]


@pytest.mark.parametrize("fail_on, problem, weak, missing, code, why", CASES)
@pytest.mark.parametrize("path", ["single", "fleet"])
def test_same_decision_both_paths(path: str, fail_on: str, problem: bool, weak: bool, missing: bool, code: int,
                                  why: str) -> None:
    report = (_single if path == "single" else _fleet)(problem, weak, missing)
    got_code, got_why = (single_verdict if path == "single" else fleet_verdict)(report, fail_on)
    assert got_code == code
    assert got_why.startswith(why)
    # a fleet says where
    if path == "fleet" and not problem and fail_on != "never":
        assert "host" in got_why


def test_single_run_without_policy_passes() -> None:
    assert single_verdict(_single(False, True, True, checked=False), "critical")[0] == 0


def test_fleet_without_hosts_fails() -> None:
    report = _fleet(False, False, False)
    report["summary"]["hosts"] = 0
    assert fleet_verdict(report, "missing") == (1, "no host in the fleet folder (README, A whole fleet)")
