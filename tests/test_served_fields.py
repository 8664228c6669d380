"""A requirement that depends on the rule's fields (``when_fields``: the command-line policy of 4688) is attached
only when such a field is in a selection the producer serves: not in a selection it loses, a filter it cannot
apply, a branch it cannot see or a selection the condition does not use."""
from __future__ import annotations

import textwrap

import pytest

from logsource_checker import condition as cond
from logsource_checker import knowledge
from logsource_checker.engine import CheckOptions, check
from logsource_checker.resolve import resolve
from logsource_checker.rules import load_file

KB = knowledge.load(use_cache=False)
CMDLINE = "registry:process_creation_include_cmdline"
GUIDE = KB.by_logsource[("windows", "process_creation", None)]
(ALT_4688,) = [a for a in GUIDE.enablement if "4688" in a.name]


def _rule(folder, name: str, detection: str) -> str:
    path = folder / f"{name}.yml"
    path.write_text(textwrap.dedent("""\
        title: {name}
        status: test
        level: high
        logsource:
          product: windows
          category: process_creation
        detection:
        """).format(name=name) + textwrap.indent(textwrap.dedent(detection), "  "), encoding="utf-8")
    return str(path)


# (case, detection, whether the 4688 option needs the command-line policy)
CASES = [
    ("in the served selection", """\
        selection:
          Image|endswith: '\\rundll32.exe'
          CommandLine|contains: 'javascript:'
        condition: selection
        """, True),
    ("only in a lost selection", """\
        selection_img:
          Image|endswith: '\\certutil.exe'
        selection_ofn:
          OriginalFileName: 'CertUtil.exe'
          CommandLine|contains: '-urlcache'
        condition: 1 of selection_*
        """, False),
    ("only in a filter 4688 cannot apply", """\
        selection:
          Image|endswith: '\\powershell.exe'
        filter_parent:
          ParentCommandLine|contains: 'svchost.exe -k netsvcs'
          CommandLine|contains: '-NoProfile'
        condition: selection and not filter_parent
        """, False),
    ("only in a branch 4688 cannot see", """\
        selection:
          - Image|endswith: '\\mshta.exe'
          - OriginalFileName: 'MSHTA.EXE'
            CommandLine|contains: 'vbscript'
        condition: selection
        """, False),
    ("in a filter 4688 applies", """\
        selection:
          Image|endswith: '\\wmic.exe'
        filter:
          CommandLine|contains: 'get /value'
        condition: selection and not filter
        """, True),
    ("only in a selection the condition does not use", """\
        selection:
          Image|endswith: '\\bitsadmin.exe'
        unused:
          CommandLine|contains: '/transfer'
        condition: selection
        """, False),
    ("both in a lost and a served selection", """\
        selection_img:
          Image|endswith: '\\certutil.exe'
          CommandLine|contains: '-decode'
        selection_ofn:
          OriginalFileName: 'CertUtil.exe'
          CommandLine|contains: '-urlcache'
        condition: 1 of selection_*
        """, True),
]


def _4688(res):
    return [o for need in res.needs for o in need.options if "4688" in o.name]


@pytest.mark.parametrize("case,detection,needed", CASES, ids=[c[0] for c in CASES])
def test_command_line_policy_only_for_served_command_line(tmp_path, case, detection, needed):
    loaded = load_file(_rule(tmp_path, "r", detection))
    assert not loaded.errors
    (res,) = resolve(loaded.rules, KB).rules
    (option,) = _4688(res)
    assert (CMDLINE in option.requirements) is needed
    sysmon = [o for need in res.needs for o in need.options if "Sysmon" in o.name]
    assert sysmon and all(CMDLINE not in o.requirements for o in sysmon)


SAME_SHAPE = {
    "served": """\
        selection_img:
          Image|endswith: '\\certutil.exe'
          CommandLine|contains: '-decode'
        selection_ofn:
          OriginalFileName: 'CertUtil.exe'
        condition: 1 of selection_*
        """,
    "lost": """\
        selection_img:
          Image|endswith: '\\certutil.exe'
        selection_ofn:
          OriginalFileName: 'CertUtil.exe'
          CommandLine|contains: '-urlcache'
        condition: 1 of selection_*
        """,
}


