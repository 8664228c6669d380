"""Terminal report: the answer first. Rule-derived text is shown as plain Text (never as markup).

The first screen holds the verdict (rules usable / partial / blind / unknown, by level) and the changes
of the recommended plan, most benefit first, one line each; then what would decide the unknown rules
and the rules collected outside Windows. The log-source table, both plans side by side and the
per-rule detail come only with ``-v``. No cell breaks a word: columns of short values never wrap, a
long name is cut with an ellipsis, and prose wraps between words.
"""
from __future__ import annotations

import io
import os
from typing import Any

from ..templating import one_line
from . import ls_label, rel_path

_LEVEL_SHORT = {"critical": "crit", "high": "high", "medium": "med", "low": "low", "informational": "info",
                "unknown": "n/a"}
_COVERAGE_STYLE = {"usable": "green", "partial": "yellow", "blind": "bold red", "unknown": "cyan",
                   "not_checked": "dim"}
_STATES = ("usable", "partial", "blind", "unknown")
#: changes listed without -v (the first screen: 40 lines hold the verdict and these)
FIRST_SCREEN_CHANGES = 20
#: log sources named in the one line about rules collected outside Windows
OUTSIDE_SHOWN = 8


def _t(value: Any, style: str = ""):
    from rich.text import Text

    return Text(one_line(value), style=style)


def _inferred_text(need: dict[str, Any]) -> str:
    """' (inferred: basis)' for a need resting on a mapping no Microsoft page states, else ''."""
    bases = [o["basis"] for o in need.get("options") or [] if o.get("basis")]
    return f" (inferred: {'; '.join(dict.fromkeys(bases))})" if bases else ""


def _grid(*columns: tuple[str, dict[str, Any]]):
    """A borderless table whose cells never wrap: one row is one line. Columns without a ``ratio`` hold
    short values and are never cut (``_fit``); a ``ratio`` column takes the rest and ends a long name
    with an ellipsis."""
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1), header_style="bold",
                  expand=any(options.get("ratio") for _, options in columns))
    for title, options in columns:
        table.add_column(title, no_wrap=True, overflow="ellipsis", **options)
    return table


def _fit(table: Any) -> Any:
    """Give every column without a ratio the width of its widest cell, so only the ratio column is cut."""
    for column in table.columns:
        if column.ratio is None and column.no_wrap:
            cells = [len(str(column.header))] + [len(getattr(c, "plain", str(c))) for c in column.cells]
            column.min_width = min(max(cells), column.max_width or max(cells))
    return table


def print_report(report: dict[str, Any], console: Any, verbose: bool = False) -> None:
    s = report["summary"]
    roots = report.get("rule_roots") or []
    _verdict(report, console)
    _changes(report, console, verbose)
    _recoveries(report, console)
    _undecided(report, console)
    _policy(report, console, verbose)
    _print_collection(report, console)
    _print_events(report, console)
    _unmapped(report, console, roots)
    if verbose:
        _logsources(report, console)
        _plans_table(report.get("plans") or [], console)
        _rules(report, console, roots)
    _errors(report, console, roots)
    line = (f"{s['rules_checked']} rules checked ({s['files']} files), {s['errors']} errors, "
            f"{s['logsources']} log sources, {s['unmapped_logsources']} unmapped log sources, "
            f"{s['unmapped_event_ids']} unmapped event IDs")
    if s.get("filtered_out"):
        line += f", {s['filtered_out']} rules filtered out"
    if s.get("unsatisfiable_field_rules"):
        line += f", {s['unsatisfiable_field_rules']} rules testing a field no producer writes"
    if not verbose:
        line += "; -v: log sources, both plans, every rule"
    console.print(_t(line, "dim"))


