"""Sigma conditions: parse ``detection.condition`` and decide which selections a producer needs.

Grammar, after the Sigma rules specification v2.0.0, section "Condition"
(https://github.com/SigmaHQ/sigma-specification/blob/main/specification/sigma-rules-specification.md):

- ``a and b``, ``a or b``, ``not a``, brackets; precedence, least to most binding: ``or``, ``and``,
  ``not``, ``x of ...``, ``( ... )``.
- ``1 of them`` / ``all of them``: OR / AND over every search identifier *not starting with an
  underscore*; ``1 of pattern`` / ``all of pattern``: the same over the identifiers the pattern matches,
  ``*`` standing for any number of characters. As in pySigma (``sigma/conditions.py``,
  ``ConditionSelector.resolve_referenced_detections``), a pattern that itself starts with ``_`` may match
  ``_``-prefixed identifiers; ``any of`` is read as ``1 of``. A pattern matching nothing is an error
  (pySigma raises one too). ``N of`` with N > 1 (Sigma 1.0 wording "x of") means at least N.
- A list of conditions means any of them (the specification: "each of them generates a query. They are
  logically linked with OR").
- The pipe aggregations of Sigma 1.0 (``selection | count() by x > 5``, ``| near``) were deprecated for
  correlation rules; the part after ``|`` is ignored with a note.

Operators are lower-case keywords as in pySigma (``AND`` is an identifier). Parsed trees are tuples:
``("id", name)``, ``("not", node)``, ``("and", nodes)``, ``("or", nodes)``,
``("of", count, text, names)`` where count is the number of members that must hold. A text is parsed once
(cached) into a tree that does not depend on the rule (``x of`` patterns unexpanded), then bound to each rule's
selection names: rules share few distinct condition texts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

_TOKEN_RE = re.compile(r"\s*(?:(\()|(\))|([A-Za-z0-9_\-*]+)|(\S))")
_IDENT_RE = re.compile(r"[A-Za-z0-9_\-]+\Z")
_PATTERN_RE = re.compile(r"[A-Za-z0-9_\-*]+\Z")
_KEYWORDS = frozenset({"and", "or", "not", "of"})
MAX_CONDITION_LENGTH = 10_000
MAX_NESTING = 100


class ConditionError(ValueError):
    """The condition cannot be parsed."""


@dataclass(frozen=True)
class ParsedCondition:
    node: tuple | None                 # None when no condition could be parsed
    problems: tuple[str, ...] = ()     # errors: unparsable text, names the detection does not define
    notes: tuple[str, ...] = ()        # remarks (an ignored aggregation)


@dataclass(frozen=True)
class Verdict:
    serves: bool                        # some way to satisfy the condition uses only available selections
    lost: tuple[str, ...] = ()          # unavailable selections the condition uses positively
    filters_not_applied: tuple[str, ...] = ()   # unavailable selections used only under a negation


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.depth = 0
        self.identifiers: set[str] = set()
        self.patterns = False

    @staticmethod
    def _tokenize(text: str) -> list[str]:
        tokens = []
        for match in _TOKEN_RE.finditer(text):
            if match.group(4) is not None:
                raise ConditionError(f"unexpected character {match.group(4)!r}")
            tokens.append(match.group(1) or match.group(2) or match.group(3))
        return tokens

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self, what: str) -> str:
        token = self._peek()
        if token is None:
            raise ConditionError(f"condition ends where {what} was expected")
        self.pos += 1
        return token

    def parse(self) -> tuple:
        if not self.tokens:
            raise ConditionError("empty condition")
        node = self._or()
        if self._peek() is not None:
            raise ConditionError(f"unexpected {self._peek()!r}")
        return node

    def _or(self) -> tuple:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ConditionError(f"nested deeper than {MAX_NESTING} levels")
        items = [self._and()]
        while self._peek() == "or":
            self.pos += 1
            items.append(self._and())
        self.depth -= 1
        return items[0] if len(items) == 1 else ("or", tuple(items))

    def _and(self) -> tuple:
        items = [self._not()]
        while self._peek() == "and":
            self.pos += 1
            items.append(self._not())
        return items[0] if len(items) == 1 else ("and", tuple(items))

    def _not(self) -> tuple:
        if self._peek() == "not":
            self.pos += 1
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise ConditionError(f"nested deeper than {MAX_NESTING} levels")
            node = ("not", self._not())
            self.depth -= 1
            return node
        return self._atom()

    def _atom(self) -> tuple:
        token = self._next("a selection name")
        if token == "(":
            node = self._or()
            if self._next("')'") != ")":
                raise ConditionError("missing ')'")
            return node
        if token == ")" or token in _KEYWORDS:
            raise ConditionError(f"unexpected {token!r}")
        if self._peek() == "of":
            self.pos += 1
            return self._of(token, self._next("a selection pattern after 'of'"))
        if not _IDENT_RE.match(token):
            raise ConditionError(f"{token!r} is not a selection name")
        self.identifiers.add(token)
        return ("id", token)

    def _of(self, quantifier: str, pattern: str) -> tuple:
        if pattern in ("(", ")") or pattern in _KEYWORDS or not _PATTERN_RE.match(pattern):
            raise ConditionError(f"{pattern!r} after 'of' is not a selection pattern")
        text = f"{quantifier} of {pattern}"
        if quantifier == "all":
            count = 0  # all members, known once bound
        elif quantifier == "any" or quantifier.isdigit():
            count = 1 if quantifier == "any" else int(quantifier)
            if count < 1:
                raise ConditionError(f"'{text}': the count must be at least 1")
        else:
            raise ConditionError(f"{quantifier!r} before 'of' is neither a number nor 'all'")
        self.patterns = True
        parts = None if pattern == "them" else tuple(pattern.split("*"))
        return ("pattern", count, text, parts, pattern.startswith("_"))


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> tuple[tuple, frozenset[str], bool] | str:
    """A condition text -> (tree with unexpanded patterns, identifiers used, whether it has patterns), or the
    reason it cannot be parsed."""
    if len(text) > MAX_CONDITION_LENGTH:
        return f"longer than {MAX_CONDITION_LENGTH} characters"
    try:
        parser = _Parser(text)
        node = parser.parse()
    except ConditionError as exc:
        return str(exc)
    return node, frozenset(parser.identifiers), parser.patterns


def _bind(node: tuple, names: Sequence[str], problems: list[str]) -> tuple:
    """Expand the ``x of`` patterns of a parsed tree over a rule's selection names."""
    kind = node[0]
    if kind == "id":
        return node
    if kind == "not":
        return ("not", _bind(node[1], names, problems))
    if kind == "and" or kind == "or":
        return (kind, tuple([_bind(child, names, problems) for child in node[1]]))
    _, count, text, parts, private = node
    if not private:
        names = [n for n in names if not n.startswith("_")]
    if parts is None:
        members = tuple(names)
    elif len(parts) == 2 and "\n" not in "".join(names):   # the usual 'x of prefix*' / '*suffix'
        first, last = parts
        least = len(first) + len(last)
        members = tuple([n for n in names if n.startswith(first) and n.endswith(last) and len(n) >= least])
    else:
        members = tuple([n for n in names if _glob(parts, n)])
    if not members:
        problems.append(f"'{text}' matches no selection of the detection")
    elif count > len(members):
        problems.append(f"'{text}' needs more selections than the {len(members)} it matches")
    return ("of", count or len(members), text, members)


