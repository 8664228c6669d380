"""Property-based tests of the rule loader: whatever the input, a LoadResult (rules or listed errors).

Any bytes, any YAML-ish text and any nested structure dumped as YAML go through ``load_file``,
``parse_documents`` and ``load_paths``; none may raise, hang or report an internal error, and what
comes back must be well formed (errors name the file and give a one-line reason; event IDs are
16-bit; the fast YAML path reads what PyYAML reads). Hypothesis keeps no example database in the
repository (``database=None``) and has no deadline, so a slow CI machine does not fail it.
"""
from __future__ import annotations

import math
import os
import string
import tempfile

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis's own caches (not the example database, which is off) go to the temp folder, not the repository.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "logsource-checker-hypothesis"))

from logsource_checker import rules
from logsource_checker.rules import (MAX_ERRORS_PER_FILE, MAX_EVENT_ID, LoadResult, load_file, load_paths,
                                     parse_documents)

FAST = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------- helpers

def load_bytes(data: bytes, name: str = "rule.yml") -> tuple[str, LoadResult]:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        with open(path, "wb") as handle:
            handle.write(data)
        return path, load_file(path)


def assert_well_formed(path: str, result: LoadResult) -> None:
    """The contract every LoadResult keeps, whatever the file held."""
    assert isinstance(result, LoadResult)
    assert result.files == 1
    assert result.rules or result.errors or result.others, "a file must give rules, errors or other documents"
    assert len(result.errors) <= MAX_ERRORS_PER_FILE + 1
    for error in result.errors:
        assert error.path == path
        assert error.message and "\n" not in error.message and len(error.message) < 400
        assert not error.message.startswith("internal error"), error.message
        assert error.line is None or error.line >= 1
    for rule in result.rules:
        assert rule.path == path
        assert list(rule.event_ids) == sorted(set(rule.event_ids))
        assert all(isinstance(e, int) and not isinstance(e, bool) and 0 <= e <= MAX_EVENT_ID
                   for e in rule.event_ids)
        for value in rule.logsource.key:
            assert value is None or (isinstance(value, str) and value == value.strip().lower() and value)
        assert rule.title is None or isinstance(rule.title, str)
        assert rule.id is None or isinstance(rule.id, str)
        assert all(isinstance(c, str) for c in rule.channels + rule.providers + rule.fields)


# --------------------------------------------------------------------------- strategies

#: Pieces that exercise the YAML grammar: indicators, Sigma keys, tags, anchors, odd scalars.
YAML_TOKENS = [
    ":", ": ", "- ", "-", "[", "]", "{", "}", ",", "&a ", "*a", "&b ", "*b", "!", "!!str ", "!!int ", "!!float ",
    "!!binary ", "!!timestamp ", "!!set ", "!!omap ", "!!python/object:os.system ", "<<: ", "? ", "|", ">", "'", '"',
    "#", "%YAML 1.1", "---", "...", "\n", "\n  ", "\n    ", "\t", " ", "\r\n", "\\", "\\u", "\\x00",
    "title", "id", "logsource", "product", "windows", "category", "service", "security", "detection", "sel",
    "condition", "EventID", "EventID|all", "EventID|gt", "Channel", "Provider_Name", "action", "global", "repeat",
    "reset", "correlation", "filter", "4624", "-1", "65536", "99999999999999999999999", "0x10", "0o17", "017",
    "1_000", "4624.0", "1e400", ".inf", ".nan", "null", "~", "true", "yes", "on", "2020-02-30", "2020-01-01",
    "12:30:00", "é", "\u202e", "\ufeff", "\x85", "\u2028", "{{ 7*7 }}", "$(id)",
]

yamlish_text = st.lists(st.sampled_from(YAML_TOKENS) | st.text(string.ascii_letters + string.digits, max_size=4),
                        max_size=60).map("".join)

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=20) | st.sampled_from(["4624", " 4625 ", "٤٦٢٤", "on", "no", "0x10", "2020-02-30"]))
keys = st.sampled_from(["EventID", "eventid", "EventID|all", "EventID|contains", "Channel", "Provider_Name",
                        "Image|endswith", "|re", "", "condition", "timeframe", "sel"]) | st.text(max_size=8)
structures = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(keys, inner, max_size=4), max_leaves=30)


@st.composite
def rule_documents(draw) -> dict:
    """A rule-shaped mapping whose every part may be of the wrong type."""
    doc = {}
    for key in ("title", "id", "level", "status", "action"):
        if draw(st.booleans()):
            doc[key] = draw(st.sampled_from(["x", "high", "test", "global", "repeat", "reset"]) | structures)
    if draw(st.integers(0, 9)):
        doc["logsource"] = draw(st.fixed_dictionaries(
            {}, optional={"product": st.sampled_from(["windows", " Windows ", ""]) | scalars,
                          "category": st.sampled_from(["process_creation", None]) | scalars,
                          "service": st.sampled_from(["security", "sysmon"]) | scalars,
                          "definition": structures}) | structures)
    if draw(st.integers(0, 9)):
        doc["detection"] = draw(st.dictionaries(keys, structures, max_size=4) | structures)
    if draw(st.integers(0, 5)) == 0:
        doc[draw(st.sampled_from(["correlation", "filter"]))] = draw(structures)
    return doc


# --------------------------------------------------------------------------- properties

