"""Whether a host's loaded audit rules produce what an ``auditd_rule`` requirement asks for.

Semantics (auditctl(8), audit.rules(7), audit_add_rule_data(3)):

- syscall rules: the exit list is read in load order and the first rule that matches a syscall decides
  (``always`` writes the records, ``never`` suppresses them). A rule decides for the whole syscall when it has no
  ``-F`` field but ``arch`` and ``key``; a rule with other fields (``auid>=1000``, ``exe=``...) decides only
  for some calls: a narrowing ``always`` rule alone leaves the status ``unknown``, a narrowing ``never`` rule
  before the deciding one is named in the reason. A rule without ``-F arch`` audits the syscall for the
  host's native ABI only (auditctl resolves the name for it): it is counted for the first arch of the data.
  Rules keeping only failed calls (``-F success=0``, ``-F exit=-EACCES``) do not count.
- watches: ``-w PATH -p PERMS`` (and ``-F path=`` / ``-F dir=`` with ``-F perm=``) cover the path itself and,
  for a folder, everything below it; the permissions must include every one the requirement asks for (none
  given: every access).
- user-space records need no rule; only a ``user`` rule with ``never`` or an ``exclude`` rule drops them.
- the exclude list drops records by ``msgtype`` (the action is ignored: it is always "never"); a ``never,task``
  rule switches syscall auditing off for the tasks it matches (all of them without ``-F``).
- ``-e 0`` switches auditing off: nothing is met.
"""
from __future__ import annotations

from .auditd_data import AuditdData
from .policy.auditd import FORMAT as LINUX_FORMAT
from .policy.model import AuditdRules, AuditRule, PolicySnapshot

# Linux inputs: audit rules, and a Sysmon configuration read as Sysmon for Linux (sysmon_linux.py)
LINUX_FORMATS = (LINUX_FORMAT, "sysmon_linux_config")
LINUX_KINDS = ("auditd_rule", "sysmon_linux_event")
NO_INPUT = "no audit rules given (--auditd-rules: 'auditctl -l' output or the files of /etc/audit/rules.d/)"
_FILE_FIELDS = frozenset({"path", "dir"})


def _at(rule: AuditRule) -> str:
    return f"{rule.source} line {rule.line}: {rule.text}"


def _narrowing(rule: AuditRule, data: AuditdData, also: frozenset[str] = frozenset()) -> list[str]:
    return [f"{name}{op}{value}" for name, op, value in rule.fields
            if name not in data.neutral_fields and name not in also]


def _failures_only(rule: AuditRule, data: AuditdData) -> bool:
    for name, op, value in rule.fields:
        if name in data.result_fields and op == "=" and (value.startswith("-") or (name == "success" and
                                                                                    value.lower() in ("0", "no"))):
            return True
    return False


def _arch_ok(rule: AuditRule, arch: str, data: AuditdData) -> tuple[bool, str]:
    values = rule.field_values("arch")
    if not values:
        native = data.arches[0] if data.arches else arch
        if rule.syscalls is None or arch == native:
            return True, "" if rule.syscalls is None else f" (no -F arch: counted for the native {native} only)"
        return False, ""
    ok = True
    for op, value in values:
        named = data.arch_aliases.get(value.casefold(), value.casefold())
        ok = ok and ((named == arch) if op == "=" else (named != arch) if op == "!=" else False)
    return ok, ""


def _excluded(types: tuple[str, ...], rules: AuditdRules, user_space: bool) -> tuple[str | None, list[str]]:
    """(a rule that drops these record types outright, rules that drop some of them): exclude rules (any action),
    ``never,user`` rules for user-space records, ``never,task`` rules for what syscalls write."""
    partly: list[str] = []
    for rule in rules.rules:
        msgtypes = rule.field_values("msgtype")
        others = [f for f in rule.fields if f[0] != "msgtype"]
        if rule.list == "task":
            if rule.action != "never" or user_space:
                continue
            hits, odd = True, False   # a task never rule: no syscall of the tasks it matches is audited
        elif rule.list == "exclude" or (rule.list == "user" and rule.action == "never" and user_space):
            hits = any(op == "=" and value.upper() in types for op, value in msgtypes)
            odd = any(op != "=" for op, _ in msgtypes)
            if not msgtypes:   # no msgtype: every record type of what the other fields match
                hits = True
        else:
            continue
        if hits and not others and not odd:
            return _at(rule), partly
        if hits or odd:
            partly.append(_at(rule))
    return None, partly