def _glob(parts: tuple[str, ...], name: str) -> bool:
    """Whether ``name`` matches the pattern ``"*".join(parts)``, ``*`` standing for any run of characters
    except a line break (as the regular expression ``.*`` would, without compiling one per pattern)."""
    if len(parts) == 1:
        return name == parts[0]
    first, last = parts[0], parts[-1]
    start, end = len(first), len(name) - len(last)
    if end < start or not name.startswith(first) or not name.endswith(last) or "\n" in name[start:end]:
        return False
    for part in parts[1:-1]:
        found = name.find(part, start, end)
        if found < 0:
            return False
        start = found + len(part)
    return True


def parse(text: str, names: Sequence[str]) -> tuple[tuple, list[str]]:
    """One condition string -> (tree, problems). Raises ``ConditionError`` when it cannot be parsed."""
    parsed = _parse_text(text)
    if isinstance(parsed, str):
        raise ConditionError(parsed)
    node, identifiers, patterns = parsed
    problems = [f"condition names selection {name!r}, which the detection does not define"
                for name in sorted(identifiers.difference(names))]
    return (_bind(node, names, problems) if patterns else node), problems


def parse_conditions(conditions: Iterable[str], names: Sequence[str]) -> ParsedCondition:
    """A rule's condition(s) -> one tree (a list of conditions is their OR), with problems and notes."""
    nodes: list[tuple] = []
    problems: list[str] = []
    notes: list[str] = []
    for text in conditions:
        body, bar, aggregation = text.partition("|")
        if bar:
            notes.append(f"condition {text.strip()!r}: the aggregation after '|' is deprecated Sigma 1.0 syntax "
                         "(now a correlation rule) and is ignored")
        try:
            node, found = parse(body, names)
        except ConditionError as exc:
            problems.append(f"condition {text.strip()[:200]!r} cannot be parsed: {exc}")
            continue
        nodes.append(node)
        problems.extend(found)
    if not nodes:
        if not problems:
            problems.append("the detection has no condition")
        return ParsedCondition(None, tuple(problems), tuple(notes))
    node = nodes[0] if len(nodes) == 1 else ("or", tuple(nodes))
    return ParsedCondition(node, tuple(problems), tuple(notes))


