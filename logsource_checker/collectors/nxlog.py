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
_MODULE_RE = re.compile(r"^[ \t]*Module[ \t]+im_msvistalog\b", re.M | re.I)
_OPEN_RE = re.compile(r"^[ \t]*<Input[ \t]+([^>\r\n]{1,200})>[ \t]*$", re.I)
_CLOSE_RE = re.compile(r"^[ \t]*</Input>[ \t]*$", re.I)


def sniff(text: str) -> bool:
    return _MODULE_RE.search(text) is not None


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


def _query_xml(body: str) -> tuple[list[str], str]:
    """The <QueryXML> blocks of an input and the rest of its text (found with str.find: linear)."""
    lower, queries, rest, pos = body.lower(), [], [], 0
    while True:
        start = lower.find("<queryxml>", pos)
        end = lower.find("</queryxml>", start + 10) if start >= 0 else -1
        if start < 0 or end < 0:
            rest.append(body[pos:])
            return queries, "".join(rest)
        rest.append(body[pos:start])
        queries.append(body[start + 10:end])
        pos = end + 11


def _blocks(text: str) -> list[tuple[str, str]]:
    """(name, body) of each <Input name> ... </Input> block, line by line."""
    blocks, name, lines = [], None, []
    for line in text.splitlines():
        if name is None:
            match = _OPEN_RE.match(line)
            if match:
                name, lines = match.group(1), []
        elif _CLOSE_RE.match(line):
            blocks.append((name, "\n".join(lines)))
            name = None
        else:
            lines.append(line)
    return blocks


def _input(path: str, name: str, body: str) -> list[ChannelInput]:
    stanza = f"<Input {name.strip()[:80]}>"
    queries, body_rest = _query_xml(body)
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
    for name, body in _blocks(text):
        if _MODULE_RE.search(body):
            config.inputs += _input(path, name, body)
    if not config.inputs:
        raise CollectorInputError(path, "an NXLog configuration with no im_msvistalog <Input>")
    return config
