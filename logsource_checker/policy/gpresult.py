"""``gpresult /x`` RSoP XML and single-GPO reports (Get-GPOReport -ReportType Xml, GPMC gpreport.xml).

Both carry the same ``<Extension xsi:type="qN:...">`` payloads; the prefixes (q1, q2, ...) differ from
file to file, so extensions are recognised by namespace URI and ``xsi:type`` local name only, and
their settings are read by element name, never by position.
"""
from __future__ import annotations

from .model import (AuditSetting, ChannelSetting, PolicyInput, PolicyInputError, PolicySnapshot, PolicyVocabulary,
                    RegistryPolicySetting, RegistryValue, audit_setting_value, norm_category, norm_registry_key,
                    normalize_guid, rooted_registry_key, small_uint)
from .xmlsafe import local_name, namespace, one_line, parse_xml_bytes

NS_RSOP = "http://www.microsoft.com/GroupPolicy/Rsop"
NS_SETTINGS = "http://www.microsoft.com/GroupPolicy/Settings"
NS_BASE = "http://www.microsoft.com/GroupPolicy/Settings/Base"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
EXT_SECURITY = (NS_SETTINGS + "/Security", "SecuritySettings")
EXT_AUDIT = (NS_SETTINGS + "/Auditing", "AuditSettings")
EXT_REGISTRY = (NS_SETTINGS + "/Registry", "RegistrySettings")

_TRUE = {"true", "1", "yes"}


def _children(node, name: str, ns: str | None = None):
    return [c for c in node if local_name(c) == name and (ns is None or namespace(c) == ns)]


def _child(node, name: str, ns: str | None = None):
    for c in node:
        if local_name(c) == name and (ns is None or namespace(c) == ns):
            return c
    return None


def _text(node, name: str, ns: str | None = None) -> str | None:
    child = _child(node, name, ns)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def xsi_type(node) -> tuple[str, str] | None:
    """(namespace URI, local name) of an element's xsi:type, resolving the prefix in scope."""
    value = node.get(f"{{{NS_XSI}}}type")
    if not value:
        return None
    prefix, _, local = value.rpartition(":")
    uri = node.nsmap.get(prefix or None)
    return (uri or "", local)


def _precedence(node) -> int:
    number = small_uint(_text(node, "Precedence", NS_BASE))
    return 1 if number is None else number



def split_key(path: str) -> tuple[str, str]:
    """MACHINE\\System\\...\\Lsa\\NoLMHash -> ("MACHINE\\System\\...\\Lsa", "NoLMHash")."""
    key, _, value = path.strip().rpartition("\\")
    return key, value


class _Collector:
    """Keeps, per setting, the entry with the best (lowest) RSoP precedence."""

    def __init__(self) -> None:
        self.items: dict[object, tuple[int, object]] = {}

    def add(self, key: object, precedence: int, item: object) -> None:
        have = self.items.get(key)
        if have is None or precedence < have[0]:
            self.items[key] = (precedence, item)

    def values(self) -> list:
        return [item for _, item in self.items.values()]


