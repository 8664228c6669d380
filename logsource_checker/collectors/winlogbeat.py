"""Winlogbeat (``winlogbeat.event_logs``) and Elastic Agent standalone (``inputs: - type: winlog``) YAML.

Per entry (Elastic's "Configure Winlogbeat" page): ``name`` is the channel; ``event_id`` a comma list of
EventIDs and ranges, ``-N`` / ``-N-M`` excluding; ``provider`` a list of providers; ``level`` a list of
levels (not known for an event: undecidable); ``xml_query`` a QueryList used instead of these;
``ignore_older`` skips old events only (noted, no effect on the verdict). A ``drop_event`` processor
drops everything unless its ``when`` is one we can evaluate (``equals`` on ``winlog.event_id`` /
``event.code``); a ``script`` processor may drop events (JavaScript ``evt.Cancel()``): both make the
verdict ``None`` for the events they may drop. Processors at the top level apply to every entry.
"""
from __future__ import annotations

from typing import Any

from .model import AllOf, ChannelInput, CollectorConfig, CollectorInputError, Filter, IdFilter, Unknowable, \
    parse_id_list
from .xpath import Event
from ._common import load_yaml, query_inputs, truthy

FORMAT = "winlogbeat"
_ID_FIELDS = ("winlog.event_id", "event.code")


def sniff(text: str) -> bool:
    return "winlogbeat" in text and "event_logs" in text or ("type: winlog" in text and "inputs" in text)


def _entries(doc: Any) -> list[tuple[str, Any]]:
    if not isinstance(doc, dict):
        return []
    logs = doc.get("winlogbeat.event_logs")
    if logs is None and isinstance(doc.get("winlogbeat"), dict):
        logs = doc["winlogbeat"].get("event_logs")
    out = [(f"winlogbeat.event_logs[{i}]", entry) for i, entry in enumerate(logs or [])] if isinstance(
        logs, list) else []
    inputs = doc.get("inputs")
    if isinstance(inputs, list):   # Elastic Agent standalone policy: inputs[].streams[] of type winlog
        for i, inp in enumerate(inputs):
            if isinstance(inp, dict) and str(inp.get("type", "")).strip() == "winlog":
                on = truthy(inp.get("enabled", True))
                for j, stream in enumerate(inp.get("streams") or []):
                    if isinstance(stream, dict):
                        merged = dict(stream)
                        if on is False:
                            merged["enabled"] = False
                        merged.setdefault("processors", [])
                        merged["processors"] = list(merged["processors"] or []) + list(inp.get("processors") or [])
                        out.append((f"inputs[{i}].streams[{j}]", merged))
    return out


