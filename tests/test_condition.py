"""Sigma conditions: the parser (condition.py), and producers decided from the condition (serving.py)."""
from __future__ import annotations

import itertools
import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis's own caches go to the temp folder, not the repository (as in test_properties.py).
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "logsource-checker-hypothesis"))

from logsource_checker import condition as cond
from logsource_checker import knowledge
from logsource_checker.diff import PolicyDiff
from logsource_checker.policy.model import AuditSetting, PolicySnapshot, RegistryPolicySetting, SysmonConfig
from logsource_checker.resolve import resolve
from logsource_checker.rules import load_file

KB = knowledge.load()
PROCESS_CREATION = "{0CCE922B-69AE-11D9-BED3-505054503030}"
NAMES = ["selection", "selection_img", "selection_ofn", "filter_main", "filter_optional", "_private", "keywords"]


# -- the parser ------------------------------------------------------------------------------------------

# (condition, selections that match, expected truth)
TRUTH = [
    ("selection", {"selection"}, True),
    ("selection", set(), False),
    ("selection and not filter_main", {"selection"}, True),
    ("selection and not filter_main", {"selection", "filter_main"}, False),
    ("selection_img or selection_ofn", {"selection_ofn"}, True),
    ("1 of selection_*", {"selection_img"}, True),
    ("1 of selection_*", {"selection"}, False),          # 'selection' does not match 'selection_*'
    ("1 of selection*", {"selection"}, True),
    ("all of selection_*", {"selection_img"}, False),
    ("all of selection_*", {"selection_img", "selection_ofn"}, True),
    ("any of selection_*", {"selection_ofn"}, True),
    ("not 1 of filter_*", {"filter_optional"}, False),   # 'not' applies to the whole 'x of'
    ("not 1 of filter_*", set(), True),
    ("selection and not 1 of filter_*", {"selection"}, True),
    ("selection or keywords and filter_main", {"selection"}, True),        # 'and' binds tighter than 'or'
    ("(selection or keywords) and filter_main", {"selection"}, False),     # brackets
    ("not selection and keywords", {"keywords"}, True),                     # 'not' binds tighter than 'and'
    ("not (selection and keywords)", {"keywords"}, True),
    ("not not selection", {"selection"}, True),
    ("1 of them", {"keywords"}, True),
    ("1 of them", {"_private"}, False),                  # _-prefixed identifiers are not in 'them'
    ("all of them", set(NAMES) - {"_private"}, True),
    ("all of them", set(NAMES) - {"keywords"}, False),
    ("1 of _priv*", {"_private"}, True),                 # a pattern starting with '_' may match them
    ("2 of selection*", {"selection", "selection_ofn"}, True),
    ("2 of selection*", {"selection"}, False),
    ("selection | count() by User > 5", {"selection"}, True),  # aggregation ignored (noted)
]


@pytest.mark.parametrize("text, true, expected", TRUTH)
def test_truth(text, true, expected):
    parsed = cond.parse_conditions([text], NAMES)
    assert parsed.problems == ()
    assert cond.evaluate(parsed.node, true) is expected


def test_condition_list_is_the_or_of_its_conditions():
    parsed = cond.parse_conditions(["selection_img", "selection_ofn and not filter_main"], NAMES)
    assert cond.evaluate(parsed.node, {"selection_ofn"}) is True
    assert cond.evaluate(parsed.node, {"filter_main"}) is False
    assert cond.referenced(parsed.node) == {"selection_img", "selection_ofn", "filter_main"}


@pytest.mark.parametrize("text, referenced", [
    ("1 of them", {"selection", "selection_img", "selection_ofn", "filter_main", "filter_optional", "keywords"}),
    ("all of filter_* or selection", {"filter_main", "filter_optional", "selection"}),
    ("1 of *_img", {"selection_img"}),
])
def test_referenced(text, referenced):
    assert cond.referenced(cond.parse_conditions([text], NAMES).node) == referenced


