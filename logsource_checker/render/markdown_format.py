"""Markdown report through templates/report.md.j2 (all rule-derived text escaped)."""
from __future__ import annotations

from typing import Any

from ..templating import render as render_template
from . import ls_label, rel_path


def render(report: dict[str, Any], verbose: bool = False) -> str:
    return render_template("report.md.j2", "markdown", r=report, s=report["summary"], verbose=verbose,
                           ls_label=ls_label,
                           rel=lambda path: rel_path(path, report.get("rule_roots") or []))