def _with_exclusions(status: tuple[str, str], types: tuple[str, ...], rules: AuditdRules,
                     user_space: bool = False) -> tuple[str, str]:
    if status[0] == "missing":
        return status
    dropped, partly = _excluded(types, rules, user_space)
    if dropped:
        return "missing", f"{status[1]}; but {'/'.join(types)} records are dropped by {dropped}"
    if partly:
        return status[0], f"{status[1]}; some records are dropped by {'; '.join(partly)}"
    return status


def _syscall(arch: str, name: str, rules: AuditdRules, data: AuditdData) -> tuple[str, str]:
    never_some: list[str] = []
    narrowed: list[str] = []
    failures: list[str] = []
    for rule in rules.rules:
        if rule.list != "exit" or rule.watch or rule.perms or _FILE_FIELDS & {f[0] for f in rule.fields}:
            continue
        if rule.syscalls is not None and name not in rule.syscalls and not any(s.isdigit() for s in rule.syscalls):
            continue
        arch_ok, arch_note = _arch_ok(rule, arch, data)
        if not arch_ok:
            continue
        if rule.syscalls is not None and name not in rule.syscalls:   # -S by number: read for this ABI
            from .auditd_syscalls import with_names

            if name not in with_names(rule.syscalls, arch, data):
                continue
            arch_note += f" (a syscall number there is {name} for {arch}: mappings/syscalls.yaml)"
        narrowing = _narrowing(rule, data)
        if rule.action == "never":
            if not narrowing:
                return "missing", f"{name} ({arch}) is suppressed by the never rule {_at(rule)}"
            never_some.append(_at(rule))
        elif _failures_only(rule, data):
            failures.append(_at(rule))
        elif narrowing:
            narrowed.append(f"{_at(rule)} (only where {' '.join(narrowing)})")
        else:
            extra = f"; calls matched first by {'; '.join(never_some)} are not audited" if never_some else ""
            return "met", f"audited by {_at(rule)}{arch_note}{extra}"
    if narrowed:
        return "unknown", (f"{name} ({arch}) is audited only by narrowed rules: {'; '.join(narrowed)}; whether the "
                           "rule's events pass those filters cannot be told")
    if failures:
        return "missing", f"{name} ({arch}) is audited only for failed calls: {'; '.join(failures)}"
    return "missing", f"no loaded rule audits {name} for {arch}"


def _covers(rule: AuditRule, path: str) -> bool:
    bare = path.rstrip("/") or "/"
    targets = [(rule.watch, True)] if rule.watch else []
    targets += [(value, name == "dir") for name, op, value in rule.fields if name in _FILE_FIELDS and op == "="]
    for target, recursive in targets:
        top = (target or "").rstrip("/") or "/"
        if bare == top or (recursive and bare.startswith(top.rstrip("/") + "/")):
            return True
    return False