@pytest.mark.parametrize("text, fragment", [
    ("selection and", "ends where"),
    ("(selection", "')'"),
    ("selection filter_main", "unexpected 'filter_main'"),
    ("selection and or filter_main", "unexpected 'or'"),
    ("1 of", "ends where"),
    ("selection && filter_main", "unexpected character"),
    ("", "empty condition"),
    ("0 of them", "at least 1"),
    ("few of them", "neither a number nor 'all'"),
    ("selection or selction", "'selction', which the detection does not define"),
    ("1 of filters_*", "matches no selection"),
    ("3 of filter_*", "needs more selections"),
    ("selection AND filter_main", "unexpected 'AND'"),  # operators are lower case, as in pySigma
])
def test_problems_are_reported(text, fragment):
    parsed = cond.parse_conditions([text], NAMES)
    assert parsed.problems and fragment in " ".join(parsed.problems)


def test_aggregation_is_noted():
    parsed = cond.parse_conditions(["selection | count() by User > 5"], NAMES)
    assert parsed.problems == () and "aggregation" in parsed.notes[0]


def test_deep_nesting_is_an_error_not_a_crash():
    for depth, problem in ((2000, "nested deeper"), (6000, "longer than")):
        parsed = cond.parse_conditions(["(" * depth + "selection" + ")" * depth], NAMES)
        assert parsed.node is None and problem in parsed.problems[0]


# -- verdicts on conditions ------------------------------------------------------------------------------

# (condition, available selections, serves, lost, filters that cannot apply)
VERDICTS = [
    ("selection_img or selection_ofn", {"selection_img"}, True, ("selection_ofn",), ()),
    ("selection_img and selection_ofn", {"selection_img"}, False, ("selection_ofn",), ()),
    ("selection_img and not filter_main", {"selection_img"}, True, (), ("filter_main",)),
    ("not filter_main and selection_ofn", {"filter_main"}, False, ("selection_ofn",), ()),
    ("1 of selection_*", {"selection_ofn"}, True, ("selection_img",), ()),
    ("all of selection_*", {"selection_ofn"}, False, ("selection_img",), ()),
    ("all of them", set(NAMES), True, (), ()),
    ("selection and (selection_img or selection_ofn)", {"selection", "selection_img"}, True, ("selection_ofn",), ()),
    ("(selection and selection_img) or selection_ofn", {"selection_ofn"}, True, ("selection", "selection_img"), ()),
    ("selection and not (filter_main or filter_optional)", {"selection", "filter_main"}, True, (),
     ("filter_optional",)),
    ("selection and not (filter_main and selection_ofn)", {"selection"}, True, (), ("filter_main", "selection_ofn")),
    ("not (selection_img or selection_ofn)", set(), True, (), ("selection_img", "selection_ofn")),
    ("not not selection_ofn", {"selection"}, False, ("selection_ofn",), ()),
    ("selection and not 1 of filter_*", {"selection"}, True, (), ("filter_main", "filter_optional")),
    ("keywords", {"keywords"}, True, (), ()),
]


@pytest.mark.parametrize("text, available, serves, lost, unapplied", VERDICTS)
def test_verdict(text, available, serves, lost, unapplied):
    verdict = cond.verdict(cond.parse_conditions([text], NAMES).node, available)
    assert (verdict.serves, verdict.lost, verdict.filters_not_applied) == (serves, lost, unapplied)


def _subsets(names):
    return itertools.chain.from_iterable(itertools.combinations(names, k) for k in range(len(names) + 1))


@pytest.mark.parametrize("text", sorted({t for t, *_ in VERDICTS} | {t for t, *_ in TRUTH}))
def test_verdict_agrees_with_brute_force(text):
    """In these conditions no selection is used both plainly and negated, so leaving an unavailable selection
    out (not matching) is exactly what the verdict assumes: the producer serves when some assignment of the
    available selections satisfies the condition, and what it loses is unavailable."""
    node = cond.parse_conditions([text], NAMES).node
    names = sorted(cond.referenced(node))
    for available in _subsets(names):
        verdict = cond.verdict(node, set(available))
        assert verdict.serves is any(cond.evaluate(node, set(true)) for true in _subsets(available)), available
        assert not (set(verdict.lost) | set(verdict.filters_not_applied)) & set(available)


# -- producers decided from the condition on process_creation rules ----------------------------------------

