"""Sysmon include filters built from the rules themselves (the tailored ``sysmon.xml``).

A Sigma rule's condition is read into a disjunction of conjunctions of selections (condition_dnf.py);
``not X`` is read as "anything" (a filter under ``not`` never becomes an exclude: collecting more is
safe). Each selection is the OR of its branches, each branch the AND of its matches; every (branch, ...) combination of a
conjunction becomes one Sysmon ``<Rule groupRelation="and">`` (a tuple of ``Cond``), and the rules of an
event type are OR'ed by the include filter.

What Sysmon cannot express makes the filter wider, never narrower: a match it cannot express (unknown
or unsupported modifier, a field the event type does not have, keywords, null values, a regular
expression without literal text, a value with characters XML cannot carry) is dropped from its branch;
a value with inner wildcards becomes conditions on its literal pieces (``|windash`` dashes count as
wildcards); a regular expression becomes ``contains`` of the literal text every match of it has;
``|base64|contains`` / ``|base64offset|contains`` become ``contains`` of the encoded forms; too many
combinations are folded into a looser ``contains any``. When a rule comes down to a rule with no condition at all, the whole event type is
collected. Every widening is recorded as a note for the generated file and the report.

Sysmon compares every condition without regard to case, as Sigma does (Sysinternals/SysmonCommon rules.c);
which modifier becomes which condition, and which fields each event type has, is data in
``mappings/sysmon.yaml``.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from .condition_dnf import _Unreadable, condition_terms
from .templating import one_line

# characters XML 1.0 cannot carry at all (outside its Char production): such a value cannot be written
XML_INVALID_RE = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

XML_BLANKS = " \t\r\n"  # the only characters an XML reader may trim around a text (XML 1.0 S production)

MAX_RULES_PER_BRANCH = 16   # combinations of one branch before its longest value lists are folded
MAX_RULES_PER_TERM = 64     # combinations of one conjunction before its selections are dropped


@dataclass(frozen=True, order=True)
class Cond:
    """One Sysmon filter condition: ``<field condition="condition">value</field>``."""

    field: str
    condition: str
    value: str


SysmonRule = tuple  # tuple[Cond, ...], sorted; an empty tuple matches every event


@dataclass
class Translation:
    """The Sysmon rules of one Sigma rule for one event type, and how they were widened."""

    rules: set[SysmonRule] = field(default_factory=set)
    collect_all: bool = False
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


@dataclass(frozen=True)
class Conditions:
    """The modifier -> condition table of mappings/sysmon.yaml."""

    table: dict[str, dict[str, str | None]]
    ignored: frozenset[str]
    known_unsupported: frozenset[str]
    windash: frozenset[str]

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "Conditions":
        return cls(table=dict(meta.get("filter_conditions") or {}),
                   ignored=frozenset(meta.get("ignored_modifiers") or ()),
                   known_unsupported=frozenset(meta.get("widened_modifiers") or ()),
                   windash=frozenset(str(c) for c in meta.get("windash_characters") or ()))


# --------------------------------------------------------------------------- values

def sigma_pieces(value: str, wild_chars: frozenset[str] = frozenset()) -> tuple[list[str], bool, bool, bool]:
    """A Sigma value as (literal pieces between wildcards, leading wildcard, trailing wildcard, any wildcard).

    ``\\*``, ``\\?`` and ``\\\\`` are escapes (a literal ``*``, ``?``, ``\\``); any other backslash is
    literal; ``?`` is read like ``*`` (wider), and so is any unescaped character of ``wild_chars``.
    """
    pieces: list[str] = []
    current: list[str] = []
    lead = trail = wild = False
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in "*?\\":
            current.append(value[i + 1])
            i += 2
            continue
        if ch in "*?" or ch in wild_chars:
            wild = True
            if not pieces and not current:
                lead = True
            pieces.append("".join(current))
            current = []
            trail = True
        else:
            current.append(ch)
            trail = False
        i += 1
    pieces.append("".join(current))
    return [p for p in pieces if p], lead, trail, wild


_FORM = {"": (False, False), "contains": (True, True), "startswith": (False, True), "endswith": (True, False)}


def value_conds(fieldname: str, base: str, value: str, table: dict[str, dict[str, str | None]],
                wild_chars: frozenset[str] = frozenset()) -> list[Cond] | None:
    """The AND'ed conditions one Sigma value needs, or None when it cannot be written (widen)."""
    if not value.strip(XML_BLANKS) or XML_INVALID_RE.search(value):
        return None  # blank (an XML reader may trim it away) or a character XML cannot carry at all
    pieces, lead, trail, wild = sigma_pieces(value, wild_chars)
    before, after = _FORM[base]
    lead, trail = lead or before, trail or after
    if not pieces:
        return []  # only wildcards: any value
    contains = str(table["contains"]["one"])
    if not wild:
        mod = {(False, False): "equals", (True, True): "contains", (False, True): "startswith",
               (True, False): "endswith"}[(lead, trail)]
        return [_edge_safe(Cond(fieldname, str(table[mod]["one"]), pieces[0]), contains)]
    conds = []
    pieces_kept = [p for p in pieces if p.strip(XML_BLANKS)]  # a blank piece may be trimmed away by XML readers: dropped
    if not pieces_kept:
        return []
    if len(pieces_kept) != len(pieces):
        lead = lead or not pieces[0].strip(XML_BLANKS)
        trail = trail or not pieces[-1].strip(XML_BLANKS)
        pieces = pieces_kept
    for index, piece in enumerate(pieces):
        if index == 0 and not lead:
            conds.append(_edge_safe(Cond(fieldname, str(table["startswith"]["one"]), piece), contains))
        elif index == len(pieces) - 1 and not trail:
            conds.append(_edge_safe(Cond(fieldname, str(table["endswith"]["one"]), piece), contains))
        else:
            conds.append(Cond(fieldname, contains, piece))
    return conds


