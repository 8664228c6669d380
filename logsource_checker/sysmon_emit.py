"""The ``sysmon.xml`` artefact: a tailored configuration, or the user's own with what is missing added.

- Blocking event types (``blocking: true`` in mappings/sysmon.yaml: FileBlockExecutable, FileBlockShredding)
  are never written: a filter element for them makes Sysmon block writes, and an empty exclude would
  block every executable written to disk. The rules on them are named in a comment instead.
- Every other event type the rules need gets an include filter built from the rules' own detections
  (``sysmon_filters``), one RuleGroup per type; a type some rule needs in full gets an empty exclude.
- With ``--sysmon-config`` the user's file is kept as it is (comments included) and groups are appended
  where adding them cannot lower what the file collects. Sysmon decides per event type (Sysinternals/
  SysmonCommon rules.c, FilterEventRules): exclude filters first, then include filters, any match
  decides; with no match a type with a single filter element follows that element's default (an exclude
  element logs, an include element does not), a type with several elements does not log. So an include
  filter is added only to a type that has no filter element left or already has an include element
  (it then only adds events); a type whose one element is an exclude already logs everything but its
  exclusions, and an include added beside it would stop that: it is left as it is. Include elements with
  no condition match nothing and are removed for a type the rules need (that never lowers what is logged).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .knowledge import SAFE_FIELD_RE, Knowledge
from .sysmon_filters import XML_INVALID_RE, Conditions, translate_rule
from .templating import Trusted, escape_xml_comment, nrules, render

MAX_NAMED_RULES = 50   # rule names listed in one comment before "and N more"


class UnsafeSysmonValue(ValueError):
    """Our own data produced a field or condition name that is not safe in XML (a data bug)."""


@dataclass
class Blocked:
    event_ids: list[int]
    elements: list[str]
    refs: list[str]


def _comment(text: str) -> Trusted:
    return Trusted(escape_xml_comment(XML_INVALID_RE.sub("", text)))


def _names(refs: list[str]) -> str:
    shown = ", ".join(refs[:MAX_NAMED_RULES])
    return shown + (f" and {len(refs) - MAX_NAMED_RULES} more" if len(refs) > MAX_NAMED_RULES else "")


def split_blocking(kb: Knowledge, result: Any, elements: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Blocked]:
    """The element entries to write, and the blocking event types left out: those rules need that the
    policy does not show collected (no plan ever includes them), with the rules needing them."""
    blocking = {i for i, e in kb.sysmon_events.items() if e.blocking}
    kept = [e for e in elements if not set(e["event_ids"]) <= blocking]
    wanted = [req for req in result.resolution.requirements.values()
              if req.kind == "sysmon_event" and req.event_id in blocking and req.status != "met" and req.rules]
    ids = sorted({req.event_id for req in wanted})
    refs = sorted({ref for req in wanted for ref in req.rules})
    names = sorted({str(kb.sysmon_events[i].element) for i in ids if kb.sysmon_events[i].element})
    return kept, Blocked(event_ids=ids, elements=names, refs=refs)


def sysmon_reliance(result: Any, plan: Any) -> dict[int, set[str]]:
    """Sysmon event id -> the rules whose recommended option relies on it (met or not)."""
    reqs = result.resolution.requirements
    out: dict[int, set[str]] = {}
    for res in result.resolution.rules:
        for need in res.needs:
            for rid in need.best_option(plan.baseline).requirements:
                req = reqs[rid]
                if req.kind == "sysmon_event" and req.event_id is not None:
                    out.setdefault(req.event_id, set()).add(res.rule.ref)
    return out


def tailor(result: Any, plan: Any, elements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One group per event type: the plan's missing types, then (for a merge) the types already collected
    through include filters that the rules rely on. Each has ``filters`` (Sysmon rules) or ``collect_all``."""
    kb = result.knowledge
    conds = Conditions.from_meta(kb.sysmon_meta)
    reliance = sysmon_reliance(result, plan)
    by_ref = {res.rule.ref: res.rule for res in result.resolution.rules}
    groups = [dict(e, missing=True) for e in elements]
    planned = {str(e["element"]) for e in elements}
    extra: dict[str, list[int]] = {}
    for event_id in sorted(reliance):
        event = kb.sysmon_events.get(event_id)
        if event and event.element and not event.blocking and event.element not in planned:
            extra.setdefault(event.element, []).append(event_id)
    for element, ids in extra.items():
        refs = set().union(*(reliance[i] for i in ids))
        groups.append({"element": Trusted(element), "event_ids": ids, "rules": len(refs), "unblinds": 0,
                       "unblinds_all": 0, "missing": False})
    for group in groups:
        _fill(group, kb, conds, reliance, by_ref)
    return groups


def _fill(group: dict[str, Any], kb: Knowledge, conds: Conditions, reliance: dict[int, set[str]],
          by_ref: dict[str, Any]) -> None:
    ids = [i for i in group["event_ids"] if i in reliance]
    refs = sorted(set().union(*(reliance[i] for i in ids))) if ids else []
    served: dict[tuple, set[str]] = {}
    notes: list[str] = []
    collect_all = not refs
    for ref in refs:
        rule = by_ref.get(ref)
        needed = [i for i in ids if ref in reliance[i]]
        fields = frozenset(f for i in needed for f in kb.sysmon_events[i].fields)
        if rule is None or not fields:
            collect_all = True
            notes.append(f"rule {ref}: no field list for Sysmon event {', '.join(map(str, needed))}; "
                         "every event of this type is collected")
            continue
        translation = translate_rule(rule, fields, conds)
        notes.extend(n for n in translation.notes if n not in notes)
        if translation.collect_all:
            collect_all = True
        for sysmon_rule in translation.rules:
            served.setdefault(sysmon_rule, set()).add(ref)
    defaults = {kb.sysmon_events[i].when_unmentioned for i in group["event_ids"] if i in kb.sysmon_events}
    group["when_unmentioned"] = ("not_logged" if defaults == {"not_logged"} else
                                 "logged" if "logged" in defaults else "unknown")
    group["refs"] = refs
    group["collect_all"] = collect_all
    group["notes"] = sorted(notes)
    group["filters"] = [] if collect_all else [
        {"conds": [_safe(c) for c in rule], "served": sorted(served[rule])} for rule in sorted(served)]