def _verdict(report: dict[str, Any], console: Any) -> None:
    from rich.text import Text

    s = report["summary"]
    if not s["policy_checked"]:
        console.print(_t(f"Verdict: {s['rules_checked']} rules; coverage not checked (no --gpresult, --auditpol or "
                         "--sysmon-config given). What the rules need:", "bold"))
        return
    c = s["coverage"]
    line = Text("Verdict: ", style="bold")
    for i, state in enumerate(_STATES):
        line.append(f"{c[state]} {state}", style=_COVERAGE_STYLE[state])
        line.append(", " if i < len(_STATES) - 1 else "")
    line.append(f" of {s['rules_checked']} rules")
    console.print(line)
    if not s["coverage_by_level"]:
        return
    table = _grid(("Level", {}), *((state, {"justify": "right"}) for state in _STATES))
    for lvl, row in s["coverage_by_level"].items():
        table.add_row(f"  {lvl}", *(str(row[k]) for k in _STATES))
    console.print(_fit(table))


def _chosen(report: dict[str, Any]) -> dict[str, Any] | None:
    return next((p for p in report.get("plans") or [] if p["chosen"]), None)


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


def _print_events(report: dict[str, Any], console: Any) -> None:
    """--events: the samples read, their warnings, and the met requirements never seen (not_observed)."""
    from rich.text import Text

    events = report.get("events")
    if not events:
        return
    console.print(Text("Events seen", style="bold"))
    span = (f"covering {events['span_hours']} hours ({events['first']} to {events['last']})"
            if events["span_hours"] is not None else "no times given (a count export without first/last seen)")
    console.print(_t(f"  {events['events']} events in {len(events['files'])} files, {span}"))
    for note in events["warnings"][:5]:
        console.print(_t(f"    note: {note}"))
    for req in report["requirements"]:
        seen = req.get("observed") or {}
        if seen.get("flag") in ("not_observed", "seen_despite_policy") and req["rules"]:
            label = "  not observed: " if seen["flag"] == "not_observed" else "  seen despite policy: "
            console.print(Text(label, style="yellow") + _t(
                f"{req['name']} [{req['kind']}, {len(req['rules'])} rules]: {seen['reason']}"))


_SOURCE = {"measured": " measured", "measured_and_guide": " partly measured"}   # --events (volume_measured.py)


def _volume(volume: str | None):
    volume = volume or "unknown"
    return _t(volume + " !", "bold yellow") if volume in ("high", "unknown") else _t(volume)


def _changes(report: dict[str, Any], console: Any, verbose: bool) -> None:
    plan = _chosen(report)
    if plan is None:
        return
    steps = plan["steps"]
    if not steps:
        c = report["summary"]["coverage"]
        weak = c["blind"] + c["partial"]
        console.print()
        console.print(_t(f"No change needed ({plan['name']} plan).", "bold green") if not weak else _t(
            f"The {plan['name']} plan has no change for the {weak} blind or partial rules (-v shows their needs).",
            "bold"))
        return
    console.print()
    console.print(_t(f"Changes, {plan['name']} plan: {len(steps)}, unblinding {plan['unblinds']} rules "
                     f"({plan['unblinds_high_critical']} high/critical)", "bold"))
    table = _grid(("#", {"justify": "right"}), ("Kind", {}), ("Change", {"ratio": 1, "min_width": 12}),
                  ("S/F", {}), ("Unblinds", {"justify": "right"}), ("Volume", {}))
    shown = steps if verbose else steps[:FIRST_SCREEN_CHANGES]
    for i, step in enumerate(shown, 1):
        table.add_row(str(i), step["kind"], _t(step["label"]), step["outcomes"], str(step["unblinds"]),
                      _volume(step["volume"]) + _t(_SOURCE.get(step.get("volume_source"), "")))
    console.print(_fit(table))
    notes = []
    if len(steps) > len(shown):
        notes.append(f"... {len(steps) - len(shown)} more changes (-v lists them; --emit DIR writes them all)")
    if any(step["volume"] in ("high", "unknown") for step in shown):
        notes.append("! high or unknown event volume: try it on a few machines first (--max-volume holds back)")
    for other in report.get("plans") or []:
        if not other["chosen"]:
            notes.append(f"{other['name']} plan instead: {len(other['steps'])} changes, unblinding {other['unblinds']} "
                         f"rules, {other['still_blind']} still blind (--plan {other['name']})")
    for step in plan["held_back_steps"]:
        notes.append(f"held back: {step['label']} (volume {step['volume']}) would unblind {step['unblinds']} rules")
    notes.extend(_sacl_where(step, None if verbose else 3) for step in shown if "objects" in step)
    for note in notes:
        console.print(_t(note, "dim"))


