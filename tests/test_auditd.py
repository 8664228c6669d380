"""Linux audit rules: the parser (policy/auditd.py), the statuses (auditd_check.py), what Sigma rules need
(auditd_needs.py through the resolver) and the emitted audit.rules (auditd_emit.py), read back and found met."""
from __future__ import annotations

import copy
import json
import textwrap
import uuid
from pathlib import Path

import pytest

from logsource_checker import knowledge
from logsource_checker.auditd_check import NO_INPUT, auditd_status
from logsource_checker.engine import CheckOptions, check
from logsource_checker.policy import PolicyInputError, read_auditd
from logsource_checker.policy.auditd import read_auditd_rules

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "auditd"


@pytest.fixture(scope="module")
def data():
    return knowledge.load(use_cache=False).auditd


def rules_of(text: str):
    snapshot = read_auditd_rules(["test.rules"], [textwrap.dedent(text)])
    return snapshot.auditd, snapshot


# --------------------------------------------------------------------------- parser

@pytest.mark.parametrize("line, want", [
    ("-a always,exit -F arch=b64 -S execve -k exec",
     ("exit", "always", frozenset({"execve"}), (("arch", "=", "b64"),), ("exec",), None, None)),
    ("-a exit,always -F arch=b32 -S open,openat -S creat -F exit=-EACCES -F key=access",
     ("exit", "always", frozenset({"open", "openat", "creat"}), (("arch", "=", "b32"), ("exit", "=", "-EACCES")),
      ("access",), None, None)),
    ("-w /etc/shadow -p wa -k identity", ("exit", "always", None, (), ("identity",), "/etc/shadow", "wa")),
    ("-w /etc/cron.d/", ("exit", "always", None, (), (), "/etc/cron.d/", None)),
    ("-a always,exit -F dir=/etc/audit/ -F perm=wa -k cfg",
     ("exit", "always", None, (("dir", "=", "/etc/audit/"),), ("cfg",), None, "wa")),
    ("-a never,exit -F arch=b64 -S all -F exe=/usr/sbin/chronyd",
     ("exit", "never", None, (("arch", "=", "b64"), ("exe", "=", "/usr/sbin/chronyd")), (), None, None)),
    ("-a always,exclude -F msgtype=CWD", ("exclude", "always", None, (("msgtype", "=", "CWD"),), (), None, None)),
    ("-a never,user -F subj_type=crond_t", ("user", "never", None, (("subj_type", "=", "crond_t"),), (), None, None)),
    ("-a always,exit -F arch=b64 -C auid!=uid -S execve",
     ("exit", "always", frozenset({"execve"}), (("arch", "=", "b64"), ("auid", "!=", "uid")), (), None, None)),
    ("-a always,exit -F arch=b64 -S execve -F auid>=1000 -F auid!=-1",
     ("exit", "always", frozenset({"execve"}), (("arch", "=", "b64"), ("auid", ">=", "1000"), ("auid", "!=", "-1")),
      (), None, None)),
])
def test_parse_one_rule(line, want):
    rules, snapshot = rules_of(line)
    assert snapshot.inputs[0].warnings == []
    (rule,) = rules.rules
    assert (rule.list, rule.action, rule.syscalls, rule.fields, rule.keys, rule.watch, rule.perms) == want
    assert rule.line == 1 and rule.source == "test.rules"


@pytest.mark.parametrize("text, texts_left, enabled", [
    ("-w /a/b -p w\n-D\n-w /c/d -p w", ["-w /c/d -p w"], None),                       # -D deletes what came before
    ("-w /a/b -p w\n-A always,exit -F arch=b64 -S execve", ["-A always,exit -F arch=b64 -S execve", "-w /a/b -p w"], None),
    ("-w /a/b -p w -k x\n-w /c/d -p w\n-W /a/b -p w -k x", ["-w /c/d -p w"], None),    # -W removes the watch
    ("-a always,exit -F arch=b64 -S execve\n-d always,exit -F arch=b64 -S execve", [], None),
    ("-b 8192\n-f 1\n-r 100\n--backlog_wait_time 60000\n-e 2", [], 2),
    ("enabled 0\nfailure 1\npid 812\nbacklog_limit 8192", [], 0),                     # auditctl -s
    ("No rules", [], None),                                                          # auditctl -l, nothing loaded
    ("# comments only\n## -e 2", [], None),
])
def test_control_commands(text, texts_left, enabled):
    rules, _ = rules_of(text)
    assert [r.text for r in rules.rules] == texts_left
    assert rules.enabled == enabled