SYSMON = "Sysmon event 1 (ProcessCreate)"
SECURITY = "Security event 4688 (Audit Process Creation)"

# (detection YAML, producers that serve, selections lost by 4688, filters 4688 cannot apply, unsatisfiable)
RULES = [
    ("OR branch",
     "selection_img:\n    Image|endswith: '\\\\cmd.exe'\nselection_ofn:\n    OriginalFileName: Cmd.Exe\n"
     "condition: selection_img or selection_ofn",
     [SYSMON, SECURITY], ["selection_ofn"], [], []),
    ("AND branch",
     "selection_img:\n    Image|endswith: '\\\\cmd.exe'\nselection_ofn:\n    OriginalFileName: Cmd.Exe\n"
     "condition: selection_img and selection_ofn",
     [SYSMON], [], [], []),
    ("not",
     "selection:\n    Image|endswith: '\\\\rundll32.exe'\nfilter_signed:\n    Company: Microsoft Corporation\n"
     "condition: selection and not filter_signed",
     [SYSMON, SECURITY], [], ["filter_signed"], []),
    ("1 of x*",
     "selection_a:\n    Hashes|contains: IMPHASH=0A1B\nselection_b:\n    ParentCommandLine|contains: ' -nop '\n"
     "selection_c:\n    CommandLine|contains: ' -enc '\ncondition: 1 of selection_*",
     [SYSMON, SECURITY], ["selection_a", "selection_b"], [], []),
    ("all of them",
     "selection:\n    Image|endswith: '\\\\net.exe'\nsel_user:\n    User|contains: SYSTEM\n"
     "_ignored:\n    IntegrityLevel: Low\ncondition: all of them",
     [SYSMON], [], [], []),
    ("parentheses",
     "selection_parent:\n    ParentImage|endswith: '\\\\winword.exe'\nselection_child:\n"
     "    Image|endswith: '\\\\cmd.exe'\nselection_cwd:\n    CurrentDirectory|contains: '\\\\Temp\\\\'\n"
     "condition: selection_parent and (selection_child or selection_cwd)",
     [SYSMON, SECURITY], ["selection_cwd"], [], []),
    ("branches of one selection",
     "selection:\n    - OriginalFileName: Rundll32.Exe\n    - Image|endswith: '\\\\rundll32.exe'\n"
     "condition: selection",
     [SYSMON, SECURITY], [], [], []),
    ("unsatisfiable field",
     "selection:\n    GrandParentImage|endswith: '\\\\rundll32.exe'\n"
     "selection_img:\n    Image|endswith: '\\\\cmd.exe'\ncondition: selection or selection_img",
     [SYSMON, SECURITY], ["selection"], [], ["GrandParentImage"]),
    ("unsatisfiable field on every path",
     "selection:\n    GrandParentImage|endswith: '\\\\rundll32.exe'\n    Image|endswith: '\\\\cmd.exe'\n"
     "condition: selection",
     [], [], [], ["GrandParentImage"]),
    ("keyword selection",
     "keywords:\n    - 'mimikatz'\nselection_ofn:\n    OriginalFileName: mimikatz.exe\n"
     "condition: keywords or selection_ofn",
     [SYSMON, SECURITY], ["selection_ofn"], [], []),
    ("common event fields count for every producer",
     "selection:\n    Computer|startswith: DC\n    EventID: 4688\n    Image|endswith: '\\\\ntdsutil.exe'\n"
     "condition: selection",
     [SYSMON, SECURITY], [], [], []),
    ("field names are case-insensitive",
     "selection:\n    image|endswith: '\\\\cmd.exe'\n    commandline|contains: '/c'\ncondition: selection",
     [SYSMON, SECURITY], [], [], []),
]


def _load(tmp_path, detection, logsource="product: windows\n    category: process_creation"):
    body = "\n".join(f"    {line}" for line in detection.splitlines())
    path = tmp_path / "rule.yml"
    path.write_text(f"title: t\nid: r1\nlevel: high\nlogsource:\n    {logsource}\ndetection:\n{body}\n",
                    encoding="utf-8")
    loaded = load_file(str(path))
    assert not loaded.errors, loaded.errors
    return loaded.rules


