"""ATT&CK Navigator layers (``--navigator FILE``): the techniques the rules' ``attack.tNNNN[.NNN]`` tags
name, coloured by the coverage of their rules: now, and after the recommended plan.

The file is a list of two layers (layer format 4.5, which lets one file hold several layers:
https://github.com/mitre-attack/attack-navigator/blob/master/layers/spec/v4.5/layerformat.md). A technique
takes the colour of its best-covered rule (one usable rule means something can fire): usable, partial,
blind, else unknown (no policy input, or the inputs cannot decide). Its score is the share of its rules
that are usable, partial ones counting half (0-100, the gradient's range); the comment and metadata give
the counts. No technique names are needed: the Navigator shows its own.
"""
from __future__ import annotations

import json
import re
from typing import Any

LAYER_VERSIONS = {"navigator": "5.1.0", "layer": "4.5"}   # 4.5 needs navigator >= 4.9.0
DOMAIN = "enterprise-attack"
COLORS = {"usable": "#8ec843", "partial": "#ffe766", "blind": "#ff6666", "unknown": "#c0c0c0"}
_ORDER = ("usable", "partial", "blind", "unknown")
_TECHNIQUE = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$")


def technique_ids(tags: list[str]) -> list[str]:
    """The ATT&CK technique IDs in a rule's tags (``attack.t1059.001`` -> ``T1059.001``), in order, once."""
    found = (_TECHNIQUE.match(tag.strip().lower()) for tag in tags)
    return list(dict.fromkeys(m.group(1).upper() for m in found if m))


def _state(coverage: str | None) -> str:
    return coverage if coverage in ("usable", "partial", "blind") else "unknown"


def _layer(name: str, description: str, states: dict[str, list[str]]) -> dict[str, Any]:
    techniques = []
    for tid in sorted(states):
        counts = {state: states[tid].count(state) for state in _ORDER}
        total = len(states[tid])
        best = next(state for state in _ORDER if counts[state])
        score = round(100 * (counts["usable"] + counts["partial"] / 2) / total)
        summary = ", ".join(f"{counts[s]} {s}" for s in _ORDER if counts[s])
        techniques.append({
            "techniqueID": tid, "score": score, "color": COLORS[best],
            "comment": f"{total} rules: {summary}",
            "metadata": [{"name": state, "value": str(counts[state])} for state in _ORDER if counts[state]],
            "enabled": True, "showSubtechniques": False,
        })
    return {
        "name": name, "versions": dict(LAYER_VERSIONS), "domain": DOMAIN, "description": description,
        "sorting": 3, "hideDisabled": False, "techniques": techniques,
        "gradient": {"colors": [COLORS["blind"], COLORS["partial"], COLORS["usable"]], "minValue": 0,
                     "maxValue": 100},
        "legendItems": [{"label": f"best rule {state}", "color": COLORS[state]} for state in _ORDER],
    }


def build_layers(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The two layers: coverage now, and after the recommended plan (the plan's baseline: what the inputs
    cannot show is assumed off until the plan switches it on)."""
    now: dict[str, list[str]] = {}
    after: dict[str, list[str]] = {}
    for rule in report["rules"]:
        ids = technique_ids(rule.get("tags") or [])
        planned = rule.get("coverage_after_plan") or rule["coverage"]
        for tid in ids:
            now.setdefault(tid, []).append(_state(rule["coverage"]))
            after.setdefault(tid, []).append(_state(planned))
    plan = next((p["name"] for p in report.get("plans") or [] if p["chosen"]), None)
    checked = report["summary"]["policy_checked"]
    base = "Sigma rule coverage by ATT&CK technique (check-logsources)"
    layers = [_layer("Sigma coverage: now", base + (": the policy given" if checked else
                                                     ": no policy input, so every technique is unknown"), now)]
    if plan is not None:
        layers.append(_layer(f"Sigma coverage: after the {plan} plan",
                             f"{base}: after the {len(next(p for p in report['plans'] if p['chosen'])['steps'])} "
                             f"changes of the {plan} plan", after))
    return layers


def navigator_file(report: dict[str, Any]) -> tuple[str, int]:
    """The file's text and the number of techniques it colours."""
    layers = build_layers(report)
    return json.dumps(layers, ensure_ascii=False, indent=1) + "\n", len(layers[0]["techniques"])
