"""SARIF 2.1.0 report (``--format sarif``): one result per blind or partial rule, at its file and the
line of its ``logsource``, for code-scanning tools (GitHub code scanning, IDE viewers).

The result's rule id says why the rule is blind or partial, by the kind of the first change of the
recommended plan the rule needs (``missing-audit-subcategory``...); its message names every change that
fixes it. A rule the plan does not fix (the producer in place cannot see a selection, a change held back,
a need no plan can switch on) gets ``unknown-change`` or ``held-back-change``. The level follows the
Sigma rule's level: critical and high are ``error``, medium ``warning``, the rest ``note``.

Specification: OASIS SARIF 2.1.0 (https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html);
tests/test_sarif.py validates the output against the official schema.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .. import __version__

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

#: rule id per requirement kind, with what it means (SARIF reportingDescriptor)
REASONS: dict[str, tuple[str, str]] = {
    "audit_subcategory": ("missing-audit-subcategory", "An advanced audit subcategory the rule needs is not set"),
    "registry_policy": ("missing-registry-policy", "A registry-backed policy the rule needs is not set"),
    "event_channel": ("missing-channel", "An event-log channel the rule reads is not enabled"),
    "sysmon_event": ("missing-sysmon-event", "The Sysmon configuration does not collect an event the rule reads"),
    "sacl": ("missing-sacl", "No SACL makes Windows audit the objects the rule watches"),
}
HELD_BACK = ("held-back-change", "The change that fixes the rule was held back (--max-volume / "
             "--hold-unknown-volume)")
UNKNOWN = ("unknown-change", "No change of the recommended plan fixes the rule (see the message)")
_LEVELS = {"critical": "error", "high": "error", "medium": "warning"}

_DOC_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)
_LOGSOURCE = re.compile(r"^logsource[ \t]*:", re.MULTILINE)


def logsource_line(path: str, document: int) -> int | None:
    """The 1-based line of the top-level ``logsource:`` key of the document (0-based) in the file; None when
    the file cannot be read or the key is not written plainly at the start of a line."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    starts = [0] + [m.end() for m in _DOC_SEPARATOR.finditer(text)]
    if _DOC_SEPARATOR.match(text):          # a file that opens with '---': its first document follows it
        starts = starts[1:]
    if document >= len(starts):
        return None
    end = starts[document + 1] if document + 1 < len(starts) else len(text)
    found = _LOGSOURCE.search(text, starts[document], end)
    return text.count("\n", 0, found.start()) + 1 if found else None


def _location(path: str, line: int | None, cwd: str) -> dict[str, Any]:
    """A relative path (as given, or below the working folder) is relative to SRCROOT, so that a code-scanning
    upload from the repository root finds the file; any other path is an absolute file URI."""
    full = os.path.abspath(path)
    rel = os.path.relpath(full, cwd) if full.startswith(cwd.rstrip(os.sep) + os.sep) else None
    if rel is not None:
        artifact: dict[str, Any] = {"uri": Path(rel).as_posix(), "uriBaseId": "SRCROOT"}
    else:
        artifact = {"uri": Path(full).as_uri()}
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if line is not None:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


def _why(rule: dict[str, Any], reqs: dict[str, dict[str, Any]]) -> tuple[tuple[str, str], str]:
    """The reason (rule id, description) and the message's fix for one blind or partial rule."""
    names = lambda ids: "; ".join(dict.fromkeys(reqs[i]["name"] for i in ids if i in reqs))  # noqa: E731
    if rule.get("changes"):
        first = reqs.get(rule["changes"][0], {})
        reason = REASONS.get(first.get("kind", ""), UNKNOWN)
        return reason, f"Fix: {names(rule['changes'])}."
    if rule.get("held_back"):
        return HELD_BACK, f"Held back: {names(rule['held_back'])}."
    why = []
    if rule.get("lost_selections"):
        why.append(f"the producer in place cannot see {', '.join(rule['lost_selections'])}")
    if rule.get("event_ids_missing"):
        why.append(f"EventIDs {', '.join(map(str, rule['event_ids_missing']))} are not produced and the plan "
                   "switches nothing on for them (try --plan sysmon, or -v for the rule's needs)")
    return UNKNOWN, ("No change of the plan fixes it: " + "; ".join(why) + ".") if why else \
        "No change of the plan fixes it (see -v for the rule's needs)."


def build_sarif(report: dict[str, Any], cwd: str | None = None) -> dict[str, Any]:
    cwd = os.path.abspath(cwd or os.getcwd())
    reqs = {r["id"]: r for r in report["requirements"]}
    plan = next((p["name"] for p in report.get("plans") or [] if p["chosen"]), None)
    descriptors: dict[str, int] = {}
    rules: list[dict[str, Any]] = []
    results = []
    for rule in report["rules"]:
        if rule["coverage"] not in ("blind", "partial"):
            continue
        (rule_id, description), fix = _why(rule, reqs)
        if rule_id not in descriptors:
            descriptors[rule_id] = len(rules)
            rules.append({"id": rule_id, "name": "".join(w.title() for w in rule_id.split("-")),
                          "shortDescription": {"text": description},
                          "fullDescription": {"text": description + ": the Sigma rule cannot fire (blind) or "
                                              "fires on part of what it looks for (partial) on this policy."},
                          "defaultConfiguration": {"level": "warning"}})
        title = rule.get("title") or rule.get("id") or "untitled rule"
        message = f"{rule['coverage'].capitalize()}: {title} ({rule.get('level') or 'no level'}). {fix}"
        if plan:
            message += f" (recommended plan: {plan})"
        results.append({
            "ruleId": rule_id, "ruleIndex": descriptors[rule_id],
            "level": _LEVELS.get(rule.get("level") or "", "note"),
            "message": {"text": " ".join(message.split())},
            "locations": [_location(rule["path"], logsource_line(rule["path"], rule.get("document") or 0), cwd)],
            "properties": {"coverage": rule["coverage"], "sigmaId": rule.get("id"), "sigmaLevel": rule.get("level"),
                           "changes": list(rule.get("changes") or []), "tags": list(rule.get("tags") or [])},
        })
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "check-logsources", "version": __version__,
                            "rules": rules}},
        "originalUriBaseIds": {"SRCROOT": {"uri": Path(cwd).as_uri() + "/"}},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render(report: dict[str, Any], verbose: bool = False) -> str:
    return json.dumps(build_sarif(report), ensure_ascii=False, indent=1) + "\n"
