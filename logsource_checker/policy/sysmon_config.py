"""Which Sysmon event IDs a Sysmon configuration XML collects.

Per event type (the filter elements under ``<EventFiltering>``, optionally inside ``<RuleGroup>``):
- an ``include`` filter with no conditions matches nothing, so it collects nothing;
- an ``include`` filter with conditions collects the matching events only;
- an ``exclude`` filter (with or without conditions) collects everything it does not exclude; exclude
  rules win over include rules (Sysmon documentation, "Event filtering entries");
- a type the configuration does not mention has no filter: Sysmon's default for it applies. We treat it as
  collected and say so in the reason (the documentation does not spell out the default for every type).
Event types that cannot be filtered (service state, configuration change, error) are logged whenever
Sysmon runs. Element names and IDs come from the caller (mappings/sysmon.yaml), never from this module.
"""
from __future__ import annotations

from typing import Any, Iterable

from .model import PolicyInput, PolicyInputError, PolicySnapshot, SysmonConfig
from .xmlsafe import local_name, parse_xml_bytes

REASON_NOT_FILTERABLE = "cannot be filtered: logged whenever Sysmon runs"
REASON_INCLUDE_EMPTY = "not collected: an include filter with no conditions matches nothing"
REASON_INCLUDE_SOME = "collected for matching events only (include filter)"
REASON_EXCLUDE_ALL = "collected: an exclude filter with no conditions excludes nothing"
REASON_EXCLUDE_SOME = "collected except events the exclude filter matches"
REASON_ABSENT = ("not mentioned in the configuration: no filter, so Sysmon's default for this event type "
                 "applies (treated as collected; check with 'sysmon -c' on the host)")


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
    # element (casefolded) -> list of (onmatch, has_conditions)
    seen: dict[str, list[tuple[str, bool]]] = {}
    filtering_nodes = [n for n in root if local_name(n) == "EventFiltering"]
    if not filtering_nodes:
        warn("no <EventFiltering> section: every event type runs with Sysmon's defaults")
    missing_onmatch = False
    unknown: set[str] = set()
    for filtering in filtering_nodes:
        for node in _filters(filtering):
            name = local_name(node)
            key = name.casefold()
            if key not in by_element:
                unknown.add(name)
                continue
            onmatch = (node.get("onmatch") or "").strip().casefold()
            if onmatch not in ("include", "exclude"):
                missing_onmatch = True
                onmatch = "exclude"
            seen.setdefault(key, []).append((onmatch, _has_conditions(node)))
    if unknown and events:
        warn("unknown event filter elements ignored: " + ", ".join(sorted(unknown)[:10]))
    if missing_onmatch:
        warn("some filter elements have no valid onmatch attribute; read as onmatch=\"exclude\"")
    config = SysmonConfig(source=path, schema_version=schema)
    for event in events:
        if not getattr(event, "filterable", True) or not getattr(event, "element", None):
            config.collected[event.id] = True
            config.reasons[event.id] = REASON_NOT_FILTERABLE
            continue
        filters = seen.get(event.element.casefold())
        where = f"{event.element} (event {event.id}): "
        if not filters:
            collected, reason = True, REASON_ABSENT
        elif any(m == "include" for m, _ in filters):
            if any(m == "include" and cond for m, cond in filters):
                collected, reason = True, REASON_INCLUDE_SOME
            else:
                collected, reason = False, REASON_INCLUDE_EMPTY
        elif any(cond for _, cond in filters):
            collected, reason = True, REASON_EXCLUDE_SOME
        else:
            collected, reason = True, REASON_EXCLUDE_ALL
        config.collected[event.id] = collected
        config.reasons[event.id] = where + reason
    if not events:
        warn("no Sysmon event types known to map the configuration onto")
    snap.sysmon = config
    return snap
