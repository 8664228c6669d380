"""Terminal report: rich tables. Rule-derived text is shown as plain Text (never as markup)."""
from __future__ import annotations

import io
from typing import Any

from ..templating import one_line
from . import ls_label

_LEVEL_SHORT = {"critical": "crit", "high": "high", "medium": "med", "low": "low", "informational": "info",
                "unknown": "n/a"}
_COVERAGE_STYLE = {"usable": "green", "partial": "yellow", "blind": "bold red", "unknown": "cyan",
                   "not_checked": "dim"}


def _t(value: Any):
    from rich.text import Text

    return Text(one_line(value))


def print_report(report: dict[str, Any], console: Any, verbose: bool = False) -> None:
    from rich.table import Table
    from rich.text import Text

    s = report["summary"]
    table = Table(title="Log sources", show_lines=False)
    table.add_column("Log source", overflow="fold", ratio=3)
    table.add_column("Rules", justify="right", no_wrap=True)
    table.add_column("Levels", overflow="fold", ratio=2)
    table.add_column("EventIDs", overflow="fold", ratio=2)
    table.add_column("Guide", overflow="fold", ratio=3)
    if s["policy_checked"]:
        table.add_column("Coverage", overflow="fold", ratio=2)
    for ls in report["logsources"]:
        levels = ls["levels"]
        ids = ls["event_ids"]
        ids_text = " ".join(map(str, ids[:6])) + (f" +{len(ids) - 6}" if len(ids) > 6 else "")
        level_text = " ".join(f"{n} {_LEVEL_SHORT.get(lvl, lvl)}" for lvl, n in levels.items() if n)
        source = ls_label(ls, compact=True)
        guide = _t(ls["guide_title"]) if ls["guide_title"] else Text("NO GUIDE", style="bold red")
        row = [_t(source), str(ls["rules"]), level_text, ids_text, guide]
        if s["policy_checked"]:
            cov = Text()
            for state in ("usable", "partial", "blind", "unknown"):
                if ls["coverage"].get(state):
                    cov.append(f"{ls['coverage'][state]} {state} ", style=_COVERAGE_STYLE[state])
            row.append(cov)
        table.add_row(*row)
    console.print(table)

    policy = report.get("policy")
    if policy:
        console.print(Text("Policy", style="bold"))
        for inp in policy["inputs"]:
            console.print(_t(f"  read {inp['path']} ({inp['format']})"))
        console.print(_t(f"  audit policy: {policy['audit_explanation']}"))
        for w in policy["warnings"]:
            console.print(Text("  warning: ", style="yellow") + _t(w))
        for c in policy["conflicts"]:
            console.print(Text("  conflict: ", style="yellow") + _t(c))
        cov = Table(title="Coverage by level")
        for col in ("Level", "usable", "partial", "blind", "unknown"):
            cov.add_column(col, justify="right" if col != "Level" else "left")
        for lvl, row in s["coverage_by_level"].items():
            cov.add_row(lvl, *(str(row[k]) for k in ("usable", "partial", "blind", "unknown")))
        console.print(cov)
        recs = report["recommendations"]
        if recs:
            missing = Table(title="Missing requirements, most rules unblinded first")
            missing.add_column("#", justify="right", no_wrap=True)
            missing.add_column("Requirement", overflow="fold", ratio=3)
            missing.add_column("Unblinds (high+crit)", justify="right", ratio=1)
            missing.add_column("Rules", justify="right", no_wrap=True)
            missing.add_column("Volume", no_wrap=True)
            missing.add_column("Why", overflow="fold", ratio=4)
            shown = recs if verbose else recs[:25]
            for i, m in enumerate(shown, 1):
                missing.add_row(str(i), _t(f"{m['name']} [{m['kind']}]"),
                                f"{m['unblinds']} ({m['unblinds_high_critical']})", str(m["rules"]),
                                m["volume"] or "unknown", _t(m["reason"]))
            console.print(missing)
            if len(recs) > len(shown):
                console.print(f"  ... {len(recs) - len(shown)} more (use -v or --format json)")
    unmapped = report["unmapped"]
    if unmapped["logsources"] or unmapped["event_ids"]:
        console.print(Text("Unmapped", style="bold red"))
        for u in unmapped["logsources"]:
            console.print(_t(f"  log source {ls_label(u)}: no guide ({len(u['rules'])} rules, e.g. {u['paths'][0]})"))
        for u in unmapped["event_ids"]:
            console.print(_t(f"  EventID {u['event_id']} ({ls_label(u['logsource'])}): {u['reason']} "
                             f"({len(u['rules'])} rules, e.g. {u['paths'][0]})"))
    if verbose:
        rules = Table(title="Rules")
        for col in ("Coverage", "Level", "Title", "Path", "Needs"):
            rules.add_column(col, overflow="fold")
        for rule in report["rules"]:
            needs = "; ".join(f"{n['status']}: {n['label']}" for n in rule.get("needs") or [])
            rules.add_row(Text(rule["coverage"], style=_COVERAGE_STYLE.get(rule["coverage"], "")),
                          rule["level"] or "", _t(rule["title"]), _t(rule["path"]), _t(needs))
        console.print(rules)
    if report["errors"]:
        console.print(Text(f"Errors ({len(report['errors'])})", style="bold red"))
        for e in report["errors"]:
            where = e["path"] + (f":{e['line']}" if e["line"] else "")
            console.print(_t(f"  {where}: {e['message']}"))
    line = (f"{s['rules_checked']} rules checked ({s['files']} files), {s['errors']} errors, "
            f"{s['logsources']} log sources, {s['unmapped_logsources']} unmapped log sources, "
            f"{s['unmapped_event_ids']} unmapped event IDs")
    if s["policy_checked"]:
        c = s["coverage"]
        line += (f"; usable {c['usable']}, partial {c['partial']}, blind {c['blind']}, unknown {c['unknown']}; "
                 f"{s['missing_requirements']} missing requirements")
    console.print(Text(line, style="bold"))


def render(report: dict[str, Any], verbose: bool = False) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=140, color_system=None, highlight=False, emoji=False)
    print_report(report, console, verbose)
    return buffer.getvalue()
