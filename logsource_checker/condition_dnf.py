"""A Sigma condition as OR'ed sets of AND'ed selection names (disjunctive normal form), for the Sysmon
include filters (sysmon_filters.py).

Built on ``condition.py``'s parse tree: one tokenizer and parser, one reading of ``x of`` patterns and
``them`` (identifiers starting with ``_`` left out unless the pattern starts with ``_``, as in the Sigma
specification and pySigma), proven against pySigma in tests/test_condition_corpus.py. What this module adds
is the reading for filters, which may only ever be *wider* than the condition:

- ``not X`` is read as "anything" (a filter under ``not`` never becomes an exclude: collecting more is safe);
- ``N of`` (N > 1) is every N-combination of the members, AND'ed;
- more than ``MAX_TERMS`` conjunctions are read as "any selection named" (wider);
- a condition ``condition.py`` reports a problem for (cannot be parsed, names no selection, a pattern that
  matches nothing) and an aggregation after ``|`` are not read (``_Unreadable``: the caller collects every
  event of the type).
"""
from __future__ import annotations

from itertools import combinations
from typing import Iterable

from .condition import parse_conditions

MAX_TERMS = 256             # conjunctions of one condition before it is read as "any selection"

Terms = set[frozenset[str]]


class _Unreadable(ValueError):
    pass


def condition_terms(conditions: Iterable[str], names: list[str]) -> list[frozenset[str]]:
    """The rule's condition as OR'ed sets of AND'ed selection names; ``[frozenset()]`` means "anything".

    Raises ``_Unreadable`` for a condition this reader does not read (aggregations, unknown names, ...).
    """
    conditions = list(conditions)
    if not conditions:
        raise _Unreadable("the rule has no condition")
    if any("|" in text for text in conditions):
        raise _Unreadable("aggregation expressions ('|') are not read")
    parsed = parse_conditions(conditions, names)
    if parsed.problems or parsed.node is None:
        raise _Unreadable(parsed.problems[0] if parsed.problems else "the rule has no condition")
    return _minimal(terms_of(parsed.node))


def terms_of(node: tuple) -> Terms:
    """A bound condition tree (``condition.parse``) as OR'ed sets of AND'ed selection names, widened where
    the module's docstring says."""
    kind = node[0]
    if kind == "id":
        return {frozenset([node[1]])}
    if kind == "not":
        return {frozenset()}   # read as "anything": collecting more is safe
    if kind == "or":
        return set().union(*(terms_of(child) for child in node[1]))
    if kind == "and":
        result = terms_of(node[1][0])
        for child in node[1][1:]:
            result = _capped({a | b for a in result for b in terms_of(child)})
        return result
    count, members = node[1], node[3]
    if count == 1:
        return {frozenset([name]) for name in members}
    if _too_many(len(members), count):
        return {frozenset([name]) for name in members}   # any one of them: wider
    return {frozenset(combo) for combo in combinations(members, count)}


def _capped(terms: Terms) -> Terms:
    if len(terms) > MAX_TERMS:   # too many: any one of the selections named is a wider reading
        return {frozenset([n]) for term in terms for n in term} or {frozenset()}
    return terms


def _too_many(n: int, k: int) -> bool:
    """Whether n choose k exceeds MAX_TERMS (counted without building the combinations)."""
    total = 1
    for i in range(min(k, n - k)):
        total = total * (n - i) // (i + 1)
        if total > MAX_TERMS:
            return True
    return False


def _minimal(terms: Terms) -> list[frozenset[str]]:
    """Drop conjunctions implied by a smaller one (A or (A and B) is A)."""
    ordered = sorted(terms, key=lambda t: (len(t), sorted(t)))
    kept: list[frozenset[str]] = []
    for term in ordered:
        if not any(k <= term for k in kept):
            kept.append(term)
    return kept
