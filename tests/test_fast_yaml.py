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
    return ([(r.id, r.title, r.level, r.status, r.logsource, r.event_ids, r.channels, r.providers,
              r.fields, r.condition, r.selections, r.tags) for r in result.rules],
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


# --------------------------------------------------------------------------- the assumptions of the fast path
# rules._reads_like_pyyaml and rules._fast_candidate rely on facts about PyYAML and yaml_rs; each is checked here,
# so that a new version of either library that breaks one fails the suite instead of changing a report.

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FAST = settings(max_examples=300, deadline=None, database=None)


def test_pyyaml_implicit_resolvers_are_the_ones_copied():
    yaml = rules._pyyaml()
    installed = {regex.pattern for resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.values()
                 for tag, regex in resolvers if tag != "tag:yaml.org,2002:str"}
    assert installed == set(rules._PYYAML_IMPLICIT_PATTERNS)
    firsts = {first for first in yaml.resolver.Resolver.yaml_implicit_resolvers if first}
    assert firsts <= rules._RESOLVED_FIRST_CHARS


@FAST
@given(text=st.from_regex(rules._YAML_RS_PLAIN_NOT_STR_RE, fullmatch=True).filter(lambda t: "\n" not in t))
def test_forms_yaml_rs_never_reads_as_strings_when_plain(text):
    """A string of such a form from yaml_rs must have been quoted (PyYAML reads it as a string too)."""
    try:
        value = rules._yaml_rs.loads(f"k: {text}\n", parse_datetime=False)["k"]
    except Exception:  # noqa: BLE001 - an error is fine too: the fast path then falls back to PyYAML
        return
    assert not isinstance(value, str), text


@pytest.mark.parametrize("text", ["0123", "-0123", "00004624", "0o17", "0O17", "0x1F", "0X1F", "-0x1F", "+0x1F",
                                  "0b101", "0B101", "+0b1", "_1", "-_1", "+_1", "0_1", "0x_1F", "1_000", "12_"])
def test_risky_integer_spellings_are_found(text):
    """Every integer spelling other than a plain decimal is seen by the token search, in block and flow style."""
    for line in (f"EventID: {text}\n", f"EventID: {text}  # c\n", f"EventID: [{text}, 1]\n", f"- {text}",
                 f"EventID: {{a: {text}}}\n", f"EventID:\t{text}\r\n"):
        assert rules._RISKY_INT_TOKEN_RE.search("\n" + line), line


@pytest.mark.parametrize("line", ["id: 04017cd5-6210-4f5a-9a3e-2a9d1c8b7e6f\n", "EventID: 4624\n",
                                  "EventID: [0, 1, -7, +12]\n", "condition: 1 of selection_*\n"])
def test_plain_decimals_and_words_are_not_risky(line):
    assert not rules._RISKY_INT_TOKEN_RE.search("\n" + line)


@FAST
@given(number=st.integers(min_value=-10 ** 6, max_value=10 ** 6), zeros=st.integers(0, 3),
       underscore=st.booleans(), sign=st.sampled_from(["", "+", "-"]))
def test_integers_read_alike_or_fall_back(number, zeros, underscore, sign):
    digits = "0" * zeros + str(abs(number))
    if underscore and len(digits) > 1:
        digits = digits[:1] + "_" + digits[1:]
    text = rule_with(f"EventID: {sign}{digits}")
    fast = rules.parse_documents(text)
    slow = rules.parse_documents(text, allow_fast=False)
    assert fast == slow and [type(v) for v in _leaves(fast)] == [type(v) for v in _leaves(slow)], text


def _leaves(value):
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


@pytest.mark.parametrize("text", ["a: *x\n", "a: [*x]\n", "a: {b: *x}\n", "- *x\n", "? *x\n: 1\n", "a:\n  - b: *x\n"])
def test_yaml_rs_refuses_undefined_aliases(text):
    """An alias with no anchor in the text is left to yaml_rs, which must refuse it (PyYAML then reports it)."""
    with pytest.raises(Exception):
        rules._yaml_rs.loads(text, parse_datetime=False)


ANCHOR_TEXTS = [
    rule_with("EventID: &e 4624"),                                             # anchor, no alias
    rule_with("CommandLine: 'cmd /c a &b'"),                                   # an anchor-like word in a string
    rule_with("CommandLine: 'echo *x'"),                                       # an alias-like word in a string
    rule_with("CommandLine: 'a &b *b'"),                                       # both in a string: PyYAML reads it
    rule_with("EventID: &e 4624\n    Channel: *e"),                            # a real alias
    rule_with("EventID: &e:x 4624"),                                           # an anchor name PyYAML refuses
    rule_with("Channel: *nothing"),                                            # an undefined alias
    "a: &l [1, *l]\n" + rule_with("EventID: 4624"),                            # a recursive alias, unread
    rule_with("CommandLine: '*'") + "level: '*'\n",                           # quoted alias/anchor signs
    rule_with("EventID: ['4624', '0x10', 'true', '.inf', '&']"),             # quoted forms read as strings
    rule_with("Channel: [yes, 'no', off]"),
    rule_with("Provider_Name: '1:30'"),
    rule_with("EventID: 0X1F"), rule_with("EventID: _1"), rule_with("EventID: 0B1"),
]


@pytest.mark.parametrize("text", ANCHOR_TEXTS)
def test_anchor_alias_and_quoting_texts_read_as_pyyaml_reads_them(text, tmp_path, monkeypatch):
    path = tmp_path / "tricky.yml"
    path.write_text(text, encoding="utf-8")
    assert extract(str(path), True, monkeypatch) == extract(str(path), False, monkeypatch)
    try:
        slow = rules.parse_documents(text, allow_fast=False)
    except Exception:  # noqa: BLE001 - PyYAML refuses it: the fast path must not accept it either
        with pytest.raises(Exception):
            rules.parse_documents(text)
        return
    fast = rules.parse_documents(text)
    assert [{k: d.get(k) for k in rules._READ_KEYS} for d in fast] == \
        [{k: d.get(k) for k in rules._READ_KEYS} for d in slow]


def test_yaml_and_yaml_rs_are_imported_only_when_a_file_is_parsed(tmp_path):
    """A run served from the cache imports neither parser (a warm run saves their import time)."""
    import subprocess
    import sys

    code = ("import sys; from logsource_checker import rules, loader; "
            "assert 'yaml' not in sys.modules and 'yaml_rs' not in sys.modules, 'imported at start'; "
            "loader.load_rules_fast([sys.argv[1]]); print('ok')")
    (tmp_path / "r.yml").write_text(rule_with("EventID: 4624"), encoding="utf-8")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r.yml")], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    warm = ("import sys; from logsource_checker import loader; r = loader.load_rules_fast([sys.argv[1]]); "
            "assert r.rules and 'yaml' not in sys.modules and 'yaml_rs' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", warm, str(tmp_path / "r.yml")], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
