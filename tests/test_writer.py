"""The one writer behind --emit, --docs and -o (issue 11): refusals, atomicity, symlinks, idempotence,
--force, the summary printed instead of the report, and --fail-on never.

Every refusal is checked the way a user meets it: through the command, exit 2, one line on standard
error, no traceback, and every file below the test folder (content, links) exactly as it was before.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from logsource_checker import writer
from logsource_checker.writer import MANIFEST, Guard, WriteRefused, write_tree

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "samples" / "rules"
GPRESULT = ROOT / "samples" / "gpresult" / "advanced-audit.xml"
SYSMON = ROOT / "samples" / "sysmon" / "partial-config.xml"
# with the sample gpresult the native plan adds no Sysmon event type, so no sysmon.xml is written
EMITTED = ["audit.csv", "audit.rules", "auditpol.cmd", "auditpol.ps1", "channels.cmd", "gpo.md", "registry.reg", "report.json",
           "report.md"]


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry below ``folder``: file bytes, link targets, folders (never following a link)."""
    state: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                state[rel] = "dir"
            else:
                state[rel] = path.read_bytes()
    return state


def refused(result) -> None:  # noqa: ANN001
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("check-logsources: error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.fixture
def work(tmp_path) -> Path:
    """A folder holding a copy of the sample rules and policy inputs (so inputs can be hard-linked)."""
    shutil.copytree(RULES, tmp_path / "rules")
    shutil.copy(GPRESULT, tmp_path / "gpresult.xml")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("the user's file\n")
    return tmp_path


def _rule_file(work: Path) -> Path:
    return sorted((work / "rules").rglob("*.yml"))[0]


def _emitted(work: Path, cli, out: Path, *args: str) -> None:  # noqa: ANN001
    result = cli(work / "rules", "--gpresult", work / "gpresult.xml", "--emit", out, *args)
    assert result.exit_code == 1, result.stderr


# Each case: set the scene in ``work`` and return the command's extra arguments.
def _o_rule_file(work, cli):  # noqa: ANN001, ANN202
    return ["-o", _rule_file(work), "-f", "json"]


def _o_policy_input(work, cli):  # noqa: ANN001, ANN202
    return ["-o", work / "gpresult.xml", "-f", "json"]


def _o_hard_link_to_rule(work, cli):  # noqa: ANN001, ANN202
    os.link(_rule_file(work), work / "report.json")
    return ["-o", work / "report.json", "-f", "json"]


def _emit_into_rule_folder(work, cli):  # noqa: ANN001, ANN202
    return ["--emit", work / "rules"]


def _emit_into_rule_folder_by_another_name(work, cli):  # noqa: ANN001, ANN202
    return ["--emit", work / "rules" / "windows" / ".." / ".." / "rules", "--force"]


def _emit_over_sysmon_input(work, cli):  # noqa: ANN001, ANN202
    (work / "out").mkdir()
    shutil.copy(SYSMON, work / "out" / "sysmon.xml")
    return ["--sysmon-config", work / "out" / "sysmon.xml", "--emit", work / "out"]


def _emit_over_auditpol_input(work, cli):  # noqa: ANN001, ANN202
    _emitted(work, cli, work / "out")
    return ["--auditpol", work / "out" / "audit.csv", "--emit", work / "out"]


def _emit_hard_link_of_rule(work, cli):  # noqa: ANN001, ANN202
    _emitted(work, cli, work / "out")
    (work / "out" / "report.md").unlink()
    os.link(_rule_file(work), work / "out" / "report.md")
    return ["--emit", work / "out", "--force"]   # even --force never writes over an input


def _emit_to_symlinked_folder(work, cli):  # noqa: ANN001, ANN202
    (work / "link").symlink_to(work / "outside")
    return ["--emit", work / "link", "--force"]


def _emit_file_is_symlink(work, cli):  # noqa: ANN001, ANN202
    _emitted(work, cli, work / "out")
    (work / "out" / "gpo.md").unlink()
    (work / "out" / "gpo.md").symlink_to(work / "outside" / "precious.txt")
    return ["--emit", work / "out", "--force"]


def _docs_subfolder_is_symlink(work, cli):  # noqa: ANN001, ANN202
    (work / "site").mkdir()
    (work / "site" / "docs").symlink_to(work / "outside")
    return ["--docs", work / "site", "--force"]


def _manifest_is_symlink(work, cli):  # noqa: ANN001, ANN202
    (work / "out").mkdir()
    (work / "out" / MANIFEST).symlink_to(work / "outside" / "precious.txt")
    return ["--emit", work / "out", "--force"]


def _o_symlink(work, cli):  # noqa: ANN001, ANN202
    (work / "report.json").symlink_to(work / "outside" / "precious.txt")
    return ["-o", work / "report.json", "-f", "json", "--force"]


def _emit_user_file(work, cli):  # noqa: ANN001, ANN202
    (work / "out").mkdir()
    (work / "out" / "report.md").write_text("my notes\n")
    return ["--emit", work / "out"]


def _emit_edited_file(work, cli):  # noqa: ANN001, ANN202
    _emitted(work, cli, work / "out")
    with open(work / "out" / "gpo.md", "a") as handle:
        handle.write("my edit\n")
    return ["--emit", work / "out", "--sysmon-config", SYSMON]


def _o_user_file(work, cli):  # noqa: ANN001, ANN202
    (work / "report.json").write_text("{}\n")
    return ["-o", work / "report.json", "-f", "json"]


def _o_edited_report(work, cli):  # noqa: ANN001, ANN202
    assert cli(work / "rules", "-o", work / "report.md", "-f", "markdown").exit_code == 0
    with open(work / "report.md", "a") as handle:
        handle.write("my edit\n")
    return ["-o", work / "report.md", "-f", "markdown"]


def _foreign_manifest(work, cli):  # noqa: ANN001, ANN202
    (work / "out").mkdir()
    (work / "out" / MANIFEST).write_text("not ours\n")
    return ["--emit", work / "out"]


def _emit_to_a_file(work, cli):  # noqa: ANN001, ANN202
    return ["--emit", work / "outside" / "precious.txt", "--force"]


def _emit_target_is_folder(work, cli):  # noqa: ANN001, ANN202
    (work / "out" / "report.json").mkdir(parents=True)
    return ["--emit", work / "out", "--force"]


def _docs_inside_rule_folder(work, cli):  # noqa: ANN001, ANN202
    return ["--docs", work / "rules" / "site", "--force"]   # its mkdocs.yml would be read as a rule


REFUSALS = {
    "-o a rule file": (_o_rule_file, "input of this run"),
    "-o a policy input": (_o_policy_input, "input of this run"),
    "-o a hard link to a rule file": (_o_hard_link_to_rule, "input of this run"),
    "--emit the rule folder": (_emit_into_rule_folder, "rule folder"),
    "--emit the rule folder by another name, --force": (_emit_into_rule_folder_by_another_name, "rule folder"),
    "--emit over the --sysmon-config input": (_emit_over_sysmon_input, "input of this run"),
    "--emit over the --auditpol input": (_emit_over_auditpol_input, "input of this run"),
    "--emit over a hard link to a rule file, --force": (_emit_hard_link_of_rule, "input of this run"),
    "--emit a symlinked folder, --force": (_emit_to_symlinked_folder, "symbolic link"),
    "--emit over a symlink, --force": (_emit_file_is_symlink, "symbolic link"),
    "--docs through a symlinked subfolder, --force": (_docs_subfolder_is_symlink, "symbolic link"),
    "--emit with a symlinked manifest, --force": (_manifest_is_symlink, "not a regular file"),
    "-o a symlink, --force": (_o_symlink, "symbolic link"),
    "--emit over a user's file": (_emit_user_file, "use --force"),
    "--emit over a file edited since": (_emit_edited_file, "use --force"),
    "-o over a user's file": (_o_user_file, "use --force"),
    "-o over a report edited since": (_o_edited_report, "use --force"),
    "--emit with a manifest not ours": (_foreign_manifest, "use --force"),
    "--emit to a file, --force": (_emit_to_a_file, "not a folder"),
    "--emit where a file would be a folder, --force": (_emit_target_is_folder, "is a folder"),
    "--docs inside the rule folder, --force": (_docs_inside_rule_folder, "read the YAML files"),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_refusals_change_nothing(cli, work, case):
    scene, reason = REFUSALS[case]
    extra = scene(work, cli)
    before = snapshot(work)
    result = cli(work / "rules", "--gpresult", work / "gpresult.xml", *extra)
    refused(result)
    assert reason in result.stderr
    assert snapshot(work) == before


# The refusals --force overrides: the file is replaced, recorded, and the next run needs no --force.
FORCEABLE = ["--emit over a user's file", "--emit over a file edited since", "-o over a user's file",
             "-o over a report edited since", "--emit with a manifest not ours"]


@pytest.mark.parametrize("case", FORCEABLE)
def test_force_replaces_files_the_tool_did_not_write(cli, work, case):
    extra = REFUSALS[case][0](work, cli)
    forced = cli(work / "rules", "--gpresult", work / "gpresult.xml", *extra, "--force")
    assert forced.exit_code == 1, forced.stderr
    target = Path(extra[extra.index("-o") + 1]) if "-o" in extra else Path(extra[extra.index("--emit") + 1])
    folder = target.parent if "-o" in extra else target
    manifest = json.loads((folder / MANIFEST).read_text())["files"]
    names = [target.name] if "-o" in extra else EMITTED
    for name in names:
        assert manifest[name] == writer.sha256((folder / name).read_bytes())
    again = cli(work / "rules", "--gpresult", work / "gpresult.xml", *extra)   # no --force: ours now
    assert again.exit_code == 1, again.stderr


@pytest.mark.parametrize("rel", ["../escape.txt", "/etc/escape", "a/../../escape", "a//b", "", ".", "a/./b",
                                 "a\\..\\b", MANIFEST, "nul\0byte"])
def test_names_that_leave_the_folder_are_refused(tmp_path, rel):
    with pytest.raises(WriteRefused, match="leaves the folder"):
        write_tree(tmp_path / "out", {"fine.txt": "x", rel: "y"})
    assert sorted(os.listdir(tmp_path)) == []


# --------------------------------------------------------------------------- atomicity

def _failing(after: int, exc: OSError, real):  # noqa: ANN001, ANN202
    """A stand-in that works ``after`` times, then fails with ``exc`` (a write fails half-way)."""
    calls = {"n": 0}

    def fake(*args):  # noqa: ANN002, ANN202
        calls["n"] += 1
        if calls["n"] > after:
            if real is writer._write_all:      # half the bytes reach the disk first
                fd, data = args
                os.write(fd, data[: len(data) // 2])
            raise exc
        return real(*args)

    return fake


FAULTS = {
    "disk full while writing": ("_write_all", 3, OSError(errno.ENOSPC, "No space left on device")),
    "disk full on the first file": ("_write_all", 0, OSError(errno.ENOSPC, "No space left on device")),
    "read-only folder": ("_create_temp", 0, OSError(errno.EROFS, "Read-only file system")),
    "read-only after some files": ("_create_temp", 4, OSError(errno.EROFS, "Read-only file system")),
    "rename refused mid-way": ("_replace", 4, OSError(errno.EACCES, "Permission denied")),
}


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
@pytest.mark.parametrize("output", ["--emit", "--docs", "-o"])
def test_a_failed_write_leaves_the_previous_files(cli, work, monkeypatch, fault, output):
    """A first run writes; a second run whose content differs fails part-way: every previous file is
    exactly as it was, no temporary or backup file is left, and the message names the cause."""
    target = work / "out"
    extra = [output, target] if output != "-o" else ["-o", target / "report.json", "-f", "json", "-v"]
    first = cli(work / "rules", *extra)
    assert first.exit_code == 0, first.stderr
    before = snapshot(work)
    name, after, exc = FAULTS[fault]
    if output == "-o":
        after = min(after, 1)    # -o stages two files: the report and the manifest
    monkeypatch.setattr(writer, name, _failing(after, exc, getattr(writer, name)))
    result = cli(work / "rules", "--gpresult", work / "gpresult.xml", *extra)   # different content
    refused(result)
    assert exc.strerror in result.stderr and "nothing was changed" in result.stderr
    assert snapshot(work) == before


def test_rollback_without_hard_links(cli, work, monkeypatch):
    """On a file system without hard links the backups are copies: a failed rename still restores all."""
    extra = ["--emit", work / "out"]
    assert cli(work / "rules", *extra).exit_code == 0
    before = snapshot(work)

    def no_link(source, name):  # noqa: ANN001, ANN202
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(writer, "_link", no_link)
    monkeypatch.setattr(writer, "_replace", _failing(5, OSError(errno.EACCES, "Permission denied"), writer._replace))
    refused(cli(work / "rules", "--gpresult", work / "gpresult.xml", *extra))
    assert snapshot(work) == before


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_a_failed_first_write_leaves_nothing(cli, work, monkeypatch, fault):
    name, after, exc = FAULTS[fault]
    before = snapshot(work)
    monkeypatch.setattr(writer, name, _failing(after, exc, getattr(writer, name)))
    refused(cli(work / "rules", "--docs", work / "new" / "site"))
    assert snapshot(work) == before          # not even the folders it created


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_really_read_only_folder(cli, work):
    _emitted(work, cli, work / "out")
    (work / "out").chmod(0o555)
    try:
        before = snapshot(work)
        refused(cli(work / "rules", "--emit", work / "out"))
        assert snapshot(work) == before
    finally:
        (work / "out").chmod(0o755)


# --------------------------------------------------------------------------- idempotence

def test_re_emit_is_idempotent_and_needs_no_force(cli, work):
    out = work / "out"
    _emitted(work, cli, out)
    first = snapshot(out)
    assert sorted(first) == sorted([*EMITTED, MANIFEST])
    times = {name: (out / name).stat().st_mtime_ns for name in EMITTED}
    again = cli(work / "rules", "--gpresult", work / "gpresult.xml", "--emit", out)
    assert again.exit_code == 1, again.stderr
    assert f"{len(EMITTED)} files (0 written, {len(EMITTED)} unchanged)" in again.stdout
    assert snapshot(out) == first
    assert {name: (out / name).stat().st_mtime_ns for name in EMITTED} == times   # not even rewritten
    # another policy: the tool's own files are replaced without --force, the manifest follows
    other = cli(work / "rules", "--emit", out)
    assert other.exit_code == 0, other.stderr
    manifest = json.loads((out / MANIFEST).read_text())["files"]
    assert manifest == {name: writer.sha256((out / name).read_bytes()) for name in EMITTED}
    assert snapshot(out) != first


def test_files_beside_the_output_are_left_alone(cli, work):
    out = work / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    _emitted(work, cli, out)
    _emitted(work, cli, out)
    assert (out / "notes.txt").read_text() == "mine\n"
    assert "notes.txt" not in json.loads((out / MANIFEST).read_text())["files"]


def test_written_files_get_ordinary_permissions(cli, work):
    _emitted(work, cli, work / "out")
    mask = os.umask(0)
    os.umask(mask)
    for name in EMITTED:
        assert (work / "out" / name).stat().st_mode & 0o777 == 0o666 & ~mask


def test_docs_and_emit_and_output_share_a_folder(cli, work):
    """-o into the --emit folder: one manifest lists both; re-running needs no --force."""
    out = work / "out"
    args = [work / "rules", "--emit", out, "--docs", out / "site", "-o", out / "summary.md", "-f", "markdown"]
    assert cli(*args).exit_code == 0
    files = json.loads((out / MANIFEST).read_text())["files"]
    assert set(files) == {*EMITTED, "summary.md"}
    before = snapshot(work)
    assert cli(*args).exit_code == 0
    assert snapshot(work) == before


def test_guard_direct_use(tmp_path):
    """The module on its own: inputs given by path are refused, whatever the path spelling."""
    data = tmp_path / "data.txt"
    data.write_text("input\n")
    guard = Guard(inputs=[str(tmp_path / "." / "data.txt")])
    with pytest.raises(WriteRefused, match="input of this run"):
        writer.write_file(data, "x", guard)
    written = write_tree(tmp_path / "out", {"a/b.txt": "one", "c.txt": b"two"}, guard)
    assert [p.name for p in written] == ["b.txt", "c.txt"] and written.changed == 2
    assert (tmp_path / "out" / "a" / "b.txt").read_text() == "one"


# --------------------------------------------------------------------------- summary and exit codes

@pytest.mark.parametrize("args, wrote", [
    (["--emit", "OUT"], ["Wrote the changes to"]),
    (["--docs", "OUT"], ["Wrote the docs site to"]),
    (["--emit", "OUT", "--docs", "OUT/site"], ["Wrote the changes to", "Wrote the docs site to"]),
])
def test_emit_and_docs_print_a_summary_not_the_report(cli, work, args, wrote):
    out = str(work / "out")
    result = cli(work / "rules", "--gpresult", work / "gpresult.xml", *[a.replace("OUT", out) for a in args])
    assert result.exit_code == 1, result.stderr
    for line in wrote:
        assert line in result.stdout
    assert "Verdict: exit 1, 4 recommended changes are missing (--fail-on missing)" in result.stdout
    assert "Coverage: usable 5, partial 1, blind 1, unknown 6; missing requirements: 4" in result.stdout
    assert "Log sources" not in result.stdout and "Missing requirements" not in result.stdout   # no tables
    assert len(result.stdout.splitlines()) <= 6


def test_a_format_asked_for_still_goes_to_stdout(cli, work):
    result = cli(work / "rules", "--emit", work / "out", "-f", "json")
    assert result.exit_code == 0
    assert result.json()["summary"]["rules"] == 13           # the report, parseable
    assert "Wrote the changes to" in result.stderr            # the summary beside it


@pytest.mark.parametrize("fmt, to_file, summary_on", [
    ([], False, "stdout"),                      # no format asked for: the summary replaces the report
    (["-f", "json"], False, "stderr"),          # the report asked for on stdout, the summary beside it
    (["-f", "json"], True, "stdout"),           # the report in -o FILE: stdout is free for the summary
    (["-f", "text"], False, "stderr"),
    (["-f", "terminal"], False, "stderr"),      # an explicit -f terminal is asked for too
])
def test_where_the_summary_goes_beside_emit(cli, work, fmt, to_file, summary_on):
    """README: with --emit a format asked for with --format still goes to standard output and the summary then
    goes to standard error; with -o FILE the report goes to the file and the summary to standard output."""
    report = work / "report.out"
    result = cli(work / "rules", "--emit", work / "out", *fmt, *(["-o", report] if to_file else []))
    assert result.exit_code == 0, result.stderr
    streams = {"stdout": result.stdout, "stderr": result.stderr}
    assert "Wrote the changes to" in streams[summary_on]
    other = "stderr" if summary_on == "stdout" else "stdout"
    assert "Wrote the changes to" not in streams[other]
    if fmt == ["-f", "json"]:
        text = report.read_text(encoding="utf-8") if to_file else result.stdout
        assert json.loads(text)["summary"]["rules"] == 13


def _broken_rules(work: Path) -> Path:
    broken = work / "rules" / "broken.yml"
    broken.write_text("title: [unclosed\n")
    return broken


@pytest.mark.parametrize("fail_on, policy, broken, code", [
    ("never", False, True, 0),
    ("never", True, True, 0),
    ("never", True, False, 0),
    ("missing", False, True, 1),
    ("missing", True, False, 1),
    ("critical", True, True, 1),
    ("missing", False, False, 0),
])
def test_fail_on_never_exits_0_when_the_run_completed(cli, work, fail_on, policy, broken, code):
    if broken:
        _broken_rules(work)
    args = ["--gpresult", work / "gpresult.xml"] if policy else []
    result = cli(work / "rules", *args, "--fail-on", fail_on, "-f", "json")
    assert result.exit_code == code, result.stderr
    report = result.json()
    assert len(report["errors"]) == (1 if broken else 0)      # errors still listed
    assert report["summary"]["errors"] == (1 if broken else 0)


def test_fail_on_never_still_exits_2_when_the_run_cannot_complete(cli, work):
    refused(cli(work / "rules", "--fail-on", "never", "-o", work / "gpresult.xml"))
    result = cli(work / "missing", "--fail-on", "never")
    assert result.exit_code == 2
