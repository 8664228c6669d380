"""Windows Event Forwarding subscriptions (``wecutil gs /f:xml`` / ``wecutil cs`` files) and bare QueryLists.

A subscription forwards what its ``<Query>`` (a QueryList in CDATA) selects, when ``<Enabled>`` is
true (Microsoft Learn, "Subscription" XML schema; "Consuming Events": QueryList, Select, Suppress).
Each ``<Query>`` is evaluated on its own: an event is forwarded when some Select with its channel
picks it and no Suppress of that Query does. The subscription's ``<LogFile>`` (where the collector
stores the events) is noted: a second collector must forward that log on from the collector host.
"""
from __future__ import annotations

from ..policy import xmlsafe
from ..policy.model import PolicyInputError
from .model import CollectorConfig, CollectorInputError
from ._common import query_inputs, truthy

FORMAT = "wef"


def sniff_root(name: str) -> bool:
    return name in ("Subscription", "QueryList")


def _child(node, name: str):
    for child in node:
        if xmlsafe.local_name(child) == name:
            return child
    return None


def read_root(path: str, root) -> CollectorConfig:
    config = CollectorConfig(path, FORMAT)
    if xmlsafe.local_name(root) == "QueryList":
        from lxml import etree

        text = etree.tostring(root, encoding="unicode")
        config.inputs = query_inputs(path, text, "QueryList", "query")
        return config
    ident = _child(root, "SubscriptionId")
    name = (ident.text or "").strip()[:80] if ident is not None else "subscription"
    stanza = f"Subscription {name}"
    enabled_node = _child(root, "Enabled")
    enabled = True
    if enabled_node is not None:
        value = truthy(enabled_node.text or "")
        if value is None:
            raise CollectorInputError(path, f"{stanza}: <Enabled> is not true or false")
        enabled = value
    query = _child(root, "Query")
    if query is None or not (query.text or "").strip():
        raise CollectorInputError(path, f"{stanza}: no <Query>")
    try:
        config.inputs = query_inputs(path, query.text or "", stanza, "subscription query")
    except PolicyInputError as exc:
        raise CollectorInputError(path, exc.reason) from None
    for item in config.inputs:
        item.enabled = enabled
        item.disabled_why = "<Enabled>false</Enabled>"
    log = _child(root, "LogFile")
    if log is not None and (log.text or "").strip():
        config.destination = (log.text or "").strip()[:256]
        config.warnings.append(f"{stanza}: events go to the log {(log.text or '').strip()[:80]!r} on the collector; "
                               "a forwarder there must send that log on")
    return config
