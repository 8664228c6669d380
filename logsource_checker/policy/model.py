"""The policy a machine gets, as read from one or more inputs.

Parsers in this package (one module per input format) each return a ``PolicySnapshot``;
``merge`` folds several into one effective snapshot, recording which input won where.
Nothing here knows GUIDs, channel or option names: those live in the data files and reach the
parsers as a ``PolicyVocabulary`` (built by ``knowledge.Knowledge.policy_vocabulary``).
"""
from __future__ import annotations

from dataclasses import dataclass, field


class PolicyInputError(Exception):
    """An input file that cannot be used at all (exit status 2)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class PolicyVocabulary:
    """What the parsers must recognise in policy files, from the data (mappings/*.yaml)."""

    force_value: str = ""           # registry value name of the 'force subcategory settings' option
    inclusion: tuple[tuple[str, int], ...] = ()  # 'Inclusion Setting' text -> SettingValue
    eventlog_category: str = ""     # Administrative Templates category of the event-log policies
    eventlog_enable_policy: str = ""        # start of the name of the policy turning a log on ('Turn on logging')
    eventlog_size_option: str = ""          # word in the label of a size policy's option ('size')
    eventlog_template_size_key: str = ""    # security template key of a classic log's size ('MaximumLogSize')

    def is_enable_policy(self, name: str) -> bool:
        return bool(self.eventlog_enable_policy) and name.casefold().startswith(self.eventlog_enable_policy.casefold())

    def is_size_option(self, label: str) -> bool:
        return bool(self.eventlog_size_option) and self.eventlog_size_option.casefold() in label.casefold()

    def is_template_size_key(self, key: str) -> bool:
        return bool(self.eventlog_template_size_key) and key.strip().casefold() == self.eventlog_template_size_key.casefold()

    def is_force_value(self, name: str) -> bool:
        return bool(self.force_value) and name.strip().casefold() == self.force_value.casefold()

    def inclusion_value(self, text: str) -> int | None:
        wanted = " ".join(text.casefold().split())
        for label, value in self.inclusion:
            if label.casefold() == wanted:
                return value
        return None


@dataclass(frozen=True)
class AuditSetting:
    """Success/failure auditing for one subcategory (or one legacy category)."""

    success: bool
    failure: bool
    source: str  # the input file it came from

    @property
    def value(self) -> int:
        """The numeric SettingValue: 0 none, 1 success, 2 failure, 3 both."""
        return (1 if self.success else 0) | (2 if self.failure else 0)

    def describe(self) -> str:
        if self.success and self.failure:
            return "success and failure"
        if self.success:
            return "success"
        if self.failure:
            return "failure"
        return "no auditing"

    @classmethod
    def from_value(cls, value: int, source: str) -> "AuditSetting":
        return cls(success=bool(value & 1), failure=bool(value & 2), source=source)


@dataclass(frozen=True)
class RegistryPolicySetting:
    """An Administrative Template / security option as a GPO report shows it."""

    name: str            # display name, e.g. "Turn on PowerShell Script Block Logging"
    category: str        # e.g. "Windows Components/Windows PowerShell"
    state: str           # "Enabled", "Disabled", ... as written
    settings: tuple[tuple[str, str], ...] = ()  # (sub-setting name, value) pairs, e.g. ("Module Names", "*")
    source: str = ""


@dataclass(frozen=True)
class RegistryValue:
    """A raw registry value a policy sets (from registry.pol, GptTmpl.inf or a report)."""

    key: str     # e.g. HKLM\SOFTWARE\Policies\Microsoft\Windows\PowerShell\ScriptBlockLogging
    value: str   # value name
    data: str    # data rendered as text (DWORD as decimal)
    source: str = ""


@dataclass(frozen=True)
class ChannelSetting:
    name: str                       # channel or classic log name as the input names it
    enabled: bool | None = None
    max_size_kb: int | None = None
    source: str = ""


@dataclass
class SysmonConfig:
    """Which Sysmon event IDs a configuration collects."""

    source: str
    schema_version: str | None
    collected: dict[int, bool] = field(default_factory=dict)  # event id -> collected? (status == "met")
    status: dict[int, str] = field(default_factory=dict)      # event id -> met | missing | unknown
    # event id -> its include elements with conditions (sysmon_includes.Element), where they decide
    includes: dict[int, tuple] = field(default_factory=dict)
    excludes: dict[int, bool] = field(default_factory=dict)   # event id -> exclude elements beside them?
    reasons: dict[int, str] = field(default_factory=dict)     # event id -> why (one line)
    # what tells the configuration's OS (sysmon_linux.decide_os): the filter elements it names, and condition
    # values that are Windows paths / name a path under a Linux top-level folder (a few kept as examples)
    elements: tuple[str, ...] = ()
    windows_paths: list[str] = field(default_factory=list)
    linux_values: list[str] = field(default_factory=list)
    os: str = "windows"      # windows | linux | either (both Sysmon and Sysmon for Linux could run it)
    os_reason: str = ""


@dataclass(frozen=True)
class AuditRule:
    """One loaded Linux audit rule (policy/auditd.py): a syscall rule or a watch, as auditctl would load it."""

    source: str
    line: int
    text: str                                   # the rule as written (one line)
    list: str                                   # exit | exclude | user | task | filesystem | io_uring
    action: str                                 # always | never
    syscalls: frozenset[str] | None = None      # -S names (lower case); None: every syscall
    fields: tuple[tuple[str, str, str], ...] = ()   # -F (name case-folded, operator, value)
    keys: tuple[str, ...] = ()                  # -k / -F key=
    watch: str | None = None                    # -w path (a watch); -F path= / dir= are in fields
    perms: str | None = None                    # -p / -F perm= (None: every access)

    def field_values(self, name: str) -> list[tuple[str, str]]:
        return [(op, value) for field_name, op, value in self.fields if field_name == name]


@dataclass
class AuditdRules:
    """The audit rules of a Linux host, in load order (``auditctl -l`` output or rules files)."""

    sources: list[str] = field(default_factory=list)
    rules: list[AuditRule] = field(default_factory=list)
    enabled: int | None = None                  # -e / auditctl -s "enabled": 0 off, 1 on, 2 on and locked
    enabled_source: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class PolicyInput:
    path: str
    format: str          # "gpresult", "gpo_report", "audit_csv", "auditpol_r", "sysmon_config", ...
    warnings: list[str] = field(default_factory=list)


@dataclass
class PolicySnapshot:
    inputs: list[PolicyInput] = field(default_factory=list)
    # Advanced audit policy, keyed by upper-case braced subcategory GUID.
    audit: dict[str, AuditSetting] = field(default_factory=dict)
    # Legacy category audit policy, keyed by legacy key (AuditLogonEvents, ...).
    legacy_audit: dict[str, AuditSetting] = field(default_factory=dict)
    # "Audit: Force audit policy subcategory settings ..." (SCENoApplyLegacyAuditPolicy); None = not set.
    force_subcategory: bool | None = None
    force_subcategory_source: str | None = None
    # Global object access auditing (audit.csv / auditpol /backup rows FileGlobalSacl, RegistryGlobalSacl):
    # case-folded row name -> (SDDL, input file); and the other Option: rows (AuditBaseObjects, ...):
    # case-folded option name -> (enabled, input file).
    global_sacls: dict[str, tuple[str, str]] = field(default_factory=dict)
    audit_options: dict[str, tuple[bool, str]] = field(default_factory=dict)
    # SACLs a security template sets on named objects (GptTmpl.inf [File Security] / [Registry Keys]):
    # case-folded section name -> [(object path, SACL part of the SDDL, input file)].
    object_sacls: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    registry_policies: list[RegistryPolicySetting] = field(default_factory=list)
    registry_values: list[RegistryValue] = field(default_factory=list)
    channels: list[ChannelSetting] = field(default_factory=list)
    sysmon: SysmonConfig | None = None
    auditd: AuditdRules | None = None      # Linux audit rules (--auditd-rules), all files in order
    # Names of things the inputs mention but we cannot use (for the report), one line each.
    warnings: list[str] = field(default_factory=list)
    # Which inputs overrode which (for "when they disagree, say which wins and why").
    conflicts: list[str] = field(default_factory=list)
    has_computer_results: bool = True
    # The machine's role (client | server | dc) when an input shows it, and how that was decided.
    role: str | None = None
    role_reason: str | None = None
    # What an input shows about the machine's role, as written (the decision is data-driven, in roles.py):
    # "sids" (the computer's security groups), "som" (its Active Directory container), "gpo_names" (GPOs applied,
    # or the GPO a report is of); each value tagged with the input it came from: (value, path).
    role_evidence: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def warn(self, message: str) -> None:
        """Record a warning about this snapshot's (only) input: on the input and, with its path, overall."""
        inp = self.inputs[0]
        if message not in inp.warnings:
            inp.warnings.append(message)
        line = f"{inp.path}: {message}"
        if line not in self.warnings:
            self.warnings.append(line)


def norm_category(text: str) -> str:
    """A policy category compared loosely: '/' or '\\' separated, case and blanks ignored."""
    return "/".join(part.strip().casefold() for part in text.replace("\\", "/").split("/") if part.strip())


# The spellings of a registry hive in policy files: (full name, abbreviation, other spellings). MACHINE and
# USER are how GptTmpl.inf [Registry Values] and gpresult security options root their keys; registry.pol keys
# have no hive (a Machine registry.pol is relative to HKLM). Registry syntax, like XML's, not guide knowledge.
_HIVES = (("HKEY_LOCAL_MACHINE", "HKLM", ("MACHINE",)), ("HKEY_CURRENT_USER", "HKCU", ("USER",)),
          ("HKEY_USERS", "HKU", ()), ("HKEY_CLASSES_ROOT", "HKCR", ()))
_HIVE_BY_NAME = {name.casefold(): (long, short) for long, short, others in _HIVES for name in (long, short, *others)}


def split_hive(key: str) -> tuple[tuple[str, str] | None, str]:
    """('HKEY_LOCAL_MACHINE', 'HKLM') and the rest of the key, or (None, key) when it names no hive."""
    text = key.strip().replace("/", "\\")
    first, sep, rest = text.partition("\\")
    hive = _HIVE_BY_NAME.get(first.casefold())
    return (hive, rest) if hive is not None else (None, text)


def norm_registry_key(key: str) -> str:
    """A registry key compared loosely: HKLM / MACHINE / HKEY_LOCAL_MACHINE alike, case ignored."""
    hive, rest = split_hive(key)
    return (f"{hive[1]}\\{rest}".rstrip("\\") if hive else rest).casefold()


def rooted_registry_key(key: str, default_hive: str = "HKLM") -> str:
    """The key as written when it names its hive, else under ``default_hive``."""
    return key if split_hive(key)[0] else f"{default_hive}\\{key}"


def long_registry_key(key: str) -> str:
    """The key with its hive spelled out (HKEY_LOCAL_MACHINE\\...), as .reg files need it."""
    hive, rest = split_hive(key)
    return f"{hive[0]}\\{rest}".rstrip("\\") if hive else rest


def small_uint(text: str | None, max_digits: int = 10) -> int | None:
    """A non-negative integer written with ASCII digits only (no sign, no superscripts, not thousands of
    digits), else None: ``str.isdigit`` alone accepts '²', which ``int`` rejects."""
    if text is None:
        return None
    text = text.strip()
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def audit_setting_value(text: str | None) -> int | None:
    """An audit SettingValue (0 none, 1 success, 2 failure, 3 both; higher bits ignored), else None."""
    number = small_uint(text, max_digits=3)
    return None if number is None else number & 3


def normalize_guid(text: str) -> str:
    """'0cce9215-69ae-...' or '{0CCE9215-...}' -> '{0CCE9215-...}' (upper case, braced)."""
    return "{" + text.strip().strip("{}").upper() + "}"
