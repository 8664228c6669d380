"""Linux audit rules, continued: syscall numbers read per ABI (mappings/syscalls.yaml, auditd_syscalls.py) in host
rules (-S 59) and in Sigma rules (syscall: 11 with arch: 40000003), and the access a watch must cover (-p r, w, x,
a: auditctl(8); the kernel's syscall classes) when a rule looks for reads. Rules and audit rules written here."""
from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

from logsource_checker import knowledge
from logsource_checker.auditd_check import auditd_status
from logsource_checker.auditd_syscalls import abi_of_record_arch, name_of
from logsource_checker.engine import CheckOptions, check
from logsource_checker.policy.auditd import read_auditd_rules

ROOT = Path(__file__).resolve().parent.parent
DATA = knowledge.load(use_cache=False).auditd


# --------------------------------------------------------------------------- the syscall table

@pytest.mark.parametrize("abi, number, name", [
    ("b64", "59", "execve"), ("b64", "42", "connect"), ("b64", "322", "execveat"), ("b64", "2", "open"),
    ("b64", "257", "openat"), ("b64", "99", "sysinfo"), ("b64", "101", "ptrace"),
    ("b32", "11", "execve"), ("b32", "362", "connect"), ("b32", "102", "socketcall"), ("b32", "358", "execveat"),
    ("b32", "59", "oldolduname"), ("b32", "5", "open"),
])
def test_syscall_numbers_as_the_kernel_tables_give_them(abi, number, name):
    """arch/x86/entry/syscalls/syscall_64.tbl and syscall_32.tbl (and audit-userspace's copies of them)."""
    assert name_of(DATA, abi, number) == name


def test_syscall_table_is_well_formed():
    raw = yaml.safe_load((ROOT / "mappings" / "syscalls.yaml").read_text())
    assert set(raw["abis"]) == {"b64", "b32"}
    for abi, entry in raw["abis"].items():
        assert entry["source"].startswith("https://") and entry["kernel_table"].startswith("https://")
        numbers = entry["numbers"]
        assert len(numbers) > 300 and all(isinstance(n, int) and n >= 0 for n in numbers)
        assert len(set(numbers.values())) == len(numbers), abi   # one number per name
    assert abi_of_record_arch(DATA, "c000003e") == "b64" and abi_of_record_arch(DATA, "0x40000003") == "b32"
    assert name_of(DATA, "b64", "execve") is None and name_of(DATA, "b64", "99999") is None


def _host(text: str):
    return read_auditd_rules(["host.rules"], [textwrap.dedent(text)]).auditd


@pytest.mark.parametrize("rules_text, item, status", [
    ("-a always,exit -F arch=b64 -S 59 -k exec\n", ("syscall", "b64", "execve"), "met"),
    ("-a always,exit -F arch=b64 -S 59 -k exec\n", ("syscall", "b32", "execve"), "missing"),
    ("-a always,exit -F arch=b32 -S 11 -k exec\n", ("syscall", "b32", "execve"), "met"),
    ("-a always,exit -F arch=b32 -S 59 -k exec\n", ("syscall", "b32", "execve"), "missing"),   # oldolduname there
    ("-a always,exit -S 59 -k exec\n", ("syscall", "b64", "execve"), "met"),                   # native ABI
    ("-a always,exit -F arch=b64 -S 42,41 -k net\n", ("syscall", "b64", "connect"), "met"),
    ("-a never,exit -F arch=b64 -S 59\n-a always,exit -F arch=b64 -S execve\n", ("syscall", "b64", "execve"),
     "missing"),
])
def test_host_rules_with_syscall_numbers(rules_text, item, status):
    got, reason = auditd_status(item, _host(rules_text), DATA)
    assert got == status, reason
    if status == "met":   # every met case names the syscall by number
        assert "mappings/syscalls.yaml" in reason


def _rule(folder: Path, detection: str, tags: tuple[str, ...] = (), definition: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"title": "t", "id": str(uuid.uuid4()), "status": "test",
           "logsource": {"product": "linux", "service": "auditd", **({"definition": definition} if definition else {})},
           "detection": yaml.safe_load(textwrap.dedent(detection)), "level": "high"}
    if tags:
        doc["tags"] = list(tags)
    path = folder / f"r{len(list(folder.iterdir()))}.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _requirements(tmp_path: Path, detection: str, rules_text: str | None = None, **kw) -> dict[str, tuple[str, str]]:
    _rule(tmp_path / "rules", detection, **kw)
    extra = {}
    if rules_text is not None:
        (tmp_path / "host.rules").write_text(rules_text)
        extra["auditd_rules"] = [str(tmp_path / "host.rules")]
    result = check(CheckOptions(paths=[str(tmp_path / "rules")], use_cache=False, **extra))
    return {rid: (req.status, req.reason or "") for rid, req in result.resolution.requirements.items()
            if req.kind == "auditd_rule"}


