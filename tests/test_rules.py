"""Rule loader: every YAML document, every EventID shape, every kind of bad file.

Encodings, undecodable bytes, oversized files and alias bombs are in tests/test_hostile.py (CONTENT_CASES
and the size-limit tests).
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from logsource_checker.rules import load_file, load_paths

RULE_HEAD = """\
title: {title}
id: 11111111-2222-4333-8444-{suffix:012d}
status: test
level: high
logsource:
    product: windows
    service: security
"""


def rule_text(detection: str, title: str = "Sample", suffix: int = 1) -> str:
    return RULE_HEAD.format(title=title, suffix=suffix) + "detection:\n" + textwrap.indent(
        textwrap.dedent(detection).strip("\n"), "    ") + "\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


EVENT_ID_CASES = [
    ("plain int", "sel:\n    EventID: 4624\ncondition: sel", [4624], 0),
    ("digit string", "sel:\n    EventID: '4625'\ncondition: sel", [4625], 0),
    ("list", "sel:\n    EventID:\n        - 4624\n        - '4634'\ncondition: sel", [4624, 4634], 0),
    ("list of maps", "sel:\n    - EventID: 5140\n    - EventID: [5145, 4624]\ncondition: sel", [4624, 5140, 5145], 0),
    ("any selection name", "filter_main_x:\n    EventID: 4688\nkeep:\n    EventID: 4689\ncondition: keep and not filter_main_x",
     [4688, 4689], 0),
    ("|all modifier keeps ids", "sel:\n    EventID|all: 4624\ncondition: sel", [4624], 0),
    ("text value beside a valid one", "sel:\n    EventID: [4624, 'logon']\ncondition: sel", [4624], 1),
    ("float", "sel:\n    EventID: 4624.5\ncondition: sel", [], 1),
    ("null", "sel:\n    EventID: null\ncondition: sel", [], 1),
    ("nested list", "sel:\n    EventID: [4624, [4625]]\ncondition: sel", [4624], 1),
    ("huge int", "sel:\n    EventID: 99999999999999999999\ncondition: sel", [], 1),
    ("negative", "sel:\n    EventID: -1\ncondition: sel", [], 1),
    ("boolean", "sel:\n    EventID: true\ncondition: sel", [], 1),
    ("comparison modifier", "sel:\n    EventID|gt: 4000\ncondition: sel", [], 1),
    ("lower-case field name", "sel:\n    eventid: 4624\ncondition: sel", [4624], 0),
]


@pytest.mark.parametrize("name,detection,expected,errors", EVENT_ID_CASES, ids=[c[0] for c in EVENT_ID_CASES])
def test_event_id_shapes(tmp_path, name, detection, expected, errors):
    result = load_file(str(write(tmp_path, "r.yml", rule_text(detection))))
    assert len(result.rules) == 1, result.errors
    assert list(result.rules[0].event_ids) == expected
    assert len(result.errors) == errors
    for error in result.errors:
        assert "EventID" in error.message


def test_fields_channels_providers_and_keywords(tmp_path):
    detection = """
        sel:
            Provider_Name: 'Service Control Manager'
            Channel: [System, 'Microsoft-Windows-TaskScheduler/Operational']
            ImagePath|contains|all: ['\\Temp\\', '.exe']
            EventID: 7045
        keywords:
            - 'mimikatz'
        condition: sel or keywords
    """
    rule = load_file(str(write(tmp_path, "r.yml", rule_text(detection)))).rules[0]
    assert rule.fields == ("Channel", "EventID", "ImagePath", "Provider_Name")
    assert rule.channels == ("Microsoft-Windows-TaskScheduler/Operational", "System")
    assert rule.providers == ("Service Control Manager",)
    assert ("keywords", (((None, (), ("mimikatz",)),),)) in rule.selections   # a keyword list: one match, no field
    assert (rule.level, rule.status, rule.logsource.key) == ("high", "test", ("windows", None, "security"))


def test_rule_collection_global_reset_repeat(tmp_path):
    text = """\
action: global
title: Collection
status: test
level: medium
logsource:
    product: windows
    service: system
---
id: aaaaaaaa-0000-4000-8000-000000000001
detection:
    sel:
        EventID: 7045
    condition: sel
---
action: repeat
id: aaaaaaaa-0000-4000-8000-000000000002
detection:
    sel:
        EventID: 7040
    condition: sel
---
action: reset
---
title: Standalone
id: aaaaaaaa-0000-4000-8000-000000000003
logsource:
    product: linux
    category: process_creation
detection:
    sel:
        Image|endswith: /curl
    condition: sel
"""
    result = load_file(str(write(tmp_path, "c.yml", text)))
    assert result.errors == []
    got = [(r.id, r.title, r.level, r.logsource.key, r.event_ids) for r in result.rules]
    assert got == [
        ("aaaaaaaa-0000-4000-8000-000000000001", "Collection", "medium", ("windows", None, "system"), (7045,)),
        ("aaaaaaaa-0000-4000-8000-000000000002", "Collection", "medium", ("windows", None, "system"), (7040,)),
        ("aaaaaaaa-0000-4000-8000-000000000003", "Standalone", None, ("linux", "process_creation", None), ()),
    ]


def test_correlation_and_filter_documents_are_recognised(tmp_path):
    text = """\
title: Correlated
id: bbbbbbbb-0000-4000-8000-000000000001
correlation:
    type: event_count
    rules: [x]
    timespan: 5m