def _watch(path: str, perms: str, rules: AuditdRules, data: AuditdData) -> tuple[str, str]:
    narrowed: list[str] = []
    weaker: list[str] = []
    for rule in rules.rules:
        if rule.list != "exit" or not _covers(rule, path):
            continue
        narrowing = _narrowing(rule, data, also=_FILE_FIELDS)
        if rule.action == "never":
            if not narrowing:
                return "missing", f"{path} is excluded by the never rule {_at(rule)}"
            continue
        have = rule.perms or "rwxa"
        if not set(perms) <= set(have):
            weaker.append(f"{_at(rule)} (watches {have}, {perms} is needed)")
        elif narrowing:
            narrowed.append(f"{_at(rule)} (only where {' '.join(narrowing)})")
        else:
            return "met", (f"covered by {_at(rule)} for {perms}; the Sigma rule does not say which access it looks for "
                           "(reads need r)" if set(have) < set("rwxa") else f"covered by {_at(rule)}")
    if narrowed:
        return "unknown", f"{path} is watched only by narrowed rules: {'; '.join(narrowed)}"
    if weaker:
        return "missing", f"{path} is watched without the needed permissions: {'; '.join(weaker)}"
    return "missing", f"no loaded watch covers {path} for {perms}"


def auditd_status(item: tuple[str, ...] | None, rules: AuditdRules | None, data: AuditdData) -> tuple[str, str]:
    """(status, reason) of one requirement item (auditd_needs.py) under the loaded rules."""
    if item is None:
        return "unknown", "not an auditd requirement"
    kind = item[0]
    if kind == "undetermined":
        return "unknown", f"{item[1]}: which audit rule produces these records cannot be told from the rule"
    if rules is None:
        return "unknown", NO_INPUT
    if rules.enabled == 0:
        return "missing", f"auditing is switched off (-e 0, {rules.enabled_source}): no record is written"
    if kind == "syscall":
        _, arch, name = item
        return _with_exclusions(_syscall(arch, name, rules, data), data.records_of_syscall(name), rules)
    if kind == "watch":
        _, path, perms = item
        return _with_exclusions(_watch(path, perms, rules, data), ("SYSCALL", "PATH"), rules)
    if kind == "record":
        return _with_exclusions(("met", f"{item[1]} is sent by user-space programs: no audit rule is needed"),
                                (item[1],), rules, user_space=True)
    if kind == "key":
        for rule in rules.rules:
            if item[1] in rule.keys and rule.action == "always":
                return "met", f"a loaded rule carries key {item[1]}: {_at(rule)}"
        return "missing", (f"no loaded rule carries key {item[1]}; the Sigma rule's logsource definition says which "
                           "audit rule it expects")
    return "unknown", f"requirement item {kind!r} not understood"


def only_linux_inputs(snapshot: PolicySnapshot) -> bool:
    """Whether every policy input is for Linux (then Windows requirements are not checked)."""
    return bool(snapshot.inputs) and all(inp.format in LINUX_FORMATS for inp in snapshot.inputs)


def input_notes(snapshot: PolicySnapshot | None, kinds: set[str]) -> list[str]:
    """Inputs that cannot bear on the rules checked (audit rules for Windows rules, and the reverse): one note
    each; they are ignored, not an error."""
    if snapshot is None:
        return []
    linux = [inp.path for inp in snapshot.inputs if inp.format == LINUX_FORMAT]
    sysmon_linux = [inp.path for inp in snapshot.inputs if inp.format == LINUX_FORMATS[1]]
    either = snapshot.sysmon.source if snapshot.sysmon is not None and snapshot.sysmon.os == "either" else None
    windows = [inp.path for inp in snapshot.inputs if inp.format not in LINUX_FORMATS and
               not (inp.path == either and "sysmon_linux_event" in kinds)]   # used for the Linux rules
    notes = []
    if linux and "auditd_rule" not in kinds:
        notes.append(f"audit rules ignored ({', '.join(linux)}): no rule checked is for a Linux log source that "
                     "auditd serves")
    if sysmon_linux and "sysmon_linux_event" not in kinds:
        notes.append(f"Sysmon for Linux configuration ignored ({', '.join(sysmon_linux)}): no rule checked is for a "
                     "Linux log source Sysmon for Linux serves")
    if windows and not kinds - {*LINUX_KINDS, "external"}:
        notes.append(f"Windows policy inputs ignored ({', '.join(windows)}): no rule checked needs Windows policy")
    return notes