@pytest.mark.parametrize("text, warning", [
    ("-w /etc/passwd -p wa\n-a always,exit -F arch=b64 -S execve -k", "line 2: -k without a value"),
    ("-w /etc/passwd -p wa\n-a sometimes,exit -S execve", "line 2: -a needs LIST,ACTION"),
    ("-w /etc/passwd -p wa\n-a always,exit -F arch -S execve", "line 2: -F 'arch' is not NAME OP VALUE"),
    ("-w /etc/passwd -p wa\n-a always,exit -X 1", "line 2: option -X not understood"),
    ("-w /etc/passwd -p wa\nrm -rf /", "line 2: not an audit rule or control command"),
    ("-e 7\n-w /etc/passwd", "line 1: -e '7': expected 0, 1 or 2"),
])
def test_lines_not_understood_are_reported_and_skipped(text, warning):
    rules, snapshot = rules_of(text)
    assert any(w.startswith(warning) for w in snapshot.inputs[0].warnings), snapshot.inputs[0].warnings
    assert [r.watch for r in rules.rules] == ["/etc/passwd"]


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"\x00\x01binary", "NUL bytes"),
    (b"<?xml version='1.0'?><Rsop/>\n", "not an audit rules file"),
])
def test_unusable_inputs_are_errors(tmp_path, content, reason):
    path = tmp_path / "in.rules"
    path.write_bytes(content)
    with pytest.raises(PolicyInputError, match=reason):
        read_auditd([str(path)])


def test_several_files_are_one_list_in_order(tmp_path):
    first, second = tmp_path / "10-a.rules", tmp_path / "20-b.rules"
    first.write_text("-w /etc/passwd -p wa\n")
    second.write_text("-D\n-w /etc/shadow -p wa\n")
    snap = read_auditd([str(first), str(second)])
    assert [r.watch for r in snap.auditd.rules] == ["/etc/shadow"]   # -D in the later file deletes the earlier
    assert snap.auditd.notes and "-D deletes the 1 rule(s)" in snap.auditd.notes[0]


# --------------------------------------------------------------------------- statuses