def referenced(node: tuple) -> set[str]:
    """Every selection name the tree uses (an ``x of`` counts its members)."""
    kind = node[0]
    if kind == "id":
        return {node[1]}
    if kind == "not":
        return referenced(node[1])
    if kind == "of":
        return set(node[3])
    return set().union(*(referenced(child) for child in node[1]))


def evaluate(node: tuple, true: frozenset[str] | set[str]) -> bool:
    """The condition's truth when exactly the selections in ``true`` match."""
    kind = node[0]
    if kind == "id":
        return node[1] in true
    if kind == "not":
        return not evaluate(node[1], true)
    if kind == "and":
        return all(evaluate(child, true) for child in node[1])
    if kind == "or":
        return any(evaluate(child, true) for child in node[1])
    return bool(node[3]) and sum(1 for name in node[3] if name in true) >= node[1]


def used_positively(node: tuple, positive: bool = True) -> dict[str, None]:
    """The selection names used outside any negation (or under an even number of them), in order."""
    kind = node[0]
    if kind == "id":
        return {node[1]: None} if positive else {}
    if kind == "not":
        return used_positively(node[1], not positive)
    if kind == "of":
        return dict.fromkeys(node[3]) if positive else {}
    found: dict[str, None] = {}
    for child in node[1]:
        found.update(used_positively(child, positive))
    return found


def verdict(node: tuple, available: frozenset[str] | set[str]) -> Verdict:
    """Can a producer that only sees the ``available`` selections serve the condition?

    The condition is read in its positive structure (negations pushed down to the selections): a selection
    the producer cannot see counts as never matching where it is used positively (it is *lost*) and is
    dropped where it is used under a negation (the filter cannot apply, which widens the rule but does not
    stop it); a visible selection may match or not. The producer serves the rule when the condition can
    still be true."""
    lost: dict[str, None] = {}
    unapplied: dict[str, None] = {}
    serves = _satisfiable(node, True, available, lost, unapplied)
    return Verdict(serves, tuple(lost), tuple(n for n in unapplied if n not in lost))


def _satisfiable(node: tuple, positive: bool, available, lost: dict, unapplied: dict) -> bool:
    kind = node[0]
    if kind == "id":
        return _leaf(node[1], positive, available, lost, unapplied)
    if kind == "not":
        return _satisfiable(node[1], not positive, available, lost, unapplied)
    if kind in ("and", "or"):
        results = [_satisfiable(child, positive, available, lost, unapplied) for child in node[1]]
        # not (a and b) = not a or not b; not (a or b) = not a and not b
        return all(results) if (kind == "and") == positive else any(results)
    count, members = node[1], node[3]
    if not members:
        return not positive
    possible = sum(1 for name in members if _leaf(name, positive, available, lost, unapplied))
    # at least `count` true; negated: at most count - 1 true, that is at least len - count + 1 false
    return possible >= (count if positive else len(members) - count + 1)


def _leaf(name: str, positive: bool, available, lost: dict, unapplied: dict) -> bool:
    if name in available:
        return True
    if positive:
        lost[name] = None
        return False
    unapplied[name] = None
    return True