@pytest.mark.parametrize("order", [("served", "lost"), ("lost", "served")], ids=["served-first", "lost-first"])
def test_rules_of_the_same_shape_do_not_share_the_answer(tmp_path, order):
    """Same log source, the same fields, the same lost selection (selection_ofn); the command line is served
    in one rule and lost in the other: the resolver's memo must tell them apart, in either order."""
    rules = [rule for name in order for rule in load_file(_rule(tmp_path, name, SAME_SHAPE[name])).rules]
    assert len({frozenset(f.casefold() for f in r.fields) for r in rules}) == 1
    resolution = resolve(rules, KB)
    got = {res.rule.title: CMDLINE in _4688(res)[0].requirements for res in resolution.rules}
    assert got == {"served": True, "lost": False}
    assert all(_4688(res)[0].lost == ("selection_ofn",) for res in resolution.rules)


def test_corpus_command_line_policy_follows_the_served_selections(corpus_rules):
    """On every process_creation rule of the corpus, the 4688 option has the command-line policy exactly when
    a visible branch of a selection it serves (used by the condition, not lost, not an unapplied filter)
    tests CommandLine; recounted here from the rule and the option's verdict."""
    result = check(CheckOptions(paths=[str(corpus_rules / "rules" / "windows" / "process_creation")],
                                use_cache=False))
    emitted = {f.casefold() for f in ALT_4688.fields} | {f.casefold() for f in KB.common_fields["windows"]}
    checked = with_policy = 0
    for res in result.resolution.rules:
        for option in _4688(res):
            selections = dict(res.rule.selections)
            parsed = cond.parse_conditions(res.rule.condition, list(selections))
            used = cond.referenced(parsed.node) if parsed.node is not None else set(selections)
            skipped = set(option.lost) | set(option.filters_not_applied)
            served = any("commandline" in fields and fields <= emitted
                         for name in used if name not in skipped for branch in selections[name]
                         for fields in [{m[0].casefold() for m in branch if m[0]}])
            assert (CMDLINE in option.requirements) is served, res.rule.path
            checked += 1
            with_policy += served
    print(f"\n4688 options checked: {checked}; with the command-line policy: {with_policy}")
    assert checked > 1000


# Rules of one log source whose fields differ: only in fields no requirement depends on, in the command line
# (a when_fields requirement), or in a field no producer writes (named in a note). The resolver shares one
# memo entry per (EventIDs, fields that matter, decision...): resolving them together, in any order, must
# give each rule what it gets resolved alone.
MEMO_MIX = {
    "image": "selection:\n  Image|endswith: '\\\\a.exe'\ncondition: selection\n",
    "image_parent": "selection:\n  Image|endswith: '\\\\a.exe'\n  ParentImage|endswith: '\\\\b.exe'\n"
                    "condition: selection\n",
    "image_cmdline": "selection:\n  Image|endswith: '\\\\a.exe'\n  CommandLine|contains: x\ncondition: selection\n",
    "parent_cmdline": "selection:\n  ParentImage|endswith: '\\\\b.exe'\n  CommandLine|contains: y\n"
                      "condition: selection\n",
    "unwritten": "selection:\n  Image|endswith: '\\\\a.exe'\n  NoProducerWritesThis: 1\ncondition: selection\n",
    "unwritten_other": "selection:\n  Image|endswith: '\\\\a.exe'\n  AnotherUnwrittenField: 1\n"
                       "condition: selection\n",
}


def _answer(res):
    return ([(need.label, need.event_id, [(o.name, o.primary, o.requirements, o.lost, o.narrowed)
                                          for o in need.options]) for need in res.needs],
            res.notes, res.unsatisfiable_fields, res.requirement_ids)


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
def test_rules_resolved_together_get_what_they_get_alone(tmp_path, reverse):
    names = sorted(MEMO_MIX, reverse=reverse)
    rules = [rule for name in names for rule in load_file(_rule(tmp_path, name, MEMO_MIX[name])).rules]
    alone = {rule.title: _answer(resolve([rule], KB).rules[0]) for rule in rules}
    together = {res.rule.title: _answer(res) for res in resolve(rules, KB).rules}
    assert together == alone
    # the cases differ where they should: the command line adds a requirement, an unwritten field a note
    assert CMDLINE in alone["image_cmdline"][3] and CMDLINE not in alone["image"][3]
    assert alone["unwritten"][2] == ["NoProducerWritesThis"] and alone["unwritten_other"][2] == ["AnotherUnwrittenField"]