def _edge_safe(cond: Cond, contains: str) -> Cond:
    """An XML reader may trim a value's outer blanks: anchored conditions fall back to contains (wider)."""
    if cond.value != cond.value.strip(XML_BLANKS) and cond.condition != contains:
        return Cond(cond.field, contains, cond.value.strip(XML_BLANKS))
    return cond


# --------------------------------------------------------------------------- matches, branches, rules

def _match_alternatives(match: Any, fields: frozenset[str], conds: Conditions,
                        out: Translation, where: str) -> list[SysmonRule] | None:
    """The OR'ed condition tuples one match needs; None when it cannot be expressed (dropped: wider)."""
    fieldname, modifiers, values = match
    if fieldname is None:
        out.note(f"{where}: keyword search (no field) is not a Sysmon condition")
        return None
    if fieldname not in fields:
        out.note(f"{where}: field {fieldname} is not a field of this Sysmon event type")
        return None
    mods = [m for m in modifiers if m not in conds.ignored]
    if "re" in mods and set(mods) <= {"re", "i", "m", "s"} and values and None not in values:
        return _regex_alternatives(fieldname, values, conds, out, where)
    if sorted(mods) in (["base64offset", "contains"], ["base64", "contains"]) and values and None not in values:
        return _base64_alternatives(fieldname, values, "base64offset" in mods, conds, out, where)
    want_all = "all" in mods
    windash = "windash" in mods and bool(conds.windash)
    mods = [m for m in mods if m not in ("all", "windash")] if windash else [m for m in mods if m != "all"]
    base = mods[0] if len(mods) == 1 and mods[0] in conds.table and mods[0] != "equals" else ""
    if (mods and not base) or len(mods) > 1:
        bad = [m for m in mods if m not in conds.table]
        unknown = [m for m in bad if m not in conds.known_unsupported]
        if unknown:
            out.note(f"{where}: unknown modifier {', '.join(unknown)}; the match is not written")
        else:
            out.note(f"{where}: modifier {', '.join(bad) or '|'.join(mods)} cannot be written as a Sysmon condition")
        return None
    if not values or any(v is None for v in values):
        out.note(f"{where}: null or empty value list is not a Sysmon condition")
        return None
    table = conds.table
    specs = []
    for value in dict.fromkeys(values):
        # windash: any dash variant may stand where the rule has one: each is read as a wildcard (wider)
        spec = value_conds(fieldname, base, value, table, conds.windash if windash else frozenset())
        if spec is None:
            out.note(f"{where}: a value Sysmon cannot carry (empty, line break or control character)")
            return None
        specs.append(tuple(spec))
    if want_all:
        return [_merge_list(fieldname, [c for s in specs for c in s], table, "all")]
    if any(not s for s in specs):
        return [()]  # one value matches anything
    return _group_any(fieldname, specs, table)