@pytest.mark.parametrize("text, item, status, phrase", [
    # syscall rules: arch, first match wins, narrowing, failures only
    ("-a always,exit -F arch=b64 -S execve -k exec", ("syscall", "b64", "execve"), "met", "line 1"),
    ("-a always,exit -F arch=b64 -S execve -k exec", ("syscall", "b32", "execve"), "missing", "for b32"),
    ("-a exit,always -F arch=x86_64 -S execve", ("syscall", "b64", "execve"), "met", "audited by"),
    ("-a always,exit -F arch=b32 -S all -k 32bit", ("syscall", "b32", "execve"), "met", "-S all"),
    ("-a always,exit -S execve", ("syscall", "b64", "execve"), "met", "native b64 only"),
    ("-a always,exit -S execve", ("syscall", "b32", "execve"), "missing", "for b32"),
    ("-a never,exit -F arch=b64 -S execve\n-a always,exit -F arch=b64 -S execve", ("syscall", "b64", "execve"),
     "missing", "suppressed by the never rule"),
    ("-a always,exit -F arch=b64 -S execve\n-a never,exit -F arch=b64 -S execve", ("syscall", "b64", "execve"),
     "met", "line 1"),
    ("-a never,exit -F arch=b64 -S all -F exe=/usr/sbin/chronyd\n-a always,exit -F arch=b64 -S execve",
     ("syscall", "b64", "execve"), "met", "are not audited"),
    ("-a always,exit -F arch=b64 -S execve -F euid=0", ("syscall", "b64", "execve"), "unknown", "only where euid=0"),
    ("-a always,exit -F arch=b64 -S openat -F exit=-EACCES", ("syscall", "b64", "openat"), "missing",
     "only for failed calls"),
    ("-a always,exit -F arch=b64 -S connect\n-a always,exclude -F msgtype=SYSCALL", ("syscall", "b64", "connect"),
     "missing", "dropped by"),
    ("-a always,exit -F arch=b64 -S execve\n-a never,exclude -F msgtype=EXECVE", ("syscall", "b64", "execve"),
     "missing", "EXECVE records are dropped"),
    ("-a always,exit -F arch=b64 -S execve\n-a always,exclude -F msgtype=CWD", ("syscall", "b64", "execve"),
     "met", "audited by"),
    ("-a always,exit -F arch=b64 -S execve\n-e 0", ("syscall", "b64", "execve"), "missing", "switched off"),
    ("-w /etc/passwd -p wa", ("syscall", "b64", "execve"), "missing", "no loaded rule"),
    # watches: path, folder, permissions, syscall-style watches, exclusions
    ("-w /etc/passwd -p wa", ("watch", "/etc/passwd", "wa"), "met", "covered by"),
    ("-w /etc/cron.d/ -p wa", ("watch", "/etc/cron.d/evil", "wa"), "met", "covered by"),
    ("-w /etc/cron.d -p wa", ("watch", "/etc/cron.d/", "wa"), "met", "covered by"),
    ("-w /etc/cron.d -p wa", ("watch", "/etc/cron.daily/", "wa"), "missing", "no loaded watch"),
    ("-w /etc/shadow -p r", ("watch", "/etc/shadow", "wa"), "missing", "without the needed permissions"),
    ("-w /etc/shadow", ("watch", "/etc/shadow", "wa"), "met", "covered by"),
    ("-a always,exit -F dir=/etc/audit/ -F perm=wa", ("watch", "/etc/audit/auditd.conf", "wa"), "met", "covered"),
    ("-a always,exit -F path=/etc -F perm=wa", ("watch", "/etc/passwd", "wa"), "missing", "no loaded watch"),
    ("-a always,exit -F path=/etc/passwd -F perm=wa -F auid>=1000", ("watch", "/etc/passwd", "wa"), "unknown",
     "only where auid>=1000"),
    ("-a never,exit -F dir=/etc/\n-w /etc/passwd -p wa", ("watch", "/etc/passwd", "wa"), "missing", "never rule"),
    ("-w /etc/passwd -p wa\n-a always,exclude -F msgtype=PATH", ("watch", "/etc/passwd", "wa"), "missing",
     "dropped by"),
    ("-a never,task\n-a always,exit -F arch=b64 -S execve", ("syscall", "b64", "execve"), "missing", "never,task"),
    ("-a task,never -F uid=0\n-a always,exit -F arch=b64 -S execve", ("syscall", "b64", "execve"), "met",
     "some records are dropped"),
    ("-a never,task\n-w /etc/passwd -p wa", ("watch", "/etc/passwd", "wa"), "missing", "never,task"),
    ("-a always,exit -F arch=b64 -S execve\n-a always,exclude -F exe=/usr/bin/true", ("syscall", "b64", "execve"),
     "met", "some records are dropped"),
    # user-space records need no rule; the user and exclude filters can drop them
    ("-a never,task", ("record", "USER_LOGIN"), "met", "no audit rule is needed"),
    ("-a never,user -F uid=0\n-a always,exit -S all", ("record", "USER_AUTH"), "met", "some records are dropped"),
    ("-w /etc/passwd -p wa", ("record", "USER_LOGIN"), "met", "no audit rule is needed"),
    ("No rules", ("record", "ADD_USER"), "met", "no audit rule is needed"),
    ("-a never,user", ("record", "USER_LOGIN"), "missing", "dropped by"),
    ("-a always,exclude -F msgtype=USER_LOGIN", ("record", "USER_LOGIN"), "missing", "dropped by"),
    ("-a never,user -F subj_type=crond_t", ("record", "USER_CMD"), "met", "some records are dropped"),
    # keys and what cannot be told
    ("-a always,exit -F arch=b64 -S socket -F key=network_connect_4", ("key", "network_connect_4"), "met", "key"),
    ("-w /etc/passwd -p wa -k passwd", ("key", "susp_activity"), "missing", "logsource definition"),
    ("-w /etc/passwd -p wa", ("undetermined", "a path matched with |endswith"), "unknown", "cannot be told"),
])
def test_status(data, text, item, status, phrase):
    rules, _ = rules_of(text)
    got, reason = auditd_status(item, rules, data)
    assert (got, phrase in reason) == (status, True), reason


def test_no_rules_input_is_unknown(data):
    assert auditd_status(("syscall", "b64", "execve"), None, data) == ("unknown", NO_INPUT)


