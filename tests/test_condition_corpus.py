"""Conditions on the public SigmaHQ corpus: our parser agrees with pySigma's on every rule, and the figures
of producers decided from conditions (README, "How it decides"). Skipped when the corpus is absent."""
from __future__ import annotations

import random

import pytest

from logsource_checker import condition as cond
from logsource_checker.engine import CheckOptions, check
from logsource_checker.loader import load_rules_fast
from logsource_checker.report import build

ASSIGNMENTS = 48


class _Detections:
    """The part of pySigma's SigmaDetections that its condition selectors read."""

    def __init__(self, names):
        self.detections = dict.fromkeys(names)
        self.policy = None


def _pysigma_truth(node, detections, true, classes):
    and_, or_, not_, ident, selector = classes
    if isinstance(node, ident):
        return node.identifier in true
    if isinstance(node, selector):
        members = [i.identifier for i in node.resolve_referenced_detections(detections)]
        test = any if node.cond_class is or_ else all
        return bool(members) and test(m in true for m in members)
    if isinstance(node, not_):
        return not _pysigma_truth(node.args[0], detections, true, classes)
    results = (_pysigma_truth(arg, detections, true, classes) for arg in node.args)
    if isinstance(node, and_):
        return all(results)
    if isinstance(node, or_):
        return any(results)
    raise TypeError(f"unexpected pySigma condition node {type(node).__name__}")


def _pysigma_referenced(node, detections, classes):
    and_, or_, not_, ident, selector = classes
    if isinstance(node, ident):
        return {node.identifier}
    if isinstance(node, selector):
        return {i.identifier for i in node.resolve_referenced_detections(detections)}
    return set().union(*(_pysigma_referenced(arg, detections, classes) for arg in node.args))


def test_parser_agrees_with_pysigma_on_every_corpus_rule(corpus_rules):
    conditions = pytest.importorskip("sigma.conditions")
    classes = (conditions.ConditionAND, conditions.ConditionOR, conditions.ConditionNOT,
               conditions.ConditionIdentifier, conditions.ConditionSelector)
    rules = load_rules_fast([str(corpus_rules)], use_cache=False).rules
    assert len(rules) == 3780
    compared = 0
    for rule in rules:
        names = [name for name, _ in rule.selections]
        ours = cond.parse_conditions(rule.condition, names)
        assert ours.problems == () and ours.notes == (), (rule.path, ours)
        detections = _Detections(names)
        theirs = [conditions.SigmaCondition(text, detections).parse(postprocess=False) for text in rule.condition]
        assert cond.referenced(ours.node) == set().union(
            *(_pysigma_referenced(t, detections, classes) for t in theirs)), rule.path
        rng = random.Random(rule.path)
        assignments = [set(), set(names)] + [{n for n in names if rng.random() < 0.5} for _ in range(ASSIGNMENTS)]
        for true in assignments:
            expected = any(_pysigma_truth(t, detections, true, classes) for t in theirs)
            assert cond.evaluate(ours.node, true) is expected, (rule.path, rule.condition, sorted(true))
        compared += 1
    assert compared == len(rules)


@pytest.fixture(scope="module")
def corpus_report(corpus_rules):
    return build(check(CheckOptions(paths=[str(corpus_rules)], use_cache=False)), verbose=True)