def _regex_alternatives(fieldname: str, values: tuple[str, ...], conds: Conditions, out: Translation,
                        where: str) -> list[SysmonRule] | None:
    """A regular expression becomes 'contains' of a literal every match of it must contain (wider)."""
    specs = []
    for value in dict.fromkeys(values):
        literal = regex_literal(value)
        if literal is None or value_conds(fieldname, "contains", literal, conds.table) is None:
            out.note(f"{where}: modifier re with no literal text every match must contain")
            return None
        specs.append((Cond(fieldname, str(conds.table["contains"]["one"]), literal),))
    out.note(f"{where}: regular expression read as the literal text it requires (wider)")
    return _group_any(fieldname, specs, conds.table)


_B64_START = (0, 2, 3)         # pySigma SigmaBase64OffsetModifier: the text shifted by 0, 1, 2 bytes,
_B64_END = (None, -3, -2)      # less the characters the shift and the padding touch


def base64_forms(text: str, offsets: bool) -> list[str]:
    """The base64 texts a |base64 (one) or |base64offset (three) modifier matches for ``text`` (UTF-8)."""
    import base64

    data = text.encode("utf-8")
    if not offsets:
        return [base64.b64encode(data).decode()]
    return [base64.b64encode(i * b" " + data)[_B64_START[i]:_B64_END[(len(data) + i) % 3]].decode()
            for i in range(3)]


def _base64_alternatives(fieldname: str, values: tuple[str, ...], offsets: bool, conds: Conditions,
                         out: Translation, where: str) -> list[SysmonRule] | None:
    """|base64|contains and |base64offset|contains: 'contains' of each encoded form (Sysmon ignores the
    case base64 keeps: wider)."""
    specs: list[SysmonRule] = []
    contains = str(conds.table["contains"]["one"])
    for value in dict.fromkeys(values):
        pieces, _, _, wild = sigma_pieces(value)
        if wild:
            out.note(f"{where}: base64 of a value with wildcards is not defined; the match is not written")
            return None
        for form in base64_forms(pieces[0] if pieces else "", offsets):
            specs.append((Cond(fieldname, contains, form),) if form else ())
    if any(not spec for spec in specs):
        return [()]
    return _group_any(fieldname, list(dict.fromkeys(specs)), conds.table)


def regex_literal(pattern: str) -> str | None:
    """The longest run of plain characters at the top level of a regular expression: text every match
    contains (outside any alternation, group, repetition or class). None when there is none, or when
    Python's regular-expression parser does not read the pattern."""
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                from re import _parser as sre  # type: ignore[attr-defined]  # Python 3.11+
            except ImportError:  # pragma: no cover - Python 3.10
                import sre_parse as sre  # type: ignore[no-redef]
            parsed = sre.parse(pattern)
        literal_op = sre.LITERAL if hasattr(sre, "LITERAL") else None
        if literal_op is None:
            from re import _constants as constants  # type: ignore[attr-defined]
            literal_op = constants.LITERAL
    except Exception:  # noqa: BLE001 - any pattern Python cannot read: no literal, the match is dropped
        return None
    best, run = "", []
    for op, arg in list(parsed) + [(None, None)]:
        if op == literal_op:
            run.append(chr(arg))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
    return best.strip(XML_BLANKS) or None


def _merge_list(fieldname: str, cond_list: list[Cond], table: dict[str, Any], form: str) -> SysmonRule:
    """AND'ed conditions, with the 'contains' ones folded into one 'contains all' when possible."""
    contains = table["contains"]["one"]
    folded = table["contains"].get(form)
    parts = [c for c in cond_list if c.condition == contains]
    rest = [c for c in cond_list if c.condition != contains]
    if folded and len(parts) > 1 and not any(";" in c.value for c in parts):
        rest.append(Cond(fieldname, folded, ";".join(dict.fromkeys(c.value for c in parts))))
    else:
        rest.extend(parts)
    return tuple(sorted(set(rest)))


def _group_any(fieldname: str, specs: list[SysmonRule], table: dict[str, Any]) -> list[SysmonRule]:
    """OR'ed value specs: single conditions of a kind with an 'any' form are folded into one condition."""
    by_kind: dict[str, list[str]] = {}
    alternatives: list[SysmonRule] = []
    any_form = {str(forms["one"]): forms.get("any") for forms in table.values()}
    for spec in specs:
        if len(spec) == 1 and any_form.get(spec[0].condition) and ";" not in spec[0].value:
            by_kind.setdefault(spec[0].condition, []).append(spec[0].value)
        else:
            alternatives.append(spec)
    for kind, texts in sorted(by_kind.items()):
        condition = kind if len(texts) == 1 else str(any_form[kind])
        alternatives.append((Cond(fieldname, condition, ";".join(texts)),))
    return alternatives


