"""Merge the groups the rules need into a user's Sysmon configuration, as text edits on their file.

The file is parsed (hardened lxml) only to decide; the output is the user's own text with two kinds of
edit, so every other byte stays as it was (XML declaration, encoding and byte-order mark, attribute
quoting, self-closing tags, line endings, comments):

- an include filter with no condition, of an event type the rules need, is cut out (it logs nothing;
  cutting it never lowers what Sysmon logs), with its RuleGroup when no other filter is left in it;
- new RuleGroups (rendered by templates/emit/sysmon_group.xml.j2) and notes are inserted just before
  ``</EventFiltering>`` (an ``<EventFiltering>`` is added before ``</Sysmon>`` when the file has none).

When a group is added is decided by Sysmon's own filter logic (Sysinternals/SysmonCommon rules.c,
FilterEventRules; see sysmon_emit's docstring): an include is added only to a type with no filter
element left (and, when the file never mentions it, whose default logs nothing: ``when_unmentioned``), or
one that already has an include element; a type whose one element is an exclude
already logs every event it does not exclude, and is left alone.
"""
from __future__ import annotations

import re
from typing import Any

from .sysmon_filters import XML_INVALID_RE
from .templating import escape_xml_comment, render


def _comment_text(text: str) -> str:
    return escape_xml_comment(XML_INVALID_RE.sub("", text))


def _onmatch(node) -> str | None:
    """include (logs what it matches), exclude (logs what it does not) or None (no valid attribute)."""
    from .policy.sysmon_config import filter_mode

    return filter_mode(node)


def _has_conditions(node) -> bool:
    from .policy.xmlsafe import local_name

    return any(local_name(child) for child in node)


def decide(root, groups: list[dict[str, Any]]) -> tuple[list[Any], list[dict[str, Any]], list[str]]:
    """(filter nodes to cut out, groups to add, notes) for the parsed configuration ``root``."""
    from .policy.xmlsafe import local_name

    filtering = next((n for n in root if local_name(n) == "EventFiltering"), None)
    cut: list[Any] = []
    additions: list[dict[str, Any]] = []
    notes: list[str] = []
    for group in groups:
        name = str(group["element"])
        nodes = [n for n in filtering.iter() if local_name(n) == name] if filtering is not None else []
        missing = group.get("missing", True)
        if not nodes and not missing:
            continue  # not mentioned: Sysmon's default for the type applies, left as it is
        if not nodes and group.get("when_unmentioned", "not_logged") != "not_logged":
            notes.append(f"{name}: not mentioned in this configuration, and Sysmon's default for it may log every "
                         "event; left as it is (an include filter would log only what it matches)")
            continue
        if any(_onmatch(n) is None for n in nodes):
            notes.append(f"{name}: a filter element has no valid onmatch or default attribute; left as it is "
                         "(Sysmon refuses it or applies the type's default)")
            continue
        empty = [n for n in nodes if _onmatch(n) == "include" and not _has_conditions(n)]
        cut.extend(empty)
        rest = [n for n in nodes if n not in empty]
        if len(rest) == 1 and _onmatch(rest[0]) == "exclude":
            if missing:
                notes.append(f"{name}: with the include filters that logged nothing removed, its one exclude "
                             "filter logs every event it does not exclude")
            continue
        if group.get("collect_all", True) and rest:
            notes.append(f"{name}: the rules need every event of this type, but this configuration logs only "
                         f"what its include filters match; left as it is (a single <{name} onmatch=\"exclude\"/> "
                         "would log them all)")
            continue
        additions.append(group)
    return cut, additions, notes


def _decode(data: bytes, root) -> tuple[str, str, bytes]:
    from .policy.xmlsafe import sniff_encoding

    encoding, skip = sniff_encoding(data)
    if encoding is None:
        encoding = root.getroottree().docinfo.encoding or "utf-8"
    return data[skip:].decode(encoding), encoding, data[:skip]


_MARKUP_RE = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>", re.S)


