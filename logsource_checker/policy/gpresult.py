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


def _read_extensions(path: str, results, snap: PolicySnapshot, vocabulary: PolicyVocabulary) -> None:
    audit = _Collector()
    legacy = _Collector()
    policies = _Collector()
    values = _Collector()
    channels = _Collector()
    force: tuple[int, bool] | None = None
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
            ext_ns = kind[0]
            if kind == EXT_AUDIT:
                for item in _children(ext, "AuditSetting", ext_ns):
                    guid = _text(item, "SubcategoryGuid", ext_ns)
                    value = _text(item, "SettingValue", ext_ns)
                    if not guid or value is None:
                        continue
                    number = audit_setting_value(value)
                    if number is None:
                        snap.warn(f"audit setting {one_line(guid, 60)} has value {one_line(value, 40)!r}, "
                                  "not 0-3; skipped")
                        continue
                    audit.add(normalize_guid(guid), _precedence(item), AuditSetting.from_value(number, path))
                if _children(ext, "GlobalSaclSetting", ext_ns):
                    snap.warn("the policy sets a global SACL (Global Object Access Auditing, GlobalSaclSetting) that "
                              "is not read from gpresult / GPO XML: SACL requirements stay unknown; give the same "
                              "policy's audit.csv or 'auditpol /backup' output with --auditpol to have it read")
            elif kind == EXT_SECURITY:
                for item in ext:
                    tag = local_name(item)
                    if namespace(item) != ext_ns:
                        continue
                    prec = _precedence(item)
                    if tag == "Audit":
                        key = _text(item, "Name", ext_ns)
                        if not key:
                            continue
                        success = (_text(item, "SuccessAttempts", ext_ns) or "").casefold() in _TRUE
                        failure = (_text(item, "FailureAttempts", ext_ns) or "").casefold() in _TRUE
                        legacy.add(key.casefold(), prec, (key, AuditSetting(success=success, failure=failure,
                                                                               source=path)))
                    elif tag == "SecurityOptions":
                        key_name = _text(item, "KeyName", ext_ns)
                        if not key_name:
                            continue
                        number = _text(item, "SettingNumber", ext_ns)
                        string = _text(item, "SettingString", ext_ns)
                        data = number if number is not None else string
                        if data is None:
                            continue
                        key, value = split_key(key_name)
                        values.add((norm_registry_key(key), value.casefold()), prec,
                                   RegistryValue(key, value, data, path))
                        if vocabulary.is_force_value(value) and number is not None:
                            if force is None or prec < force[0]:
                                force = (prec, number.strip() not in ("0", ""))
                    elif tag == "EventLog":
                        log = _text(item, "Log", ext_ns)
                        setting = _text(item, "Name", ext_ns)
                        number = _text(item, "SettingNumber", ext_ns)
                        size = small_uint(number)
                        if log and setting and setting.casefold() == "maximumlogsize" and size is not None:
                            channels.add(log.casefold(), prec, ChannelSetting(name=log, max_size_kb=size, source=path))
            elif kind == EXT_REGISTRY:
                for item in ext:
                    if namespace(item) != ext_ns:
                        continue
                    tag = local_name(item)
                    if tag == "Policy":
                        policy = _read_policy(item, ext_ns, path)
                        if policy is None:
                            continue
                        policies.add((policy.name.casefold(), norm_category(policy.category)),
                                     _precedence(item), policy)
                        channel = _eventlog_policy(policy, path, vocabulary)
                        if channel is not None:
                            channels.add(channel.name.casefold() + "|" + policy.name.casefold(),
                                         _precedence(item), channel)
                    elif tag == "RegistrySetting":
                        key_path = _text(item, "KeyPath", ext_ns)
                        value = _child(item, "Value", ext_ns)
                        if not key_path or value is None:
                            continue
                        vname = _text(value, "Name", ext_ns) or ""
                        data = _text(value, "Number", ext_ns)
                        if data is None:
                            data = _text(value, "String", ext_ns)
                        if data is None:
                            continue
                        key = rooted_registry_key(key_path)
                        values.add((norm_registry_key(key), vname.casefold()), _precedence(item),
                                   RegistryValue(key, vname, data, path))
    for guid, setting in ((g, item) for g, (_, item) in audit.items.items()):
        snap.audit[guid] = setting
    for key, setting in legacy.values():
        snap.legacy_audit[key] = setting
    snap.registry_policies.extend(policies.values())
    snap.registry_values.extend(values.values())
    snap.channels.extend(_merge_channel_parts(channels.values()))
    if force is not None:
        snap.force_subcategory = force[1]
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
        if "size" in sub_name.casefold() and small_uint(value) is not None:
            size = small_uint(value)
    if size is not None and enabled:
        return ChannelSetting(name=log, max_size_kb=size, source=path)
    if policy.name.casefold().startswith("turn on logging"):
        return ChannelSetting(name=log, enabled=enabled, source=path)
    return None


