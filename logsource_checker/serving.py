"""Which producers of a guide can serve a rule, decided from the rule's condition.

A guide alternative (producer) may list the fields its events carry (``enablement[].fields``, under the
names Sigma rules use after the conversion pipeline's renames); the fields every event of the product
carries (``mappings/event_fields.yaml``) are added to it. For such a producer:

- a *branch* of a selection (one map: the AND of its matches) is visible when every field it tests is
  emitted (case-insensitive); keyword matches (no field) are visible to every producer;
- a *selection* is available when at least one of its branches is visible;
- the producer *serves* the rule when the condition can still be true with only the available selections
  (``condition.verdict``), *serves partly* when selections the condition uses positively are lost on the way
  (they are named), and *cannot serve* otherwise. A ``not`` over a selection the producer cannot see does not
  refuse it: the filter cannot apply. A selection used positively that the producer sees through only some of
  its branches is *narrowed* (reported, not counted as lost).

A producer that lists no fields is credited every field. A field no producer of the guide emits (every
producer listing its fields) is reported as unsatisfiable. An unparsable condition, or one naming selections
the detection does not define, is reported as a problem; the producer then serves the rule only when it
emits every field the rule uses (the decision before conditions were read), never on a guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from . import condition as cond
from .knowledge import Alternative, Guide, Knowledge
from .rules import Rule


class AlternativeVerdict(NamedTuple):   # a tuple: part of the resolver's memo key, hashed per rule
    serves: bool
    lost: tuple[str, ...] = ()
    filters_not_applied: tuple[str, ...] = ()
    narrowed: tuple[str, ...] = ()   # used positively, seen through only some of their branches


@dataclass(frozen=True)
class Decision:
    alternatives: tuple[AlternativeVerdict, ...]   # one per guide.enablement, in order
    unsatisfiable_fields: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


_SERVES = AlternativeVerdict(True)
_REFUSED = AlternativeVerdict(False)
_UNKNOWN = object()


class ProducerFields:
    """The case-folded fields each alternative emits (its list plus the product's common fields),
    computed once per alternative for a run."""

    def __init__(self, kb: Knowledge) -> None:
        self.kb = kb
        self._emitted: dict[int, frozenset[str] | None] = {}
        self._all_listed: dict[int, bool] = {}
        self._known: dict[int, tuple[tuple[frozenset[str] | None, ...], frozenset[str] | None]] = {}
        self._branch_fields: dict[tuple[Any, ...], frozenset[str]] = {}
        # per-run caches: a rule's condition read once per (condition, selection names), a verdict once per
        # (that reading, available selections)
        self._conditions: dict[tuple[Any, ...], cond.ParsedCondition] = {}
        self._verdicts: dict[tuple[int, frozenset[str]], AlternativeVerdict] = {}
        self._positive: dict[int, tuple[str, ...]] = {}
        self._all_serve: dict[int, Decision] = {}
        # per (guide, case-folded rule fields): the decision when every producer sees every field and some
        # producer writes each of them (it then reads nothing else of the rule), else None
        self._seen_all: dict[tuple[int, frozenset[str]], Decision | None] = {}
        self._last_selections: tuple[Any, tuple] = (None, ())

    def read_condition(self, rule: Rule) -> cond.ParsedCondition:
        key = (rule.condition, tuple([selection[0] for selection in rule.selections]))
        parsed = self._conditions.get(key)
        if parsed is None:
            parsed = self._conditions[key] = cond.parse_conditions(rule.condition, key[1])
        return parsed

    def narrowed(self, parsed: cond.ParsedCondition, partly: set[str]) -> tuple[str, ...]:
        """Of the selections seen through only some branches, those the condition uses positively."""
        key = id(parsed)
        if key not in self._positive:
            assert parsed.node is not None
            self._positive[key] = tuple(cond.used_positively(parsed.node))
        return tuple(name for name in self._positive[key] if name in partly)

    def verdict(self, parsed: cond.ParsedCondition, available: frozenset[str]) -> AlternativeVerdict:
        key = (id(parsed), available)  # parsed is kept alive by self._conditions
        verdict = self._verdicts.get(key)
        if verdict is None:
            assert parsed.node is not None
            found = cond.verdict(parsed.node, available)
            verdict = self._verdicts[key] = AlternativeVerdict(found.serves, found.lost, found.filters_not_applied)
        return verdict

    def emitted(self, guide: Guide, alt: Alternative) -> frozenset[str] | None:
        key = id(alt)
        if key not in self._emitted:
            if alt.fields is None:
                self._emitted[key] = None
            else:
                products = {ls[0] for ls in guide.logsources if ls[0]}
                common = frozenset().union(*(self.kb.common_fields.get(p, frozenset()) for p in products))
                self._emitted[key] = frozenset(f.casefold() for f in alt.fields | common)
        return self._emitted[key]

    def of_guide(self, guide: Guide) -> tuple[tuple[frozenset[str] | None, ...], frozenset[str] | None]:
        """What each alternative of the guide emits, and every field some producer of it writes (None when an
        alternative does not list its fields)."""
        key = id(guide)
        if key not in self._known:
            emitted = tuple(self.emitted(guide, alt) for alt in guide.enablement)
            known = None if any(e is None for e in emitted) else frozenset().union(*emitted)
            self._known[key] = (emitted, known)
        return self._known[key]

    def all_serve(self, guide: Guide) -> Decision:
        """The decision of a guide whose producers do not list their fields: every one serves."""
        decision = self._all_serve.get(id(guide))
        if decision is None:
            decision = self._all_serve[id(guide)] = Decision((_SERVES,) * len(guide.enablement))
        return decision

    def field_dependent(self, guide: Guide) -> bool:
        """Whether some alternative of the guide lists its fields (else the condition changes nothing)."""
        key = id(guide)
        if key not in self._all_listed:
            self._all_listed[key] = any(alt.fields is not None for alt in guide.enablement)
        return self._all_listed[key]


    def selection_fields(self, rule: Rule) -> tuple[tuple[str, frozenset[frozenset[str]]], ...]:
        """What the decision reads of a rule's selections: per selection, the distinct case-folded field sets
        of its branches (keyword matches test no field). The last rule's answer is kept: ``decide`` and
        ``served_fields`` ask for the same rule one after the other."""
        if self._last_selections[0] is rule:
            return self._last_selections[1]
        cache = self._branch_fields
        result = []
        for name, branches in rule.selections:
            sets = set()
            for branch in branches:
                names = tuple([match[0] for match in branch])
                fields = cache.get(names)
                if fields is None:
                    fields = cache[names] = frozenset(f.casefold() for f in names if f is not None)
                sets.add(fields)
            result.append((name, frozenset(sets)))
        self._last_selections = (rule, tuple(result))
        return self._last_selections[1]


def decide(rule: Rule, guide: Guide, producers: ProducerFields, parsed: cond.ParsedCondition,
           rule_fields: frozenset[str]) -> Decision:
    """The verdict of every alternative of ``guide`` on ``rule``: ``parsed`` is the rule's condition as
    ``ProducerFields.read_condition`` read it, ``rule_fields`` its case-folded fields."""
    if not producers.field_dependent(guide):
        return producers.all_serve(guide)
    key = (id(guide), rule_fields)
    seen_all = producers._seen_all.get(key, _UNKNOWN)
    if seen_all is _UNKNOWN:
        emitted_sets, known = producers.of_guide(guide)
        seen_all = producers._seen_all[key] = Decision((_SERVES,) * len(emitted_sets)) if all(
            emitted is None or rule_fields <= emitted for emitted in emitted_sets) and (
            known is None or rule_fields <= known) else None
    if seen_all is not None:
        return seen_all
    selections = None
    verdicts = []
    emitted_sets, known = producers.of_guide(guide)
    for emitted in emitted_sets:
        if emitted is None or rule_fields <= emitted:
            verdicts.append(_SERVES)   # it sees every selection
        elif parsed.node is None or parsed.problems:
            verdicts.append(_REFUSED)  # the condition cannot be read: every field is needed
        else:
            if selections is None:
                selections = producers.selection_fields(rule)
            available, partly = _visibility(selections, emitted)
            verdict = producers.verdict(parsed, available)
            narrowed = producers.narrowed(parsed, partly) if partly and verdict.serves else ()
            verdicts.append(verdict._replace(narrowed=narrowed) if narrowed else verdict)
    unsatisfiable: tuple[str, ...] = ()
    notes = []
    if known is not None and not rule_fields <= known:
        unsatisfiable = tuple(f for f in rule.fields if f.casefold() not in known)
        if unsatisfiable:
            notes.append(f"field{'s' if len(unsatisfiable) > 1 else ''} {', '.join(unsatisfiable)}: no producer "
                         f"of guide {guide.path} writes {'them' if len(unsatisfiable) > 1 else 'it'}, so the "
                         "selections that test them can never match")
    return Decision(tuple(verdicts), unsatisfiable, tuple(notes))


def _visibility(selections: tuple[tuple[str, frozenset[frozenset[str]]], ...],
                emitted: frozenset[str]) -> tuple[frozenset[str], set[str]]:
    """(selections with a visible branch, those of them with an invisible branch too)."""
    available = []
    partly = set()
    for name, sets in selections:
        visible = [s <= emitted for s in sets]
        if not sets or any(visible):
            available.append(name)
            if not all(visible):
                partly.add(name)
    return frozenset(available), partly


def served_fields(rule: Rule, guide: Guide, producers: ProducerFields, parsed: cond.ParsedCondition,
                  decision: Decision, wanted: frozenset[str], rule_fields: frozenset[str],
                  used_cache: dict[Any, Any]) -> tuple[frozenset[str], ...]:
    """Per alternative of ``guide``: which of the ``wanted`` fields (case-folded; a guide's ``when_fields``)
    the rule tests in what that producer serves: a branch it can see, of a selection the condition uses that
    it neither loses nor has to leave out as a filter it cannot apply. () when that is every field of the rule
    for every producer, or when the condition cannot be read (then every field counts, as before conditions
    were read). ``used_cache`` (per run) keeps the selections each parsed condition uses, keyed by its id
    (the entry keeps the parsed condition alive), and the answer per rule shape."""
    if parsed.node is None or parsed.problems:
        return ()
    entry = used_cache.get(id(parsed))
    if entry is None:   # the parsed condition is kept in the entry, so its id stays its own
        entry = used_cache[id(parsed)] = (parsed, frozenset(cond.referenced(parsed.node)))
    used = entry[1]
    if len(used) == len(rule.selections) and all(v is _SERVES or not v.serves for v in decision.alternatives):
        return ()   # every producer that serves sees every field of the rule (decide's verdict _SERVES)
    selections = producers.selection_fields(rule)
    # many rules share the shape (condition, fields per selection, verdicts): answered once per shape
    key = (id(parsed), id(guide), selections, decision.alternatives, rule_fields)
    known = used_cache.get(key)   # type: ignore[call-overload]
    if known is not None:
        return known
    emitted_sets = [producers.emitted(guide, alt) for alt in guide.enablement]
    # only the branches that test a wanted field matter (usually one or two)
    relevant = [(name, fields) for name, sets in selections if name in used
                for fields in sets if not wanted.isdisjoint(fields)]
    out = []
    for emitted, verdict in zip(emitted_sets, decision.alternatives):
        found: set[str] = set()
        if verdict.serves:
            skipped = (verdict.lost + verdict.filters_not_applied) if verdict.lost or verdict.filters_not_applied else ()
            for name, fields in relevant:
                if name not in skipped and (emitted is None or fields <= emitted):
                    found |= fields & wanted
        out.append(frozenset(found))
    everything = wanted & rule_fields
    # () when it is the same as every field of the rule: the resolver's memo key stays the plain one
    answer = () if all(found == everything for found, verdict in zip(out, decision.alternatives)
                       if verdict.serves) else tuple(out)
    used_cache[key] = answer   # type: ignore[index]
    return answer