def read_gpresult(path: str, data: bytes, vocabulary: PolicyVocabulary) -> PolicySnapshot:
    root = parse_xml_bytes(path, data)
    ns, name = namespace(root), local_name(root)
    snap = PolicySnapshot()
    if name == "Rsop" and ns == NS_RSOP:
        fmt = "gpresult"
        computer = _child(root, "ComputerResults", NS_RSOP)
        snap.inputs.append(PolicyInput(path=path, format=fmt))
        if computer is None or len(computer) == 0:
            snap.has_computer_results = False
            snap.warn("the gpresult has no computer results (gpresult /x run without elevation shows only the "
                      "user's policy): run 'gpresult /scope computer /x FILE' from an elevated prompt")
            return snap
        _role_evidence_rsop(path, computer, snap)
        _read_extensions(path, computer, snap, vocabulary)
        return snap
    if name == "GPO" and ns == NS_SETTINGS:
        inp = PolicyInput(path=path, format="gpo_report")
        snap.inputs.append(inp)
        gpo_name = _text(root, "Name", NS_SETTINGS)
        if gpo_name:
            snap.role_evidence.setdefault("gpo_names", []).append((gpo_name, path))
        computer = _child(root, "Computer", NS_SETTINGS)
        enabled = _text(computer, "Enabled", NS_SETTINGS) if computer is not None else None
        if computer is None or not any(local_name(c) == "ExtensionData" for c in computer):
            snap.has_computer_results = False
            snap.warn("the GPO report has no computer settings: this GPO configures nothing on the machine side")
            return snap
        if enabled is not None and enabled.casefold() not in _TRUE:
            snap.warn("the computer part of this GPO is disabled (Computer/Enabled is false): its settings are "
                      "read anyway")
        _read_extensions(path, computer, snap, vocabulary)
        return snap
    what = f"root element <{name}>" + (f" in namespace {ns}" if ns else "")
    raise PolicyInputError(path, f"not a gpresult /x RSoP or GPO report XML ({what}); "
                                 "expected <Rsop> or <GPO> from Microsoft's Group Policy schema")


def _role_evidence_rsop(path: str, computer, snap: PolicySnapshot) -> None:
    """What the computer results show about the machine's role: its security groups (SIDs), its Active Directory
    container (SOM) and the GPOs applied to it. Elements are matched by local name (several namespaces)."""
    evidence = snap.role_evidence
    for child in computer:
        tag = local_name(child)
        if tag == "SOM" and child.text and child.text.strip():
            evidence.setdefault("som", []).append((child.text.strip(), path))
        elif tag == "SecurityGroup":
            sid = next((c.text.strip() for c in child if local_name(c) == "SID" and c.text), None)
            if sid:
                evidence.setdefault("sids", []).append((sid, path))
        elif tag == "GPO":
            name = next((c.text.strip() for c in child if local_name(c) == "Name" and c.text), None)
            if name:
                evidence.setdefault("gpo_names", []).append((name, path))


class _Found:
    """What the extensions of one document set, each setting kept from its winning (lowest-precedence) GPO."""

    def __init__(self, path: str, snap: PolicySnapshot, vocabulary: PolicyVocabulary) -> None:
        self.path, self.snap, self.vocabulary = path, snap, vocabulary
        self.audit, self.legacy, self.policies = _Collector(), _Collector(), _Collector()
        self.values, self.channels = _Collector(), _Collector()
        self.force: tuple[int, bool] | None = None

    def add_force(self, precedence: int, number: str) -> None:
        if self.force is None or precedence < self.force[0]:
            self.force = (precedence, number.strip() not in ("0", ""))


def _read_audit(ext, ns: str, found: _Found) -> None:
    """Advanced audit policy: one AuditSetting per subcategory GUID."""
    for item in _children(ext, "AuditSetting", ns):
        guid = _text(item, "SubcategoryGuid", ns)
        value = _text(item, "SettingValue", ns)
        if not guid or value is None:
            continue
        number = audit_setting_value(value)
        if number is None:
            found.snap.warn(f"audit setting {one_line(guid, 60)} has value {one_line(value, 40)!r}, not 0-3; skipped")
            continue
        found.audit.add(normalize_guid(guid), _precedence(item), AuditSetting.from_value(number, found.path))
    if _children(ext, "GlobalSaclSetting", ns):
        found.snap.warn("the policy sets a global SACL (Global Object Access Auditing, GlobalSaclSetting) that is "
                        "not read from gpresult / GPO XML: SACL requirements stay unknown; give the same policy's "
                        "audit.csv or 'auditpol /backup' output with --auditpol to have it read")


def _security_audit(item, ns: str, prec: int, found: _Found) -> None:
    """Legacy audit policy (Audit account logon events, ...)."""
    key = _text(item, "Name", ns)
    if not key:
        return
    success = (_text(item, "SuccessAttempts", ns) or "").casefold() in _TRUE
    failure = (_text(item, "FailureAttempts", ns) or "").casefold() in _TRUE
    found.legacy.add(key.casefold(), prec, (key, AuditSetting(success=success, failure=failure, source=found.path)))


