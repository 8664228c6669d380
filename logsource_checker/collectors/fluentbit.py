"""Fluent Bit ``winlog`` / ``winevtlog`` inputs, classic (``[INPUT]`` + ``Name``/``Channels``) or YAML
(``pipeline.inputs``). ``Channels`` is a comma list (Fluent Bit manual, "Windows Event Log" inputs);
``winevtlog``'s ``Event_Query`` (an XPath) applies to each channel.
"""
from __future__ import annotations

import re
from typing import Any

from .model import ChannelInput, CollectorConfig, CollectorInputError, Filter, XPathFilter
from ._common import load_yaml

FORMAT = "fluentbit"
_PLUGINS = ("winlog", "winevtlog")


def sniff(text: str) -> bool:
    return re.search(r"(?im)^[ \t]*(?:-[ \t]*)?name(?:[ \t]*[:=][ \t]*|[ \t]+)['\"]?(winlog|winevtlog)\b",
                     text) is not None and (
        "[INPUT]" in text.upper() or "pipeline" in text)


def _inputs(path: str, settings: dict[str, Any], stanza: str) -> list[ChannelInput]:
    raw = settings.get("channels", "")
    raw = ",".join(map(str, raw)) if isinstance(raw, list) else str(raw)   # YAML may give a list
    channels = [c.strip() for c in raw.split(",") if c.strip()]
    if not channels:
        raise CollectorInputError(path, f"{stanza}: no Channels")
    query = settings.get("event_query")
    out = []
    for channel in channels:
        filt = XPathFilter([str(query)], [], f"{stanza} Event_Query") if query else Filter()
        out.append(ChannelInput(channel, True, filt, path, stanza))
    return out


def _classic(path: str, text: str) -> list[ChannelInput]:
    out: list[ChannelInput] = []
    sections: list[tuple[str, dict[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1].strip().upper(), {}))
            continue
        if sections:
            key, _, value = line.partition(" ")
            sections[-1][1][key.strip().casefold()] = value.strip()
    for number, (name, settings) in enumerate(sections):
        if name == "INPUT" and settings.get("name", "").casefold() in _PLUGINS:
            out += _inputs(path, settings, f"[INPUT] {number + 1} ({settings['name']})")
    return out


def read(path: str, text: str) -> CollectorConfig:
    config = CollectorConfig(path, FORMAT)
    if "[INPUT]" in text.upper():
        config.inputs = _classic(path, text)
    else:
        doc = load_yaml(path, text)
        pipeline = doc.get("pipeline") if isinstance(doc, dict) else None
        items = pipeline.get("inputs") if isinstance(pipeline, dict) else None
        for number, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and str(item.get("name", "")).casefold() in _PLUGINS:
                settings = {str(k).casefold(): v for k, v in item.items()}
                config.inputs += _inputs(path, settings, f"pipeline.inputs[{number}] ({item['name']})")
    if not config.inputs:
        raise CollectorInputError(path, "a Fluent Bit configuration with no winlog/winevtlog input")
    return config
