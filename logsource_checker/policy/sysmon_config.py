"""Which Sysmon event IDs a Sysmon configuration XML collects: ``met``, ``missing`` or ``unknown`` per type.

Sysmon's own rules (Sysinternals/SysmonCommon rules.c FilterEventRules, xml.cpp, manifest.tt), per event type
(the filter elements under ``<EventFiltering>``, optionally inside ``<RuleGroup>``):
- no filter element: the type's default applies (``when_unmentioned`` in mappings/sysmon.yaml, from
  manifest.xml's ruledefault); ``unknown`` where the public sources do not settle it;
- one element and no filter matches: that element decides. ``onmatch="exclude"`` (or ``default="include"``)
  logs every event it does not exclude; ``onmatch="include"`` (or ``default="exclude"``) logs only what it
  matches, so with no conditions nothing (``missing``) and with conditions ``unknown`` here (diff.py
  then compares the rules needing the type with the conditions: sysmon_includes.py);
- several elements: an event no filter matches is dropped, so only what an include matches is logged
  (``unknown`` with an include that has conditions, else ``missing``);
- an element with neither a valid ``onmatch`` nor ``default``: Sysmon refuses it or applies the type's
  default (xml.cpp), so ``unknown``.
Event types that cannot be filtered (service state, configuration change, error) are logged whenever
Sysmon runs. Element names and IDs come from the caller (mappings/sysmon.yaml), never from this module.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from .model import PolicyInput, PolicyInputError, PolicySnapshot, SysmonConfig
from .xmlsafe import local_name, parse_xml_bytes

REASON_NOT_FILTERABLE = "cannot be filtered: logged whenever Sysmon runs"
REASON_INCLUDE_EMPTY = "not collected: an include filter with no conditions matches nothing"
REASON_INCLUDE_SOME = ("collected only where its include conditions match (the rules needing the type are "
                       "compared with them: sysmon_includes.py)")
REASON_EXCLUDE_ALL = "collected: an exclude filter with no conditions excludes nothing"
REASON_EXCLUDE_SOME = "collected: every event its exclude conditions do not match"
REASON_SEVERAL_NONE = ("not collected: several filter elements for this type and no include with conditions; "
                       "Sysmon drops an event no filter matches when a type has several (rules.c FilterEventRules)")
REASON_BAD_ONMATCH = ("a filter element has no valid onmatch (include or exclude) or default attribute: Sysmon "
                      "refuses it or applies the type's default (xml.cpp); 'sysmon -c' on the host shows what it "
                      "loaded")
UNMENTIONED = {
    "logged": ("met", "not mentioned: Sysmon's default for this type logs every event"),
    "not_logged": ("missing", "not mentioned: Sysmon's default for this type logs none"),
    "unknown": ("unknown", "not mentioned: the public sources do not settle Sysmon's default for this type"),
}
# onmatch is stored inverted (manifest.tt GetRuleMatch); default= is not (GetRuleDefault)
_MODE = {("onmatch", "include"): "include", ("onmatch", "exclude"): "exclude",
         ("default", "exclude"): "include", ("default", "include"): "exclude"}


def _version(text: str | None) -> float | None:
    """A schema version as Sysmon compares it (a decimal number: 3.10 is below 3.2)."""
    try:
        return float(text) if text else None
    except ValueError:
        return None


def filter_mode(node) -> str | None:
    """include (logs what it matches) or exclude (logs what it does not match); None when not valid: neither
    attribute, both (xml.cpp refuses that), or a value other than include / exclude (compared as Sysmon
    does, ignoring case only)."""
    given = [(a, node.get(a)) for a in ("onmatch", "default") if node.get(a) is not None]
    if len(given) != 1:
        return None
    attribute, value = given[0]
    return _MODE.get((attribute, value.casefold()))


def _filters(filtering) -> Iterable[Any]:
    for node in filtering:
        name = local_name(node)
        if not name:
            continue  # comments, processing instructions
        if name == "RuleGroup":
            for inner in node:
                if local_name(inner):
                    yield inner
        else:
            yield node


def _has_conditions(node) -> bool:
    return any(local_name(child) for child in node)


def read_sysmon_config(path: str, data: bytes, sysmon_events: Iterable[Any] | None) -> PolicySnapshot:
    root = parse_xml_bytes(path, data)
    if local_name(root) != "Sysmon":
        raise PolicyInputError(path, f"not a Sysmon configuration (root element <{local_name(root)}>, "
                                     "expected <Sysmon schemaversion=...>)")
    schema = root.get("schemaversion")
    snap = PolicySnapshot(inputs=[PolicyInput(path=path, format="sysmon_config")])
    warn = snap.warn

    if not schema:
        warn("the <Sysmon> element has no schemaversion attribute; Sysmon refuses such a configuration")
    events = list(sysmon_events or [])
    by_element: dict[str, list[Any]] = {}
    for event in events:
        if getattr(event, "element", None):
            by_element.setdefault(event.element.casefold(), []).append(event)
    seen = _read_filters(root, by_element, schema, warn)
    config = SysmonConfig(source=path, schema_version=schema)
    _path_evidence(root, config)
    for event in events:
        if not getattr(event, "filterable", True) or not getattr(event, "element", None):
            status, reason = "met", REASON_NOT_FILTERABLE
        else:
            filters = seen.get(event.element.casefold())
            where = f"{event.element} (event {event.id}): "
            status, reason = _verdict(filters) if filters else _unmentioned(event, schema)
            reason = where + reason
        if status == "unknown" and reason.endswith(REASON_INCLUDE_SOME):
            filters = seen.get(event.element.casefold(), [])
            config.includes[event.id] = tuple(element for mode, cond, element in filters if mode == "include" and cond)
            config.excludes[event.id] = any(mode == "exclude" for mode, _, _ in filters)
        config.status[event.id] = status
        config.collected[event.id] = status == "met"
        config.reasons[event.id] = reason
    if not events:
        warn("no Sysmon event types known to map the configuration onto")
    snap.sysmon = config
    return snap


def _read_filters(root, by_element: dict[str, list[Any]], schema: str | None, warn) -> dict[str, list[tuple]]:
    """element (casefolded) -> [(mode or None, has_conditions, include element)], warning about what Sysmon
    would refuse. The include element is ``sysmon_includes.Element``: (combine, items), items empty for
    an exclude."""
    seen: dict[str, list[tuple]] = {}
    filtering_nodes = [n for n in root if local_name(n) == "EventFiltering"]
    if not filtering_nodes:
        warn("no <EventFiltering> section: every event type runs with Sysmon's defaults")
    bad_mode = False
    unknown: set[str] = set()
    too_new: set[str] = set()
    declared = _version(schema)
    for filtering in filtering_nodes:
        for node in _filters(filtering):
            name = local_name(node)
            key = name.casefold()
            if key not in by_element:
                unknown.add(name)
                continue
            since = _version(getattr(by_element[key][0], "since_schema", None))
            if declared is not None and since is not None and declared < since:
                too_new.add(name)
            mode = filter_mode(node)
            bad_mode = bad_mode or mode is None
            items = _items(node) if mode == "include" else ()
            seen.setdefault(key, []).append((mode, _has_conditions(node), (_combine(node, declared), items)))
    if unknown and by_element:
        warn("unknown event filter elements ignored: " + ", ".join(sorted(unknown)[:10]))
    if bad_mode:
        warn("some filter elements have no valid onmatch (or default) attribute: Sysmon refuses them or applies "
             "the type's default; their event types are reported as unknown")
    if too_new:
        warn(f"schema {schema} has no " + ", ".join(sorted(too_new)) + " element: Sysmon checks a configuration "
             "against the schema it declares")
    return seen


_WINDOWS_PATH_RE = re.compile(r"\\")   # a backslash: a Windows path separator
_MAX_EXAMPLES = 200


def _path_evidence(root, config: SysmonConfig) -> None:
    """The filter elements named and the condition values that look like Windows paths (a backslash, a drive
    letter) or may name Linux paths (a '/'), for sysmon_linux.decide_os; the prefixes themselves are data."""
    elements: dict[str, None] = {}
    for filtering in (n for n in root if local_name(n) == "EventFiltering"):
        for node in _filters(filtering):
            elements[local_name(node)] = None
            for entry in node.iter():
                text = (entry.text or "").strip() if local_name(entry) and entry is not node else ""
                if not text or len(config.windows_paths) + len(config.linux_values) >= _MAX_EXAMPLES:
                    continue
                if _WINDOWS_PATH_RE.search(text):
                    config.windows_paths.append(text)
                elif "/" in text:
                    config.linux_values.append(text)
    config.elements = tuple(elements)


def _combine(node, declared: float | None) -> str:
    """How an element's entries combine (xml.cpp): its RuleGroup's groupRelation, else AND above schema 4.1
    (and when the schema is unreadable: the stricter reading), OR up to 4.1."""
    parent = node.getparent()
    relation = parent.get("groupRelation") if parent is not None and local_name(parent) == "RuleGroup" else None
    if relation and relation.strip().casefold() in ("and", "or"):
        return relation.strip().casefold()
    return "or" if declared is not None and declared <= 4.1 else "and"


def _entry(node) -> tuple[str, str, str]:
    return local_name(node), (node.get("condition") or "is").strip().casefold(), node.text or ""


def _items(node) -> tuple:
    items = []
    for child in node:
        name = local_name(child)
        if not name:
            continue
        if name == "Rule":
            relation = (child.get("groupRelation") or "or").strip().casefold()
            entries = tuple(_entry(c) for c in child if local_name(c) and local_name(c) != "Rule")
            items.append(("rule", relation if relation in ("and", "or") else "and", entries))
        else:
            items.append(("cond", _entry(child)))
    return tuple(items)


def _verdict(filters: list[tuple]) -> tuple[str, str]:
    if any(mode is None for mode, _, _ in filters):
        return "unknown", REASON_BAD_ONMATCH
    if any(mode == "include" and cond for mode, cond, _ in filters):
        return "unknown", REASON_INCLUDE_SOME
    if len(filters) > 1:
        return "missing", REASON_SEVERAL_NONE
    mode, cond, _ = filters[0]
    if mode == "include":
        return "missing", REASON_INCLUDE_EMPTY
    return "met", REASON_EXCLUDE_SOME if cond else REASON_EXCLUDE_ALL


def _unmentioned(event, schema: str | None) -> tuple[str, str]:
    status, reason = UNMENTIONED.get(getattr(event, "when_unmentioned", "unknown"), UNMENTIONED["unknown"])
    basis = getattr(event, "unmentioned_basis", "")
    since = getattr(event, "since_schema", None)
    declared = _version(schema)
    if declared is not None and _version(since) is not None and declared < (_version(since) or 0):
        reason += f" (schema {schema} has no {event.element} element; Sysmon applies its own default)"
    if basis:
        reason += f" ({basis})"
    if status == "unknown":
        reason += "; 'sysmon -c' on the host, or its Sysmon log, shows what is collected"
    return status, reason
