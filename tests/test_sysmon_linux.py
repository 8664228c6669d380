"""Sysmon for Linux: which OS a --sysmon-config is for (sysmon_linux.decide_os), the statuses of the Linux rules'
Sysmon requirements against it, a configuration for the other OS ignored with a note, and sysmon-linux.xml
(sysmon_linux_emit.py) read back by the same reader and found met. Configurations are written for these tests
(samples/sysmon-linux/ holds one more)."""
from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from logsource_checker import knowledge
from logsource_checker.engine import CheckOptions, check
from logsource_checker.policy import read_policy
from logsource_checker.policy.sysmon_config import read_sysmon_config
from logsource_checker.policy.xmlsafe import local_name, parse_xml_bytes
from logsource_checker.sysmon_linux import decide_os

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "sysmon-linux" / "linux-baseline.xml"
WINDOWS_SAMPLE = ROOT / "samples" / "sysmon" / "partial-config.xml"
KB = knowledge.load(use_cache=False)


def _config(body: str, schema: str = "4.81") -> bytes:
    return f'<Sysmon schemaversion="{schema}"><EventFiltering>{body}</EventFiltering></Sysmon>'.encode()


COLLECT_ALL = '<ProcessCreate onmatch="exclude"/><NetworkConnect onmatch="exclude"/><FileCreate onmatch="exclude"/>'
LINUX_PATHS = '<FileCreate onmatch="include"><TargetFilename condition="begin with">/etc/cron.d/</TargetFilename></FileCreate>'
WINDOWS_PATHS = ('<FileCreate onmatch="include"><TargetFilename condition="begin with">C:\\Windows\\Tasks\\'
                 '</TargetFilename></FileCreate>')
IMAGE_LOAD = '<ImageLoad onmatch="include"><ImageLoaded condition="end with">/libc.so.6</ImageLoaded></ImageLoad>'
CMDLINE_SWITCH = ('<ProcessCreate onmatch="include"><CommandLine condition="contains">/c whoami</CommandLine>'
                  '</ProcessCreate>')


@pytest.mark.parametrize("body, forced, want, fragment", [
    (LINUX_PATHS, None, "linux", "Linux paths"),
    (WINDOWS_PATHS, None, "windows", "Windows paths"),
    (IMAGE_LOAD, None, "windows", "ImageLoad, which Sysmon for Linux does not produce"),   # a Linux path, but no such type
    (COLLECT_ALL, None, "either", "names no path"),
    (CMDLINE_SWITCH, None, "either", "names no path"),          # '/c' is a cmd.exe switch, not a Linux folder
    (LINUX_PATHS + WINDOWS_PATHS + WINDOWS_PATHS, None, "windows", "fewer Linux paths too"),
    (LINUX_PATHS + LINUX_PATHS + WINDOWS_PATHS, None, "linux", "fewer Windows paths too"),
    (WINDOWS_PATHS, "linux", "linux", "--sysmon-os"),
    (COLLECT_ALL, "windows", "windows", "--sysmon-os"),
])
def test_configuration_os(body, forced, want, fragment):
    snapshot = read_sysmon_config("c.xml", _config(body), KB.sysmon_events.values())
    decide_os(snapshot, KB, forced)
    assert snapshot.sysmon.os == want
    assert fragment in snapshot.sysmon.os_reason
    noted = any("c.xml: Sysmon configuration read as" in w for w in snapshot.warnings)
    assert noted is (want != "windows" or forced is not None)   # Windows from its content: recorded, no note
    assert snapshot.inputs[0].format == ("sysmon_linux_config" if want == "linux" else "sysmon_config")


def test_linux_event_types_are_the_ones_sysmon_for_linux_traces():
    """SysmonForLinux sysmonforlinux.c SetSyscallActive: the event types it enables syscall tracing for."""
    linux = KB.sysmon_meta["linux"]
    assert linux["events"] == [1, 3, 5, 9, 10, 11, 23]
    assert {KB.sysmon_events[i].element for i in linux["events"]} == {
        "ProcessCreate", "NetworkConnect", "ProcessTerminate", "RawAccessRead", "ProcessAccess", "FileCreate",
        "FileDelete"}