def _security_option(item, ns: str, prec: int, found: _Found) -> None:
    """A security option: a registry value; the force option also sets the snapshot's flag."""
    key_name = _text(item, "KeyName", ns)
    if not key_name:
        return
    number = _text(item, "SettingNumber", ns)
    string = _text(item, "SettingString", ns)
    data = number if number is not None else string
    if data is None:
        return
    key, value = split_key(key_name)
    found.values.add((norm_registry_key(key), value.casefold()), prec, RegistryValue(key, value, data, found.path))
    if found.vocabulary.is_force_value(value) and number is not None:
        found.add_force(prec, number)


def _security_eventlog(item, ns: str, prec: int, found: _Found) -> None:
    """Event-log settings of the security template (only the maximum size is read)."""
    log = _text(item, "Log", ns)
    setting = _text(item, "Name", ns)
    size = small_uint(_text(item, "SettingNumber", ns))
    if log and setting and found.vocabulary.is_template_size_key(setting) and size is not None:
        found.channels.add(log.casefold(), prec, ChannelSetting(name=log, max_size_kb=size, source=found.path))


_SECURITY_ITEMS = {"Audit": _security_audit, "SecurityOptions": _security_option, "EventLog": _security_eventlog}


def _read_security(ext, ns: str, found: _Found) -> None:
    """Security settings: legacy audit policy, security options, event-log sizes."""
    for item in ext:
        reader = _SECURITY_ITEMS.get(local_name(item))
        if reader is not None and namespace(item) == ns:
            reader(item, ns, _precedence(item), found)


def _registry_policy(item, ns: str, found: _Found) -> None:
    """An Administrative Template; an event-log one also gives a channel setting."""
    policy = _read_policy(item, ns, found.path)
    if policy is None:
        return
    found.policies.add((policy.name.casefold(), norm_category(policy.category)), _precedence(item), policy)
    channel = _eventlog_policy(policy, found.path, found.vocabulary)
    if channel is not None:
        found.channels.add(channel.name.casefold() + "|" + policy.name.casefold(), _precedence(item), channel)


def _registry_setting(item, ns: str, found: _Found) -> None:
    """A registry value set directly (not through a template)."""
    key_path = _text(item, "KeyPath", ns)
    value = _child(item, "Value", ns)
    if not key_path or value is None:
        return
    vname = _text(value, "Name", ns) or ""
    data = _text(value, "Number", ns)
    if data is None:
        data = _text(value, "String", ns)
    if data is None:
        return
    key = rooted_registry_key(key_path)
    found.values.add((norm_registry_key(key), vname.casefold()), _precedence(item),
                     RegistryValue(key, vname, data, found.path))


_REGISTRY_ITEMS = {"Policy": _registry_policy, "RegistrySetting": _registry_setting}


def _read_registry(ext, ns: str, found: _Found) -> None:
    """Administrative Templates and registry settings."""
    for item in ext:
        reader = _REGISTRY_ITEMS.get(local_name(item))
        if reader is not None and namespace(item) == ns:
            reader(item, ns, found)


# one reader per extension kind, by (namespace URI, xsi:type local name); other extensions are not read
_EXTENSION_READERS = {EXT_AUDIT: _read_audit, EXT_SECURITY: _read_security, EXT_REGISTRY: _read_registry}


def _read_extensions(path: str, results, snap: PolicySnapshot, vocabulary: PolicyVocabulary) -> None:
    found = _Found(path, snap, vocabulary)
    seen_types: set[str] = set()
    for ext_data in results:
        if local_name(ext_data) != "ExtensionData":
            continue
        for ext in ext_data:
            if local_name(ext) != "Extension":
                continue
            kind = xsi_type(ext)
            if kind is None:
                continue
            seen_types.add(kind[1])
            reader = _EXTENSION_READERS.get(kind)
            if reader is not None:
                reader(ext, kind[0], found)
    _store(found, seen_types)


