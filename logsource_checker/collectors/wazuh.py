"""Wazuh / OSSEC agent ``ossec.conf``: ``<localfile>`` blocks reading Windows event channels.

``log_format eventchannel`` reads ``location`` (a channel) filtered by an optional ``<query>`` (a
bare XPath such as ``Event/System[EventID=4624]``, or a QueryList, which Wazuh's examples write with
backslash-escaped ``\\<`` tags); ``log_format eventlog`` (the pre-Vista API) reads the classic logs
unfiltered (Wazuh documentation, "localfile" reference). Other log formats are not event channels.
"""
from __future__ import annotations

from ..policy import xmlsafe
from .model import ChannelInput, CollectorConfig, CollectorInputError, Filter
from ._common import query_inputs

FORMAT = "wazuh"


def sniff_root(name: str, root) -> bool:
    return name in ("ossec_config", "agent_config") or any(True for _ in root.iter("localfile"))


def _inner_text(node) -> str:
    """The query as written: text plus child elements (the backslash-escaped QueryList form parses as
    elements), with the escaping backslashes removed."""
    from lxml import etree

    parts = [node.text or ""]
    for child in node:
        parts.append(etree.tostring(child, encoding="unicode"))
    return "".join(parts).replace("\\<", "<").replace("\\>", ">").strip().rstrip("\\").strip()


def read_root(path: str, root) -> CollectorConfig:
    config = CollectorConfig(path, FORMAT)
    for number, local in enumerate(root.iter("localfile")):
        fmt_node, loc_node = local.find("log_format"), local.find("location")
        fmt = (fmt_node.text or "").strip().casefold() if fmt_node is not None else ""
        if fmt not in ("eventchannel", "eventlog"):
            continue
        location = (loc_node.text or "").strip() if loc_node is not None else ""
        if not location:
            raise CollectorInputError(path, f"localfile {number + 1}: no <location>")
        stanza = f"<localfile> {number + 1} ({location[:80]})"
        query = local.find("query")
        text = _inner_text(query) if query is not None and fmt == "eventchannel" else ""
        if text:
            config.inputs += query_inputs(path, text, stanza, "query", default_path=location)
        else:
            config.inputs.append(ChannelInput(location, True, Filter(), path, stanza))
        if fmt == "eventlog":
            config.warnings.append(f"{stanza}: log_format eventlog reads only classic logs (the pre-Vista API)")
    if not config.inputs:
        raise CollectorInputError(path, "an ossec.conf with no eventchannel/eventlog <localfile>")
    return config