def _safe(cond: Any) -> dict[str, Any]:
    if not SAFE_FIELD_RE.match(cond.field) or not all(part.isalpha() for part in cond.condition.split(" ")):
        raise UnsafeSysmonValue(f"Sysmon field {cond.field!r} / condition {cond.condition!r} not safe in XML")
    return {"field": Trusted(cond.field), "condition": Trusted(cond.condition), "value": xml_text(cond.value)}


_XML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}


def xml_text(value: str) -> Trusted:
    """A match value as XML element text that reads back as exactly the same characters: markup escaped,
    and line breaks, tabs, control and bidirectional-format characters as character references (a
    literal line break could be normalised, a bidi override would reorder how the file displays). The
    caller has dropped values with characters XML cannot carry at all (sysmon_filters.XML_INVALID_RE)."""
    out = []
    for ch in value:
        if ch in _XML_ESCAPES:
            out.append(_XML_ESCAPES[ch])
        elif not ch.isprintable():  # line breaks, tabs, controls, format (bidi) and non-ASCII spaces
            out.append(f"&#x{ord(ch):X};")
        else:
            out.append(ch)
    return Trusted("".join(out))


def _counts(group: dict[str, Any]) -> str:
    return (f"unblinds {nrules(group['unblinds'])} on its own, {group['unblinds_all']} with every change here; "
            f"needed by {nrules(group['rules'])}")


def group_context(group: dict[str, Any], indent: str, merged: bool = False) -> dict[str, Any]:
    """What templates/emit/sysmon_group.xml.j2 needs for one group (comments escaped here)."""
    ids = ", ".join(map(str, group["event_ids"]))
    refs = group.get("refs") or []
    comments = []
    prefix = "added by logsource_checker: " if merged else ""
    if group.get("missing", True):
        comments.append(f"{prefix}Sysmon event {ids}; {_counts(group)}")
    else:
        comments.append(f"{prefix}Sysmon event {ids}: this configuration logs only what its include filters "
                        f"match; these rules add the events {nrules(len(refs))} can match")
    if refs:
        comments.append("serves: " + _names(refs))
    if group.get("collect_all", True):
        comments.append("an empty onmatch=\"exclude\" collects every event of this type (a rule needs them all)")
    else:
        comments.append("collects only the events these rules can match (include filter built from their detections)")
    comments.extend("wider than the rule: " + note for note in group.get("notes") or [])
    filters = [{"comment": _comment("for " + _names(f["served"])), "conds": f["conds"]}
               for f in group.get("filters") or []]
    return {"indent": Trusted(indent), "element": group["element"], "comments": [_comment(c) for c in comments],
            "collect_all": group.get("collect_all", True), "filters": filters}


def blocked_comment(kb: Knowledge, blocked: Blocked) -> Trusted | None:
    return _comment(blocked_text(kb, blocked)) if blocked.event_ids else None


def blocked_text(kb: Knowledge, blocked: Blocked) -> str:
    names = ", ".join(f"{i} ({kb.sysmon_events[i].element})" for i in blocked.event_ids)
    text = (f"Not written: Sysmon event {names}. A filter for these event types makes Sysmon block what it "
            f"matches (an empty exclude would block every executable written to disk), so it is a protection "
            f"policy, not a log setting. The {nrules(len(blocked.refs))} on them ({_names(blocked.refs)}) detect "
            f"blocks a site configured on purpose; no recommendation can switch them on.")
    return text


def render_config(kb: Knowledge, context: dict[str, Any], groups: list[dict[str, Any]], blocked: Blocked) -> str:
    """A new configuration: one RuleGroup per event type the rules need (only the plan's, all missing)."""
    rendered = [Trusted(render("emit/sysmon_group.xml.j2", "xml", **group_context(g, "    ")))
                for g in groups if g.get("missing", True)]
    return render("emit/sysmon.xml.j2", "xml", **dict(context, sysmon_groups=rendered,
                                                       blocked=blocked_comment(kb, blocked)))


# --------------------------------------------------------------------------- merge into the user's config

def merge_sysmon_config(data: bytes, groups: list[dict[str, Any]], blocked: Blocked | None = None,
                        kb: Knowledge | None = None) -> bytes:
    """The given Sysmon config with what the rules miss added; every other byte kept (sysmon_merge).

    ``groups`` come from ``tailor`` (entries without ``collect_all`` are read as collect-all, without
    ``missing`` as missing)."""
    from .policy.xmlsafe import parse_xml_bytes
    from .sysmon_merge import merge_text

    root = parse_xml_bytes("sysmon config", data)
    extra = [blocked_text(kb, blocked)] if blocked is not None and kb is not None and blocked.event_ids else []
    return merge_text(data, root, groups, lambda group, indent: group_context(group, indent, merged=True), extra)
