"""The policy a machine gets, as read from one or more inputs.

Parsers in this package (one module per input format) each return a ``PolicySnapshot``;
``merge`` folds several into one effective snapshot, recording which input won where.
Nothing here knows GUIDs or channel names: those live in the data files.
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
    collected: dict[int, bool] = field(default_factory=dict)  # event id -> collected?
    reasons: dict[int, str] = field(default_factory=dict)     # event id -> why (one line)


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
    registry_policies: list[RegistryPolicySetting] = field(default_factory=list)
    registry_values: list[RegistryValue] = field(default_factory=list)
    channels: list[ChannelSetting] = field(default_factory=list)
    sysmon: SysmonConfig | None = None
    # Names of things the inputs mention but we cannot use (for the report), one line each.
    warnings: list[str] = field(default_factory=list)
    # Which inputs overrode which (for "when they disagree, say which wins and why").
    conflicts: list[str] = field(default_factory=list)
    has_computer_results: bool = True
    # The machine's role (client | server | dc) when an input shows it, and how that was decided.
    role: str | None = None
    role_reason: str | None = None


def norm_category(text: str) -> str:
    """A policy category compared loosely: '/' or '\\' separated, case and blanks ignored."""
    return "/".join(part.strip().casefold() for part in text.replace("\\", "/").split("/") if part.strip())


def norm_registry_key(key: str) -> str:
    """A registry key compared loosely: HKLM / MACHINE / HKEY_LOCAL_MACHINE alike (and the user hive)."""
    text = key.strip().replace("/", "\\").casefold()
    for long, short in (("hkey_local_machine\\", "hklm\\"), ("machine\\", "hklm\\"),
                        ("hkey_current_user\\", "hkcu\\"), ("user\\", "hkcu\\")):
        if text.startswith(long):
            return short + text[len(long):]
    return text


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
