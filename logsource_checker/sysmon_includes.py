"""Whether a rule's events fall within a Sysmon configuration's include filters.

An event type the configuration filters with ``onmatch="include"`` elements that have conditions is logged
only where those conditions match (policy/sysmon_config.py reports it ``unknown``). Here each rule needing
the type is compared with them: the rule is translated into Sysmon rules that match every event it can
match (``sysmon_filters.translate_rule``: wider, never narrower), and it is *within* the includes when each
of those Sysmon rules implies some include element, condition by condition (``implies``). Only what can be
shown is claimed: an unknown or negative condition, a field the rule does not test, a rule that needs the
whole type, each counts as not within. Exclude filters still drop what they match (as for an exclude-only
type, which is reported ``met``).

Include elements are read as Sysmon reads them (Sysinternals/SysmonCommon xml.cpp, rules.c): entries of an
element combine by its RuleGroup's ``groupRelation``, or, without one, by AND for schema versions above 4.1
and OR up to 4.1; within AND, entries on the same field are OR'ed; a ``<Rule>`` combines its entries by its
own ``groupRelation`` (OR without one). Every comparison ignores case; the ``any`` / ``all`` conditions
split their value at ``;``.
"""
from __future__ import annotations

from typing import Any, Iterable

from .sysmon_filters import Conditions, Cond, translate_rule

# (field, condition, value) as read from the configuration
Entry = tuple[str, str, str]
# ("cond", entry) or ("rule", combine, (entry, ...))
Item = tuple
# (combine, (item, ...)): one include element
Element = tuple[str, tuple[Item, ...]]

_POSITIVE_ONE = {"is", "contains", "begin with", "end with"}


def _atoms(cond: Cond) -> tuple[str, list[tuple[str, str]]] | None:
    """A translated condition as ("any" | "all", [(kind, value)]): one of / all of these simple facts."""
    text = cond.value.casefold()
    if cond.condition in _POSITIVE_ONE:
        return "all", [(cond.condition, text)]
    if cond.condition == "is any":
        return "any", [("is", t) for t in text.split(";")]
    if cond.condition == "contains any":
        return "any", [("contains", t) for t in text.split(";")]
    if cond.condition == "contains all":
        return "all", [("contains", t) for t in text.split(";")]
    return None


def _fact_implies(kind: str, value: str, condition: str, wanted: str) -> bool:
    """Does 'field <kind> value' guarantee 'field <condition> wanted' (all casefolded)?"""
    tokens = wanted.split(";")
    if condition == "is":
        return kind == "is" and value == wanted
    if condition == "is any":
        return kind == "is" and value in tokens
    if condition == "contains":
        return wanted in value
    if condition == "contains any":
        return any(t in value for t in tokens)
    if condition == "contains all":
        return all(t in value for t in tokens)
    if condition == "begin with":
        return kind in ("is", "begin with") and value.startswith(wanted)
    if condition == "end with":
        return kind in ("is", "end with") and value.endswith(wanted)
    if condition == "image":
        if "\\" in wanted:
            return kind == "is" and value == wanted
        return (kind == "is" and value.rsplit("\\", 1)[-1] == wanted) or (
            kind == "end with" and value.endswith("\\" + wanted))
    return False  # negative or unknown conditions are never shown to hold


def implies(rule: tuple[Cond, ...], entry: Entry) -> bool:
    """Does every event matching the translated Sysmon rule (an AND of conditions) match ``entry``?"""
    field, condition, wanted = entry[0].casefold(), entry[1].strip().casefold(), entry[2].casefold()
    held: list[tuple[str, str]] = []   # facts that all hold together (from conditions read as "all")
    for cond in rule:
        if cond.field.casefold() != field:
            continue
        atoms = _atoms(cond)
        if atoms is None:
            continue
        mode, facts = atoms
        results = [_fact_implies(kind, value, condition, wanted) for kind, value in facts]
        if (all(results) if mode == "any" else any(results)):
            return True
        if mode == "all":
            held.extend(facts)
    # "contains all" x;y holds when each part is within some fact that holds (the field contains every value
    # of an is / contains / begin with / end with fact)
    return condition == "contains all" and bool(held) and all(
        any(_fact_implies(kind, value, "contains", part) for kind, value in held) for part in wanted.split(";"))


def _item_implied(rule: tuple[Cond, ...], item: Item) -> bool:
    if item[0] == "cond":
        return implies(rule, item[1])
    _, combine, entries = item
    if not entries:
        return False
    found = [implies(rule, e) for e in entries]
    return all(found) if combine == "and" else any(found)


def element_implied(rule: tuple[Cond, ...], element: Element) -> bool:
    """Does every event matching ``rule`` match the include element?"""
    combine, items = element
    if not items or not rule:
        return False
    if combine == "or":
        return any(_item_implied(rule, item) for item in items)
    by_field: dict[str, list[Item]] = {}
    for index, item in enumerate(items):
        key = item[1][0].casefold() if item[0] == "cond" else f"#rule{index}"
        by_field.setdefault(key, []).append(item)
    return all(any(_item_implied(rule, item) for item in group) for group in by_field.values())


def rule_within(rule: Any, fields: frozenset[str], elements: Iterable[Element], conds: Conditions) -> bool:
    """Is every event ``rule`` can match (on an event type with ``fields``) matched by an include element?"""
    elements = list(elements)
    if not elements or not fields:
        return False
    translation = translate_rule(rule, fields, conds)
    if translation.collect_all or not translation.rules:
        return False
    return all(any(element_implied(r, e) for e in elements) for r in translation.rules)


def judge_includes(kb: Any, config: Any, resolution: Any, kind: str = "sysmon_event") -> None:
    """Settle the Sysmon requirements whose type the configuration filters with include conditions: ``met``
    when every rule needing the type falls within them, else ``unknown`` (the comparison stops at the
    first rule outside them: one translation per rule at most, none after that). ``kind``: sysmon_event, or
    sysmon_linux_event for a Sysmon for Linux configuration (same schema and filter logic)."""
    conds = Conditions.from_meta(kb.sysmon_meta)
    target = "sysmon-linux.xml" if kind == "sysmon_linux_event" else "sysmon.xml"
    by_ref = {res.rule.ref: res.rule for res in resolution.rules}
    for req in resolution.requirements.values():
        if req.kind != kind or req.status != "unknown" or req.event_id not in config.includes:
            continue
        event = kb.sysmon_events.get(req.event_id)
        if event is None or event.blocking:
            continue
        fields = frozenset(event.fields)
        elements = config.includes[req.event_id]
        refs = [ref for ref in req.rules if ref in by_ref]
        where = f"{event.element} (event {event.id}): "
        excluded = "; exclude filters still drop what they match" if config.excludes.get(req.event_id) else ""
        if refs and all(rule_within(by_ref[ref], fields, elements, conds) for ref in refs):
            req.status = "met"
            req.reason = (f"{where}collected where its include conditions match, and each of the {len(refs)} "
                          f"rules needing it tests only events they match (compared condition by condition){excluded}")
        else:
            req.reason = (f"{where}collected only where its include conditions match, and not every one of the "
                          f"{len(refs)} rules needing it tests only events they match (compared condition by "
                          f"condition; the tailored {target} adds include filters built from the rules){excluded}")