---
title: Exclude admin hosts
id: bbbbbbbb-0000-4000-8000-000000000002
logsource:
    product: windows
filter:
    rules: [x]
    selection:
        ComputerName: ADMIN01
    condition: not selection
"""
    result = load_file(str(write(tmp_path, "meta.yml", text)))
    assert result.errors == [] and result.rules == []
    assert [(o.kind, o.title) for o in result.others] == [("correlation", "Correlated"), ("filter", "Exclude admin hosts")]


BAD_FILES = [
    ("not yaml", "title: x\n  detection: [unclosed\n", "not valid YAML"),
    ("list document", "- a\n- b\n", "not a mapping"),
    ("scalar document", "just text\n", "not a mapping"),
    ("no logsource", "title: x\ndetection:\n  sel:\n    a: 1\n  condition: sel\n", "no 'logsource'"),
    ("no detection", "title: x\nlogsource:\n  product: windows\n", "no 'detection'"),
    ("logsource string", "title: x\nlogsource: windows\ndetection:\n  condition: sel\n", "'logsource' is a string"),
    ("detection list", "title: x\nlogsource:\n  product: windows\ndetection: [a, b]\n", "'detection' is a list"),
    ("product a number", "title: x\nlogsource:\n  product: 7\ndetection:\n  condition: sel\n", "not a string"),
    ("empty file", "", "empty file"),
    ("comment only", "# nothing here\n", "empty file"),
    ("unknown action", "action: merge\ntitle: x\n", "unknown action"),
]


@pytest.mark.parametrize("name,text,reason", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_files_are_listed_with_reason(tmp_path, name, text, reason):
    path = write(tmp_path, "bad.yml", text)
    result = load_file(str(path))
    assert result.rules == []
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.path == str(path) and reason in error.message and "\n" not in error.message


def test_yaml_error_has_line_number(tmp_path):
    text = "title: x\nlogsource:\n  product: windows\ndetection:\n  sel: [a, b\n  condition: sel\n"
    error = load_file(str(write(tmp_path, "bad.yml", text))).errors[0]
    assert error.line is not None and 5 <= error.line <= 7


def test_folder_walk_sorted_recursive_and_no_symlink_loop(tmp_path):
    good = rule_text("sel:\n    EventID: 4624\ncondition: sel")
    write(tmp_path, "b/two.yaml", good)
    write(tmp_path, "a/one.yml", good)
    write(tmp_path, "a/nested/three.YML", good)
    write(tmp_path, "a/readme.md", "# not a rule")
    write(tmp_path, ".git/ignored.yml", good)
    os.symlink(tmp_path, tmp_path / "a" / "loop")
    os.symlink(tmp_path / "a" / "one.yml", tmp_path / "b" / "same.yml")
    result = load_paths([str(tmp_path)])
    rel = [os.path.relpath(r.path, tmp_path) for r in result.rules]
    assert rel == ["a/nested/three.YML", "a/one.yml", "b/two.yaml"]
    assert result.errors == [] and result.files == 3


def test_bad_file_does_not_stop_the_rest(tmp_path):
    write(tmp_path, "1.yml", "::: not yaml [")
    write(tmp_path, "2.yml", rule_text("sel:\n    EventID: 4625\ncondition: sel"))
    write(tmp_path, "3.yml", "- just\n- a list\n")
    result = load_paths([str(tmp_path)])
    assert [r.event_ids for r in result.rules] == [(4625,)]
    assert [os.path.basename(e.path) for e in result.errors] == ["1.yml", "3.yml"]


def test_unreadable_file(tmp_path, monkeypatch):
    path = write(tmp_path, "secret.yml", rule_text("sel:\n    EventID: 1\ncondition: sel"))
    real_open = open

    def deny(name, *args, **kwargs):  # as chmod 000 would, also when the tests run as root
        if str(name) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr("logsource_checker.rules.walk.open", deny, raising=False)
    result = load_paths([str(tmp_path)])
    assert result.rules == [] and "cannot read" in result.errors[0].message


DETECTION_CASES = [
    # (detection YAML, expected condition, expected selections)
    ("""
detection:
  selection:
    Image|endswith: '\\\\a.exe'
    CommandLine|contains|all: [x, y]
  filter:
    - ParentImage: C:\\\\p.exe
    - User: null
  condition: selection and not filter
""", ("selection and not filter",),
     (("selection", ((("Image", ("endswith",), ("\\\\a.exe",)), ("CommandLine", ("contains", "all"), ("x", "y"))),)),
      ("filter", ((("ParentImage", (), ("C:\\\\p.exe",)),), (("User", (), (None,)),))))),
    ("""
detection:
  keywords: [evil, 4688, true]
  condition: [keywords, keywords]
""", ("keywords", "keywords"), (("keywords", (((None, (), ("evil", "4688", "true")),),)),)),
]


@pytest.mark.parametrize("detection, condition, selections", DETECTION_CASES)
def test_detection_model(tmp_path, detection, condition, selections):
    from logsource_checker.rules import load_paths

    path = tmp_path / "r.yml"
    path.write_text("title: t\nlogsource: {product: windows, category: process_creation}\n" + detection)
    result = load_paths([str(path)])
    assert not result.errors
    (rule,) = result.rules
    assert rule.condition == condition
    assert rule.selections == selections
