"""Hostile and broken rule input (issue 7): never a traceback, a hang, a memory blow-up, a file read
that was not asked for, or rule text in a command.

Three tables: bad YAML content (``load_file``), bad files on disk (``load_paths``), and the whole
command on a folder of bad files beside good rules. Then output injection: the sample rules with
hostile titles, descriptions, authors, ids, levels, field names and file names are run through
``--emit``/``--docs`` in every report format and compared with the same rules with harmless text:
the command lines of the generated scripts must be identical, no template may evaluate rule text,
and Markdown, XML and JSON must stay well formed, and the terminal report prints rich markup literally.
(tests/test_rules.py and tests/test_escaping.py hold the ordinary bad-file cases and the escaping
functions; they are not repeated here. Encodings, undecodable bytes, alias bombs and the size limit live
here only.)
"""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import SAMPLES
from logsource_checker.rules import walk as rules_walk  # where rule files are found and opened
from logsource_checker.rules import (MAX_DETECTION_DEPTH, MAX_ERRORS_PER_FILE, MAX_RULE_FILE_BYTES, load_file,
                                     load_paths)

#: Every hostile case must finish well within this (seconds); the slowest takes a fraction of it.
FAST_ENOUGH = 10.0

HEAD = "title: {title}\nlogsource:\n    product: windows\n    service: security\n"
GOOD_DETECTION = "detection:\n    sel:\n        EventID: 4624\n    condition: sel\n"
GOOD = HEAD.format(title="Good") + GOOD_DETECTION


