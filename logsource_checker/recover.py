"""What would serve the selections a rule loses.

A rule is ``partial`` when the producer that meets its need cannot see some of the selections its condition
uses (serving.py: 4688 has no ``OriginalFileName``). The plans do not touch such a need (it is met), so
nothing would say how to get the rest. Here, for every such rule, the other ways of meeting the same need
that lose fewer of those selections are listed with what they still need (the requirements not met and their
statuses: ``unknown`` means the inputs cannot tell, for example Sysmon without ``--sysmon-config``), grouped
by that way across rules, with the volume of switching it on and how many of the rules it would make fully
usable (``diff.WhatIf`` over the partial rules only). A way that needs the machine to have another role is
not a change and is left out.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .diff import WhatIf

if TYPE_CHECKING:
    from .report import CheckResult

_VOLUME_RANK = {"low": 0, "medium": 1, "high": 2, "unknown": 3}
_HIGH = ("high", "critical")


def recoveries(result: CheckResult) -> list[dict[str, Any]]:
    """One entry per way of recovering lost selections: ``option``, ``requirements`` (not met),
    ``statuses``, ``volume``, ``rules`` / ``high_critical`` (rules whose lost selections it sees),
    ``usable_after`` (of those, fully usable with it switched on), ``selections`` (the selections it
    recovers), ``serving`` (the options that serve the rules now) and ``rule_refs``."""
    resolution = result.resolution
    reqs = resolution.requirements
    statuses = {rid: req.status for rid, req in reqs.items()}
    groups: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    for res in resolution.rules:
        if not res.lost_selections:
            continue
        lost = set(res.lost_selections)
        for need in res.needs:
            met = [o for o in need.options if all(statuses[rid] == "met" for rid in o.requirements)]
            if not met or not any(lost & set(o.lost) for o in met):
                continue
            for option in need.options:
                sees = sorted(lost - set(option.lost))
                missing = tuple(rid for rid in option.requirements if statuses[rid] != "met")
                if option in met or not sees or not missing or any(
                        reqs[rid].kind == "machine_role" for rid in missing):
                    continue
                entry = groups.setdefault((option.name, missing), {
                    "option": option.name, "requirements": list(missing),
                    "names": [reqs[rid].name for rid in missing],
                    "statuses": {rid: statuses[rid] for rid in missing},
                    "volume": max((reqs[rid].volume if reqs[rid].volume in _VOLUME_RANK else "unknown"
                                   for rid in missing), key=_VOLUME_RANK.__getitem__),
                    "selections": [], "serving": [], "rule_refs": [], "_rules": []})
                entry["selections"] = sorted(set(entry["selections"]) | set(sees))
                entry["serving"] = sorted(set(entry["serving"]) | {o.name for o in met if lost & set(o.lost)})
                if res.rule.ref not in entry["rule_refs"]:
                    entry["rule_refs"].append(res.rule.ref)
                    entry["_rules"].append(res)
    out = []
    for entry in groups.values():
        rules = entry.pop("_rules")
        after = WhatIf(rules).coverage(statuses, entry["requirements"])
        entry["rules"] = len(rules)
        entry["high_critical"] = sum(1 for res in rules if res.rule.level in _HIGH)
        entry["usable_after"] = sum(1 for cov in after if cov == "usable")
        out.append(entry)
    out.sort(key=lambda e: (-e["usable_after"], -e["high_critical"], _VOLUME_RANK[e["volume"]], e["option"]))
    return out