@pytest.mark.parametrize("detection, want", [
    ("selection: {type: SYSCALL, syscall: 59}\ncondition: selection\n", {"auditd:syscall:b64:execve"}),
    ("selection: {type: SYSCALL, syscall: 11, arch: '40000003'}\ncondition: selection\n", {"auditd:syscall:b32:execve"}),
    ("selection: {type: SYSCALL, syscall: 59, arch: c000003e}\ncondition: selection\n", {"auditd:syscall:b64:execve"}),
    ("selection: {syscall: [59, 322]}\ncondition: selection\n",
     {"auditd:syscall:b64:execve", "auditd:syscall:b64:execveat"}),
    ("selection: {type: SYSCALL, syscall: 59, arch: 'c00000b7'}\ncondition: selection\n",   # aarch64: not in the data
     {"auditd:undetermined:syscall-59-with-an-arch-the-rule-matches-as-c00000b7-which-abi-s-numbering-applies-cannot-be-told"}),
])
def test_sigma_rules_with_syscall_numbers(tmp_path, detection, want):
    got = set(_requirements(tmp_path, detection))
    assert {rid[:80] for rid in got} == {rid[:80] for rid in want}   # ids of undetermined items are cut at 80


# --------------------------------------------------------------------------- the access a watch must cover

SHADOW = "selection: {type: PATH, name: /etc/shadow}\ncondition: selection\n"


@pytest.mark.parametrize("detection, kw, perms", [
    (SHADOW, {}, "wa"),                                                                   # not said: writes
    (SHADOW, {"tags": ("attack.discovery", "attack.t1082")}, "r"),                        # a reading tactic
    (SHADOW, {"tags": ("attack.credential-access",)}, "wa"),      # may look for the write that sets theft up
    (SHADOW, {"tags": ("attack.credential-access",), "definition": "-w /etc/shadow -p r -k shadow"}, "r"),
    (SHADOW, {"tags": ("attack.persistence",)}, "wa"),
    (SHADOW, {"tags": ("attack.discovery",), "definition": "Required: -w /etc/shadow -p rwa -k shadow"}, "rwa"),
    (SHADOW, {"definition": "-w /etc/shadow -p x"}, "x"),
    ("selection: {type: PATH, name: /etc/shadow, nametype: DELETE}\ncondition: selection\n", {}, "w"),
    ("selection: {type: PATH, name: /etc/shadow, syscall: chmod}\ncondition: selection\n", {}, "a"),
    ("selection: {type: PATH, name: /etc/shadow, syscall: [getxattr, unlink]}\ncondition: selection\n", {}, "rw"),
    ("selection: {type: PATH, name: /etc/shadow, syscall: openat}\ncondition: selection\n", {}, "wa"),  # flags decide
])
def test_access_a_path_rule_needs(tmp_path, detection, kw, perms):
    assert f"auditd:watch:/etc/shadow:{perms}" in _requirements(tmp_path, detection, **kw)


@pytest.mark.parametrize("host, status", [
    ("-w /etc/shadow -p wa -k identity\n", "missing"),       # a write watch never shows a read
    ("-w /etc/shadow -p r -k shadow_read\n", "met"),
    ("-w /etc/shadow -p rwxa -k shadow\n", "met"),
    ("-w /etc/shadow\n", "met"),                             # no -p: every access
    ("-w /etc/ -p ra -k etc\n", "met"),                      # a folder watch covers what is below it
    ("-a always,exit -F path=/etc/shadow -F perm=w -k w\n", "missing"),
    ("-a always,exit -F path=/etc/shadow -F perm=r -k r\n", "met"),
])
def test_read_rules_are_not_met_by_write_watches(tmp_path, host, status):
    got = _requirements(tmp_path, SHADOW, host, tags=("attack.discovery",))
    assert got["auditd:watch:/etc/shadow:r"][0] == status, got


def test_emitted_read_watch_reads_back_met(cli, tmp_path):
    _rule(tmp_path / "rules", SHADOW, definition="Required auditd configuration: -w /etc/shadow -p r -k shadow")
    (tmp_path / "host.rules").write_text("-w /etc/shadow -p wa -k identity\n")
    out = tmp_path / "out"
    done = cli(tmp_path / "rules", "--auditd-rules", tmp_path / "host.rules", "--emit", out, "--no-cache")
    assert done.exit_code in (0, 1), done.stderr
    lines = [ln for ln in (out / "audit.rules").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines == ["-w /etc/shadow -p r -k sigma"]
    combined = read_auditd_rules(["host.rules", "audit.rules"],
                                 [(tmp_path / "host.rules").read_text(), "\n".join(lines)]).auditd
    assert auditd_status(("watch", "/etc/shadow", "r"), combined, DATA)[0] == "met"