def _loosen(fieldname: str, alternatives: list[SysmonRule], table: dict[str, Any]) -> list[SysmonRule] | None:
    """One 'contains any' of a literal piece of every alternative: wider than their OR; None if impossible.

    Every condition implies that the field contains its text; an 'any' condition implies it contains one
    of its texts (all are kept), a 'contains all' that it contains each (the longest is kept)."""
    any_forms = {forms.get("any") for forms in table.values()} - {None}
    texts: list[str] = []
    for alternative in alternatives:
        if not alternative:
            return [()]
        longest = max(alternative, key=lambda c: max(len(t) for t in c.value.split(";")))
        if longest.condition in any_forms:
            texts.extend(longest.value.split(";"))
        else:
            texts.append(max(longest.value.split(";"), key=len) if ";" in longest.value
                         and longest.condition == table["contains"].get("all") else longest.value)
    if any(";" in t or not t for t in texts):
        return None
    texts = list(dict.fromkeys(texts))
    condition = table["contains"]["one"] if len(texts) == 1 else table["contains"]["any"]
    return [(Cond(fieldname, str(condition), ";".join(texts)),)]


def _branch_rules(branch: Any, fields: frozenset[str], conds: Conditions, out: Translation,
                  where: str) -> list[SysmonRule]:
    per_match: list[tuple[str, list[SysmonRule]]] = []
    for match in branch:
        alternatives = _match_alternatives(match, fields, conds, out, where)
        if alternatives is not None:
            per_match.append((match[0], alternatives))
    size = 1
    for _, alternatives in per_match:
        size *= len(alternatives)
    while size > MAX_RULES_PER_BRANCH:
        index = max(range(len(per_match)), key=lambda i: len(per_match[i][1]))
        fieldname, alternatives = per_match[index]
        loose = _loosen(fieldname, alternatives, conds.table)
        out.note(f"{where}: {len(alternatives)} alternative values of {fieldname} folded into one looser condition")
        if loose is None:
            per_match.pop(index)
        else:
            per_match[index] = (fieldname, loose)
        size = 1
        for _, alts in per_match:
            size *= len(alts)
    rules = []
    for combo in itertools.product(*(alts for _, alts in per_match)):
        rules.append(tuple(sorted(set(c for part in combo for c in part))))
    return rules or [()]


def translate_rule(rule: Any, fields: frozenset[str], conds: Conditions) -> Translation:
    """The Sysmon include rules that collect every event ``rule`` can match (fields: the event type's)."""
    out = Translation()
    ref = one_line(rule.ref)
    names = [name for name, _ in rule.selections]
    try:
        terms = condition_terms(rule.condition, names)
    except _Unreadable as exc:
        out.note(f"rule {ref}: {exc}; every event of this type is collected")
        out.collect_all = True
        return out
    selections = dict(rule.selections)
    cache: dict[str, list[SysmonRule]] = {}
    for term in terms:
        if not term:
            out.note(f"rule {ref}: its condition can match without any positive selection; "
                     "every event of this type is collected")
            out.collect_all = True
            return out
        per_selection = []
        for name in sorted(term):
            if name not in cache:
                rules: list[SysmonRule] = []
                for branch in selections.get(name, ()):
                    rules.extend(_branch_rules(branch, fields, conds, out, f"rule {ref}, selection {one_line(name)}"))
                cache[name] = list(dict.fromkeys(rules)) or [()]
            per_selection.append(cache[name])
        size = 1
        for rules in per_selection:
            size *= len(rules)
        if size > MAX_RULES_PER_TERM:
            per_selection = [min(per_selection, key=len)]
            out.note(f"rule {ref}: too many combinations of its selections; one selection kept (wider)")
        for combo in itertools.product(*per_selection):
            out.rules.add(tuple(sorted(set(c for part in combo for c in part))))
    if () in out.rules:
        out.note(f"rule {ref}: a selection has no condition Sysmon can write; every event of this type is collected")
        out.collect_all = True
    return out