@pytest.mark.parametrize("case, detection, producers, lost, unapplied, unsatisfiable", RULES,
                         ids=[case[0] for case in RULES])
def test_producers_from_condition(tmp_path, case, detection, producers, lost, unapplied, unsatisfiable):
    (res,) = resolve(_load(tmp_path, detection), KB).rules
    options = {o.name: o for need in res.needs for o in need.options}
    assert sorted(options) == sorted(producers)
    if SYSMON in options:  # Sysmon loses only what no producer can see
        assert list(options[SYSMON].lost) == (lost if unsatisfiable else [])
    if SECURITY in options:
        assert list(options[SECURITY].lost) == lost
        assert list(options[SECURITY].filters_not_applied) == unapplied
    assert res.unsatisfiable_fields == unsatisfiable
    assert bool(unsatisfiable) == any("no producer of guide" in n for n in res.notes)
    if not producers:
        assert any("no producer of guide" in n and "condition" in n for n in res.notes)


# (producers collected, expected coverage, lost selections)
COVERAGE = [
    ({"sysmon": True, "audit": False}, "usable", []),
    ({"sysmon": False, "audit": True}, "partial", ["selection_ofn"]),
    ({"sysmon": True, "audit": True}, "usable", []),
    ({"sysmon": False, "audit": False}, "blind", []),
]


@pytest.mark.parametrize("on, coverage, lost", COVERAGE)
def test_partly_served_rule_is_partial(tmp_path, on, coverage, lost):
    rules = _load(tmp_path, RULES[0][1])
    snapshot = PolicySnapshot(
        audit={PROCESS_CREATION: AuditSetting.from_value(1 if on["audit"] else 0, "test")},
        sysmon=SysmonConfig(source="s.xml", schema_version="4.90", collected={1: on["sysmon"]}),
        registry_policies=[RegistryPolicySetting("Include command line in process creation events",
                                                 "System/Audit Process Creation", "Enabled")])
    resolution = resolve(rules, KB)
    PolicyDiff(KB, snapshot).apply(resolution)
    (res,) = resolution.rules
    assert (res.coverage, res.lost_selections) == (coverage, lost)


@pytest.mark.parametrize("logsource, detection, security_serves", [
    # registry_set: Sysmon 13 vs 4657; EventType only in Sysmon
    ("product: windows\n    category: registry_set",
     "selection:\n    TargetObject|contains: '\\\\Run\\\\'\nsel_type:\n    EventType: SetValue\n"
     "condition: selection or sel_type", True),
    ("product: windows\n    category: registry_set",
     "selection:\n    TargetObject|contains: '\\\\Run\\\\'\n    EventType: SetValue\ncondition: selection", False),
    # network_connection: Sysmon 3 vs 5156; no host names in 5156
    ("product: windows\n    category: network_connection",
     "selection:\n    DestinationHostname|endswith: '.onion'\nsel_port:\n    DestinationPort: 9001\n"
     "condition: 1 of sel*", True),
    ("product: windows\n    category: network_connection",
     "selection:\n    DestinationHostname|endswith: '.onion'\n    Image|endswith: '\\\\tor.exe'\n"
     "condition: selection", False),
])
def test_other_guides_with_field_lists(tmp_path, logsource, detection, security_serves):
    (res,) = resolve(_load(tmp_path, detection, logsource), KB).rules
    names = [o.name for need in res.needs for o in need.options]
    assert any(n.startswith("Sysmon") for n in names)
    assert any(n.startswith("Security") for n in names) is security_serves


@pytest.mark.parametrize("condition, message", [
    ("selection_img or selection_typo", "rule r1: condition names selection 'selection_typo', which the detection"),
    ("selection_img or (selection_ofn", "rule r1: condition 'selection_img or (selection_ofn' cannot be parsed"),
    ("1 of sel_*", "rule r1: '1 of sel_*' matches no selection"),
])
def test_condition_problem_is_an_error_and_no_producer_is_credited_on_a_guess(cli, tmp_path, condition, message):
    _load(tmp_path, "selection_img:\n    Image|endswith: '\\\\cmd.exe'\nselection_ofn:\n    OriginalFileName: "
          f"Cmd.Exe\ncondition: {condition}")
    result = cli(str(tmp_path), "--format", "json", "-v")
    report = result.json()
    assert result.exit_code == 1 and report["summary"]["errors"] == 1
    assert report["errors"][0]["message"].startswith(message)
    assert report["errors"][0]["path"] == str(tmp_path / "rule.yml")
    (rule,) = report["rules"]
    # read as 'every field must be emitted': 4688 lacks OriginalFileName, so only Sysmon
    assert [o["name"] for n in rule["needs"] for o in n["options"]] == [SYSMON]


