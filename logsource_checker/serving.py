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
  refuse it: the filter cannot apply.

A producer that lists no fields is credited every field. A field no producer of the guide emits (every
producer listing its fields) is reported as unsatisfiable. An unparsable condition, or one naming selections
the detection does not define, is reported as a problem; the producer then serves the rule only when it
emits every field the rule uses (the decision before conditions were read), never on a guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import condition as cond
from .knowledge import Alternative, Guide, Knowledge
from .rules import Rule


@dataclass(frozen=True)
class AlternativeVerdict:
    serves: bool
    lost: tuple[str, ...] = ()
    filters_not_applied: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    alternatives: tuple[AlternativeVerdict, ...]   # one per guide.enablement, in order
    unsatisfiable_fields: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()                 # the condition cannot be read as written
    notes: tuple[str, ...] = ()


_SERVES = AlternativeVerdict(True)


class ProducerFields:
    """The case-folded fields each alternative emits (its list plus the product's common fields),
    computed once per alternative for a run."""

    def __init__(self, kb: Knowledge) -> None:
        self.kb = kb
        self._emitted: dict[int, frozenset[str] | None] = {}
        self._all_listed: dict[int, bool] = {}

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

    def field_dependent(self, guide: Guide) -> bool:
        """Whether some alternative of the guide lists its fields (else the condition changes nothing)."""
        key = id(guide)
        if key not in self._all_listed:
            self._all_listed[key] = any(alt.fields is not None for alt in guide.enablement)
        return self._all_listed[key]


def selection_signature(rule: Rule) -> tuple[Any, ...]:
    """What the decision reads of a rule's selections: names and, per branch, the fields tested."""
    return tuple((name, tuple(tuple(match[0] for match in branch) for branch in branches))
                 for name, branches in rule.selections)


def decide(rule: Rule, guide: Guide, producers: ProducerFields) -> Decision:
    names = [name for name, _ in rule.selections]
    parsed = cond.parse_conditions(rule.condition, names)
    count = len(guide.enablement)
    if not producers.field_dependent(guide):
        return Decision((_SERVES,) * count, problems=parsed.problems, notes=parsed.notes)
    rule_fields = frozenset(f.casefold() for f in rule.fields)
    verdicts = []
    emitted_sets = [producers.emitted(guide, alt) for alt in guide.enablement]
    for emitted in emitted_sets:
        if emitted is None:
            verdicts.append(_SERVES)
        elif parsed.node is None or parsed.problems:
            verdicts.append(AlternativeVerdict(rule_fields <= emitted))
        else:
            available = {name for name, branches in rule.selections if _available(branches, emitted)}
            verdict = cond.verdict(parsed.node, available)
            verdicts.append(AlternativeVerdict(verdict.serves, verdict.lost, verdict.filters_not_applied))
    unsatisfiable: tuple[str, ...] = ()
    notes = list(parsed.notes)
    if all(e is not None for e in emitted_sets):
        known = frozenset().union(*emitted_sets)
        unsatisfiable = tuple(f for f in rule.fields if f.casefold() not in known)
        if unsatisfiable:
            notes.append(f"field{'s' if len(unsatisfiable) > 1 else ''} {', '.join(unsatisfiable)}: no producer "
                         f"of guide {guide.path} writes {'them' if len(unsatisfiable) > 1 else 'it'}, so the "
                         "selections that test them can never match")
    return Decision(tuple(verdicts), unsatisfiable, parsed.problems, tuple(notes))


def _available(branches: tuple[Any, ...], emitted: frozenset[str]) -> bool:
    if not branches:
        return True  # an empty selection tests no field
    for branch in branches:
        if all(match[0] is None or match[0].casefold() in emitted for match in branch):
            return True
    return False