class _Text:
    """The configuration's text, with element spans found from lxml's line numbers (never inside a
    comment, CDATA section or processing instruction)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.masked = [(m.start(), m.end()) for m in _MARKUP_RE.finditer(text)]

    def search(self, pattern: re.Pattern[str], start: int) -> re.Match[str] | None:
        position = start
        while True:
            match = pattern.search(self.text, position)
            if match is None:
                return None
            inside = next((e for s, e in self.masked if s <= match.start() < e), None)
            if inside is None:
                return match
            position = inside

    def start_of(self, node) -> int:
        local = node.tag.split("}")[-1]
        qname = f"{node.prefix}:{local}" if node.prefix else local
        line = min(max(0, (node.sourceline or 1) - 1), len(self.line_starts) - 1)
        match = self.search(re.compile(r"<" + re.escape(qname) + r"(?=[\s/>])"), self.line_starts[line])
        if match is None:
            raise ValueError(f"cannot find <{qname}> in the text")
        return match.start()

    def span(self, node) -> tuple[int, int]:
        """[start, end) of the element's text, widened to whole lines when it stands alone on them."""
        start = self.start_of(node)
        qname = self.text[start + 1:re.compile(r"[\s/>]").search(self.text, start + 1).start()]
        end_of_tag = _end_of_start_tag(self.text, start)
        if self.text[end_of_tag - 2:end_of_tag] == "/>":
            end = end_of_tag
        else:
            close = self.search(re.compile(r"</" + re.escape(qname) + r"\s*>"), end_of_tag)
            if close is None:
                raise ValueError(f"cannot find </{qname}> in the text")
            end = close.end()
        line_start = self.text.rfind("\n", 0, start) + 1
        if not self.text[line_start:start].strip():
            after = re.compile(r"[ \t]*(\r?\n|$)").match(self.text, end)
            if after is not None:
                return line_start, after.end()
        return start, end


def _end_of_start_tag(text: str, start: int) -> int:
    quote = None
    for index in range(start, len(text)):
        ch = text[index]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == ">":
            return index + 1
    raise ValueError("unterminated start tag")


def _indent(text: str, position: int) -> str:
    line_start = text.rfind("\n", 0, position) + 1
    head = text[line_start:position]
    return head if not head.strip() else ""


def _signature(root, skip: list[Any] = ()) -> list[tuple[str, str, int]]:
    """The filter elements of a configuration in document order: (name, onmatch, entries)."""
    from .policy.xmlsafe import local_name

    out = []
    for filtering in (n for n in root if local_name(n) == "EventFiltering"):
        for node in filtering:
            inner = [c for c in node if local_name(c)] if local_name(node) == "RuleGroup" else [node]
            out += [(local_name(f), _onmatch(f), len([c for c in f if local_name(c)]))
                    for f in inner if local_name(f) and f not in skip]
    return out


def merge_text(data: bytes, root, groups: list[dict[str, Any]], context_of, extra_comments: list[str]) -> bytes:
    """The user's bytes with the decided edits; ``context_of(group, indent)`` gives the template context.

    The result is parsed back and its filter elements compared with what the edits must give; should the
    text edits miss (a file this locator does not follow), the edits are made on the parsed tree instead,
    which keeps the content but not every byte of the layout."""
    from .policy.xmlsafe import parse_xml_bytes

    cut, additions, notes = decide(root, groups)
    expected = _signature(root, cut) + [(str(g["element"]), "exclude" if g.get("collect_all", True) else "include",
                                         0 if g.get("collect_all", True) else len(g.get("filters") or []))
                                        for g in additions]
    try:
        merged = _edit_text(data, root, cut, additions, notes, context_of, extra_comments)
        if _signature(parse_xml_bytes("merged sysmon config", merged)) == expected:
            return merged
    except (ValueError, UnicodeError):
        pass
    return _edit_tree(root, cut, additions, notes, context_of, extra_comments)