def test_json_keys(cli, tmp_path):
    _load(tmp_path, RULES[7][1])
    report = cli(str(tmp_path), "--format", "json", "-v").json()
    (rule,) = report["rules"]
    assert rule["unsatisfiable_fields"] == ["GrandParentImage"] and rule["lost_selections"] == []
    assert report["summary"]["unsatisfiable_field_rules"] == 1
    (security,) = [o for n in rule["needs"] for o in n["options"] if o["name"] == SECURITY]
    assert security["lost_selections"] == ["selection"] and security["filters_not_applied"] == []
    assert security["narrowed_selections"] == []


# -- random conditions against pySigma -------------------------------------------------------------------

_NAMES = ["sel", "sel_a", "sel_b", "filter_x", "_aux"]
_OPERANDS = st.sampled_from(_NAMES + ["1 of sel*", "all of sel_*", "1 of filter_*", "1 of them", "all of them",
                                      "any of sel_*", "1 of _a*"])
_CONDITIONS = st.recursive(
    _OPERANDS,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" and ", " or "]), inner).map("".join),
        inner.map(lambda c: f"not {c}"),
        inner.map(lambda c: f"({c})")),
    max_leaves=8)


@settings(max_examples=300, deadline=None, database=None)
@given(text=_CONDITIONS, true=st.sets(st.sampled_from(_NAMES)))
def test_random_conditions_agree_with_pysigma(text, true):
    conditions = pytest.importorskip("sigma.conditions")

    class Detections:
        detections = dict.fromkeys(_NAMES)
        policy = None

    def truth(node):
        if isinstance(node, conditions.ConditionIdentifier):
            return node.identifier in true
        if isinstance(node, conditions.ConditionSelector):
            members = [i.identifier for i in node.resolve_referenced_detections(Detections())]
            return (any if node.cond_class is conditions.ConditionOR else all)(m in true for m in members)
        if isinstance(node, conditions.ConditionNOT):
            return not truth(node.args[0])
        results = [truth(arg) for arg in node.args]
        return all(results) if isinstance(node, conditions.ConditionAND) else any(results)

    ours = cond.parse_conditions([text], _NAMES)
    assert ours.problems == ()
    theirs = conditions.SigmaCondition(text, Detections()).parse(postprocess=False)
    assert cond.evaluate(ours.node, true) is truth(theirs), text


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_rules_sharing_fields_but_not_conditions_are_decided_apart(tmp_path, order):
    """The resolver memoizes per signature: the condition's verdicts must be part of it."""
    selections = "selection_img:\n    Image|endswith: '\\\\cmd.exe'\nselection_ofn:\n    OriginalFileName: Cmd.Exe\n"
    texts = [selections + "condition: selection_img or selection_ofn",
             selections + "condition: selection_img and selection_ofn"]
    rules = []
    for index in order:
        folder = tmp_path / str(index)
        folder.mkdir()
        rules += _load(folder, texts[index])
    resolution = resolve(rules, KB)
    by_condition = {res.rule.condition[0]: [o.name for need in res.needs for o in need.options]
                    for res in resolution.rules}
    assert by_condition == {"selection_img or selection_ofn": [SYSMON, SECURITY],
                            "selection_img and selection_ofn": [SYSMON]}


def test_no_unsatisfiable_field_where_a_producer_does_not_list_its_fields(tmp_path):
    # Linux process_creation: Sysmon for Linux lists no fields, so nothing can be called unsatisfiable
    detection = "selection:\n    GrandParentImage|endswith: /bash\ncondition: selection"
    (res,) = resolve(_load(tmp_path, detection, "product: linux\n    category: process_creation"), KB).rules
    assert res.unsatisfiable_fields == [] and res.needs


