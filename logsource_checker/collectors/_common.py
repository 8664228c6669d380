"""Helpers every collector parser shares: safe YAML, Windows event QueryLists, duration-free flags."""
from __future__ import annotations

from typing import Any

from ..policy import xmlsafe
from ..policy.model import PolicyInputError
from .model import ChannelInput, CollectorInputError, Filter, XPathFilter

def load_yaml(path: str, text: str) -> Any:
    import yaml

    try:
        tokens = [t for t in yaml.scan(text) if isinstance(t, (yaml.AliasToken, yaml.AnchorToken))] if (
            "&" in text or "*" in text) else []
    except yaml.YAMLError as exc:
        raise CollectorInputError(path, f"not valid YAML: {xmlsafe.one_line(getattr(exc, 'problem', exc))}") from None
    if tokens:
        raise CollectorInputError(path, "YAML anchors and aliases are refused in collector configurations")
    try:
        docs = list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except yaml.YAMLError as exc:
        raise CollectorInputError(path, f"not valid YAML: {xmlsafe.one_line(getattr(exc, 'problem', exc))}") from None
    return docs[0] if len(docs) == 1 else {"__documents__": docs}


def truthy(value: Any) -> bool | None:
    """A configuration boolean (true/false/1/0/yes/no/on/off), None when it is none of these."""
    text = str(value).strip().casefold()
    if text in ("1", "true", "yes", "on", "t"):
        return True
    if text in ("0", "false", "no", "off", "f"):
        return False
    return None


def query_inputs(path: str, query_text: str, stanza: str, what: str,
                 default_path: str | None = None) -> list[ChannelInput]:
    """ChannelInputs from a query: a ``<QueryList>`` (one input per Query and channel), or a bare XPath
    (for ``default_path``, as Wazuh and Fluent Bit take it)."""
    text = query_text.strip()
    if not text.startswith("<"):
        if default_path is None:
            raise CollectorInputError(path, f"{stanza}: a bare XPath query without a channel")
        return [ChannelInput(default_path, True, XPathFilter([text], [], what), path, stanza)]
    try:
        root = xmlsafe.parse_xml_bytes(path, text.encode("utf-8"))
    except PolicyInputError as exc:
        raise CollectorInputError(path, f"{stanza}: the query is not a QueryList ({exc.reason})") from None
    if xmlsafe.local_name(root) != "QueryList":
        raise CollectorInputError(path, f"{stanza}: the query's root is <{xmlsafe.local_name(root)[:40]}>, "
                                        "not <QueryList>")
    inputs: list[ChannelInput] = []
    for number, query in enumerate(q for q in root if xmlsafe.local_name(q) == "Query"):
        qpath = query.get("Path") or default_path
        selects: dict[str, list[str]] = {}
        suppresses: dict[str, list[str]] = {}
        for node in query:
            name = xmlsafe.local_name(node)
            if name not in ("Select", "Suppress"):
                continue
            channel = node.get("Path") or qpath
            if not channel:
                raise CollectorInputError(path, f"{stanza}: a <{name}> names no Path")
            (selects if name == "Select" else suppresses).setdefault(channel, []).append(node.text or "")
        for channel, texts in selects.items():
            label = f"{stanza} Query {query.get('Id', number)}"
            inputs.append(ChannelInput(channel, True, XPathFilter(texts, suppresses.get(channel, []), what),
                                       path, label))
    return inputs


def filter_or_all(filter_: Filter | None) -> Filter:
    return filter_ if filter_ is not None else Filter()
