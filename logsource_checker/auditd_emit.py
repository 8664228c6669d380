"""Emit ``audit.rules``: the Linux audit rules the checked rules need and the host does not load yet.

For every need of a rule that is not met, the option whose requirements are all audit rules (fully determined
ones first) with the fewest lines to add is taken (then the guide's order); its syscall rules and watches
that are missing (or unknown for want of an ``--auditd-rules`` input) are written, each once, each with the
rules that need it, the rules it unblinds alone and its volume. Only ``-a always,exit`` and ``-w`` lines are
written: never ``-D``, ``-e``, a ``never`` rule or anything that deletes or locks rules. Before a line is
written it is parsed back (policy/auditd.py) and checked (auditd_check.py) together with the host's rules:
a line that would not meet its requirement (an earlier ``never`` or exclude rule suppresses the records, and
rules are matched first-first) is listed as not emitted, with the reason, instead of written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import __version__
from .auditd_check import NO_INPUT, auditd_status
from .diff import coverage_if, improves, need_status
from .policy.auditd import read_auditd_rules
from .policy.model import AuditdRules
from .report import CheckResult
from .resolve import Option, Requirement
from .templating import Trusted, render

FILE_NAME = "audit.rules"
# what a line may be (checked again here, whatever built it): a syscall rule or a watch, with our key
_LINE_RE = re.compile(r"^-(a always,exit -F arch=b(32|64) -S [a-z][a-z0-9_]{0,40}|w /[A-Za-z0-9._/+@:,=~-]{0,255} "
                      r"-p [rwxa]{1,4}) -k [A-Za-z0-9_.:-]{1,31}$")
_MAX_TITLES = 5


@dataclass
class Line:
    req: Requirement
    text: str
    rules: dict[str, str] = field(default_factory=dict)   # ref -> title
    unblinds: int = 0


def _emittable(req: Requirement) -> bool:
    return req.kind == "auditd_rule" and bool(req.how) and (
        req.status in ("missing", "not_checked") or (req.status == "unknown" and req.reason == NO_INPUT))


def _undetermined(req: Requirement) -> bool:
    return not req.auditd or req.auditd[0] == "undetermined"


def _auditd_option(options: list[Option], reqs: dict[str, Requirement]) -> Option | None:
    """The way through audit rules alone: fully determined first, then the fewest lines to add, then primary.
    An option that also holds what cannot be told still gets the lines that can (they are needed either way)."""
    candidates = [o for o in options if o.requirements and all(reqs[rid].kind == "auditd_rule" for rid in o.requirements)]
    if not candidates:
        return None
    return min(candidates, key=lambda o: (any(_undetermined(reqs[rid]) for rid in o.requirements),
                                          sum(_emittable(reqs[rid]) for rid in o.requirements), not o.primary))


def _would_meet(req: Requirement, text: str, host: AuditdRules | None, result: CheckResult) -> tuple[bool, str]:
    """Parse the line back (as the host would load it after its own rules) and check the requirement."""
    added = read_auditd_rules([FILE_NAME], [text]).auditd
    assert added is not None
    rules = AuditdRules(sources=[FILE_NAME], rules=list(added.rules))
    if host is not None:
        rules = AuditdRules(sources=host.sources + [FILE_NAME], rules=host.rules + added.rules,
                            enabled=host.enabled, enabled_source=host.enabled_source)
    status, reason = auditd_status(req.auditd, rules, result.knowledge.auditd)
    return status == "met", reason


def plan_lines(result: CheckResult) -> tuple[list[Line], list[dict[str, str]]]:
    """The lines to write and the requirements held back (with why)."""
    reqs = result.resolution.requirements
    host = result.snapshot.auditd if result.snapshot is not None else None
    statuses = {rid: req.status for rid, req in reqs.items()}
    lines: dict[str, Line] = {}
    held: dict[str, dict[str, str]] = {}
    for res in result.resolution.rules:
        for need in res.needs:
            if need_status(need, statuses) == "met":
                continue
            option = _auditd_option(need.options, reqs)
            if option is None:
                continue
            for rid in option.requirements:
                req = reqs[rid]
                if not _emittable(req) or rid in held:
                    continue
                line = lines.get(rid)
                if line is None:
                    text = str(req.how)
                    ok, why = _would_meet(req, text, host, result) if _LINE_RE.match(text) else (False, "unsafe line")
                    if not ok:
                        held[rid] = {"name": req.name, "reason": why}
                        continue
                    line = lines[rid] = Line(req=req, text=text)
                line.rules[res.rule.ref] = res.rule.title or res.rule.ref
    _count(result, statuses, list(lines.values()))
    return list(lines.values()), list(held.values())


def _count(result: CheckResult, statuses: dict[str, str], lines: list[Line]) -> None:
    baseline = {rid: ("missing" if _emittable(req) else status)
                for (rid, status), req in zip(statuses.items(), result.resolution.requirements.values())}
    by_ref = {res.rule.ref: res for res in result.resolution.rules}
    for line in lines:
        rules = [by_ref[ref] for ref in line.rules]
        before = coverage_if(rules, baseline)
        after = coverage_if(rules, baseline, [line.req.id])
        line.unblinds = sum(1 for b, a in zip(before, after) if improves(b, a))


def _volume_note(req: Requirement) -> str:
    if req.volume == "high":
        return ("high volume: records on every call of this syscall on the host; on a busy server this is heavy "
                "(disk, backlog, forwarding): measure on one host first")
    if req.volume in ("low", "medium"):
        return f"{req.volume} volume"
    return "volume unknown: measure on one host first"


def auditd_files(result: CheckResult) -> dict[str, str]:
    """``{"audit.rules": text}`` when a checked rule needs Linux audit rules, else nothing."""
    if not any(req.kind == "auditd_rule" for req in result.resolution.requirements.values()):
        return {}
    lines, held = plan_lines(result)
    lines.sort(key=lambda line: (line.req.auditd or ())[:1] + (line.req.auditd or ())[::-1][:2])
    entries: list[dict[str, Any]] = []
    for line in lines:
        titles = sorted(line.rules.values())
        more = len(titles) - _MAX_TITLES
        entries.append({"line": Trusted(line.text), "rules": len(line.rules), "unblinds": line.unblinds,
                        "titles": "; ".join(titles[:_MAX_TITLES]) + (f" (and {more} more)" if more > 0 else ""),
                        "volume": _volume_note(line.req), "name": line.req.name})
    snapshot = result.snapshot
    host = snapshot.auditd if snapshot is not None else None
    return {FILE_NAME: render("emit/audit.rules.j2", "script", version=Trusted(__version__), lines=entries, held=held,
                              given=host is not None, locked=host is not None and host.enabled == 2,
                              sources=host.sources if host is not None else [])}
