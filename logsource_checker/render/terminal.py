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


def _inferred_text(need: dict[str, Any]) -> str:
    """' (inferred: basis)' for a need resting on a mapping no Microsoft page states, else ''."""
    bases = [o["basis"] for o in need.get("options") or [] if o.get("basis")]
    return f" (inferred: {'; '.join(dict.fromkeys(bases))})" if bases else ""


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
        level_text = " ".join(f"{levels[lvl]} {_LEVEL_SHORT[lvl]}" for lvl in _LEVEL_SHORT if levels.get(lvl))
        source = " / ".join(str(ls[k]) for k in ("product", "category", "service") if ls[k]) or "(empty)"
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
        console.print(_t(f"  machine role: {policy['role']} ({policy['role_reason']})"))
        console.print(_t(f"  Windows audit defaults: {policy['audit_defaults']}"))
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
        _print_plans(report.get("plans") or [], console)
        recs = report["recommendations"]
        chosen = next((p["name"] for p in report.get("plans") or [] if p["chosen"]), None)
        if recs:
            title = f"Recommended changes ({chosen} plan)" if chosen else "Missing requirements"
            missing = Table(title=f"{title}, most rules unblinded first")
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
                                _volume(m["volume"]), _t(m["reason"]))
            console.print(missing)
            if len(recs) > len(shown):
                console.print(f"  ... {len(recs) - len(shown)} more (use -v or --format json)")
    _print_collection(report, console)
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
            needs = "; ".join(f"{n['status']}: {n['label']}" + _inferred_text(n) for n in rule.get("needs") or [])
            if rule.get("lost_selections"):
                needs += f"; loses {', '.join(rule['lost_selections'])}"
            if rule.get("unsatisfiable_fields"):
                needs += f"; no producer writes {', '.join(rule['unsatisfiable_fields'])}"
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
    if s.get("unsatisfiable_field_rules"):
        line += f", {s['unsatisfiable_field_rules']} rules testing a field no producer writes"
    if s["policy_checked"]:
        c = s["coverage"]
        line += (f"; usable {c['usable']}, partial {c['partial']}, blind {c['blind']}, unknown {c['unknown']}; "
                 f"{s['missing_requirements']} missing requirements")
    console.print(Text(line, style="bold"))


def _print_collection(report: dict[str, Any], console: Any) -> None:
    """--collector: the files read, and one line per requirement whose events are not forwarded."""
    from rich.text import Text

    collectors = report.get("collectors") or []
    if not collectors:
        return
    s = report["summary"]
    console.print(Text("Collection", style="bold"))
    for c in collectors:
        console.print(_t(f"  read {c['path']} ({c['format']}): {len(c['inputs'])} channel stanzas"))
        for note in c["warnings"][:5]:
            console.print(_t(f"    note: {note}"))
    console.print(_t(f"  rules blind or partial because their events are not forwarded: {s['rules_not_collected']}; "
                     f"not evaluable: {s['rules_collection_unknown']}"))
    for req in report["requirements"]:
        if req.get("collected") is False and req["rules"]:
            where = req["collection"] or {}
            at = f" ({where.get('file')}, {where.get('stanza')})" if where.get("stanza") else ""
            console.print(Text("  not collected: ", style="yellow") + _t(
                f"{req['name']} [{req['kind']}, {req['status']}, {len(req['rules'])} rules]: {where.get('reason')}{at}"))


def _volume(volume: str | None):
    from rich.text import Text

    volume = volume or "unknown"
    if volume in ("high", "unknown"):
        return Text(f"{volume} (warning)", style="bold yellow")
    return Text(volume)


def _print_plans(plans: list[dict[str, Any]], console: Any) -> None:
    """The two plans side by side, then what the chosen one holds back (--max-volume)."""
    from rich.table import Table
    from rich.text import Text

    if not plans:
        return
    table = Table(title="Plans (native: settings only; sysmon: Sysmon allowed, native where cheaper)")
    for col in ("Plan", "Changes", "Unblinds (high+crit)", "Still blind", "Volume low/med/high/unknown",
                "Held back"):
        table.add_column(col, justify="left" if col == "Plan" else "right")
    for plan in plans:
        vol = plan["volume"]
        table.add_row(plan["name"] + (" (recommended)" if plan["chosen"] else ""), str(len(plan["steps"])),
                      f"{plan['unblinds']} ({plan['unblinds_high_critical']})", str(plan["still_blind"]),
                      f"{vol['low']}/{vol['medium']}/{vol['high']}/{vol['unknown']}",
                      str(len(plan["held_back_steps"])))
    console.print(table)
    for plan in plans:
        if not plan["chosen"]:
            continue
        for step in plan["held_back_steps"]:
            console.print(Text("  held back: ", style="yellow") + _t(
                f"{', '.join(step['names'])} (volume {step['volume']}) would unblind {step['unblinds']} rules "
                f"({step['unblinds_high_critical']} high/critical)"))


def render(report: dict[str, Any], verbose: bool = False) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=140, color_system=None, highlight=False, emoji=False)
    print_report(report, console, verbose)
    return buffer.getvalue()