def _edit_tree(root, cut, additions, notes, context_of, extra_comments) -> bytes:
    from lxml import etree

    from .policy.xmlsafe import local_name

    for node in cut:
        parent = node.getparent()
        parent.remove(node)
        if local_name(parent) == "RuleGroup" and not any(local_name(c) for c in parent):
            parent.getparent().remove(parent)
    filtering = next((n for n in root if local_name(n) == "EventFiltering"), None)
    if filtering is None:
        filtering = etree.SubElement(root, "EventFiltering")
    for text in [f"logsource_checker: {n}" for n in notes] + extra_comments:
        filtering.append(etree.Comment(f" {_comment_text(text)} "))
    for group in additions:
        fragment = render("emit/sysmon_group.xml.j2", "xml", **context_of(group, ""))
        filtering.append(etree.fromstring(fragment.strip().encode("utf-8")))
    etree.indent(root, space="  ")
    return etree.tostring(root.getroottree(), encoding="utf-8", xml_declaration=False) + b"\n"


def _edit_text(data: bytes, root, cut, additions, notes, context_of, extra_comments) -> bytes:
    from .policy.xmlsafe import local_name

    text, encoding, bom = _decode(data, root)
    newline = "\r\n" if "\r\n" in text else "\n"
    doc = _Text(text)
    filtering = next((n for n in root if local_name(n) == "EventFiltering"), None)
    comments = [f"logsource_checker: {n}" for n in notes] + extra_comments
    spans = []
    for node in cut:
        parent = node.getparent()
        if parent is not filtering and local_name(parent) == "RuleGroup" and all(
                child in cut for child in parent if local_name(child)):
            spans.append(doc.span(parent))
        else:
            spans.append(doc.span(node))
    if not additions and not comments and not spans:
        closing = "<!-- logsource_checker: nothing to add, this configuration already collects every Sysmon " \
                  "event type the rules need -->"
        end = text.rstrip()
        return bom + (end + newline + closing + newline).encode(encoding, errors="xmlcharrefreplace")
    if filtering is not None:
        close = doc.search(re.compile(r"</(?:[\w.-]+:)?EventFiltering\s*>"), doc.start_of(filtering))
        if close is None:
            raise ValueError("cannot find </EventFiltering> in the text")
        at = close.start()
        outer = _indent(text, at)
        inner = _child_indent(text, filtering, doc, outer)
        block = _block(additions, comments, context_of, inner, newline)
        insert_at = at - len(outer)
        prefix = "" if text[insert_at - 1:insert_at] == "\n" else newline
        insertion = prefix + block
    else:
        close = doc.search(re.compile(r"</(?:[\w.-]+:)?Sysmon\s*>"), 0)
        if close is None:
            raise ValueError("cannot find </Sysmon> in the text")
        at = close.start()
        outer = _indent(text, at)
        inner = outer + "  "
        block = _block(additions, comments, context_of, inner + "  ", newline)
        insert_at = at - len(outer)
        prefix = "" if text[insert_at - 1:insert_at] == "\n" else newline
        insertion = f"{prefix}{inner}<EventFiltering>{newline}{block}{inner}</EventFiltering>{newline}"
    out = text
    for start, end, new in sorted({(s, e, "") for s, e in spans} | {(insert_at, insert_at, insertion)},
                                  key=lambda edit: (edit[0], edit[1]), reverse=True):
        out = out[:start] + new + out[end:]
    return bom + out.encode(encoding, errors="xmlcharrefreplace")


def _child_indent(text: str, filtering, doc: _Text, outer: str) -> str:
    from .policy.xmlsafe import local_name

    for child in filtering:
        if local_name(child):
            return _indent(text, doc.start_of(child)) or outer + "  "
    return outer + "  "


def _block(additions: list[dict[str, Any]], comments: list[str], context_of, indent: str, newline: str) -> str:
    lines = [f"{indent}<!-- {_comment_text(c)} -->" for c in comments]
    for group in additions:
        lines.append(render("emit/sysmon_group.xml.j2", "xml", **context_of(group, indent)).rstrip("\n"))
    return newline.join(line.replace("\n", newline) if newline != "\n" else line for line in lines) + newline