def test_aggregation_note_reaches_the_rule(tmp_path):
    detection = "selection:\n    Image|endswith: '\\\\cmd.exe'\ncondition: selection | count() by User > 3"
    (res,) = resolve(_load(tmp_path, detection), KB).rules
    assert any("aggregation" in note for note in res.notes) and res.condition_problems == []


@pytest.mark.parametrize("text, positive", [
    ("selection and not filter_main", ["selection"]),
    ("not (selection_img or not selection_ofn)", ["selection_ofn"]),
    ("1 of selection_* and not 1 of filter_*", ["selection_img", "selection_ofn"]),
    ("not not keywords", ["keywords"]),
])
def test_used_positively(text, positive):
    assert list(cond.used_positively(cond.parse_conditions([text], NAMES).node)) == positive


# (detection, selections 4688 sees through only some of their branches)
NARROWED = [
    ("selection:\n    - OriginalFileName: Rundll32.Exe\n    - Image|endswith: '\\\\rundll32.exe'\ncondition: selection",
     ["selection"]),
    # a narrowed filter only applies in part: not named (it widens, never narrows, what the rule sees)
    ("selection:\n    Image|endswith: '\\\\rundll32.exe'\nfilter:\n    - Company: Microsoft Corporation\n"
     "    - ParentImage|endswith: '\\\\explorer.exe'\ncondition: selection and not filter", []),
    ("selection:\n    - Image|endswith: '\\\\rundll32.exe'\n    - CommandLine|contains: rundll32\n"
     "condition: selection", []),
]


@pytest.mark.parametrize("detection, narrowed", NARROWED)
def test_narrowed_selections(tmp_path, detection, narrowed):
    (res,) = resolve(_load(tmp_path, detection), KB).rules
    options = {o.name: o for need in res.needs for o in need.options}
    assert list(options[SECURITY].narrowed) == narrowed and options[SYSMON].narrowed == ()
    assert options[SECURITY].lost == ()


GLOB_NAMES = ["sel", "selection", "selection_1", "sel_x_y", "filter_main", "filter_optional_x", "_priv", "s",
              "selxsel", "a-b", "sel\nx", "x\nsel", "selection_img", "aaa", "", "sel_sel_sel"]
GLOB_PATTERNS = ["sel*", "*sel", "*", "**", "sel*x*y", "filter_*_x", "*_*", "s*s*l", "a*a*a", "sel", "*\u2028*",
                 "selection_*", "*img", "x*", "sel*sel"]


@pytest.mark.parametrize("pattern", GLOB_PATTERNS)
def test_glob_matches_what_the_regular_expression_matched(pattern):
    """``x of pattern`` used a compiled ``.*`` regular expression per pattern; the glob must agree with it
    on every name, line breaks included (``.`` does not match one)."""
    import re

    from logsource_checker.condition import _glob

    regex = re.compile(".*".join(re.escape(p) for p in pattern.split("*")))
    for name in GLOB_NAMES:
        assert _glob(tuple(pattern.split("*")), name) == bool(regex.fullmatch(name)), name


@pytest.mark.parametrize("pattern", [p for p in GLOB_PATTERNS if "\u2028" not in p] + ["_*", "_priv"])
@pytest.mark.parametrize("names", [GLOB_NAMES, [n for n in GLOB_NAMES if "\n" not in n]])
def test_of_pattern_members_are_what_the_regular_expression_matched(pattern, names):
    """``1 of pattern`` binds the selection names the ``.*`` regular expression matched, in detection order,
    names starting with ``_`` only when the pattern does too (the two-part fast path included, with and
    without line breaks among the names)."""
    import re

    from logsource_checker.condition import parse

    regex = re.compile(".*".join(re.escape(p) for p in pattern.split("*")))
    expected = tuple(n for n in names if regex.fullmatch(n) and (pattern.startswith("_") or not n.startswith("_")))
    node, problems = parse(f"1 of {pattern}", names)
    if expected:
        assert node[0] == "of" and node[3] == expected and problems == []
    else:
        assert problems == [f"'1 of {pattern}' matches no selection of the detection"]
