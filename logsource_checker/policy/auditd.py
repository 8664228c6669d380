"""Linux audit rules: ``auditctl -l`` output and audit rules files (/etc/audit/rules.d/*.rules, audit.rules).

The syntax is auditctl's (auditctl(8), audit.rules(7)): one command per line, ``#`` starts a comment line.
Understood:

- control: ``-D`` (delete every rule loaded so far), ``-e 0|1|2`` (auditing off / on / on and locked),
  ``-b``, ``-f``, ``-r``, ``-c``, ``-i``, ``--backlog_wait_time``, ``--loginuid-immutable``, ``--reset-lost``
  (no effect on which records are written: noted, never counted against anything);
- ``-w PATH [-p PERMS] [-k KEY]``: a watch; ``-W PATH ...`` removes watches on that path;
- ``-a LIST,ACTION`` / ``-A LIST,ACTION`` (either order; ``-A`` puts the rule first) with ``-S`` (repeatable,
  comma-separated, ``all``), ``-F NAME OP VALUE``, ``-C``, ``-k``; ``-d LIST,ACTION ...`` deletes the same rule;
- the status lines of ``auditctl -s`` (``enabled 1``, ``backlog_limit 8192``, ...): ``enabled`` is read;
- ``No rules`` (what ``auditctl -l`` prints with nothing loaded).

Several files are read in the order given, as ``augenrules`` concatenates rules.d files (in name order).
Anything else is reported with file and line. Nothing here knows syscall, arch or record-type names: those
live in mappings/auditd.yaml and are judged by logsource_checker/auditd_check.py.
"""
from __future__ import annotations

import re
import shlex
from typing import Sequence

from .model import AuditdRules, AuditRule, PolicyInput, PolicyInputError, PolicySnapshot
from .xmlsafe import one_line

FORMAT = "auditd_rules"
_FIELD_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(!=|>=|<=|&=|=|>|<|&)(.*)$")
_LISTS = ("exit", "exclude", "user", "task", "filesystem", "io_uring", "entry")
_ACTIONS = ("always", "never")
_CONTROL_WITH_VALUE = {"-b", "-f", "-r", "--backlog_wait_time", "-t"}
_CONTROL_FLAGS = {"-c", "-i", "--loginuid-immutable", "--reset-lost", "-s", "-l"}
_STATUS_RE = re.compile(r"^(enabled|failure|pid|rate_limit|backlog_limit|lost|backlog|backlog_wait_time|"
                        r"backlog_wait_time_actual|loginuid_immutable)\s+(\S+)")
_MAX_PROBLEMS = 50


