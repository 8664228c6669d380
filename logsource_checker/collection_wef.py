"""The second hop of Windows Event Forwarding (``--collector`` with a subscription and a forwarder).

A WEF subscription moves the events it selects from the source hosts into a log on the collector host: its
``<LogFile>``, ``ForwardedEvents`` when it names none (``mappings/channels.yaml`` ``wef_default_log``).
From there a forwarder on the collector (Winlogbeat, Splunk, NXLog, ...) must read that log. So when
subscriptions and other collector files are given together, an event arrives when

- another file forwards it directly from its own channel (an agent on the source host), or
- a subscription selects it (hop 1) AND some other file reads the subscription's log with that event
  (hop 2: the forwarded event keeps its EventID and provider).

The verdict names the hop that fails. With subscriptions alone, a selected event counts as collected (the
subscription is the last hop given), as before.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from .collectors.xpath import Event

_RANK = {True: 0, None: 1, False: 2}


def chained(check: Any, event: Event, union: Callable[[Sequence[Any], Event], Any]) -> Any | None:
    """The verdict for ``event`` through direct forwarders or subscription + forwarder; None when the
    configurations are not of both kinds (then the plain union applies)."""
    from .collection import Collection

    subscriptions = [c for c in check.configs if c.format == "wef"]
    forwarders = [c for c in check.configs if c.format != "wef"]
    if not subscriptions or not forwarders:
        return None
    direct = union(forwarders, event)
    if direct.collected is True:
        return direct
    best = None
    for config in subscriptions:
        hop1 = union([config], event)
        log = config.destination or check.kb.wef_default_log or ""
        if hop1.collected is False:
            verdict = Collection(False, hop1.file, hop1.stanza, f"hop 1 (WEF subscription) fails: {hop1.reason}",
                                 hop=1)
        else:
            hop2 = union(forwarders, Event(log, event.event_id, event.provider))
            where = f"{hop1.stanza} puts it in {log} on the collector host"
            if hop2.collected is True and hop1.collected is True:
                verdict = Collection(True, hop2.file, hop2.stanza, f"{where}, then {hop2.reason}")
            elif hop2.collected is False:
                verdict = Collection(False, hop2.file, hop2.stanza,
                                     f"hop 2 (forwarder on the collector host) fails: {where}, but {hop2.reason}",
                                     hop=2, via=log)
            elif hop1.collected is None:
                verdict = Collection(None, hop1.file, hop1.stanza, f"hop 1 (WEF subscription): {hop1.reason}")
            else:
                verdict = Collection(None, hop2.file, hop2.stanza, f"hop 2: {where}, but {hop2.reason}")
        if best is None or _RANK[verdict.collected] < _RANK[best.collected]:
            best = verdict
    if best is None or (direct.collected is None and best.collected is False):
        return direct
    return best


__all__ = ["chained"]