# --------------------------------------------------------------------------- what Sigma rules need

def _rule_file(tmp_path: Path, name: str, logsource: str, detection: str) -> Path:
    path = tmp_path / "rules" / f"{name}.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"title: {name}\nid: {uuid.uuid4()}\nstatus: test\n"
                    f"logsource:\n{textwrap.indent(logsource, '    ')}\ndetection:\n"
                    f"{textwrap.indent(textwrap.dedent(detection), '    ')}level: high\n")
    return path


def _needs(tmp_path, logsource, detection, rules_text=None):
    _rule_file(tmp_path, "r", logsource, detection)
    extra = []
    if rules_text is not None:
        (tmp_path / "host.rules").write_text(rules_text)
        extra = [str(tmp_path / "host.rules")]
    result = check(CheckOptions(paths=[str(tmp_path / "rules")], auditd_rules=extra, use_cache=False))
    (res,) = result.resolution.rules
    options = [sorted(o.requirements) for need in res.needs for o in need.options]
    return options, res.coverage, result


AUDITD = "product: linux\nservice: auditd"


@pytest.mark.parametrize("detection, options", [
    ("selection:\n    type: EXECVE\n    a0: wget\ncondition: selection\n",
     [["auditd:syscall:b32:execve", "auditd:syscall:b64:execve"]]),
    ("selection:\n    type: 'execve'\n    a0: wget\ncondition: selection\n",          # case-insensitive type
     [["auditd:syscall:b32:execve", "auditd:syscall:b64:execve"]]),
    ("selection:\n    type: SYSCALL\n    SYSCALL: memfd_create\ncondition: selection\n",
     [["auditd:syscall:b32:memfd_create", "auditd:syscall:b64:memfd_create"]]),
    ("selection:\n    type: PATH\n    name:\n        - /etc/ld.so.preload\n        - /etc/cron.d/*\n"
     "condition: selection\n", [["auditd:watch:/etc/cron.d/:wa", "auditd:watch:/etc/ld.so.preload:wa"]]),
    ("selection:\n    type: PATH\n    name|startswith: /var/spool/cron/\ncondition: selection\n",
     [["auditd:watch:/var/spool/cron/:wa"]]),
    ("selection:\n    type: USER_LOGIN\n    res: failed\ncondition: selection\n", [["auditd:record:USER_LOGIN"]]),
    ("selection:\n    key: susp_activity\ncondition: selection\n", [["auditd:key:susp_activity"]]),
    # two selections either of which serves: two options; ANDed ones: one option
    ("sel_exec:\n    type: EXECVE\n    a0: nc\nsel_user:\n    type: ADD_USER\ncondition: 1 of sel_*\n",
     [["auditd:syscall:b32:execve", "auditd:syscall:b64:execve"], ["auditd:record:ADD_USER"]]),
    ("sel_exec:\n    type: EXECVE\n    a0: nc\nsel_args:\n    a1: '-e'\ncondition: sel_exec and sel_args\n",
     [["auditd:syscall:b32:execve", "auditd:syscall:b64:execve"]]),
    # a filter (under not) needs nothing
    ("selection:\n    type: SYSCALL\n    SYSCALL: sysinfo\nfilter:\n    exe|endswith: /splunkd\n"
     "condition: selection and not filter\n", [["auditd:syscall:b32:sysinfo", "auditd:syscall:b64:sysinfo"]]),
])
def test_auditd_rule_needs(tmp_path, detection, options):
    assert _needs(tmp_path, AUDITD, detection)[0] == options


@pytest.mark.parametrize("detection, reason", [
    ("selection:\n    type: PATH\n    name|endswith: /sysrq\ncondition: selection\n", "endswith"),
    ("selection:\n    type: PATH\n    name: /etc/*version\ncondition: selection\n", "too broad"),
    ("selection:\n    type: SYSCALL\n    exe|endswith: /useradd\ncondition: selection\n", "does not name"),
    # a number is read for the ABI the rule's arch names (test_auditd_access.py); an arch the data lacks: unknown
    ("selection:\n    SYSCALL: '59'\n    arch: c00000b7\ncondition: selection\n", "numbering applies"),
    ("keywords:\n    - 'truncate -s0'\ncondition: keywords\n", "names no record type"),
    ("selection:\n    type: TTY\ncondition: selection\n", "not in mappings/auditd.yaml"),
    ("selection:\n    type: PATH\n    name: '/etc/a b'\ncondition: selection\n", "cannot carry safely"),
])
def test_what_cannot_be_told_is_unknown(tmp_path, detection, reason):
    options, coverage, result = _needs(tmp_path, AUDITD, detection, "-w /etc/passwd -p wa\n")
    (ids,) = options
    reqs = [result.resolution.requirements[rid] for rid in ids]
    assert all(r.status == "unknown" for r in reqs) and any(reason in r.name for r in reqs), [r.name for r in reqs]
    assert coverage == "unknown"


