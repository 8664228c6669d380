"""Two small reference evaluators for the Sysmon tests, written from the documents, not from our code.

- ``SysmonConfig.logs(event_id, event)``: would this configuration log the event? Sysmon's own rules
  (Sysinternals/SysmonCommon rules.c): per event type, exclude filters are tried first, then include
  filters, and the first that matches decides (exclude: dropped, include: logged). With no match, a type
  with a single filter element follows that element's default (exclude element: logged, include element:
  dropped); a type with several elements drops the event. A filter element with no entry never matches.
  Entries combine by the RuleGroup's groupRelation, else by AND above schema 4.1 and by OR up to it
  (xml.cpp). With "and", plain entries on the same field are OR'ed; a
  <Rule groupRelation="and"> needs all its entries. Every comparison ignores case; a field the event
  does not have never matches.
- ``sigma_matches(detection, event)``: does a Sigma detection match the event? Values ignore case,
  ``*`` and ``?`` are wildcards, modifiers contains / startswith / endswith / all / windash / re, a list
  is OR (AND with ``all``), conditions with and / or / not / parentheses / ``1 of`` / ``all of``.
"""
from __future__ import annotations

import re
from typing import Any

from lxml import etree

_DASHES = "-/\u2013\u2014\u2015"


def _cond(condition: str, value: str, data: str) -> bool:
    v, d = value.casefold(), data.casefold()
    tokens = [t.casefold() for t in value.split(";")]
    table = {
        "is": lambda: d == v,
        "is not": lambda: d != v,
        "contains": lambda: v in d,
        "excludes": lambda: v not in d,
        "contains any": lambda: any(t in d for t in tokens),
        "contains all": lambda: all(t in d for t in tokens),
        "excludes any": lambda: any(t not in d for t in tokens),
        "excludes all": lambda: all(t not in d for t in tokens),
        "is any": lambda: d in tokens,
        "begin with": lambda: d.startswith(v),
        "not begin with": lambda: not d.startswith(v),
        "end with": lambda: d.endswith(v),
        "not end with": lambda: not d.endswith(v),
        "image": lambda: (d.rsplit("\\", 1)[-1] if "\\" not in v else d) == v,
    }
    return table[condition]()


class SysmonConfig:
    def __init__(self, xml: bytes, elements: dict[int, str], trim: bool = False) -> None:
        self.root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
        self.elements = elements  # event id -> filter element name
        self.trim = trim  # read condition texts as an XML reader that trims outer blanks would

    def _filters(self, element: str) -> list[tuple[etree._Element, str]]:
        # entries combine by AND above schema 4.1, by OR up to it (SysmonCommon xml.cpp)
        try:
            default = "and" if float(self.root.get("schemaversion") or "0") > 4.1 else "or"
        except ValueError:
            default = "and"
        found = []
        for filtering in self.root.iter("EventFiltering"):
            for node in filtering:
                if not isinstance(node.tag, str):
                    continue
                if node.tag == "RuleGroup":
                    relation = (node.get("groupRelation") or default).lower()
                    found += [(f, relation) for f in node if f.tag == element]
                elif node.tag == element:
                    found.append((node, default))
        excludes = [f for f in found if (f[0].get("onmatch") or "").lower() == "exclude"]
        return excludes + [f for f in found if f not in excludes]

    def _entry(self, node: etree._Element, event: dict[str, str]) -> bool:
        if node.tag == "Rule":
            parts = [c for c in node if isinstance(c.tag, str)]
            results = [self._entry(c, event) for c in parts]
            return all(results) if (node.get("groupRelation") or "and").lower() == "and" else any(results)
        if node.tag not in event:
            return False
        text = (node.text or "").strip(" \t\r\n") if self.trim else node.text or ""
        return _cond(node.get("condition") or "is", text, event[node.tag])

    def _matches(self, node: etree._Element, relation: str, event: dict[str, str]) -> bool:
        entries = [c for c in node if isinstance(c.tag, str)]
        if not entries:
            return False
        if relation == "or":
            return any(self._entry(e, event) for e in entries)
        by_field: dict[str, list[bool]] = {}
        for i, entry in enumerate(entries):  # same-field plain entries are OR'ed; each Rule stands alone
            by_field.setdefault(entry.tag if entry.tag != "Rule" else f"Rule#{i}", []).append(self._entry(entry, event))
        return all(any(v) for v in by_field.values())

    def logs(self, event_id: int, event: dict[str, str], defaults: dict[int, bool | None] | None = None) -> bool | None:
        """True / False, or, when the type has no filter, Sysmon's default for the type (``defaults``: event
        id -> logged, from manifest.xml's ruledefault; None when not given or not known)."""
        filters = self._filters(self.elements[event_id])
        if not filters:
            return (defaults or {}).get(event_id)
        for node, relation in filters:
            if self._matches(node, relation, event):
                return (node.get("onmatch") or "").lower() == "include"
        if len(filters) == 1:
            return (filters[0][0].get("onmatch") or "").lower() == "exclude"
        return False


# --------------------------------------------------------------------------- Sigma

def _wildcard(value: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in "*?\\":
            out.append(re.escape(value[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.S | re.I)


def _value_matches(mods: list[str], value: Any, data: str) -> bool:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if "re" in mods:
        return re.search(text, data) is not None
    variants = [text]
    if "windash" in mods:
        positions = [i for i, ch in enumerate(text) if ch in _DASHES]
        variants = []
        for combo in range(len(_DASHES) ** len(positions)):
            chars = list(text)
            for p in positions:
                chars[p] = _DASHES[combo % len(_DASHES)]
                combo //= len(_DASHES)
            variants.append("".join(chars))
    before = ".*" if "contains" in mods or "endswith" in mods else ""
    after = ".*" if "contains" in mods or "startswith" in mods else ""
    for variant in variants:  # the modifier's wildcards are added outside the value (its escapes stay its own)
        if re.fullmatch(before + _wildcard(variant).pattern + after, data, re.S | re.I):
            return True
    return False


def _selection_matches(selection: Any, event: dict[str, str]) -> bool:
    if isinstance(selection, list):
        if all(isinstance(item, dict) for item in selection):
            return any(_selection_matches(item, event) for item in selection)
        blob = " ".join(event.values())
        return any(_wildcard(f"*{k}*").fullmatch(blob) for k in selection)
    for key, values in selection.items():
        name, *mods = key.split("|")
        values = values if isinstance(values, list) else [values]
        if name not in event:
            return False
        hits = [_value_matches(mods, v, event[name]) for v in values]
        if not (all(hits) if "all" in mods else any(hits)):
            return False
    return True


def sigma_matches(detection: dict[str, Any], event: dict[str, str]) -> bool:
    names = [n for n in detection if n != "condition"]
    results = {n: _selection_matches(detection[n], event) for n in names}

    def group(quantifier: str, pattern: str) -> str:
        regex = re.compile("^" + ".*".join(map(re.escape, pattern.split("*"))) + "$")
        picked = [n for n in names if pattern == "them" or regex.match(n)]
        values = [results[n] for n in picked]
        return str(any(values) if quantifier == "1" else all(values))

    expr = re.sub(r"\b(1|all) of (\S+)", lambda m: group(m.group(1), m.group(2)), detection["condition"])
    expr = re.sub(r"\b[A-Za-z_][A-Za-z0-9_]*\b",
                  lambda m: m.group(0) if m.group(0) in ("and", "or", "not", "True", "False")
                  else str(results[m.group(0)]), expr)
    return bool(eval(expr, {"__builtins__": {}}))  # noqa: S307 - our own test rules, names replaced by booleans
