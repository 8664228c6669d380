"""The guide data's records: ``Knowledge`` and what it holds (audit categories, subcategories and their
events, registry policies, channels, Sysmon events, guides and their requirement specs), and the
patterns and vocabularies the data is checked against. Loaded by knowledge.py, checked by
knowledge_validate.py."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .auditd_data import AuditdData
from .object_data import ObjectAccess

if TYPE_CHECKING:
    from pathlib import Path

    from .policy.model import PolicyVocabulary

GUID_RE = re.compile(r"^\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# What may stand in a generated command or file (validated here, checked again by emit at render time):
# channel names in `wevtutil sl "<name>"`, registry keys / value names / string data in registry.reg,
# Sysmon element names in sysmon.xml. No quote, percent, caret, ampersand, pipe, angle bracket or newline.
SAFE_CHANNEL_RE = re.compile(r"^[A-Za-z0-9 ._/\-]+$")
SAFE_REGISTRY_RE = re.compile(r"^[A-Za-z0-9 ._\\\-*]+$")
SAFE_ELEMENT_RE = re.compile(r"^[A-Za-z]+$")
# Sysmon event field names (filter condition elements in sysmon.xml): letters and digits.
SAFE_FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
VOLUMES = ("low", "medium", "high", "unknown")
DEFAULTS = ("none", "success", "failure", "success_and_failure", "unknown")
ROLES = ("client", "server", "dc")   # machine roles whose audit defaults and volumes differ
SYSMON_UNMENTIONED = ("logged", "not_logged", "unknown")
REQUIREMENT_KEYS = ("audit", "audit_events", "registry_policy", "channel", "sysmon_event", "external", "auditd_rule",
                    "sysmon_linux_event", "sacl")

LogSourceKey = tuple[str | None, str | None, str | None]


@dataclass(frozen=True)
class AuditEvent:
    id: int
    name: str | None
    outcomes: frozenset[str]
    primary: bool = False
    inferred: bool = False     # no Microsoft page states this event's subcategory or outcome: our reading
    basis: str | None = None   # why we read it so (required when inferred)
    also_requires: tuple["RequirementSpec", ...] = ()   # other subcategories needed as well ("all of")
    produced_alone: bool = True         # False: the subcategory only helps another one write the event
    regardless_of_setting: bool = False  # written whatever the subcategory is set to


@dataclass(frozen=True)
class AuditSubcategory:
    name: str
    gpo_name: str
    guid: str
    category: str
    volume: str
    defaults: dict[str, str]
    requires_sacl: bool
    reference: str
    events: tuple[AuditEvent, ...]
    gpo_path: str
    volume_by_role: dict[str, str] = field(default_factory=dict)   # role -> volume where Microsoft states it differs


@dataclass(frozen=True)
class AuditCategory:
    name: str
    guid: str
    legacy_policy: str
    legacy_key: str
    gpo_path: str


@dataclass(frozen=True)
class SpecialEvent:
    id: int
    name: str | None
    reference: str | None
    replaced_by: tuple[int, ...] = ()


@dataclass(frozen=True)
class RegistryValueSpec:
    key: str
    value: str
    type: str
    data: str | int


@dataclass(frozen=True)
class PolicyDeferral:
    """A check box of a policy that makes the program read another policy instead (PowerShell 7's
    "Use Windows PowerShell Policy setting."): with it on, the other policy decides."""

    setting: str                  # the check box as GPO reports name it
    value: str                    # its state when on, as GPO reports write it
    registry: RegistryValueSpec   # the value it writes
    policy: str                   # id of the policy that then decides
    references: tuple[str, ...]


@dataclass(frozen=True)
class RegistryPolicy:
    id: str
    name: str
    category: str
    kind: str
    gpo_path: str
    state: str
    settings: tuple[tuple[str, str], ...]
    registry: tuple[RegistryValueSpec, ...]
    reference: str
    defer: PolicyDeferral | None = None
    volume: str = "unknown"        # the event volume switching it on adds (VOLUMES)
    volume_reference: str | None = None


@dataclass(frozen=True)
class Channel:
    name: str
    provider: str | None
    provider_guid: str | None
    type: str
    enabled_by_default: bool
    recommended_max_size_mb: int | None
    gpo_path: str | None
    reference: str | None
    aliases: tuple[tuple[str, str | None], ...] = ()   # (other spelling, the URL that shows it)


@dataclass(frozen=True)
class SysmonEvent:
    id: int
    name: str
    element: str | None
    filterable: bool
    fields: tuple[str, ...] = ()         # data fields a filter condition can name (empty: not known)
    blocking: bool = False               # Sysmon blocks on a match: never written by the tool
    blocking_reference: str | None = None
    when_unmentioned: str = "unknown"    # logged | not_logged | unknown: no filter element for the type
    unmentioned_basis: str = ""          # the sources behind when_unmentioned
    since_schema: str | None = None      # first schema version with the event (public manifest.xml)


@dataclass(frozen=True)
class RequirementSpec:
    """One requirement as a guide states it (before it is resolved for a rule)."""

    kind: str          # audit | audit_events | registry_policy | channel | sysmon_event | external | sacl
    value: Any         # GUID, True, policy id, channel name, Sysmon event id, external mapping, SACL kind id
    success: bool = True
    failure: bool = False
    when_fields: frozenset[str] | None = None
    when_event_ids: frozenset[int] | None = None
    access: int = 0    # sacl: the access-mask bits the SACL must audit for this source (0: not stated)


@dataclass(frozen=True)
class Alternative:
    name: str
    primary: bool
    fields: frozenset[str] | None
    notes: str | None
    requires: tuple[RequirementSpec, ...]


@dataclass(frozen=True)
class GuideEvent:
    id: int
    name: str | None
    provider: str | None
    requires: tuple[RequirementSpec, ...] = ()


@dataclass
class Guide:
    id: str
    title: str
    path: str
    logsources: tuple[LogSourceKey, ...]
    description: str
    volume: str
    references: tuple[str, ...]
    sources: tuple[dict[str, Any], ...]
    events: dict[int, GuideEvent]
    key_fields: tuple[str, ...]
    enablement: tuple[Alternative, ...]


@dataclass
class Knowledge:
    root: Path
    categories: dict[str, AuditCategory] = field(default_factory=dict)          # by name
    subcategories: dict[str, AuditSubcategory] = field(default_factory=dict)    # by GUID
    producers: dict[int, list[tuple[AuditSubcategory, AuditEvent]]] = field(default_factory=dict)
    always_logged: dict[int, SpecialEvent] = field(default_factory=dict)
    legacy_events: dict[int, SpecialEvent] = field(default_factory=dict)
    force_subcategory_default: bool = True
    force_subcategory_policy: str | None = None   # registry policy id of the force option
    roles: dict[str, Any] = field(default_factory=dict)   # auditpol.yaml `roles`: assumed role, DC markers
    audit_channel: str | None = None    # auditpol.yaml `channel`: where audit events land (Security)
    audit_provider: str | None = None   # auditpol.yaml `provider`: the provider writing them
    outcome_keywords: dict[str, Any] = field(default_factory=dict)   # auditpol.yaml `outcome_keywords`
    subcategory_count: int = 0                     # how many subcategories Windows has (auditpol.yaml)
    inclusion_settings: dict[int, str] = field(default_factory=dict)  # SettingValue -> 'Inclusion Setting' text
    eventlog_policy_category: str = ""             # Administrative Templates category of event-log policies
    wef_default_log: str | None = None   # channels.yaml `wef_default_log`: where a WEF subscription stores events
    eventlog_setting_names: dict[str, str] = field(default_factory=dict)   # channels.yaml: enable_policy, ...
    registry_policies: dict[str, RegistryPolicy] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)                  # by casefolded name
    channel_aliases: dict[str, str] = field(default_factory=dict)   # casefolded alias -> casefolded name
    sysmon_events: dict[int, SysmonEvent] = field(default_factory=dict)
    sysmon_meta: dict[str, Any] = field(default_factory=dict)
    object_access: ObjectAccess = field(default_factory=ObjectAccess)
    auditd: AuditdData = field(default_factory=AuditdData)   # mappings/auditd.yaml (Linux audit)
    guides: list[Guide] = field(default_factory=list)
    by_logsource: dict[LogSourceKey, Guide] = field(default_factory=dict)
    # fields every event of a product carries (mappings/event_fields.yaml), by product
    common_fields: dict[str, frozenset[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # schema problems found while loading

    def channel(self, name: str) -> Channel | None:
        """The channel a name stands for: its Windows name or one of its aliases (pySigma's spellings),
        compared case-insensitively and without surrounding blanks."""
        key = name.strip().casefold()
        found = self.channels.get(key)
        if found is None:
            alias_of = self.channel_aliases.get(key)
            if alias_of is not None:
                found = self.channels.get(alias_of)
        return found

    def channel_key(self, name: str) -> str:
        """A name to compare channels by: the casefolded Windows name of a known channel (so an alias and
        the name it stands for compare equal), else the casefolded name as given."""
        found = self.channel(name)
        return found.name.casefold() if found is not None else name.strip().casefold()

    def policy_vocabulary(self) -> "PolicyVocabulary":
        """What the policy parsers must recognise in policy files (option names, setting labels)."""
        from .policy.model import PolicyVocabulary

        force = self.registry_policies.get(self.force_subcategory_policy or "")
        return PolicyVocabulary(
            force_value=force.registry[0].value if force is not None and force.registry else "",
            inclusion=tuple((label, value) for value, label in sorted(self.inclusion_settings.items())),
            eventlog_category=self.eventlog_policy_category,
            eventlog_enable_policy=self.eventlog_setting_names.get("enable_policy", ""),
            eventlog_size_option=self.eventlog_setting_names.get("size_option", ""),
            eventlog_template_size_key=self.eventlog_setting_names.get("template_size_key", ""))