def _expand(node: Any, depth: int = 0) -> Any:
    """Beats settings with dotted keys (``drop_event.when.equals.winlog.event_id: 1``) as nested mappings."""
    if depth > 30:
        return None
    if isinstance(node, list):
        return [_expand(item, depth + 1) for item in node[:1000]]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in list(node.items())[:1000]:
        head, *rest = str(key).split(".")
        target = out
        for part in [head, *rest][:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = target[part] = {}
            target = nxt
        last = ([head, *rest])[-1]
        expanded = _expand(value, depth + 1)
        if isinstance(target.get(last), dict) and isinstance(expanded, dict):
            target[last].update(expanded)
        else:
            target[last] = expanded
    return out


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _when_ids(when: Any) -> set[int] | None:
    """EventIDs a ``when`` condition matches, when it is an ``equals``/``or`` of EventIDs; else None."""
    if not isinstance(when, dict) or len(when) != 1:
        return None
    (kind, body), = when.items()
    fields = _flatten(body) if isinstance(body, dict) else {}
    if kind == "equals" and len(fields) == 1:
        (key, value), = fields.items()
        if key in _ID_FIELDS and str(value).strip().isdigit():
            return {int(str(value).strip())}
        return None
    if kind == "or" and isinstance(body, list):
        found: set[int] = set()
        for part in body:
            ids = _when_ids(part)
            if ids is None:
                return None
            found |= ids
        return found
    return None


def _processor_filters(processors: Any, where: str) -> list[Filter]:
    filters: list[Filter] = []
    processors = _expand(processors) if isinstance(processors, list) else []
    for i, proc in enumerate(processors):
        if not isinstance(proc, dict):
            continue
        for kind, body in proc.items():
            label = f"{where} processors[{i}] {kind}"
            if kind == "drop_event":
                when = body.get("when") if isinstance(body, dict) else None
                if when is None:
                    filters.append(_DropAll(label))
                    continue
                ids = _when_ids(when)
                if ids is None:
                    filters.append(Unknowable(f"{label} (a 'when' condition the tool cannot evaluate)"))
                else:
                    filters.append(_DropIds(label, ids))
            elif kind == "script":
                filters.append(Unknowable(f"{label} (a script can drop events)"))
    return filters


class _DropAll(Filter):
    def __init__(self, label: str) -> None:
        self.description = f"{label} drops every event"

    def test(self, event: Event) -> tuple[bool | None, str]:
        return False, f"{self.description} (no 'when' condition)"


class _DropIds(Filter):
    def __init__(self, label: str, ids: set[int]) -> None:
        self.ids = ids
        self.description = f"{label} drops EventIDs {','.join(map(str, sorted(ids)))}"

    def test(self, event: Event) -> tuple[bool | None, str]:
        if event.event_id is None:
            return None, f"{self.description}; the rule names no EventID"
        if event.event_id in self.ids:
            return False, self.description
        return True, f"{self.description}, not {event.event_id}"


class _Providers(Filter):
    def __init__(self, providers: list[str], label: str) -> None:
        self.providers = [p.casefold() for p in providers]
        self.description = f"{label} provider {', '.join(providers)}"

    def test(self, event: Event) -> tuple[bool | None, str]:
        if not event.provider:
            return None, f"{self.description}; the event's provider is not known"
        if event.provider.casefold() in self.providers:
            return True, self.description
        return False, f"provider {event.provider} is not in {self.description}"


def _entry_inputs(path: str, stanza: str, entry: dict, shared: list[Filter], warnings: list[str]) -> list[ChannelInput]:
    if entry.get("xml_query"):
        inputs = query_inputs(path, str(entry["xml_query"]), stanza, f"{stanza} xml_query")
        for item in inputs:
            item.filter = AllOf([item.filter, *shared, *_processor_filters(entry.get("processors"), stanza)])
        return inputs
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CollectorInputError(path, f"{stanza}: no channel name")
    filters: list[Filter] = []
    if entry.get("event_id") is not None:
        include, exclude = parse_id_list(str(entry["event_id"]), f"{stanza} event_id", path)
        filters.append(IdFilter(include, exclude, f"{stanza} event_id"))
    if entry.get("provider"):
        provs = entry["provider"] if isinstance(entry["provider"], list) else [entry["provider"]]
        filters.append(_Providers([str(p) for p in provs], stanza))
    if entry.get("level"):
        filters.append(Unknowable(f"{stanza} level {entry['level']} (an event's level is not known)"))
    if entry.get("ignore_older"):
        warnings.append(f"{stanza}: ignore_older {entry['ignore_older']} skips older events only (ignored)")
    filters += _processor_filters(entry.get("processors"), stanza) + shared
    enabled = truthy(entry.get("enabled", True)) is not False
    return [ChannelInput(name.strip(), enabled, AllOf(filters) if filters else Filter(), path, stanza,
                         "" if enabled else "enabled: false")]


def read(path: str, text: str) -> CollectorConfig:
    doc = load_yaml(path, text)
    entries = _entries(doc)
    if not entries:
        raise CollectorInputError(path, "a Winlogbeat/Elastic Agent file with no event_logs or winlog streams")
    config = CollectorConfig(path, FORMAT)
    shared = _processor_filters(doc.get("processors"), "processors") if isinstance(doc, dict) else []
    for stanza, entry in entries:
        if not isinstance(entry, dict):
            raise CollectorInputError(path, f"{stanza}: not a mapping")
        config.inputs += _entry_inputs(path, stanza, entry, shared, config.warnings)
    return config