PROCESS = "category: process_creation\nproduct: linux"


@pytest.mark.parametrize("rules_text, coverage", [
    ("-a always,exit -F arch=b64 -S execve\n-a always,exit -F arch=b32 -S execve\n", "usable"),
    ("-a always,exit -F arch=b64 -S execve\n", "unknown"),       # b32 missing; Sysmon for Linux cannot be told
    ("-a never,exit -F arch=b64 -S execve\n-a always,exit -F arch=b64 -S execve\n"
     "-a always,exit -F arch=b32 -S execve\n", "unknown"),
])
def test_process_creation_needs_execve_for_both_arches(tmp_path, rules_text, coverage):
    detection = "selection:\n    Image|endswith: /nc\n    CommandLine|contains: ' -e '\ncondition: selection\n"
    options, got, _ = _needs(tmp_path, PROCESS, detection, rules_text)
    assert ["auditd:syscall:b32:execve", "auditd:syscall:b64:execve"] in options
    assert got == coverage


def test_parent_fields_are_not_served_by_auditd(tmp_path):
    detection = "selection:\n    ParentImage|endswith: /httpd\n    Image|endswith: /sh\ncondition: selection\n"
    options, _, _ = _needs(tmp_path, PROCESS, detection, "-a always,exit -F arch=b64 -S execve\n")
    assert all("auditd:syscall:b64:execve" not in o for o in options)


def test_inputs_for_the_other_platform_are_ignored_with_a_note(tmp_path):
    rules = _rule_file(tmp_path, "w", "category: process_creation\nproduct: windows",
                       "selection:\n    Image|endswith: '\\\\cmd.exe'\ncondition: selection\n")
    (tmp_path / "host.rules").write_text("-a always,exit -F arch=b64 -S execve\n")
    result = check(CheckOptions(paths=[str(rules)], auditd_rules=[str(tmp_path / "host.rules")], use_cache=False))
    assert any("audit rules ignored" in w for w in result.snapshot.warnings)
    assert {r.status for r in result.resolution.requirements.values()} == {"not_checked"}


# --------------------------------------------------------------------------- emit: round trip

def _emit(cli, tmp_path, *args):
    out = tmp_path / "out"
    done = cli(*args, "--emit", out, "--no-cache")
    assert done.exit_code in (0, 1), done.stderr
    return (out / "audit.rules").read_text()


@pytest.mark.parametrize("host", [None, "server-baseline.rules", "auditctl-l.txt"])
def test_emitted_rules_read_back_and_met(cli, tmp_path, corpus_rules, data, host):
    """Every emitted line parses back with the same reader, and with the host's rules loaded before it (as
    rules.d files are) the requirement it was written for is met."""
    folder = corpus_rules / "rules" / "linux"
    host_args = [str(SAMPLES / host)] if host else []
    text = _emit(cli, tmp_path, folder, *[a for h in host_args for a in ("--auditd-rules", h)])
    emitted = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert emitted, text
    assert all(line.startswith(("-a always,exit ", "-w ")) for line in emitted)      # never -D, -e, never, -d, -W
    assert len(set(emitted)) == len(emitted)
    back = read_auditd_rules(["audit.rules"], [text])
    assert back.inputs[0].warnings == [] and len(back.auditd.rules) == len(emitted)
    names = [*host_args, "audit.rules"]
    combined = read_auditd_rules(names, [*(Path(h).read_text() for h in host_args), text]).auditd
    combined.enabled = None   # a locked host (-e 2) loads the file at the next boot
    before = check(CheckOptions(paths=[str(folder)], auditd_rules=host_args, use_cache=False))
    written = {r.how: r for r in before.resolution.requirements.values() if r.how in emitted}
    assert sorted(written) == sorted(emitted)
    for req in written.values():
        assert req.status != "met"
        assert auditd_status(req.auditd, combined, data)[0] == "met", req.id


