"""Collector configurations: does a produced event leave the machine?

``read_collector(path)`` recognises the format by content and returns a ``CollectorConfig`` (what
each channel stanza forwards). One module per format, each with ``sniff`` and ``read`` (XML formats:
``sniff_root`` and ``read_root`` on the parsed root): winlogbeat (and Elastic Agent), splunk, wef,
wazuh, nxlog, fluentbit, otel, telegraf. Inputs are untrusted: size-limited, XML through ``policy.xmlsafe``,
YAML without aliases; a file of no known format is a ``CollectorInputError`` (exit status 2).
"""
from __future__ import annotations

from ..policy import xmlsafe
from ..policy.model import PolicyInputError
from . import fluentbit, nxlog, otel, splunk, telegraf, wazuh, wef, winlogbeat
from .model import ChannelInput, CollectorConfig, CollectorInputError

MAX_BYTES = 8 * 1024 * 1024
FORMATS = ("winlogbeat", "splunk", "wef", "wazuh", "nxlog", "fluentbit", "otel", "telegraf")
_TEXT_FORMATS = (telegraf, splunk, nxlog, fluentbit, otel, winlogbeat)   # sniffed in this order


def _decode(path: str, data: bytes) -> str:
    encoding, skip = xmlsafe.sniff_encoding(data)
    try:
        text = data[skip:].decode(encoding or "utf-8")
    except (UnicodeDecodeError, LookupError):
        raise CollectorInputError(path, f"not {encoding or 'UTF-8'} text") from None
    if "\x00" in text:
        raise CollectorInputError(path, "binary data, not a collector configuration")
    return text


def _read_xml(path: str, data: bytes, text: str) -> CollectorConfig:
    try:
        root = xmlsafe.parse_xml_bytes(path, data)
    except PolicyInputError as exc:
        if "<ossec_config" not in text or "DOCTYPE" in exc.reason:
            raise CollectorInputError(path, exc.reason) from None
        # ossec.conf may hold several <ossec_config> blocks (not one XML document): read them as one
        body = text.split("?>", 1)[1] if text.lstrip().startswith("<?xml") else text
        try:
            root = xmlsafe.parse_xml_bytes(path, f"<root>{body}</root>".encode("utf-8"))
        except PolicyInputError as again:
            raise CollectorInputError(path, again.reason) from None
    name = xmlsafe.local_name(root)
    if wef.sniff_root(name):
        return wef.read_root(path, root)
    if wazuh.sniff_root(name, root):
        return wazuh.read_root(path, root)
    raise CollectorInputError(path, f"XML with root <{name[:40]}> is no known collector configuration "
                                    "(a WEF subscription, a QueryList or a Wazuh/OSSEC ossec.conf)")


def read_collector(path: str) -> CollectorConfig:
    """The collector configuration in ``path``; raises ``CollectorInputError`` (one line) when unusable."""
    try:
        data = xmlsafe.read_limited(path, MAX_BYTES)
    except PolicyInputError as exc:
        raise CollectorInputError(path, exc.reason.replace("policy inputs", "collector files")) from None
    if not data.strip():
        raise CollectorInputError(path, "empty file")
    text = _decode(path, data)
    if nxlog.sniff(text):   # NXLog blocks (<Input name>) look like XML but are not
        return nxlog.read(path, text)
    if xmlsafe.looks_like_xml(data):
        return _read_xml(path, data, text)
    for module in _TEXT_FORMATS:
        if module.sniff(text):
            return module.read(path, text)
    raise CollectorInputError(path, "no known collector format (Winlogbeat/Elastic Agent YAML, Splunk inputs.conf, "
                                    "WEF subscription, Wazuh/OSSEC ossec.conf, NXLog, Fluent Bit, OpenTelemetry, Telegraf)")


__all__ = ["ChannelInput", "CollectorConfig", "CollectorInputError", "FORMATS", "read_collector"]