class _Rules:
    """The rule list being built (load order), with the problems of the current input."""

    def __init__(self, out: AuditdRules, path: str) -> None:
        self.out = out
        self.path = path
        self.problems: list[str] = []
        self.understood = 0

    def problem(self, line: int, text: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(f"line {line}: {text}")


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError:
        return text.split()


def _list_action(value: str) -> tuple[str, str] | None:
    parts = [p.strip().lower() for p in value.split(",")]
    if len(parts) != 2:
        return None
    first, second = parts
    if first in _ACTIONS and second in _LISTS:
        first, second = second, first
    if first in _LISTS and second in _ACTIONS:
        return ("exit" if first == "entry" else first), second
    return None


def _rule(tokens: list[str], rules: _Rules, number: int, text: str) -> tuple[str, AuditRule] | None:
    """A rule command (-a / -A / -d / -w / -W) as (command, rule); None after reporting a problem."""
    command = tokens[0]
    watch = perms = None
    syscalls: set[str] | None = set()
    fields: list[tuple[str, str, str]] = []
    keys: list[str] = []
    if command in ("-w", "-W"):
        if len(tokens) < 2:
            rules.problem(number, f"{command} without a path")
            return None
        where, action, watch, rest = "exit", "always", tokens[1], tokens[2:]
    else:
        pair = _list_action(tokens[1]) if len(tokens) > 1 else None
        if pair is None:
            rules.problem(number, f"{command} needs LIST,ACTION (for example always,exit): {one_line(text, 120)}")
            return None
        (where, action), rest = pair, tokens[2:]
    i = 0
    while i < len(rest):
        option = rest[i]
        value = rest[i + 1] if i + 1 < len(rest) else None
        if value is None:
            rules.problem(number, f"{option} without a value")
            return None
        if option == "-S":
            names = {s.strip().lower() for s in value.split(",") if s.strip()}
            syscalls = None if syscalls is None or "all" in names else syscalls | names
        elif option == "-F" or option == "-C":
            match = _FIELD_RE.match(value)
            if match is None:
                rules.problem(number, f"{option} {value!r} is not NAME OP VALUE")
                return None
            name, op, field_value = match.group(1).lower(), match.group(2), match.group(3)
            if name == "key":
                keys.append(field_value)
            elif name == "perm":
                perms = field_value
            else:
                fields.append((name, op, field_value))
        elif option == "-k":
            keys.append(value)
        elif option == "-p":
            perms = value
        else:
            rules.problem(number, f"option {option} not understood in {one_line(text, 120)}")
            return None
        i += 2
    if syscalls is not None and not syscalls:
        syscalls = None   # no -S: every syscall (a watch, or a rule on fields only)
    return command, AuditRule(source=rules.path, line=number, text=one_line(text, 300), list=where, action=action,
                              syscalls=frozenset(syscalls) if syscalls is not None else None,
                              fields=tuple(fields), keys=tuple(keys), watch=watch,
                              perms=perms.lower() if perms else None)


def _same(a: AuditRule, b: AuditRule) -> bool:
    return (a.list, a.action, a.syscalls, a.fields, a.watch, a.perms) == (b.list, b.action, b.syscalls, b.fields,
                                                                           b.watch, b.perms)


def _command(tokens: list[str], rules: _Rules, number: int, text: str) -> None:
    out = rules.out
    head = tokens[0]
    if head == "-D":
        if out.rules:
            out.notes.append(f"{rules.path} line {number}: -D deletes the {len(out.rules)} rule(s) loaded before it")
        out.rules.clear()
    elif head == "-e":
        value = tokens[1] if len(tokens) > 1 else ""
        if value not in ("0", "1", "2"):
            rules.problem(number, f"-e {value!r}: expected 0, 1 or 2")
            return
        out.enabled, out.enabled_source = int(value), f"{rules.path} line {number}"
    elif head in _CONTROL_WITH_VALUE or head in _CONTROL_FLAGS:
        pass   # backlog, failure mode, rate limit, ...: no effect on which records are written
    elif head in ("-a", "-A", "-d", "-w", "-W"):
        found = _rule(tokens, rules, number, text)
        if found is None:
            return
        command, rule = found
        if command == "-a" or command == "-w":
            out.rules.append(rule)
        elif command == "-A":
            out.rules.insert(0, rule)
        elif command == "-W":
            out.rules[:] = [r for r in out.rules if r.watch != rule.watch]
        else:
            out.rules[:] = [r for r in out.rules if not _same(r, rule)]
    else:
        rules.problem(number, f"not an audit rule or control command: {one_line(text, 120)}")
        return
    rules.understood += 1


def read_auditd_rules(paths: Sequence[str], texts: Sequence[str]) -> PolicySnapshot:
    """One snapshot from audit rules inputs read in order; each input's problems become its warnings."""
    out = AuditdRules()
    snapshot = PolicySnapshot(auditd=out)
    for path, text in zip(paths, texts):
        rules = _Rules(out, path)
        out.sources.append(path)
        status_lines = comments = 0
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#") or line.casefold() == "no rules":
                rules.understood += bool(line) and not line.startswith("#")
                comments += line.startswith("#")
                continue
            status = _STATUS_RE.match(line)
            if status:
                status_lines += 1
                if status.group(1) == "enabled" and status.group(2) in ("0", "1", "2"):
                    out.enabled, out.enabled_source = int(status.group(2)), f"{path} line {number}"
                continue
            tokens = _tokens(line)
            if tokens:
                _command(tokens, rules, number, line)
        if not rules.understood and not status_lines and comments and not rules.problems:
            rules.problems.append("only comments: no audit rule")   # a valid file that loads nothing
        elif not rules.understood and not status_lines:
            raise PolicyInputError(path, "not an audit rules file or 'auditctl -l' / 'auditctl -s' output: no line "
                                         "is an audit rule or control command" +
                                   (f" ({rules.problems[0]})" if rules.problems else ""))
        snapshot.inputs.append(PolicyInput(path=path, format=FORMAT, warnings=rules.problems))
    if out.enabled == 2:
        out.notes.append(f"-e 2 ({out.enabled_source}): the rules are locked until reboot; new rules take effect "
                         "only after a restart")
    snapshot.warnings.extend(out.notes)
    return snapshot