def bomb(levels: int = 9, width: int = 9, name: str = "a") -> str:
    """A billion-laughs alias bomb: ``width ** levels`` leaves from a few hundred bytes."""
    lines = [f"{name}0: &{name}0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"{name}{i}: &{name}{i} [" + ", ".join([f"*{name}{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def nested_block(depth: int, leaf: str = "v: 1") -> str:
    return "".join("    " * (i + 1) + f"k{i}:\n" for i in range(depth)) + "    " * (depth + 1) + leaf + "\n"


def with_event_id(value: str) -> str:
    return HEAD.format(title="T") + f"detection:\n    sel:\n        EventID: [4624, {value}]\n    condition: sel\n"


def timed(function, *args):
    start = time.monotonic()
    result = function(*args)
    elapsed = time.monotonic() - start
    assert elapsed < FAST_ENOUGH, f"took {elapsed:.1f}s"
    return result


# --------------------------------------------------------------------------- bad YAML content
# (name, file content, rules expected, event IDs of the first rule or None, substring of an error or None)

CONTENT_CASES = [
    # alias bombs wherever the loader reads (or turns into text) a value
    ("bomb as title", bomb() + "title: *a8\n" + HEAD.split("\n", 1)[1] + GOOD_DETECTION, 1, (4624,),
     "'title' is a list, not a string"),
    ("bomb as id", bomb() + "id: *a8\n" + GOOD, 1, (4624,), "'id' is a list, not a string"),
    ("bomb as logsource definition", bomb() + GOOD.replace("service: security\n", "service: security\n"
                                                           "    definition: *a8\n"), 1, (4624,), None),
    ("bomb as action", bomb() + "action: *a8\n" + GOOD, 0, None, "unknown action"),
    ("bomb in a key never read", bomb() + "references: *a8\nfalsepositives: [*a8, *a8]\n" + GOOD, 1, (4624,), None),
    ("bomb as tags", bomb() + "tags: *a8\n" + GOOD, 1, (4624,), "'tags' holds values that are not strings"),
    ("bomb as EventID", bomb() + HEAD.format(title="T") + "detection:\n    sel:\n        EventID: *a8\n"
     "    condition: sel\n", 1, (), "is not an event ID"),
    ("bomb as a keyword list", bomb() + HEAD.format(title="T") + "detection:\n    keywords: *a8\n"
     "    condition: keywords\n", 0, None, "alias bomb"),
    ("bomb as a field value", HEAD.format(title="T") + bomb(width=10) + "detection:\n    sel:\n        Image: *a8\n"
     "    condition: sel\n", 0, None, "alias bomb"),
    ("bomb in a global collection document", bomb() + "action: global\ntitle: *a8\n---\n" + GOOD, 1, (4624,), None),
    # nesting
    ("flow nesting 20000 deep", HEAD.format(title="T") + "detection:\n    sel: " + "[" * 20000 + "]" * 20000
     + "\n    condition: sel\n", 0, None, "not valid YAML"),
    ("detection nested past the limit", HEAD.format(title="T") + "detection:\n    sel:\n"
     + nested_block(MAX_DETECTION_DEPTH + 5).replace("    ", "    ", 1) + "    condition: sel\n", 0, None,
     f"nested deeper than {MAX_DETECTION_DEPTH}"),
    ("global collection merged 990 deep", "action: global\ntitle: deep\nlogsource: {product: windows}\n"
     "detection:\n" + nested_block(990) + "---\ndetection:\n" + nested_block(990, "w: 2"), 0, None, "nested deeper"),
    # tags and values YAML 1.1 cannot convert
    ("python object tag", "!!python/object/apply:os.system ['echo pwned']\n", 0, None, "not valid YAML"),
    ("python tag inside a rule", GOOD + "x: !!python/name:os.system\n", 0, None, "not valid YAML"),
    ("impossible date elsewhere in the rule", "---\ndate: 2020-02-30\nmodified: 2021-13-01\n" + GOOD, 1, (4624,),
     None),
    ("impossible date as title", "---\n" + GOOD.replace("title: Good", "title: 2020-02-30"), 1, (4624,), None),
    ("EventID of 5000 digits", with_event_id("9" * 5000), 1, (4624,), "EventID value"),
    ("EventID string of 5000 digits", with_event_id("'" + "1" * 5000 + "'"), 1, (4624,), "EventID value"),
    ("EventID hex of 5000 digits", with_event_id("0x" + "f" * 5000), 1, (4624,), "EventID value"),
    ("EventID Arabic-Indic digits", with_event_id("'٤٦٢٥'"), 1, (4624,), "not an event ID"),
    ("EventID !!float abc", with_event_id("!!float abc"), 1, (4624,), "EventID value 'abc'"),
    ("EventID !!binary", with_event_id("!!binary aGVsbG8="), 1, (4624,), "EventID value b'hello'"),
    ("EventID a date", with_event_id("2020-01-01"), 1, (4624,), "EventID value"),
    ("EventID a mapping", with_event_id("{a: 1}"), 1, (4624,), "EventID value {'a': 1}"),
    ("EventID 1e400", with_event_id("1e400"), 1, (4624,), "EventID value"),
    ("EventID .nan", with_event_id(".nan"), 1, (4624,), "EventID value"),
    # wrong types elsewhere
    ("title a mapping", GOOD.replace("title: Good", "title: {a: 1}"), 1, (4624,), "'title' is a mapping"),
    ("id a list", "id: [1, 2]\n" + GOOD, 1, (4624,), "'id' is a list"),
    ("id a number", "id: 12345\n" + GOOD, 1, (4624,), None),
    ("level and status of wrong types", "level: [high]\nstatus: {a: b}\n" + GOOD, 1, (4624,), None),
    ("field name a number", HEAD.format(title="T") + "detection:\n    sel:\n        1: x\n        EventID: 4624\n"
     "    condition: sel\n", 1, (4624,), "field name 1 is not a string"),
    ("detection with only a condition", HEAD.format(title="T") + "detection:\n    condition: sel\n", 1, (), None),
    ("action: repeat first", "action: repeat\n" + GOOD, 0, None, "with no document before it"),
    ("only a global document", "action: global\n" + GOOD, 0, None, "no rule in the file"),
    # empty and near-empty
    ("whitespace only", " \n\n  \n \r\n", 0, None, "empty file"),
    ("document markers only", "---\n...\n---\n", 0, None, "empty file"),
    ("null document", "~\n", 0, None, "empty file"),
    # encodings and control characters
    ("UTF-16 without BOM", GOOD.encode("utf-16-le"), 0, None, "binary"),
    ("control bytes and 0xff", b"\x00\x01\x02binary\xff", 0, None, "binary"),
    ("UTF-16 LE with BOM", GOOD.encode("utf-16"), 1, (4624,), None),
    ("UTF-16 BE with BOM and CRLF", GOOD.replace("\n", "\r\n").encode("utf-16-be").join([b"\xfe\xff", b""]), 1,
     (4624,), None),
    ("UTF-16 with a lone surrogate", b"\xff\xfe" + "title: x\n".encode("utf-16-le") + b"\x00\xd8", 0, None,
     "not valid UTF-16"),
    ("UTF-32", GOOD.encode("utf-32"), 0, None, "not valid"),
    ("UTF-8 BOM and CRLF", b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode(), 1, (4624,), None),
    ("non-ASCII title", GOOD.replace("title: Good", "title: Anmeldung \u00fcber Netzwerk"), 1, (4624,), None),
    ("latin-1 byte without BOM", "title: caf\xe9\n".encode("latin-1"), 0, None, "not UTF-8"),
    ("BOM, CRLF and a latin-1 byte", b"\xef\xbb\xbf" + GOOD.replace("Good", "Caf\xe9").replace("\n", "\r\n")
     .encode("latin-1"), 0, None, "not UTF-8"),
    ("old Mac CR line ends", GOOD.replace("\n", "\r"), 1, (4624,), None),
    ("escaped NUL and bidi in title", GOOD.replace("title: Good", 'title: "a\\0b\\u202ec"'), 1, (4624,), None),
    ("escaped lone surrogate", GOOD.replace("title: Good", 'title: "\\ud800"'), 0, None, "not valid YAML"),
    ("tab indentation", GOOD.replace("    service", "\tservice"), 0, None, "not valid YAML"),
    ("one 4 MB line", GOOD.replace("title: Good", "title: " + "A" * 4_000_000), 1, (4624,), None),
]


@pytest.mark.parametrize("name,content,n_rules,event_ids,reason", CONTENT_CASES, ids=[c[0] for c in CONTENT_CASES])
def test_hostile_content(tmp_path, name, content, n_rules, event_ids, reason):
    path = tmp_path / "hostile.yml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    result = timed(load_file, str(path))
    assert len(result.rules) == n_rules, result.errors
    if event_ids is not None:
        assert result.rules[0].event_ids == event_ids
    if reason is None:
        assert result.errors == []
    else:
        assert any(reason in e.message for e in result.errors), result.errors
    for error in result.errors:  # one bounded line naming the file: never an expanded bomb or a 5000-digit number
        assert error.path == str(path) and "\n" not in error.message and len(error.message) < 300
        assert not error.message.startswith("internal error")
    for rule in result.rules:
        assert rule.title is None or len(rule.title) <= 4_000_010


def test_values_yaml_cannot_convert_are_kept_as_text(tmp_path):
    path = tmp_path / "r.yml"
    path.write_text("---\n" + GOOD.replace("title: Good", "title: 2020-02-30").replace(
        "EventID: 4624", "EventID: [4624, !!int 0xZZ]"))
    rule = load_file(str(path)).rules[0]
    assert rule.title == "2020-02-30" and rule.event_ids == (4624,)


def test_errors_per_file_are_capped(tmp_path):
    path = tmp_path / "many.yml"
    path.write_text("--- 1\n" * 5000)
    result = timed(load_file, str(path))
    assert len(result.errors) == MAX_ERRORS_PER_FILE + 1
    assert result.errors[0].message == "document 1 is a number, not a mapping"
    assert result.errors[-1].message == f"{5000 - MAX_ERRORS_PER_FILE} more problems in this file not listed"


def test_file_at_the_size_limit_is_read(tmp_path):
    path = tmp_path / "big.yml"
    padding = MAX_RULE_FILE_BYTES - len(GOOD.encode()) - 2
    path.write_bytes(GOOD.encode() + b"#" + b"x" * padding + b"\n")
    assert path.stat().st_size == MAX_RULE_FILE_BYTES
    result = timed(load_file, str(path))
    assert result.errors == [] and result.rules[0].event_ids == (4624,)


def test_oversized_file_is_never_opened(tmp_path, monkeypatch):
    path = tmp_path / "huge.yml"
    with open(path, "wb") as handle:
        handle.truncate(MAX_RULE_FILE_BYTES + 1)
    opened = []
    monkeypatch.setattr(rules_walk, "open", lambda name, *a, **k: opened.append(name), raising=False)
    result = load_file(str(path))
    assert opened == [] and result.rules == []
    assert f"{MAX_RULE_FILE_BYTES + 1} bytes, over the {MAX_RULE_FILE_BYTES} byte limit; not read" in \
        result.errors[0].message


def test_file_that_grows_after_the_size_check_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "grows.yml"
    path.write_bytes(GOOD.encode() + b"#" * MAX_RULE_FILE_BYTES)
    monkeypatch.setattr(rules_walk.os.path, "getsize", lambda p: 10)  # as if it grew after the check
    result = load_file(str(path))
    assert result.rules == [] and "limit" in result.errors[0].message


# --------------------------------------------------------------------------- bad files on disk

def _fifo(folder: Path) -> Path:
    path = folder / "pipe.yml"
    os.mkfifo(path)
    return path


def _self_link(folder: Path) -> Path:
    path = folder / "self.yml"
    os.symlink("self.yml", path)
    return path


def _dangling(folder: Path) -> Path:
    path = folder / "dangling.yml"
    os.symlink("nowhere.yml", path)
    return path


def _device(folder: Path) -> Path:
    path = folder / "null.yml"
    os.symlink(os.devnull, path)
    return path


def _dir_named_yml(folder: Path) -> Path:
    path = folder / "rules.yml"
    path.mkdir()
    (path / "inner.yaml").write_text(GOOD)
    return path


FS_CASES = [
    # (name, make(folder) -> path, reason or None when the entry is fine)
    ("fifo named .yml (never opened: no hang)", _fifo, "not a regular file"),
    ("symlink to itself", _self_link, "cannot read file"),
    ("dangling symlink", _dangling, "cannot read file"),
    ("symlink to a device", _device, "not a regular file"),
    ("folder named .yml", _dir_named_yml, None),
]


@pytest.mark.parametrize("name,make,reason", FS_CASES, ids=[c[0] for c in FS_CASES])
def test_hostile_files_on_disk(tmp_path, name, make, reason):
    (tmp_path / "good.yml").write_text(GOOD)
    bad = make(tmp_path)
    result = timed(load_paths, [str(tmp_path)])
    assert any(r.path.endswith("good.yml") and r.event_ids == (4624,) for r in result.rules)
    if reason is None:
        assert result.errors == []
    else:
        assert [(e.path, reason in e.message) for e in result.errors] == [(str(bad), True)], result.errors
    # given directly, the same entry gives the same verdict
    direct = timed(load_paths, [str(bad)])
    if reason is not None:
        assert reason in direct.errors[0].message and direct.rules == []


@pytest.mark.parametrize("name", [
    "with space.yml", "quote'single.yml", 'quote"double.yml', "ünïcödé ✓.yml", "new\nline.yml", "pipe|amp&.yml",
    "$(touch pwned).yml", "`id`.yml", "-dash-first.yml", "{{ 7*7 }}.yml",
])
def test_odd_file_names(cli, tmp_path, name):
    folder = tmp_path / "rules"
    folder.mkdir()
    path = folder / name
    path.write_text(GOOD)
    result = load_paths([str(folder)])
    assert [(r.path, r.event_ids) for r in result.rules] == [(str(path), (4624,))]
    # the file name reaches the report as it is, and no generated command: the scripts are those of a plain name
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "plain.yml").write_text(GOOD)
    scripts = {}
    for label, rules in (("odd", folder), ("plain", plain)):
        emit = tmp_path / f"{label}-emit"
        run = cli(rules, "--emit", emit, "--format", "json", "--no-cache")
        assert run.exit_code == 0, run.stderr
        assert [r["path"] for r in run.json()["rules"]] == [str(rules / (name if label == "odd" else "plain.yml"))]
        scripts[label] = {f: (emit / f).read_bytes().decode("utf-8") for f in (*COMMAND_FILES, "audit.csv")}
    for script, comment in COMMAND_FILES.items():
        odd, good = scripts["odd"][script].splitlines(), scripts["plain"][script].splitlines()
        assert len(odd) == len(good), script
        for line, plain_line in zip(odd, good):  # a comment may differ, in harmless characters only
            assert line == plain_line or (line.lstrip().startswith(comment) and set(line) <= SCRIPT_SAFE), \
                (script, line)
    assert scripts["odd"]["audit.csv"] == scripts["plain"]["audit.csv"]


def test_undecodable_file_name_is_shown_escaped(tmp_path):
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9.yml"
    with open(raw, "wb") as handle:
        handle.write(GOOD.encode())
    result = load_paths([str(tmp_path)])
    path = result.rules[0].path
    assert path.endswith("caf\\xe9.yml") and path.encode("utf-8")  # printable as UTF-8


def test_only_rule_files_are_opened(tmp_path, monkeypatch):
    """Nothing but .yml/.yaml files below the given paths (hidden folders skipped) is read."""
    (tmp_path / "a.yml").write_text(GOOD)
    (tmp_path / "b.YAML").write_text(GOOD)
    for other in ("secret.txt", "rule.yml.bak", "rule.json", "yml", ".hidden/x.yml", "sub/.git/config.yml"):
        target = tmp_path / other
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(GOOD)
    opened = []
    real_open = open
    monkeypatch.setattr(rules_walk, "open", lambda name, *a, **k: opened.append(os.path.basename(name))
                        or real_open(name, *a, **k), raising=False)
    result = load_paths([str(tmp_path)])
    assert sorted(opened) == ["a.yml", "b.YAML"] and len(result.rules) == 2


def test_symlink_loops_between_folders(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "r.yml").write_text(GOOD)
    os.symlink(tmp_path / "b", tmp_path / "a" / "to_b")
    os.symlink(tmp_path / "a", tmp_path / "b" / "to_a")
    os.symlink("loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    result = timed(load_paths, [str(tmp_path), str(tmp_path / "a")])
    assert [os.path.relpath(r.path, tmp_path) for r in result.rules] == ["a/r.yml"]


needs_permissions = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                                       reason="file permissions do not apply to root")


@needs_permissions
@pytest.mark.parametrize("target,reason", [("file", "cannot read file"), ("folder", "cannot read folder")])
def test_unreadable_by_permissions(tmp_path, target, reason):
    (tmp_path / "good.yml").write_text(GOOD)
    locked = tmp_path / "locked"
    locked.mkdir()
    if target == "file":
        bad = locked / "secret.yml"
        bad.write_text(GOOD)
        bad.chmod(0)
    else:
        (locked / "inner.yml").write_text(GOOD)
        bad = locked
        locked.chmod(0)
    try:
        result = load_paths([str(tmp_path)])
    finally:
        bad.chmod(stat.S_IRWXU)
    assert [os.path.basename(r.path) for r in result.rules] == ["good.yml"]
    assert [(e.path, reason in e.message) for e in result.errors] == [(str(bad), True)]


def test_unreadable_folder(tmp_path, monkeypatch):
    """As chmod 000 would (also when the tests run as root): listed, and the rest still read."""
    (tmp_path / "good.yml").write_text(GOOD)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "inner.yml").write_text(GOOD)
    real_scandir = os.scandir

    def deny(path):
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(rules_walk.os, "scandir", deny)
    result = load_paths([str(tmp_path)])
    assert [os.path.basename(r.path) for r in result.rules] == ["good.yml"]
    assert [(e.path, e.message) for e in result.errors] == [(str(locked), "cannot read folder: Permission denied")]


# --------------------------------------------------------------------------- the whole command

MIXED_FOLDER = {
    # file name: (content, reason in the report; None for a good rule)
    "01-good.yml": (GOOD, None),
    "02-bomb-title.yml": (bomb() + "title: *a8\n" + HEAD.split("\n", 1)[1] + GOOD_DETECTION, "'title' is a list"),
    "03-bomb-detection.yml": (bomb() + HEAD.format(title="B") + "detection:\n    sel:\n        Image: *a8\n"
                              "    condition: sel\n", "alias bomb"),
    "04-deep.yml": ("x: " + "[" * 50000 + "]" * 50000 + "\n", "not valid YAML"),
    "05-binary.yml": (bytes(range(256)) * 4, "binary"),
    "06-latin1.yml": ("title: caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "07-comment-only.yml": ("# nothing\n# at all\n", "empty file"),
    "08-logsource-string.yml": ("title: x\nlogsource: windows\ndetection: {sel: {EventID: 1}, condition: sel}\n",
                                "'logsource' is a string"),
    "09-detection-list.yml": ("title: x\nlogsource: {product: windows}\ndetection: [sel]\n", "'detection' is a list"),
    "10-mixed-eventids.yml": (with_event_id("4624.5, null, [4625], 99999999999999999999, logon, 4634"),
                              "EventID value"),
    "11-python-tag.yml": ("!!python/object/apply:os.system ['touch pwned']\n", "not valid YAML"),
    "12-bad-date.yml": ("---\ndate: 2020-02-30\n" + GOOD.replace("4624", "4625"), None),
    "13 name with spaces 'and' \"quotes\" ü.yml": (GOOD.replace("4624", "4648"), None),
    "14-utf16.yml": (GOOD.replace("4624", "4672").replace("\n", "\r\n").encode("utf-16"), None),
}


def _make_mixed(folder: Path) -> dict[str, str]:
    folder.mkdir()
    for name, (content, _) in MIXED_FOLDER.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with open(folder / "15-huge.yml", "wb") as handle:
        handle.truncate(MAX_RULE_FILE_BYTES + 1)
    os.mkfifo(folder / "16-fifo.yml")
    os.symlink("17-loop.yml", folder / "17-loop.yml")
    expected = {name: reason for name, (_, reason) in MIXED_FOLDER.items() if reason}
    expected.update({"15-huge.yml": "byte limit; not read", "16-fifo.yml": "not a regular file",
                     "17-loop.yml": "cannot read file"})
    return expected


def _check_mixed_report(report: dict, expected: dict[str, str]) -> None:
    by_file: dict[str, list[str]] = {}
    for error in report["errors"]:
        by_file.setdefault(os.path.basename(error["path"]), []).append(error["message"])
    assert set(by_file) == set(expected), by_file
    for name, reason in expected.items():
        assert any(reason in message for message in by_file[name]), (name, by_file[name])
    assert all(len(m) < 300 and "\n" not in m for messages in by_file.values() for m in messages)
    event_ids = {os.path.basename(r["path"]): r["event_ids"] for r in report["rules"]}
    assert event_ids["01-good.yml"] == [4624]
    assert event_ids["10-mixed-eventids.yml"] == [4624, 4634]  # the valid ones beside the invalid ones
    assert event_ids["12-bad-date.yml"] == [4625]
    assert event_ids["13 name with spaces 'and' \"quotes\" ü.yml"] == [4648]
    assert event_ids["14-utf16.yml"] == [4672]
    assert report["summary"]["errors"] == len(report["errors"])


def test_command_on_a_folder_of_hostile_files(tmp_path):
    """Out of process with a timeout: a hang fails the test instead of blocking the suite."""
    folder = tmp_path / "rules"
    expected = _make_mixed(folder)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "logsource_checker", str(folder), "--format", "json"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    _check_mixed_report(json.loads(proc.stdout), expected)
    assert not list(tmp_path.rglob("pwned"))
    # the second run reads the cache and must say the same
    again = subprocess.run([sys.executable, "-m", "logsource_checker", str(folder), "--format", "json"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert again.returncode == 1 and json.loads(again.stdout)["errors"] == json.loads(proc.stdout)["errors"]


@pytest.mark.parametrize("fmt", ["text", "markdown", "terminal"])
def test_every_format_lists_the_hostile_files(cli, tmp_path, fmt):
    folder = tmp_path / "rules"
    expected = _make_mixed(folder)
    out = tmp_path / f"report.{fmt}"
    result = cli(folder, "--format", fmt, "--output", out, "--no-cache")
    assert result.exit_code == 1
    text = out.read_text(encoding="utf-8")
    for name in expected:
        stem = name.split(".")[0]
        assert stem in text, (name, fmt)


# --------------------------------------------------------------------------- output injection

INJECTION = [
    'quote " \' and `backtick` and $(touch pwned) and ${HOME}',
    "amp & pipe | semicolon ; caret ^& percent %COMSPEC% !delayed!",
    "line one\nINJECTED line\r\nauditpol /set /subcategory:INJECTED\n# INJECTED heading\n| INJECTED | row |",
    "{{ 1337*1337 }} {% for x in 'ab' %}Q{{ x }}Z{% endfor %} {# comment #} {{ config }}",
    "<script>alert(1)</script> <img src=x onerror=alert(1)>",
    "]]> </Sysmon> <!-- comment --> <?xml version='1.0'?> <!DOCTYPE x [<!ENTITY e 'x'>]> &e;",
    "[link](javascript:alert(1)) ![img](http://x) **bold** _it_ <https://evil>",
    "\x1b[31mred\x1b[0m \u202eevil\u202c \u2028sep \x85nel",
    "[red]Evil[/red] [/nope] [bold]B[/bold] [link=https://evil.example]L[/link] :smile:",
]
#: Rich console markup: the terminal report must print it as written (as markup it would be styled or crash)
MARKUP = INJECTION[-1]
#: Strings that only appear in an output if a template evaluated rule text.
EVALUATED = ["1787569", "QaZQbZ", "<Config"]


def _hostile_text(index: int) -> str:
    return INJECTION[index % len(INJECTION)]


def _rule_set(folder: Path, hostile: bool) -> None:
    """The sample rules, with every free-text field (and file name) hostile or harmless."""
    folder.mkdir()
    counter = iter(range(10_000))
    for sample in sorted((SAMPLES / "rules").rglob("*.yml")):
        docs = list(yaml.safe_load_all(sample.read_text(encoding="utf-8")))
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            n = next(counter)
            text = _hostile_text(n) if hostile else f"Harmless text {n}"
            for key in ("title", "description", "author"):
                if key in doc or key == "description":
                    doc[key] = text
            doc["references"] = [text]
            doc["falsepositives"] = [text]
            if "id" in doc:
                doc["id"] = f"{doc['id']} {text}" if hostile else doc["id"]
        name = sample.name
        if hostile:
            name = f"{next(counter):02d} {_hostile_text(n)[:40]}".replace("/", "_").replace("\x00", "") + ".yml"
        (folder / name).write_text(yaml.safe_dump_all(docs, allow_unicode=True, sort_keys=False), encoding="utf-8")
    # plus a rule whose log source, level, field names and values are hostile (unmapped in both runs)
    odd = _hostile_text(2) if hostile else "widget"
    extra = {"title": _hostile_text(3) if hostile else "Extra", "level": _hostile_text(1) if hostile else "medium",
             "logsource": {"product": "acme " + odd, "category": odd},
             "detection": {"sel": {(odd + "|contains") if hostile else "Field|contains": [odd],
                                   "Channel": odd, "Provider_Name": odd}, "condition": "sel"}}
    (folder / "zz-extra.yml").write_text(yaml.safe_dump(extra, allow_unicode=True), encoding="utf-8")


COMMAND_FILES = {"auditpol.cmd": "REM", "auditpol.ps1": "#", "channels.cmd": "REM", "registry.reg": ";"}
SCRIPT_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:;/()_=+#@-\r\n")


def _command_lines(text: str, comment: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(comment)]


def _run(cli, tmp_path: Path, hostile: bool, fmt: str) -> dict:
    kind = "hostile" if hostile else "harmless"
    rules = tmp_path / f"{kind}-rules"
    if not rules.exists():
        _rule_set(rules, hostile)
    emit, docs = tmp_path / f"{kind}-{fmt}-emit", tmp_path / f"{kind}-{fmt}-docs"
    # the terminal report shows titles only with --verbose
    result = cli(rules, "--emit", emit, "--docs", docs, "--format", fmt, "--no-cache", *(["-v"] if fmt == "terminal" else []))
    outputs = {f"stdout.{fmt}": result.stdout}
    for label, folder in (("emit", emit), ("docs", docs)):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name != ".logsource-checker-manifest.json":  # the writer's, not an output
                outputs[f"{label}/{path.relative_to(folder)}"] = path.read_bytes().decode("utf-8")
    return {"exit": result.exit_code, "outputs": outputs, "stderr": result.stderr}


def _table_problems(name: str, text: str) -> list[str]:
    problems = []
    table: list[str] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            counts = [len(re.findall(r"(?<!\\)\|", row)) for row in table]
            if len(set(counts)) != 1:
                problems.append(f"{name}: table rows with {counts} column separators: {table}")
            table = []
    return problems


FORMATS = ("markdown", "text", "json", "terminal")


@pytest.fixture(scope="module")
def injection_runs(tmp_path_factory):
    """Each format, hostile and harmless, run once for the module (--no-cache: no cache is touched)."""
    from typer.testing import CliRunner

    from logsource_checker.cli import app

    def cli(*args):
        try:
            runner = CliRunner(mix_stderr=False)
        except TypeError:  # newer Click keeps stderr apart by default
            runner = CliRunner()
        # wide enough that rich wraps no table cell or line in the terminal report
        res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env={"COLUMNS": "1000"})
        return type("Result", (), {"exit_code": res.exit_code, "stdout": res.stdout,
                                   "stderr": res.stderr if hasattr(res, "stderr") else ""})

    tmp_path = tmp_path_factory.mktemp("injection")
    return {(hostile, fmt): _run(cli, tmp_path, hostile, fmt)
            for fmt in FORMATS for hostile in (False, True)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_text_changes_no_command(injection_runs, fmt):
    hostile, harmless = injection_runs[(True, fmt)], injection_runs[(False, fmt)]
    assert hostile["exit"] == harmless["exit"] == 1  # the unmapped extra rule
    for name, comment in COMMAND_FILES.items():
        bad, good = hostile["outputs"][f"emit/{name}"], harmless["outputs"][f"emit/{name}"]
        assert _command_lines(bad, comment) == _command_lines(good, comment), name
        # comments may carry rule text only as harmless characters
        assert set(bad) <= set(good) | SCRIPT_SAFE, (name, set(bad) - set(good) - SCRIPT_SAFE)
    assert hostile["outputs"]["emit/audit.csv"] == harmless["outputs"]["emit/audit.csv"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_template_evaluates_rule_text(injection_runs, fmt):
    for name, text in injection_runs[(True, fmt)]["outputs"].items():
        for marker in EVALUATED:
            assert marker not in text, (name, marker)


@pytest.mark.parametrize("fmt", FORMATS)
def test_outputs_stay_well_formed(injection_runs, fmt):
    from lxml import etree

    hostile, harmless = injection_runs[(True, fmt)]["outputs"], injection_runs[(False, fmt)]["outputs"]
    assert sorted(hostile) == sorted(harmless)
    problems = []
    for name, text in hostile.items():
        if name.endswith(".md") or name == "stdout.markdown":
            problems += _table_problems(name, text)
            assert "<script" not in text and "<img" not in text and "</Sysmon>" not in text, name
        if name.endswith((".md", ".markdown", ".text", ".terminal", ".cmd", ".ps1", ".reg", ".csv")):
            for line in text.splitlines():  # an injected newline would start a line of its own
                assert not line.lstrip(" |>#*-`").startswith(("INJECTED", "auditpol /set /subcategory:INJECTED")), \
                    (name, line)
        if name.endswith(".xml"):
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
            root = etree.fromstring(text.encode("utf-8"), parser)
            good = etree.fromstring(harmless[name].encode("utf-8"), parser)
            for tree in (root, good):
                for comment in tree.xpath("//comment()"):
                    comment.getparent().remove(comment)
            assert etree.tostring(root) == etree.tostring(good), name
        if name.endswith(".json") or name == "stdout.json":
            report = json.loads(text)
            titles = {r["title"] for r in report["rules"]}
            assert titles & set(INJECTION), "JSON keeps the exact rule text"
            assert MARKUP in titles, "the markup title is in the rule set"
        if name.endswith("mkdocs.yml"):
            assert yaml.safe_load(text) == yaml.safe_load(harmless[name])
    assert problems == []


def test_terminal_prints_rich_markup_literally(injection_runs):
    """Rule text is rich Text, never markup: '[red]Evil[/red] [/nope]' shows as written (as markup it would be
    styled away, and the stray closing tag would raise MarkupError)."""
    hostile, harmless = injection_runs[(True, "terminal")], injection_runs[(False, "terminal")]
    assert hostile["exit"] == harmless["exit"] == 1, hostile["stderr"]
    out = hostile["outputs"]["stdout.terminal"]
    rows = [line for line in out.splitlines() if MARKUP in line]
    assert rows, out  # the title, in one table cell of the Rules table
    assert "\x1b" not in out  # no terminal escape sequence, neither styled markup nor rule text
    assert "Harmless text" in harmless["outputs"]["stdout.terminal"]
