"""NXLog ``im_msvistalog`` inputs: ``Query`` (a QueryList, lines joined at a trailing backslash),
``<QueryXML>`` blocks, ``Channel``. An ``Exec`` that calls ``drop()`` may drop events the tool cannot
tell apart: ``None`` for every event of that input. An input with neither Query nor Channel reads the
channels NXLog picks by default, which the file does not show: ``None`` for every channel.
"""
from __future__ import annotations

import re

from .model import AllOf, ChannelInput, CollectorConfig, CollectorInputError, Filter, Unknowable
from ._common import query_inputs

FORMAT = "nxlog"
ANY_CHANNEL = "*"
_BLOCK_RE = re.compile(r"<Input\s+([^>\r\n]{1,200})>(.*?)</Input>", re.S | re.I)


def sniff(text: str) -> bool:
    return re.search(r"^\s*Module\s+im_msvistalog\b", text, re.M | re.I) is not None


def _join_lines(body: str) -> list[str]:
    lines, current = [], ""
    for raw in body.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        lines.append(current + line)
        current = ""
    if current:
        lines.append(current)
    return lines


def _input(path: str, name: str, body: str) -> list[ChannelInput]:
    stanza = f"<Input {name.strip()[:80]}>"
    queries = [m.group(1) for m in re.finditer(r"<QueryXML>(.*?)</QueryXML>", body, re.S | re.I)]
    body_rest = re.sub(r"<QueryXML>.*?</QueryXML>", "", body, flags=re.S | re.I)
    channels: list[str] = []
    drops = re.search(r"\bdrop\s*\(\s*\)", body_rest) is not None
    for line in _join_lines(body_rest):
        key, _, value = line.strip().partition(" ")
        if key.casefold() == "query":
            queries.append(value)
        elif key.casefold() == "channel":
            channels.append(value.strip())
    inputs: list[ChannelInput] = []
    for text in queries:
        inputs += query_inputs(path, text, stanza, "Query")
    inputs += [ChannelInput(ch, True, Filter(), path, stanza) for ch in channels if ch]
    if not inputs:
        inputs = [ChannelInput(ANY_CHANNEL, True, Unknowable(
            f"{stanza} has neither Query nor Channel: the channels it reads are NXLog's default"), path, stanza)]
    if drops:
        for item in inputs:
            item.filter = AllOf([item.filter, Unknowable(f"{stanza} Exec drop()")])
    return inputs


def read(path: str, text: str) -> CollectorConfig:
    config = CollectorConfig(path, FORMAT)
    for match in _BLOCK_RE.finditer(text):
        body = match.group(2)
        if re.search(r"^\s*Module\s+im_msvistalog\b", body, re.M | re.I):
            config.inputs += _input(path, match.group(1), body)
    if not config.inputs:
        raise CollectorInputError(path, "an NXLog configuration with no im_msvistalog <Input>")
    return config