def _sacl_where(step: dict[str, Any], limit: int | None) -> str:
    """Where a plan's SACL goes: the objects its rules name (the first ``limit`` on the first screen), and
    the rules that name none."""
    objects = step["objects"] if limit is None else step["objects"][:limit]
    more = step["more_objects"] + len(step["objects"]) - len(objects)
    parts = ["; ".join(objects) + (f" (and {more} more{'' if limit is None else ': -v, --emit'})" if more else "")]
    if step["rules_without_object"]:
        count = step["rules_without_object"]
        parts.append(f"{step['objects_unnamed']} ({count} rule{'s name' if count > 1 else ' names'} none)")
    return f"{step['label']} ({step['outcomes']}) on: " + "; ".join(p for p in parts if p)


def _recoveries(report: dict[str, Any], console: Any) -> None:
    """Partial rules: what would serve the selections they lose (recover.py), one line per way."""
    entries = report.get("lost_selection_recoveries") or []
    if not entries:
        return
    console.print()
    console.print(_t("Partial rules: what would serve the selections they lose", "bold"))
    for e in entries:
        unknown = [rid for rid, status in e["statuses"].items() if status != "missing"]
        console.print(_t(f"  {e['option']}: sees {', '.join(e['selections'])} that {', '.join(e['serving'])} cannot; "
                         f"{e['rules']} rule{'s' if e['rules'] != 1 else ''} ({e['high_critical']} high/critical), {e['usable_after']} fully usable "
                         f"with it; volume {e['volume']}"
                         + (f"; not known to be in place: {', '.join(unknown)}" if unknown else "")))


def _undecided(report: dict[str, Any], console: Any) -> None:
    s = report["summary"]
    hints = s.get("unknown_by_input") or {}
    if hints and s["policy_checked"]:
        console.print()
        console.print(_t(f"{s['coverage']['unknown']} rules unknown; what would decide them (rules, an input each; "
                         "a rule may need several):", "bold"))
        table = _grid(("", {"justify": "right"}), ("", {}))
        for column in table.columns[1:]:
            column.no_wrap = False   # prose: wraps between words, never inside one
            column.overflow = "fold"
        table.show_header = False
        for hint, count in hints.items():
            table.add_row(f"  {count}", _t(hint))
        console.print(_fit(table))
    outside = s.get("outside_windows") or {}
    if outside.get("rules"):
        sources = list(outside["by_source"].items())
        parts = ", ".join(f"{name} {n}" for name, n in sources[:OUTSIDE_SHOWN])
        if len(sources) > OUTSIDE_SHOWN:
            parts += f", {len(sources) - OUTSIDE_SHOWN} more"
        console.print(_t(f"{outside['rules']} rules need collection outside Windows policy: {parts}; "
                         "see --product"))


def _policy(report: dict[str, Any], console: Any, verbose: bool) -> None:
    policy = report.get("policy")
    if not policy:
        return
    console.print()
    names = ", ".join(f"{inp['path'] if verbose else os.path.basename(inp['path'])} ({inp['format']})"
                      for inp in policy["inputs"])
    console.print(_t(f"Policy: {names}; role {policy['role']}", "bold"))
    console.print(_t(f"  audit policy: {policy['audit_explanation']}"))
    if verbose:
        console.print(_t(f"  machine role: {policy['role']} ({policy['role_reason']})"))
        console.print(_t(f"  Windows audit defaults: {policy['audit_defaults']}"))
    for w in policy["warnings"]:
        console.print(_t("  warning: ", "yellow") + _t(w))
    for c in policy["conflicts"]:
        console.print(_t("  conflict: ", "yellow") + _t(c))