@FAST
@given(data=st.binary(max_size=2048))
def test_any_bytes_give_a_load_result(data):
    path, result = load_bytes(data)
    assert_well_formed(path, result)


@FAST
@given(text=yamlish_text, bom=st.sampled_from(["", "\ufeff"]), encoding=st.sampled_from(["utf-8", "utf-16"]))
def test_any_yamlish_text_gives_a_load_result(text, bom, encoding):
    data = (bom + text).encode(encoding, "surrogatepass") if encoding == "utf-8" else text.encode("utf-16")
    path, result = load_bytes(data)
    assert_well_formed(path, result)


@FAST
@given(docs=st.lists(rule_documents() | structures, min_size=1, max_size=4), flow=st.sampled_from([None, True, False]))
def test_any_structure_dumped_as_yaml_gives_rules_or_listed_errors(docs, flow):
    text = yaml.safe_dump_all(docs, default_flow_style=flow, allow_unicode=True, sort_keys=False)
    path, result = load_bytes(text.encode("utf-8"))
    assert_well_formed(path, result)
    # every mapping document (without collection actions) is a rule, an error, or another document
    plain = [d for d in docs if isinstance(d, dict) and "action" not in d]
    if len(plain) == len(docs):
        assert len(result.rules) + len(result.others) + len(result.errors) >= len(docs)


@FAST
@given(text=yamlish_text)
def test_parse_documents_returns_documents_or_raises_yaml_error(text):
    for fast in (True, False):
        try:
            documents = parse_documents(text, allow_fast=fast)
        except (yaml.YAMLError, RecursionError):
            continue
        assert isinstance(documents, list)


def _read_part(documents: list) -> list:
    return [{k: d.get(k) for k in rules._READ_KEYS if k in d} if isinstance(d, dict) else d for d in documents]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@FAST
@given(doc=rule_documents(), flow=st.sampled_from([None, True, False]))
def test_fast_path_reads_what_pyyaml_reads(doc, flow):
    text = yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True, sort_keys=False)
    try:
        slow = parse_documents(text, allow_fast=False)
    except yaml.YAMLError:
        assume(False)
    fast = parse_documents(text, allow_fast=True)
    assert _same(_read_part(fast), _read_part(slow)), text


@FAST
@given(event_ids=st.lists(st.integers(0, MAX_EVENT_ID), min_size=1, max_size=5),
       junk=st.lists(st.none() | st.floats() | st.text(max_size=5) | st.integers(MAX_EVENT_ID + 1)
                     | st.integers(max_value=-1) | st.lists(st.integers(0, 9), max_size=2), min_size=1, max_size=5),
       order=st.randoms(use_true_random=False))
def test_valid_event_ids_are_kept_beside_invalid_ones(event_ids, junk, order):
    junk = [j for j in junk if not (isinstance(j, str) and j.strip().isascii() and j.strip().isdigit()
                                     and int(j.strip()) <= MAX_EVENT_ID)]
    values = list(event_ids) + junk
    order.shuffle(values)
    doc = {"title": "t", "logsource": {"product": "windows", "service": "security"},
           "detection": {"sel": {"EventID": values}, "condition": "sel"}}
    path, result = load_bytes(yaml.safe_dump(doc).encode())
    assert_well_formed(path, result)
    assert [r.event_ids for r in result.rules] == [tuple(sorted(set(event_ids)))]
    assert len(result.errors) == len(junk) and all("EventID" in e.message for e in result.errors)


@FAST
@given(names=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
                              min_size=1, max_size=12), min_size=1, max_size=5, unique=True),
       contents=st.lists(st.binary(max_size=200) | yamlish_text.map(str.encode), min_size=1, max_size=5))
def test_load_paths_lists_every_file(tmp_path_factory, names, contents):
    folder = tmp_path_factory.mktemp("prop")
    good = (b"title: ok\nlogsource: {product: windows, service: security}\n"
            b"detection: {s: {EventID: 4624}, condition: s}\n")
    written = 0
    for index, name in enumerate(names):
        if name in (".", "..") or name.startswith("."):
            continue
        try:
            (folder / f"{name}.yml").write_bytes(contents[index % len(contents)])
        except OSError:  # a name the file system refuses (too long in bytes, ...)
            continue
        written += 1
    (folder / "zz-good.yml").write_bytes(good)
    result = load_paths([str(folder)])
    assert result.files == written + 1
    assert any(r.path.endswith("zz-good.yml") and r.event_ids == (4624,) for r in result.rules)
    for error in result.errors:
        assert "\n" not in error.message and not error.message.startswith("internal error")


@pytest.mark.parametrize("shape", ["list", "mapping", "flow"])
def test_self_referencing_aliases_are_bounded(tmp_path, shape):
    """Recursive aliases (PyYAML builds cyclic objects) end as a listed error, never a hang."""
    body = {"list": "  sel: &l\n    - 1\n    - *l\n",
            "mapping": "  sel: &m\n    Image: *m\n    EventID: 4624\n",
            "flow": "  sel: &f {a: [*f], EventID: 4624}\n"}[shape]
    path = tmp_path / "cyclic.yml"
    path.write_text("title: cyclic\nlogsource: {product: windows, service: security}\ndetection:\n" + body
                    + "  condition: sel\n")
    result = load_file(str(path))
    assert_well_formed(str(path), result)
    assert result.rules == [] and "nested deeper" in result.errors[0].message