def _store(found: _Found, seen_types: set[str]) -> None:
    snap, path = found.snap, found.path
    for guid, setting in ((g, item) for g, (_, item) in found.audit.items.items()):
        snap.audit[guid] = setting
    for key, setting in found.legacy.values():
        snap.legacy_audit[key] = setting
    snap.registry_policies.extend(found.policies.values())
    snap.registry_values.extend(found.values.values())
    snap.channels.extend(_merge_channel_parts(found.channels.values()))
    if found.force is not None:
        snap.force_subcategory = found.force[1]
        snap.force_subcategory_source = path
    if not (snap.audit or snap.legacy_audit or snap.registry_policies or snap.registry_values or snap.channels):
        types = ", ".join(sorted(seen_types)) or "none"
        snap.warn(f"no audit, security-option, registry or event-log settings found (extensions present: {types})")


def _merge_channel_parts(parts: list[ChannelSetting]) -> list[ChannelSetting]:
    out: dict[str, ChannelSetting] = {}
    for part in parts:
        have = out.get(part.name.casefold())
        if have is None:
            out[part.name.casefold()] = part
            continue
        out[part.name.casefold()] = ChannelSetting(
            name=have.name, enabled=part.enabled if part.enabled is not None else have.enabled,
            max_size_kb=part.max_size_kb if part.max_size_kb is not None else have.max_size_kb, source=have.source)
    return list(out.values())


def _read_policy(node, ns: str, path: str) -> RegistryPolicySetting | None:
    name = _text(node, "Name", ns)
    state = _text(node, "State", ns)
    if not name or not state:
        return None
    category = _text(node, "Category", ns) or ""
    settings: list[tuple[str, str]] = []
    for sub in node:
        if namespace(sub) != ns:
            continue
        tag = local_name(sub)
        sub_name = _text(sub, "Name", ns) or ""
        if tag == "CheckBox":
            settings.append((sub_name, _text(sub, "State", ns) or ""))
        elif tag == "DropDownList":
            value = _child(sub, "Value", ns)
            if value is not None:
                settings.append((sub_name, _text(value, "Name", ns) or (value.text or "").strip()))
            else:
                settings.append((sub_name, ""))
        elif tag in ("EditText", "Numeric", "ComboBox", "DecimalTextBox", "LongDecimalTextBox", "MultiTextBox"):
            value = _child(sub, "Value", ns)
            text = "" if value is None else "".join(value.itertext()).strip()
            settings.append((sub_name, text))
        elif tag == "ListBox":
            value = _child(sub, "Value", ns)
            entries: list[str] = []
            explicit = (_text(sub, "ExplicitValue", ns) or "").casefold() in _TRUE
            if value is not None:
                for element in _children(value, "Element", ns):
                    elem_name = _text(element, "Name", ns)
                    elem_data = _text(element, "Data", ns)
                    if explicit and elem_name is not None:
                        entries.append(elem_name)
                    elif elem_data is not None:
                        entries.append(elem_data)
                    elif elem_name is not None:
                        entries.append(elem_name)
            settings.append((sub_name, ",".join(entries)))
    return RegistryPolicySetting(name=name, category=category, state=state, settings=tuple(settings), source=path)


def _eventlog_policy(policy: RegistryPolicySetting, path: str, vocabulary: PolicyVocabulary) -> ChannelSetting | None:
    """The event-log setting behind an Administrative Template of the event-log category, whose last
    component names the log (".../Event Log Service/Security")."""
    category = norm_category(policy.category) + "/"
    prefix = norm_category(vocabulary.eventlog_category) + "/"
    if prefix == "/" or not category.startswith(prefix) or category == prefix:
        return None
    # the log is the last component as written in the file, e.g. ".../Event Log Service/Security"
    log = policy.category.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].strip()
    enabled = policy.state.casefold() == "enabled"
    size = None
    for sub_name, value in policy.settings:
        if vocabulary.is_size_option(sub_name) and small_uint(value) is not None:
            size = small_uint(value)
    if size is not None and enabled:
        return ChannelSetting(name=log, max_size_kb=size, source=path)
    if vocabulary.is_enable_policy(policy.name):
        return ChannelSetting(name=log, enabled=enabled, source=path)
    return None