def _unmapped(report: dict[str, Any], console: Any, roots: list[str]) -> None:
    unmapped = report["unmapped"]
    if not (unmapped["logsources"] or unmapped["event_ids"]):
        return
    console.print(_t("Unmapped", "bold red"))
    for u in unmapped["logsources"]:
        console.print(_t(f"  log source {ls_label(u)}: no guide ({len(u['rules'])} rules, "
                         f"e.g. {rel_path(u['paths'][0], roots)})"))
    for u in unmapped["event_ids"]:
        console.print(_t(f"  EventID {u['event_id']} ({ls_label(u['logsource'])}): {u['reason']} "
                         f"({len(u['rules'])} rules, e.g. {rel_path(u['paths'][0], roots)})"))


def _logsources(report: dict[str, Any], console: Any) -> None:
    policy_checked = report["summary"]["policy_checked"]
    table = _grid(("Log source", {"max_width": 28}), ("Rules", {"justify": "right"}),
                  *(((state, {"justify": "right"}) for state in _STATES) if policy_checked else ()),
                  ("Guide", {"ratio": 1, "min_width": 10}))
    for ls in report["logsources"]:
        source = "/".join(str(ls[k]) for k in ("product", "category", "service") if ls[k]) or "(empty)"
        guide = _t(ls["guide_title"]) if ls["guide_title"] else _t("NO GUIDE", "bold red")
        counts = [str(ls["coverage"].get(state, 0) or "") for state in _STATES] if policy_checked else []
        table.add_row(_t(source), str(ls["rules"]), *counts, guide)
    console.print()
    console.print(_t(f"Log sources ({len(report['logsources'])})", "bold"))
    console.print(_fit(table))


def _plans_table(plans: list[dict[str, Any]], console: Any) -> None:
    """The two plans side by side (native: settings only; sysmon: Sysmon allowed, native where cheaper)."""
    if not plans:
        return
    table = _grid(("Plan", {}), ("Changes", {"justify": "right"}), ("Unblinds", {"justify": "right"}),
                  ("high/crit", {"justify": "right"}), ("Still blind", {"justify": "right"}),
                  ("Vol l/m/h/?", {"justify": "right"}))
    for plan in plans:
        vol = plan["volume"]
        table.add_row(plan["name"] + (" *" if plan["chosen"] else ""), str(len(plan["steps"])), str(plan["unblinds"]),
                      str(plan["unblinds_high_critical"]), str(plan["still_blind"]),
                      f"{vol['low']}/{vol['medium']}/{vol['high']}/{vol['unknown']}")
    console.print()
    console.print(_t("Plans (native: settings only; sysmon: Sysmon allowed, native where cheaper; * recommended)",
                     "bold"))
    console.print(_fit(table))


def _rules(report: dict[str, Any], console: Any, roots: list[str]) -> None:
    console.print()
    console.print(_t(f"Rules ({len(report['rules'])})", "bold"))
    for rule in report["rules"]:
        head = _t(f"[{rule['coverage']}]", _COVERAGE_STYLE.get(rule["coverage"], ""))
        head += _t(f" {_LEVEL_SHORT.get(rule['level'] or 'unknown', rule['level'])} {rule['title']}")
        console.print(head)
        # a path is one word: never broken (a terminal narrower than it wraps it itself)
        console.print(_t(f"    {rel_path(rule['path'], roots)}"), no_wrap=True, overflow="ignore", crop=False)
        details = [f"{n['status']}: {n['label']}{_inferred_text(n)}" for n in rule.get("needs") or []]
        if rule.get("lost_selections"):
            details.append(f"loses {', '.join(rule['lost_selections'])}")
        if rule.get("unsatisfiable_fields"):
            details.append(f"no producer writes {', '.join(rule['unsatisfiable_fields'])}")
        details += [f"would be decided by {hint}" for hint in rule.get("decided_by") or []]
        for detail in details:
            console.print(_t(f"    {detail}"))


def _errors(report: dict[str, Any], console: Any, roots: list[str]) -> None:
    if not report["errors"]:
        return
    console.print(_t(f"Errors ({len(report['errors'])})", "bold red"))
    for e in report["errors"]:
        where = rel_path(e["path"], roots) + (f":{e['line']}" if e["line"] else "")
        console.print(_t(f"  {where}: {e['message']}"))


def render(report: dict[str, Any], verbose: bool = False, width: int = 100) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False, emoji=False)
    print_report(report, console, verbose)
    return buffer.getvalue()
