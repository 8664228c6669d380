"""OpenTelemetry Collector ``windowseventlog`` receivers: ``channel`` or ``xml_query`` / ``query`` (a
QueryList, used instead of channel), ``exclude_providers``. A receiver no ``service.pipelines`` entry lists
does not run (OpenTelemetry Collector configuration docs): its channel is read as disabled.
"""
from __future__ import annotations

from .model import AllOf, ChannelInput, CollectorConfig, CollectorInputError, Filter
from .xpath import Event
from ._common import load_yaml, query_inputs

FORMAT = "otel"


def sniff(text: str) -> bool:
    return "windowseventlog" in text and "receivers" in text


class _ExcludeProviders(Filter):
    def __init__(self, providers: list[str], stanza: str) -> None:
        self.providers = {p.casefold() for p in providers}
        self.description = f"{stanza} exclude_providers {', '.join(providers)}"

    def test(self, event: Event) -> tuple[bool | None, str]:
        if not event.provider:
            return None, f"{self.description}; the event's provider is not known"
        if event.provider.casefold() in self.providers:
            return False, f"provider {event.provider} is excluded ({self.description})"
        return True, self.description


def _used(doc: dict) -> set[str]:
    service = doc.get("service") if isinstance(doc.get("service"), dict) else {}
    pipelines = service.get("pipelines") if isinstance(service.get("pipelines"), dict) else {}
    used: set[str] = set()
    for pipe in pipelines.values():
        if isinstance(pipe, dict) and isinstance(pipe.get("receivers"), list):
            used.update(str(r) for r in pipe["receivers"])
    return used


def read(path: str, text: str) -> CollectorConfig:
    doc = load_yaml(path, text)
    receivers = doc.get("receivers") if isinstance(doc, dict) else None
    if not isinstance(receivers, dict):
        raise CollectorInputError(path, "an OpenTelemetry configuration with no receivers")
    config = CollectorConfig(path, FORMAT)
    used = _used(doc)
    for name, body in receivers.items():
        if str(name).split("/")[0] != "windowseventlog":
            continue
        body = body if isinstance(body, dict) else {}
        stanza = f"receivers.{name}"
        query = body.get("xml_query") or body.get("query")   # spelled either way across versions
        if query:
            inputs = query_inputs(path, str(query), stanza, f"{stanza} query")
        elif body.get("channel"):
            inputs = [ChannelInput(str(body["channel"]).strip(), True, Filter(), path, stanza)]
        else:
            raise CollectorInputError(path, f"{stanza}: neither channel nor xml_query")
        excluded = body.get("exclude_providers")
        for item in inputs:
            if isinstance(excluded, list) and excluded:
                item.filter = AllOf([item.filter, _ExcludeProviders([str(p) for p in excluded], stanza)])
            if used and str(name) not in used or not used:
                item.enabled, item.disabled_why = False, "the receiver is in no service pipeline"
        config.inputs += inputs
    if not config.inputs:
        raise CollectorInputError(path, "an OpenTelemetry configuration with no windowseventlog receiver")
    return config
