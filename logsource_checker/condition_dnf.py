"""A Sigma condition as OR'ed sets of AND'ed selection names (disjunctive normal form), for the Sysmon
include filters (sysmon_filters.py). ``not X`` is read as "anything" (a filter under ``not`` never becomes
an exclude: collecting more is safe); too many conjunctions are read as "any selection named" (wider)."""
from __future__ import annotations

import re
from typing import Iterable

MAX_TERMS = 256             # conjunctions of one condition before it is read as "any selection"

_TOKEN_RE = re.compile(r"\s*(\(|\)|\||[^\s()|]+)")


class _Unreadable(ValueError):
    pass


def condition_terms(conditions: Iterable[str], names: list[str]) -> list[frozenset[str]]:
    """The rule's condition as OR'ed sets of AND'ed selection names; ``[frozenset()]`` means "anything".

    Raises ``_Unreadable`` for a condition this reader does not understand (aggregations, unknown names).
    """
    terms: set[frozenset[str]] = set()
    conditions = list(conditions)
    if not conditions:
        raise _Unreadable("the rule has no condition")
    for text in conditions:
        tokens = _TOKEN_RE.findall(text)
        if "".join(tokens).replace(" ", "") != text.replace(" ", "").replace("\t", "").replace("\n", ""):
            raise _Unreadable("condition has characters this reader does not understand")
        parser = _Parser(tokens, names)
        result = parser.expression()
        if parser.pos != len(tokens):
            raise _Unreadable(f"condition part {' '.join(tokens[parser.pos:])[:40]!r} not understood")
        terms |= result
    return _minimal(terms)


def _minimal(terms: set[frozenset[str]]) -> list[frozenset[str]]:
    """Drop conjunctions implied by a smaller one (A or (A and B) is A)."""
    ordered = sorted(terms, key=lambda t: (len(t), sorted(t)))
    kept: list[frozenset[str]] = []
    for term in ordered:
        if not any(k <= term for k in kept):
            kept.append(term)
    return kept


class _Parser:
    """Recursive descent over: or < and < not < (group) | 1 of / all of / any of PATTERN | name."""

    def __init__(self, tokens: list[str], names: list[str]) -> None:
        self.tokens = tokens
        self.names = names
        self.pos = 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos].lower() if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        if self.pos >= len(self.tokens):
            raise _Unreadable("condition ends too early")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expression(self) -> set[frozenset[str]]:
        result = self._and()
        while self._peek() == "or":
            self._take()
            result = result | self._and()
        return result

    def _and(self) -> set[frozenset[str]]:
        result = self._not()
        while self._peek() == "and":
            self._take()
            right = self._not()
            result = {a | b for a in result for b in right}
            if len(result) > MAX_TERMS:  # too many: any one of the selections named is a wider reading
                result = {frozenset([n]) for term in result for n in term} or {frozenset()}
        return result

    def _not(self) -> set[frozenset[str]]:
        if self._peek() == "not":
            self._take()
            self._not()  # parsed for its shape, read as "anything": collecting more is safe
            return {frozenset()}
        return self._atom()

    def _atom(self) -> set[frozenset[str]]:
        token = self._peek()
        if token is None:
            raise _Unreadable("condition ends too early")
        if token == "|":
            raise _Unreadable("aggregation expressions ('|') are not read")
        if token == "(":
            self._take()
            result = self.expression()
            if self._take() != ")":
                raise _Unreadable("unbalanced parentheses")
            return result
        if token in ("1", "all", "any") and self.pos + 1 < len(self.tokens) and self.tokens[self.pos + 1].lower() == "of":
            quantifier = self._take().lower()
            self._take()
            return self._quantified(quantifier, self._take())
        if token in ("and", "or", ")", "of"):
            raise _Unreadable(f"unexpected {token!r} in condition")
        name = self._take()
        if name not in self.names:
            raise _Unreadable(f"condition names {name[:40]!r}, which is not a selection")
        return {frozenset([name])}

    def _quantified(self, quantifier: str, pattern: str) -> set[frozenset[str]]:
        if pattern.lower() == "them":
            matched = list(self.names)
            if quantifier == "all":  # fewer selections AND'ed is wider: leave out the '_' ones (Sigma spec)
                matched = [n for n in matched if not n.startswith("_")]
        else:
            regex = re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$")
            matched = [n for n in self.names if regex.match(n)]
        if not matched:
            return {frozenset()}  # nothing to require: read as anything (wider)
        if quantifier == "all":
            return {frozenset(matched)}
        return {frozenset([n]) for n in matched}