def _rule(folder: Path, name: str, logsource: str, detection: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yml"
    path.write_text(f"title: {name}\nid: {uuid.uuid4()}\nstatus: test\nlogsource:\n{textwrap.indent(logsource, '    ')}\n"
                    f"detection:\n{textwrap.indent(textwrap.dedent(detection), '    ')}level: high\n")
    return path


CURL = ("product: linux\ncategory: process_creation",
        "selection:\n    Image|endswith: /curl\n    CommandLine|contains: ' -d @'\ncondition: selection\n")
CRON_FILE = ("product: linux\ncategory: file_event",
             "selection:\n    TargetFilename|startswith: /etc/cron.d/\ncondition: selection\n")
CONNECT = ("product: linux\ncategory: network_connection",
           "selection:\n    Image|endswith: /ncat\n    DestinationPort: 4444\ncondition: selection\n")


@pytest.mark.parametrize("rule, body, req_id, status, fragment", [
    (CURL, COLLECT_ALL, "sysmon-linux:1", "met", "exclude filter with no conditions"),
    (CURL, "", "sysmon-linux:1", "met", "default for this type logs every event"),
    (CRON_FILE, "", "sysmon-linux:11", "missing", "logs none"),
    (CRON_FILE, LINUX_PATHS, "sysmon-linux:11", "met", "each of the 1 rules"),
    (CRON_FILE, '<FileCreate onmatch="include"><TargetFilename condition="begin with">/tmp/</TargetFilename>'
     '</FileCreate>', "sysmon-linux:11", "unknown", "sysmon-linux.xml adds include filters"),
    (CONNECT, '<NetworkConnect onmatch="include"/>', "sysmon-linux:3", "missing", "matches nothing"),
    (CONNECT, '<NetworkConnect onmatch="include"><Image condition="end with">/ncat</Image></NetworkConnect>'
     + LINUX_PATHS, "sysmon-linux:3", "met", "each of the 1 rules"),
    (CURL, WINDOWS_PATHS, "sysmon-linux:1", "unknown", "is for Windows"),
    # rules.c Filter_image splits at a backslash on Linux too: 'curl' never equals '/usr/bin/curl'
    (CURL, '<ProcessCreate onmatch="include"><Image condition="image">curl</Image></ProcessCreate>' + LINUX_PATHS,
     "sysmon-linux:1", "unknown", "not every one of the 1 rules"),
    (CURL, '<ProcessCreate onmatch="include"><Image condition="end with">/curl</Image></ProcessCreate>' + LINUX_PATHS,
     "sysmon-linux:1", "met", "each of the 1 rules"),
])
def test_linux_requirement_status(tmp_path, rule, body, req_id, status, fragment):
    _rule(tmp_path / "rules", "r", *rule)
    (tmp_path / "c.xml").write_bytes(_config(body))
    result = check(CheckOptions(paths=[str(tmp_path / "rules")], sysmon_config=str(tmp_path / "c.xml"),
                                use_cache=False))
    req = result.resolution.requirements[req_id]
    assert (req.status, fragment in (req.reason or "")) == (status, True), req.reason


def test_windows_rules_ignore_a_linux_configuration(tmp_path):
    _rule(tmp_path / "rules", "w", "product: windows\ncategory: process_creation",
          "selection:\n    Image|endswith: '\\\\whoami.exe'\ncondition: selection\n")
    _rule(tmp_path / "rules", "l", *CURL)
    result = check(CheckOptions(paths=[str(tmp_path / "rules")], sysmon_config=str(SAMPLE), use_cache=False))
    reqs = result.resolution.requirements
    assert reqs["sysmon:1"].status == "not_checked" and "ignored for Windows rules" in reqs["sysmon:1"].reason
    assert next(p for p in result.plans if p.chosen).name == "native"   # Sysmon is not known to run on Windows
    with_gpresult = check(CheckOptions(paths=[str(tmp_path / "rules")], sysmon_config=str(SAMPLE), use_cache=False,
                                       gpresult=[str(ROOT / "samples" / "gpresult" / "advanced-audit.xml")]))
    sysmon = with_gpresult.resolution.requirements["sysmon:1"]
    assert sysmon.status == "unknown" and "ignored for Windows rules" in sysmon.reason
    assert reqs["sysmon-linux:1"].status == "met"
    only_windows = check(CheckOptions(paths=[str(tmp_path / "rules" / "w.yml")], sysmon_config=str(SAMPLE),
                                      use_cache=False))
    assert any("Sysmon for Linux configuration ignored" in w for w in only_windows.snapshot.warnings)
    only_linux = check(CheckOptions(paths=[str(tmp_path / "rules" / "l.yml")], sysmon_config=str(WINDOWS_SAMPLE),
                                    use_cache=False))
    assert any("Windows policy inputs ignored" in w for w in only_linux.snapshot.warnings)
    assert only_linux.resolution.requirements["sysmon-linux:1"].status == "unknown"
    (tmp_path / "all.xml").write_bytes(_config(COLLECT_ALL))   # either OS: used for the Linux rule, no note
    either = check(CheckOptions(paths=[str(tmp_path / "rules" / "l.yml")], sysmon_config=str(tmp_path / "all.xml"),
                                use_cache=False))
    assert either.resolution.requirements["sysmon-linux:1"].status == "met"
    assert not any("ignored" in w for w in either.snapshot.warnings)


# --------------------------------------------------------------------------- sysmon-linux.xml

def _emit(cli, tmp_path, folder, *args) -> bytes:
    out = tmp_path / "out"
    done = cli(folder, *args, "--emit", out, "--no-cache")
    assert done.exit_code in (0, 1), done.stderr
    return (out / "sysmon-linux.xml").read_bytes()


def _filters(data: bytes) -> list[tuple[str, str | None, int]]:
    root = parse_xml_bytes("x", data)
    out = []
    for filtering in (n for n in root if local_name(n) == "EventFiltering"):
        for node in filtering.iter():
            name = local_name(node)
            if name and node.getparent() is not None and local_name(node.getparent()) in ("EventFiltering", "RuleGroup") \
                    and name != "RuleGroup":
                out.append((name, node.get("onmatch"), len([c for c in node if local_name(c)])))
    return out


@pytest.mark.parametrize("host", [None, SAMPLE])
def test_emitted_configuration_read_back_and_met(cli, tmp_path, corpus_rules, host):
    """The file written is read as a Sysmon for Linux configuration by the same reader, and every Linux rule
    with a Sysmon for Linux way is then usable; with a host configuration, every filter it had is kept."""
    folder = corpus_rules / "rules" / "linux"
    data = _emit(cli, tmp_path, folder, *(("--sysmon-config", host) if host else ()))
    assert b"Read back, some groups" not in data
    written = {name for name, _, _ in _filters(data)}
    linux = {KB.sysmon_events[i].element for i in KB.sysmon_meta["linux"]["events"]}
    assert written and written <= linux
    if host:
        original = _filters(host.read_bytes())
        assert data.startswith(host.read_bytes()[:200]) and all(f in _filters(data) for f in original)
    (tmp_path / "back.xml").write_bytes(data)
    snapshot = read_policy(str(tmp_path / "back.xml"), "sysmon", sysmon_events=list(KB.sysmon_events.values()))
    decide_os(snapshot, KB)
    assert snapshot.sysmon.os == "linux"
    after = check(CheckOptions(paths=[str(folder)], sysmon_config=str(tmp_path / "back.xml"), use_cache=False))
    linux_reqs = [r for r in after.resolution.requirements.values() if r.kind == "sysmon_linux_event"]
    assert linux_reqs and all(r.status == "met" for r in linux_reqs), [(r.id, r.reason) for r in linux_reqs]


def test_emit_names_rules_volume_and_is_an_alternative(cli, tmp_path):
    _rule(tmp_path / "rules", "curl", *CURL)
    _rule(tmp_path / "rules", "cron", *CRON_FILE)
    text = _emit(cli, tmp_path, tmp_path / "rules").decode()
    assert text.startswith('<Sysmon schemaversion="4.81">')
    assert "alternative to audit.rules" in text and "high volume" in text
    assert '<TargetFilename condition="begin with">/etc/cron.d/</TargetFilename>' in text
    assert '<Image condition="end with">/curl</Image>' in text
    assert "HashAlgorithms" not in text and "CheckRevocation" not in text   # Windows-only settings


def test_nothing_written_when_everything_is_collected(cli, tmp_path):
    _rule(tmp_path / "rules", "curl", *CURL)
    (tmp_path / "c.xml").write_bytes(_config(COLLECT_ALL))
    out = tmp_path / "out"
    done = cli(tmp_path / "rules", "--sysmon-config", tmp_path / "c.xml", "--sysmon-os", "linux", "--emit", out,
               "--no-cache")
    assert done.exit_code == 0, done.stderr
    assert not (out / "sysmon-linux.xml").exists()


def test_a_windows_configuration_is_never_merged_into(cli, tmp_path):
    _rule(tmp_path / "rules", "cron", *CRON_FILE)
    data = _emit(cli, tmp_path, tmp_path / "rules", "--sysmon-config", WINDOWS_SAMPLE)
    assert data.startswith(b'<Sysmon schemaversion="4.81">') and b"ImageLoad" not in data


def test_hostile_values_read_back_as_written(cli, tmp_path):
    value = "/tmp/--><Sysmon x='&amp;'>\u202e"
    _rule(tmp_path / "rules", "evil", "product: linux\ncategory: file_event",
          f"selection:\n    TargetFilename|startswith: {value!r}\ncondition: selection\n")
    data = _emit(cli, tmp_path, tmp_path / "rules")
    config = read_sysmon_config("back.xml", data, KB.sysmon_events.values()).sysmon
    (element,) = config.includes[11]
    assert any(item[1] == ("TargetFilename", "begin with", value) for item in element[1] if item[0] == "cond") or \
        any(entry[2] == value for item in element[1] if item[0] == "rule" for entry in item[2])


@pytest.mark.parametrize("value, code", [("linux", 0), ("windows", 0), ("auto", 0), ("macos", 2)])
def test_sysmon_os_option(cli, tmp_path, value, code):
    _rule(tmp_path / "rules", "curl", *CURL)
    done = cli(tmp_path / "rules", "--sysmon-config", SAMPLE, "--sysmon-os", value, "-f", "json", "--fail-on", "never")
    assert done.exit_code == code, done.stderr
    if code == 0:
        policy = done.json()["policy"]["sysmon"]
        assert policy["os"] == {"auto": "linux"}.get(value, value) and policy["os_reason"]


@pytest.mark.parametrize("event_id, ok", [(1, True), (3, True), (11, True), (23, True), (7, False), (13, False),
                                          (4, False)])
def test_guides_may_name_only_linux_event_types(monkeypatch, event_id, ok):
    """A guide's sysmon_linux_event must be a type Sysmon for Linux produces and filters (validated)."""
    from logsource_checker.knowledge_model import RequirementSpec
    from logsource_checker.knowledge_validate import _spec_problems, validate

    assert (_spec_problems(KB, RequirementSpec(kind="sysmon_linux_event", value=event_id)) == []) is ok
    monkeypatch.setitem(KB.sysmon_meta, "linux", dict(KB.sysmon_meta["linux"], events=[1, 3, 777, 4]))
    problems = validate(KB)
    assert any("event 777 is not a Sysmon event" in p for p in problems)
    assert any("event 4 cannot be filtered" in p for p in problems)


def test_windows_rules_get_a_new_sysmon_xml_beside_a_linux_configuration(cli, tmp_path):
    _rule(tmp_path / "rules", "w", "product: windows\ncategory: image_load",      # only Sysmon serves it
          "selection:\n    ImageLoaded|endswith: '\\\\evil.dll'\ncondition: selection\n")
    out = tmp_path / "out"
    done = cli(tmp_path / "rules", "--sysmon-config", SAMPLE, "--plan", "sysmon", "--emit", out, "--no-cache")
    assert done.exit_code in (0, 1), done.stderr
    text = (out / "sysmon.xml").read_text()
    assert "A new, complete configuration" in text and "/etc/cron" not in text   # not merged into the Linux file
    assert not (out / "sysmon-linux.xml").exists()                                 # no Linux rule checked