def test_process_creation_producers_from_conditions(corpus_report, capsys):
    rules = [r for r in corpus_report["rules"]
             if (r["logsource"]["product"], r["logsource"]["category"]) == ("windows", "process_creation")]
    options = {r["id"] or r["path"]: [o for need in r["needs"] for o in need["options"]] for r in rules}
    security = {ref: [o for o in opts if o["name"].startswith("Security event 4688")] for ref, opts in options.items()}
    with_4688 = [ref for ref, opts in security.items() if opts]
    fully = [ref for ref, opts in security.items() if opts and not opts[0]["lost_selections"]]
    filters = [ref for ref, opts in security.items() if opts and opts[0]["filters_not_applied"]]
    narrowed = [ref for ref in fully if security[ref][0]["narrowed_selections"]]
    sysmon_only = len(rules) - len(with_4688)
    with capsys.disabled():
        print(f"\nprocess_creation rules: {len(rules)}; with a 4688 alternative: {len(with_4688)} "
              f"(fully {len(fully)}, partly {len(with_4688) - len(fully)}; with filters 4688 cannot apply: "
              f"{len(filters)}; fully but through only some branches of a selection: {len(narrowed)}); "
              f"Sysmon only: {sysmon_only}")
    assert len(rules) == 1416
    assert 1230 <= len(with_4688) <= 1330      # 1,286 at the corpus commit of 2026-11
    assert 1180 <= len(fully) <= len(with_4688)
    assert 90 <= sysmon_only <= 180
    assert 450 <= len(narrowed) <= 750         # 599: `selection: [{Image: ...}, {OriginalFileName: ...}]`
    # every process_creation rule keeps Sysmon
    assert all(any(o["name"].startswith("Sysmon event 1") for o in opts) for opts in options.values())


def test_unsatisfiable_fields_on_the_corpus(corpus_report, capsys):
    flagged = [r for r in corpus_report["rules"] if r["unsatisfiable_fields"]]
    with capsys.disabled():
        print(f"\nrules with a field no producer writes: {len(flagged)}")
        for r in flagged:
            print(f"  {r['path'].rsplit('/', 1)[-1]}: {', '.join(r['unsatisfiable_fields'])}")
    assert corpus_report["summary"]["unsatisfiable_field_rules"] == len(flagged)
    assert 5 <= len(flagged) <= 40            # 14 at the corpus commit of 2026-11
    fields = {f for r in flagged for f in r["unsatisfiable_fields"]}
    assert "GrandParentImage" in fields       # written by no Windows producer the guides know
    assert all(any("no producer of guide" in n for n in r["notes"]) for r in flagged)


def _positive_reading(node, true):
    """The condition's truth with every negated part read as true: what a Sysmon include filter may collect
    (a filter under ``not`` never becomes an exclude)."""
    kind = node[0]
    if kind == "not":
        return True
    if kind == "id":
        return node[1] in true
    if kind == "and":
        return all(_positive_reading(child, true) for child in node[1])
    if kind == "or":
        return any(_positive_reading(child, true) for child in node[1])
    return sum(1 for name in node[3] if name in true) >= node[1]


def test_filter_terms_agree_with_the_condition_on_every_corpus_rule(corpus_rules):
    """The Sysmon filter reading (condition_dnf.py, built on condition.py's tree) on every corpus rule: its
    OR of ANDs is true exactly when the condition, negations read as true, is; so it is never false where
    the condition is true (a tailored configuration never drops an event a rule matches)."""
    from logsource_checker.condition_dnf import condition_terms

    rules = load_rules_fast([str(corpus_rules)], use_cache=False).rules
    assert len(rules) == 3780
    with_negation = several = 0
    for rule in rules:
        names = [name for name, _ in rule.selections]
        node = cond.parse_conditions(rule.condition, names).node
        terms = condition_terms(rule.condition, names)
        rng = random.Random(rule.path)
        assignments = [set(), set(names)] + [set(t) for t in terms] + [{n} for n in names] + [
            {n for n in names if rng.random() < 0.5} for _ in range(ASSIGNMENTS)]
        for true in assignments:
            dnf = any(term <= true for term in terms)
            assert dnf is _positive_reading(node, true), (rule.path, rule.condition, sorted(true), terms)
            assert dnf or not cond.evaluate(node, true), (rule.path, rule.condition, sorted(true))
        with_negation += "not" in {part.casefold() for text in rule.condition for part in text.split()}
        several += len(terms) > 1
    print(f"\nfilter terms: {len(rules)} rules, {with_negation} with a negation, {several} with several conjunctions")
    assert with_negation > 500 and several > 400   # the corpus exercises both readings
