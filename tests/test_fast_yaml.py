"""The fast YAML path (yaml_rs) must read every rule exactly as PyYAML does."""
from __future__ import annotations

import os

import pytest

from logsource_checker import rules

pytestmark = pytest.mark.skipif(rules._yaml_rs is None, reason="yaml_rs is not installed")


def extract(path: str, fast: bool, monkeypatch) -> tuple:
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(rules, "_yaml_rs", None)
        result = rules.load_file(path)
    return ([(r.id, r.title, r.level, r.status, r.logsource, r.definition, r.event_ids, r.channels, r.providers,
              r.fields, r.has_keywords) for r in result.rules],
            [(e.line, e.message) for e in result.errors], [(o.kind, o.id) for o in result.others])


def test_whole_corpus_reads_the_same_both_ways(corpus_rules, monkeypatch):
    paths = sorted(os.path.join(d, n) for d, _, names in os.walk(corpus_rules) for n in names if n.endswith(".yml"))
    assert len(paths) == 3780
    calls = []
    real = rules._yaml_rs.loads
    monkeypatch.setattr(rules._yaml_rs, "loads", lambda *a, **k: calls.append(1) or real(*a, **k))
    for p in paths:
        rules.load_file(p)
    monkeypatch.undo()
    assert len(calls) > 3000  # the fast path really is the common path
    differences = [p for p in paths if extract(p, True, monkeypatch) != extract(p, False, monkeypatch)]
    assert differences == []


# Values where YAML 1.1 (PyYAML) and YAML 1.2 differ or yaml_rs is ambiguous, placed where the loader reads
# them: every one must be read as PyYAML reads it.
TRICKY = [
    "EventID: 04624",            # YAML 1.1 octal
    "EventID: 0o4624",           # YAML 1.2 octal
    "EventID: 0b1010",           # YAML 1.1 binary
    "EventID: 4_624",            # YAML 1.1 underscore
    "EventID: 1:30",             # YAML 1.1 sexagesimal
    "EventID: 00004624",         # a string in YAML 1.1, an int in 1.2
    "EventID: [yes, no, off]",   # YAML 1.1 booleans
    "on: 4624",                  # YAML 1.1 boolean key
    "EventID: !!str 4624",       # tag
    "EventID: 4624.0",
    "EventID: 1e3",
    "EventID: =",
    "Channel: 2024-01-01",       # timestamp
    "Channel: 2024-01-01 10:00:00",
    "Channel: 'a\x85    b'",    # NEL: a line break in YAML 1.1, a plain character in 1.2
    "Channel: 'a\u2028b'",      # Unicode line separator, same difference
]


def rule_with(selection_line: str) -> str:
    return ("title: Tricky\nid: 5e5e5e5e-0000-4000-8000-000000000001\nlevel: low\nstatus: test\n"
            "logsource:\n  product: windows\n  service: security\n"
            f"detection:\n  sel:\n    {selection_line}\n  condition: sel\n")


EXTRA_DOCUMENTS = [
    rule_with("EventID: 4624") + "---\n" + rule_with("EventID: 4625"),                   # two documents
    "base: &b {EventID: 4624}\n" + rule_with("<<: *b"),                                  # merge key
    rule_with("EventID: 4624") + "description: yes\n",                                  # unread key: either way
    rule_with("EventID: 4624").replace("level: low", "level: 0123"),
    rule_with("EventID: 4624").replace("title: Tricky", "title: 2024-01-01 10:00:00"),
    rule_with("EventID: 4624") + "detection2: 1\nEventID: 1\n",
]


@pytest.mark.parametrize("text", [rule_with(t) for t in TRICKY] + EXTRA_DOCUMENTS)
def test_tricky_texts_read_as_pyyaml_reads_them(text, tmp_path, monkeypatch):
    path = tmp_path / "tricky.yml"
    path.write_text(text, encoding="utf-8")
    assert extract(str(path), True, monkeypatch) == extract(str(path), False, monkeypatch)
