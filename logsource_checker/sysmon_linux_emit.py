"""Emit ``sysmon-linux.xml``: the Sysmon for Linux configuration the checked Linux rules need.

Built as the Windows ``sysmon.xml`` is (sysmon_emit.py): for every need of a rule that is not met and has a
way through Sysmon for Linux alone, its event type gets an include filter built from the detections of the
rules relying on it (``sysmon_filters.translate_rule``: wider, never narrower), or an empty
``onmatch="exclude"`` (every event) when a rule cannot be expressed. Only the event types Sysmon for Linux
produces are written (``linux.events`` in mappings/sysmon.yaml; the guides name no other). Each group says
the rules it serves, how many it unblinds and its volume.

With a ``--sysmon-config`` read as Sysmon for Linux (or as either OS) the user's file is kept byte for byte
and groups are added only where that cannot lower what it logs (sysmon_merge.py, the same rules as for
Windows); a Windows configuration is never merged into. Before the file is returned it is read back by the
same reader (policy/sysmon_config.py) and each group is checked to collect what its rules need; a group that
would not is named in the file's header instead of being claimed. This is an alternative to ``audit.rules``
for the same rules: a host needs one of them, not both.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import __version__
from .diff import coverage_if, improves, need_status
from .sysmon_emit import _safe
from .sysmon_filters import XML_INVALID_RE, Conditions, translate_rule
from .sysmon_linux import KIND, NO_CONFIG, linux_meta
from .templating import Trusted, escape_xml_comment, nrules, render

FILE_NAME = "sysmon-linux.xml"
_VOLUME = {
    "high": "high volume on a busy host (every event of this type when the group collects all)",
    "medium": "medium volume",
    "low": "low volume",
}


def _comment(text: str) -> Trusted:
    return Trusted(escape_xml_comment(XML_INVALID_RE.sub("", text)))


def _wanted(req: Any) -> bool:
    """A requirement the file should serve: not collected, not shown (no configuration), or collected only
    where include filters match that do not cover every rule (adding includes only adds events)."""
    return req.kind == KIND and (req.status in ("missing", "not_checked") or req.status == "unknown")


def reliance(result: Any) -> dict[int, dict[str, Any]]:
    """event id -> {ref: rule} for the rules whose unmet need has a way through Sysmon for Linux alone."""
    reqs = result.resolution.requirements
    statuses = {rid: req.status for rid, req in reqs.items()}
    out: dict[int, dict[str, Any]] = {}
    for res in result.resolution.rules:
        for need in res.needs:
            if need_status(need, statuses) == "met":
                continue
            for option in need.options:
                if option.requirements and all(reqs[rid].kind == KIND for rid in option.requirements):
                    for rid in option.requirements:
                        if _wanted(reqs[rid]) and reqs[rid].event_id is not None:
                            out.setdefault(int(reqs[rid].event_id), {})[res.rule.ref] = res.rule
                    break
    return out


def _group(result: Any, event_id: int, rules: dict[str, Any], conds: Conditions, config: Any) -> dict[str, Any]:
    kb = result.knowledge
    event = kb.sysmon_events[event_id]
    req = result.resolution.requirements[f"sysmon-linux:{event_id}"]
    fields = frozenset(event.fields)
    served: dict[tuple, set[str]] = {}
    notes: list[str] = []
    collect_all = not fields
    for ref in sorted(rules):
        translation = translate_rule(rules[ref], fields, conds)
        notes.extend(n for n in translation.notes if n not in notes)
        collect_all = collect_all or translation.collect_all
        for sysmon_rule in translation.rules:
            served.setdefault(sysmon_rule, set()).add(ref)
    included = config is not None and req.status == "unknown" and event_id in config.includes
    return {"element": Trusted(str(event.element)), "event_ids": [event_id], "refs": sorted(rules),
            "rules": len(rules), "unblinds": 0, "unblinds_all": 0, "missing": not included,
            "when_unmentioned": event.when_unmentioned, "collect_all": collect_all, "notes": sorted(notes),
            "filters": [] if collect_all else [{"conds": [_safe(c) for c in rule], "served": sorted(served[rule])}
                                               for rule in sorted(served)],
            "req": req, "volume": req.volume or "unknown"}


def _count(result: Any, groups: list[dict[str, Any]]) -> None:
    reqs = result.resolution.requirements
    baseline = {rid: ("missing" if _wanted(req) else req.status) for rid, req in reqs.items()}
    by_ref = {res.rule.ref: res for res in result.resolution.rules}
    every = [g["req"].id for g in groups]
    for group in groups:
        rules = [by_ref[ref] for ref in group["refs"] if ref in by_ref]
        before = coverage_if(rules, baseline)
        alone = coverage_if(rules, baseline, [group["req"].id])
        together = coverage_if(rules, baseline, every)
        group["unblinds"] = sum(1 for b, a in zip(before, alone) if improves(b, a))
        group["unblinds_all"] = sum(1 for b, a in zip(before, together) if improves(b, a))


def _context(group: dict[str, Any], indent: str, merged: bool = False) -> dict[str, Any]:
    from .sysmon_emit import group_context

    context = group_context(group, indent, merged)
    volume = _VOLUME.get(group["volume"], "volume unknown: measure on one host first")
    if not group.get("collect_all", True):
        volume += "; this include filter collects only the events the rules can match"
    context["comments"] = list(context["comments"]) + [_comment("Sysmon for Linux, " + volume)]
    return context


def _check(data: bytes, groups: list[dict[str, Any]], result: Any) -> list[str]:
    """Read the file back as the tool reads --sysmon-config and list the groups whose rules it would not serve."""
    from .policy.sysmon_config import read_sysmon_config
    from .sysmon_includes import rule_within

    kb = result.knowledge
    config = read_sysmon_config(FILE_NAME, data, list(kb.sysmon_events.values())).sysmon
    conds = Conditions.from_meta(kb.sysmon_meta)
    by_ref = {res.rule.ref: res.rule for res in result.resolution.rules}
    failed = []
    for group in groups:
        eid = group["event_ids"][0]
        if config.status.get(eid) == "met":
            continue
        fields = frozenset(kb.sysmon_events[eid].fields)
        elements = config.includes.get(eid, ())
        if not all(rule_within(by_ref[ref], fields, elements, conds) for ref in group["refs"] if ref in by_ref):
            failed.append(f"{group['element']} (event {eid}): read back, it does not collect every event its "
                          f"{nrules(len(group['refs']))} can match ({config.reasons.get(eid, '')})")
    return failed


def sysmon_linux_files(result: Any) -> dict[str, str | bytes]:
    """``{"sysmon-linux.xml": content}`` when a checked Linux rule needs Sysmon for Linux events, else nothing."""
    kb = result.knowledge
    snapshot = result.snapshot
    config = snapshot.sysmon if snapshot is not None else None
    config = config if config is not None and config.os != "windows" else None
    wanted = reliance(result)
    if not wanted:
        return {}
    conds = Conditions.from_meta(kb.sysmon_meta)
    groups = [_group(result, eid, wanted[eid], conds, config) for eid in sorted(wanted)]
    _count(result, groups)
    header = [f"An alternative to audit.rules for the same Linux rules: a host needs one of the two ways. "
              f"Serves {nrules(len({r for g in groups for r in g['refs']}))}; each group below says which."]
    if config is not None:
        from .policy.xmlsafe import parse_xml_bytes
        from .sysmon_merge import merge_text

        original = Path(config.source).read_bytes()
        data = merge_text(original, parse_xml_bytes(config.source, original), groups,
                          lambda group, indent: _context(group, indent, merged=True), header)
    else:
        rendered = [Trusted(render("emit/sysmon_group.xml.j2", "xml", **_context(g, "    "))) for g in groups]
        meta = linux_meta(kb)
        data = render("emit/sysmon-linux.xml.j2", "xml", version=Trusted(__version__), groups=rendered,
                      schema=Trusted(str(meta.get("schema_version"))), notes=[_comment(h) for h in header],
                      reason=_comment(NO_CONFIG)).encode()
    failed = _check(data, groups, result)
    if failed:   # never claimed: said in the file itself
        note = _comment("Read back, some groups would not serve their rules: " + "; ".join(failed))
        marker = b"<EventFiltering>"
        data = data.replace(marker, b"<!-- " + str(note).encode() + b" -->\n  " + marker, 1)
    return {FILE_NAME: data}
