"""The pydantic-free option conversion (logsource_checker/_typer_fast.py) against the installed typer.

typer before 0.29 converts option values itself without pydantic and has none of the internals the fast
path uses: it must be cleanly inactive. typer 0.29.x converts through pydantic and has the internals:
the fast path must be active. A later typer either still has them (active) or not (inactive); in every
case the parsed values and the error messages must be exactly typer's own.
"""
from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import List, Optional

import pytest
import typer
import typer.main

from logsource_checker import _typer_fast
from logsource_checker.cli import app

VERSION = tuple(int(p) for p in re.findall(r"\d+", typer.__version__)[:2])

RANGES = [
    # (name, contains the installed version?, fast path expected: True, False, or None = either)
    ("typer < 0.29: no pydantic converters, no internals", lambda v: v < (0, 29), False),
    ("typer 0.29.x: pydantic converters, internals present", lambda v: (0, 29) <= v < (0, 30), True),
    ("typer >= 0.30: active if the internals are still there", lambda v: v >= (0, 30), None),
]


def _plain_params(command) -> list:
    return [p for p in command.params if p.name in {"paths", "gpresult", "auditpol", "sysmon_config", "fmt",
                                                     "output", "level", "status", "fail_on", "emit", "docs"}]


@pytest.mark.parametrize("name, contains, expected", RANGES, ids=[r[0].split(":")[0] for r in RANGES])
def test_fast_path_state_for_this_typer(name, contains, expected, monkeypatch):
    if not contains(VERSION):
        pytest.skip(f"installed typer {typer.__version__} is not in '{name}'")
    monkeypatch.setattr(_typer_fast, "_failed", [])
    command = typer.main.get_command(app)
    active, reason = _typer_fast.status()
    if expected is not None:
        assert active is expected, reason
    fast = [_typer_fast.is_fast(p) for p in _plain_params(command)]
    assert len(fast) == 11
    if active:
        assert all(fast) and reason == ""
    else:
        assert not any(fast) and "typer's own converters are used" in reason


class Color(str, Enum):
    red = "red"
    green = "green"


def _record(seen: dict):
    def command(paths: List[Path] = typer.Argument(..., metavar="RULES"),
                one: Optional[Path] = typer.Option(None, "--one"),
                many: List[Path] = typer.Option([], "--many"),
                color: Color = typer.Option(Color.red, "--color", "-c"),
                maybe: Optional[Color] = typer.Option(None, "--maybe"),
                words: List[str] = typer.Option([], "--word"),
                text: str = typer.Option("", "--text"),
                flag: bool = typer.Option(False, "--flag"),
                number: int = typer.Option(3, "--number")) -> None:   # not plain: typer's own path
        seen.update(paths=paths, one=one, many=many, color=color, maybe=maybe, words=words, text=text,
                    flag=flag, number=number)
    return command


ARGVS = [
    ["a"], ["a", "b//c/", "", "-"], ["a", "--one", "x.xml", "--many", "m1", "--many", "m2"],
    ["a", "-c", "green", "--maybe", "red", "--word", "w", "--word", "W", "--text", "t", "--flag"],
    ["a", "--color=green", "--number", "12"], ["a", "--text", "é\udcff"],
    ["a", "-c", "GREEN"], ["a", "--maybe", "blue"], ["a", "--number", "x"], [], ["a", "--one"],
    ["a", "--many"], ["--help"],
]


def _invoke(command_cls, argv: list[str]):
    from typer.testing import CliRunner

    seen: dict = {}
    local = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
    local.command(cls=command_cls)(_record(seen))
    result = CliRunner().invoke(local, argv)
    values = {k: (type(v), [(type(x), x) for x in v] if isinstance(v, list) else v) for k, v in seen.items()}
    return result.exit_code, result.output, values


@pytest.mark.parametrize("argv", ARGVS, ids=[" ".join(a) or "(none)" for a in ARGVS])
def test_values_and_errors_equal_typers_own(argv, monkeypatch):
    monkeypatch.setattr(_typer_fast, "_failed", [])
    fast = _invoke(_typer_fast.FastCommand, argv)
    own = _invoke(typer.core.TyperCommand, argv)
    assert fast == own


def test_internals_changing_shape_put_typers_path_back(monkeypatch):
    if not _typer_fast.status()[0]:
        pytest.skip("the fast path is not active with this typer")

    def moved(param):
        raise AttributeError("typer moved things")

    monkeypatch.setattr(_typer_fast, "_failed", [])
    command = typer.main.get_command(app)
    assert any(_typer_fast.is_fast(p) for p in command.params)
    monkeypatch.setattr(_typer_fast, "_kind", moved)
    command = typer.main.get_command(app)
    assert not any(_typer_fast.is_fast(p) for p in command.params)
    active, reason = _typer_fast.status()
    assert not active and "AttributeError" in reason
