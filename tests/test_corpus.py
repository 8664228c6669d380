"""The whole SigmaHQ corpus (skipped when ../shared is absent), checked against an independent count."""
from __future__ import annotations

import os
from collections import Counter

import pytest
import yaml

from logsource_checker.engine import CheckOptions, check
from logsource_checker.report import build


def independent_count(root):
    """Count rules, log sources and EventID-bearing rules with no code from the project."""
    triples: Counter = Counter()
    with_eids = 0
    files = 0

    def eids(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "EventID":
                    yield v
                else:
                    yield from eids(v)
        elif isinstance(node, list):
            for item in node:
                yield from eids(item)

    for dirpath, _, names in os.walk(root):
        for name in names:
            if not name.endswith((".yml", ".yaml")):
                continue
            files += 1
            with open(os.path.join(dirpath, name), encoding="utf-8") as handle:
                doc = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            ls = doc["logsource"]
            triples[(ls.get("product"), ls.get("category"), ls.get("service"))] += 1
            det = {k: v for k, v in doc["detection"].items() if k != "condition"}
            if any(True for _ in eids(det)):
                with_eids += 1
    return files, triples, with_eids


@pytest.fixture(scope="module")
def corpus_report(corpus_rules):
    result = check(CheckOptions(paths=[str(corpus_rules)], use_cache=False))
    return build(result)


def test_corpus_inventory_matches_independent_count(corpus_rules, corpus_report):
    files, triples, with_eids = independent_count(corpus_rules)
    summary = corpus_report["summary"]
    assert summary["rules"] == files == 3780
    assert summary["errors"] == 0 and corpus_report["errors"] == []
    got = {(x["product"], x["category"], x["service"]): x["rules"] for x in corpus_report["logsources"]}
    assert got == dict(triples)
    assert len(got) == 138
    assert got[("windows", "process_creation", None)] == 1416
    assert got[("windows", None, "security")] == 177
    assert sum(1 for r in corpus_report["rules"] if r["event_ids"]) == with_eids == 403