def test_emit_adds_only_what_is_missing(cli, tmp_path):
    rules = _rule_file(tmp_path, "r", PROCESS, "selection:\n    Image|endswith: /nc\ncondition: selection\n")
    (tmp_path / "host.rules").write_text("-a always,exit -F arch=b64 -S execve -k exec\n")
    text = _emit(cli, tmp_path, rules.parent, "--auditd-rules", tmp_path / "host.rules")
    emitted = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert emitted == ["-a always,exit -F arch=b32 -S execve -k sigma"]
    assert "high volume" in text and "unblinds 1 alone" in text


def test_emit_holds_back_what_an_exclusion_would_suppress(cli, tmp_path):
    rules = _rule_file(tmp_path, "r", PROCESS, "selection:\n    Image|endswith: /nc\ncondition: selection\n")
    (tmp_path / "host.rules").write_text("-a never,exit -F arch=b32 -S execve\n-a always,exit -F arch=b64 -S execve\n")
    text = _emit(cli, tmp_path, rules.parent, "--auditd-rules", tmp_path / "host.rules")
    assert [line for line in text.splitlines() if line and not line.startswith("#")] == []
    assert "Not written" in text and "suppressed by the never rule" in text


def test_hostile_rule_text_never_reaches_a_rule_line(cli, tmp_path):
    rules = _rule_file(tmp_path, "hostile", AUDITD,
                       "selection:\n    type: PATH\n    name: \"/etc/x\\n-D\"\ncondition: selection\n")
    text = _emit(cli, tmp_path, rules.parent)
    assert "-D" not in [line.strip() for line in text.splitlines()]
    assert all(not line.startswith("-") for line in text.splitlines())


def test_emit_writes_what_can_be_told_of_a_rule_that_also_needs_what_cannot(cli, tmp_path):
    rules = _rule_file(tmp_path, "mixed", AUDITD, "selection:\n    - type: PATH\n      name: /etc/ld.so.preload\n"
                                                  "    - type: PATH\n      name|endswith: /sysrq\n"
                                                  "condition: selection\n")
    text = _emit(cli, tmp_path, rules.parent)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (rule,) = report["rules"]
    assert rule["coverage"] == "not_checked"
    (option,) = [o for need in rule["needs"] for o in need["options"]]
    assert sorted(option["requirements"])[0].startswith("auditd:undetermined:")
    assert [line for line in text.splitlines() if line and not line.startswith("#")] == [
        "-w /etc/ld.so.preload -p wa -k sigma"]


# --------------------------------------------------------------------------- data schema

@pytest.mark.parametrize("value, problem", [
    ({"syscalls": ["execve"]}, None),
    ({"from_rule": True}, None),
    ({"watch_fields": ["TargetFilename"]}, None),
    ({"syscalls": ["execve"], "from_rule": True}, "exactly one"),
    ({"syscalls": ["exec ve"]}, "not syscall names"),
    ({"from_rule": "yes"}, "must be true"),
    ({"sycalls": ["execve"]}, "exactly one"),
    (["execve"], "not a mapping"),
])
def test_guide_spec_is_validated(data, value, problem):
    from logsource_checker.auditd_data import spec_problems

    found = spec_problems(data, value)
    assert (found == []) if problem is None else any(problem in p for p in found), found


@pytest.mark.parametrize("change, problem", [
    (lambda d: setattr(d, "arches", ("b128",)), "arches"),
    (lambda d: setattr(d, "default_watch_perms", "rwz"), "default_watch_perms"),
    (lambda d: setattr(d, "emit_key", "a key with blanks"), "emit_key"),
    (lambda d: d.syscall_volumes.update({"execve": "huge"}), "syscall_volumes"),
    (lambda d: setattr(d, "arch_aliases", {"x86_64": "b16"}), "arch_aliases"),
])
def test_bad_auditd_data_is_reported(change, problem):
    from logsource_checker.auditd_data import auditd_problems

    data = copy.deepcopy(knowledge.load(use_cache=False).auditd)   # load() is memoized: never change its result
    assert auditd_problems(data) == []
    change(data)
    assert any(problem in p for p in auditd_problems(data))
