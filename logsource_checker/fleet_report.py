"""The fleet report (fleet.py's result): JSON ``{"fleet": {...}}``, a text/Markdown summary and CSV matrices.

CSV cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return) get a
leading apostrophe.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from .fleet import COVERAGES, FleetResult

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
HOSTS_REQUIREMENTS = "hosts-requirements.csv"
HOSTS_RULES = "hosts-rules.csv"
GROUPS_REQUIREMENTS = "groups-requirements.csv"


def _changes(result: FleetResult) -> list[dict]:
    """Every change recommended in some group, with the hosts it is for and the (host, rule) pairs it unblinds."""
    reqs = result.resolution.requirements
    out: dict[str, dict] = {}
    for group in result.groups:
        size = len(group.hosts)
        for ranked in group.ranked:
            rid = ranked.requirement.id
            entry = out.setdefault(rid, {"requirement": rid, "name": reqs[rid].name, "kind": reqs[rid].kind,
                                         "hosts": 0, "unblinds": 0, "unblinds_high_critical": 0, "groups": []})
            entry["hosts"] += size
            entry["unblinds"] += ranked.unblinds * size
            entry["unblinds_high_critical"] += ranked.unblinds_high_critical * size
            entry["groups"].append(group.id)
    return sorted(out.values(), key=lambda c: (-c["unblinds"], -c["unblinds_high_critical"], -c["hosts"],
                                               c["requirement"]))


def _group(group: Any, resolution: Any) -> dict:
    counts = dict.fromkeys(COVERAGES, 0)
    for coverage in group.coverage:
        counts[coverage] = counts.get(coverage, 0) + 1
    reqs = resolution.requirements
    return {"id": group.id, "fingerprint": group.fingerprint, "hosts": list(group.hosts), "role": group.role.role,
            "role_reason": group.role.reason, "coverage": counts,
            "recommendations": [{"requirement": r.requirement.id, "name": r.requirement.name,
                                 "kind": r.requirement.kind, "rules": r.rules, "unblinds": r.unblinds,
                                 "unblinds_high_critical": r.unblinds_high_critical,
                                 "reason": group.reasons.get(r.requirement.id, "")} for r in group.ranked],
            "not_met": [{"requirement": rid, "name": reqs[rid].name, "kind": reqs[rid].kind,
                         "status": group.statuses[rid], "reason": reason} for rid, reason in group.reasons.items()]}


def _rules(result: FleetResult) -> list[dict]:
    rows = []
    for index, res in enumerate(result.resolution.rules):
        row: dict[str, Any] = {"id": res.rule.ref, "title": res.rule.title, "level": res.rule.level}
        for coverage in COVERAGES:
            row[f"{coverage}_hosts"] = 0
            row[f"{coverage}_groups"] = []
        for group in result.groups:
            coverage = group.coverage[index]
            row[f"{coverage}_hosts"] += len(group.hosts)
            row[f"{coverage}_groups"].append(group.id)
        rows.append(row)
    return rows


def build(result: FleetResult) -> dict:
    """The fleet report as plain data (the JSON output is ``{"fleet": build(...)}``)."""
    loaded = result.loaded
    read = [h for h in result.hosts if h["group"] is not None]
    return {
        "summary": {"hosts": len(result.hosts), "hosts_read": len(read), "hosts_not_read": len(result.hosts) - len(read),
                    "groups": len(result.groups), "rules": len(result.resolution.rules),
                    "requirements": len(result.resolution.requirements), "rule_errors": len(loaded.errors)},
        "hosts": result.hosts,
        "groups": [_group(g, result.resolution) for g in result.groups],
        "rules": _rules(result),
        "changes": _changes(result),
        "errors": list(result.errors),
        "rule_errors": [{"file": e.path, "message": e.message} for e in loaded.errors],
    }


def to_json(report: dict) -> str:
    return json.dumps({"fleet": report}, indent=2, ensure_ascii=False) + "\n"


def render(report: dict, flavour: str) -> str:
    """The summary: groups, the changes that help most (hosts x rules), the hosts not read."""
    from .templating import render as render_template

    return render_template("fleet.md.j2", flavour, r=report, top=report["changes"][:15])


def verdict(report: dict, fail_on: str) -> tuple[int, str]:
    """Exit status: 1 when a host or file could not be read, a rule file has errors, or (--fail-on) some
    group is missing a recommended change / has a high or critical rule blind or partial; else 0."""
    s = report["summary"]
    problems = [f"{n} {label}" for n, label in ((s["hosts_not_read"], "hosts not read"),
                                                (len(report["errors"]), "files in the fleet folder not used"),
                                                (s["rule_errors"], "rule file errors")) if n]
    if not s["hosts"]:
        problems.append("no host in the fleet folder (README, A whole fleet)")
    from .failon import FLEET, decide

    weak = sum(1 for r in report["rules"] if r["level"] in ("high", "critical")
               and (r["blind_hosts"] or r["partial_hosts"])) if fail_on == "critical" else 0
    return decide(fail_on, problems, checked=True, weak=weak, missing=len(report["changes"]), scope=FLEET)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _csv(header: list, rows: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([_cell(v) for v in header])
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def csv_files(result: FleetResult) -> dict[str, str]:
    """Host x requirement (status) and host x rule (coverage), a host not read with its errors and empty cells;
    and per group every requirement not met with its status and reason (as a single run on its first host)."""
    by_id = {g.id: g for g in result.groups}
    rids = list(result.resolution.requirements)
    refs = [res.rule.ref for res in result.resolution.rules]

    def rows(cells):  # noqa: ANN001, ANN202
        for host in result.hosts:
            group = by_id.get(host["group"])
            values = cells(group) if group is not None else [""] * (len(rids) if cells is req_cells else len(refs))
            yield [host["name"], host["group"] or "", host["role"] or "", "; ".join(host["errors"]), *values]

    def req_cells(group):  # noqa: ANN001, ANN202
        return [group.statuses[rid] for rid in rids]

    def rule_cells(group):  # noqa: ANN001, ANN202
        return group.coverage

    head = ["host", "group", "role", "errors"]
    recommended = {g.id: {r.requirement.id for r in g.ranked} for g in result.groups}
    reqs = result.resolution.requirements
    not_met = ([g.id, g.fingerprint, len(g.hosts), g.role.role, rid, reqs[rid].name, reqs[rid].kind, g.statuses[rid],
                "yes" if rid in recommended[g.id] else "no", reason]
               for g in result.groups for rid, reason in g.reasons.items())
    return {HOSTS_REQUIREMENTS: _csv(head + rids, rows(req_cells)), HOSTS_RULES: _csv(head + refs, rows(rule_cells)),
            GROUPS_REQUIREMENTS: _csv(["group", "fingerprint", "hosts", "role", "requirement", "name", "kind",
                                       "status", "recommended", "reason"], not_met)}


def write_csv(result: FleetResult, directory: Path, guard: Any) -> Any:
    from .writer import write_tree

    return write_tree(directory, csv_files(result), guard)


def run_cli(options: Any, folder: Path, fmt: str, output: Path | None, csv_dir: Path | None, fail_on: str,
            force: bool, jobs: int | None = None, emit: Path | None = None) -> tuple[int, str]:
    """``--fleet``: run, write the report (-o or standard output), the CSV files and (``--emit``) the changes per
    policy group; (exit status, why)."""
    import sys

    from .fleet import default_jobs, run
    from .writer import Guard, WriteRefused, write_file

    import os

    for target in (emit, csv_dir, output.parent if output is not None else None):
        if target is not None:
            real, root = os.path.realpath(target), os.path.realpath(folder)
            if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
                return 2, f"{target}: is inside the fleet folder {folder}; the next run would read it as a host"
    loaded_box: list = []
    guard = Guard(inputs=[*options.paths, str(folder)], force=force,
                  rule_files=lambda: [x.path for lr in loaded_box for x in [*lr.rules, *lr.errors, *lr.others]])
    emitter = None
    if emit is not None:
        from .fleet_emit import GroupEmitter

        emitter = GroupEmitter(options, emit, guard, loaded_box)
    try:
        result = run(options, folder, jobs or default_jobs(), on_group=emitter)
    except WriteRefused as exc:   # --emit: a group's folder (OSError while writing is turned into this)
        return 2, str(exc)
    if not loaded_box:
        loaded_box.append(result.loaded)
    report = build(result)
    text = to_json(report) if fmt == "json" else render(report, "markdown" if fmt == "markdown" else "text")
    try:
        if emitter is not None:
            count = emitter.finish(report)
            sys.stderr.write(f"Wrote the changes for {count} policy groups and collect.ps1 to {emit}\n")
        if csv_dir is not None:
            written = write_csv(result, csv_dir, guard)
            sys.stderr.write(f"Wrote the fleet CSV files to {written.directory}: {len(written)} files\n")
        if output is not None:
            write_file(output, text.encode("utf-8", errors="backslashreplace"), guard)
    except (OSError, WriteRefused) as exc:
        if isinstance(exc, OSError):
            return 2, f"{exc.filename or csv_dir or emit or output}: cannot write: {exc.strerror or exc}"
        return 2, str(exc)
    if output is None:
        sys.stdout.write(text)
    return verdict(report, fail_on)
