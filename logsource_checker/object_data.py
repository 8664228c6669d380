"""The object-access data (mappings/object_access.yaml): object classes, SACL kinds, access codes.

Loaded into ``Knowledge.object_access`` by knowledge.py and validated with the rest of the data; used by
objects.py (which subcategory writes an object-access event for a rule, which SACL it needs).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .knowledge import Knowledge, RegistryValueSpec

SAFE_NAME_RE = re.compile(r"^[A-Za-z]+$")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class ObjectProducer:
    subcategory: str          # GUID
    sacl: str | None          # sacl kind id, None when the subcategory needs no SACL
    notes: str | None
    roles: tuple[str, ...] = ()   # machine roles on which it writes the event for this object (empty: every role)


@dataclass(frozen=True)
class ObjectClass:
    """A kind of object an object-access event can be about (mappings/object_access.yaml)."""

    id: str
    name: str
    object_types: frozenset[str]          # case-folded ObjectType values
    object_servers: frozenset[str]        # case-folded ObjectServer values
    object_type_patterns: tuple[re.Pattern[str], ...]
    name_patterns: tuple[re.Pattern[str], ...]
    refines: str | None
    producers: tuple[ObjectProducer, ...]
    reference: str


@dataclass(frozen=True)
class SaclKind:
    id: str
    name: str
    global_sacl: str | None   # audit.csv row name of the global SACL (FileGlobalSacl / RegistryGlobalSacl)
    resource_type: str | None  # auditpol /resourceSACL /type: value
    option: str | None         # audit.csv Option: row that gives these objects a default SACL
    registry_value: RegistryValueSpec | None   # the same option as a security option (registry value)
    template_section: str | None   # GptTmpl.inf section setting descriptors on named objects of this kind
    gpo_path: str | None
    decide: str
    reference: str
    object_fields: frozenset[str] = frozenset()   # case-folded rule fields naming the objects (ObjectName, ...)
    objects_unnamed: str = ""   # what to set the SACL on when a rule names no object ("the keys the rule watches")


@dataclass
class ObjectAccess:
    events: frozenset[int] = frozenset()
    classes: tuple[ObjectClass, ...] = ()
    sacl_kinds: dict[str, SaclKind] = field(default_factory=dict)
    access_codes: dict[str, int] = field(default_factory=dict)   # AccessList %%code -> access-mask bits
    global_sacl_trustee: str = ""   # /user: of an emitted auditpol /resourceSACL command (a SID in braces)


def _patterns(values: Any, where: str, kb: Knowledge) -> tuple[re.Pattern[str], ...]:
    out = []
    for text in _as_list(values):
        try:
            out.append(re.compile(str(text), re.IGNORECASE))
        except re.error as exc:
            kb.problems.append(f"{where}: pattern {text!r} is not a regular expression: {exc}")
    return tuple(out)


def _registry_value(raw: Any) -> RegistryValueSpec | None:
    from .knowledge import RegistryValueSpec

    if not isinstance(raw, dict):
        return None
    return RegistryValueSpec(key=str(raw.get("key", "")), value=str(raw.get("value", "")),
                             type=str(raw.get("type", "REG_DWORD")), data=raw.get("data"))


def load_object_access(kb: Knowledge, path: Path, read_yaml: Callable[[Path], Any]) -> None:
    if not path.is_file():
        kb.problems.append(f"{path.name}: missing")
        return
    data = read_yaml(path) or {}
    classes = []
    for raw in data.get("object_classes") or []:
        where = f"{path.name} class {raw.get('id')}"
        producers = tuple(ObjectProducer(str(p.get("subcategory", "")).upper(), _opt_str(p.get("sacl")),
                                         _opt_str(p.get("notes")), tuple(str(r) for r in _as_list(p.get("roles"))))
                          for p in raw.get("producers") or [])
        classes.append(ObjectClass(
            id=str(raw.get("id", "")), name=str(raw.get("name", "")),
            object_types=frozenset(str(v).casefold() for v in _as_list(raw.get("object_types"))),
            object_servers=frozenset(str(v).casefold() for v in _as_list(raw.get("object_servers"))),
            object_type_patterns=_patterns(raw.get("object_type_patterns"), where, kb),
            name_patterns=_patterns(raw.get("name_patterns"), where, kb), refines=_opt_str(raw.get("refines")),
            producers=producers, reference=str(raw.get("reference", ""))))
    kinds = {}
    for raw in data.get("sacl_kinds") or []:
        kind = SaclKind(
            id=str(raw.get("id", "")), name=str(raw.get("name", "")), global_sacl=_opt_str(raw.get("global_sacl")),
            resource_type=_opt_str(raw.get("resource_type")), option=_opt_str(raw.get("option")),
            registry_value=_registry_value(raw.get("registry_value")),
            template_section=_opt_str(raw.get("template_section")),
            gpo_path=_opt_str(raw.get("gpo_path")), decide=str(raw.get("decide", "")),
            reference=str(raw.get("reference", "")),
            object_fields=frozenset(str(f).casefold() for f in _as_list(raw.get("object_fields"))),
            objects_unnamed=str(raw.get("objects_unnamed", "")))
        kinds[kind.id] = kind
    codes = {str(k): int(v) for k, v in (data.get("access_codes") or {}).items()}
    kb.object_access = ObjectAccess(events=frozenset(int(e) for e in _as_list(data.get("events"))),
                                    classes=tuple(classes), sacl_kinds=kinds, access_codes=codes,
                                    global_sacl_trustee=str(data.get("global_sacl_trustee", "")))


def object_access_problems(kb: Knowledge) -> list[str]:
    """Every schema problem of the object-access data, one line each."""
    from .knowledge_model import ROLES   # knowledge_model imports this module
    data = kb.object_access
    problems = []
    ids = [c.id for c in data.classes]
    if len(ids) != len(set(ids)):
        problems.append("object_access.yaml: object class ids are not unique")
    for event_id in sorted(data.events):
        if event_id not in kb.producers:
            problems.append(f"object_access.yaml: event {event_id} has no producer in auditpol.yaml")
    for cls in data.classes:
        where = f"object_access.yaml class {cls.id}"
        if not cls.producers:
            problems.append(f"{where}: no producers")
        if cls.refines is not None and cls.refines not in ids:
            problems.append(f"{where}: refines unknown class {cls.refines!r}")
        if not cls.reference.startswith("https://"):
            problems.append(f"{where}: no https reference")
        if not (cls.object_types or cls.object_servers or cls.object_type_patterns or cls.name_patterns):
            problems.append(f"{where}: nothing to recognise the object by")
        for producer in cls.producers:
            sub = kb.subcategories.get(producer.subcategory)
            if sub is None:
                problems.append(f"{where}: subcategory {producer.subcategory} not in auditpol.yaml")
            if producer.sacl is not None and producer.sacl not in data.sacl_kinds:
                problems.append(f"{where}: unknown sacl kind {producer.sacl!r}")
            if not set(producer.roles) <= set(ROLES):
                problems.append(f"{where}: roles {list(producer.roles)} are not machine roles {ROLES}")
            if sub is not None and sub.requires_sacl and producer.sacl is None:
                problems.append(f"{where}: {sub.name} requires a SACL but the producer names no sacl kind")
    for kind in data.sacl_kinds.values():
        if not kind.reference.startswith("https://"):
            problems.append(f"object_access.yaml sacl kind {kind.id}: no https reference")
        if not kind.decide:
            problems.append(f"object_access.yaml sacl kind {kind.id}: no 'decide' text")
        if not kind.object_fields or not kind.objects_unnamed:
            problems.append(f"object_access.yaml sacl kind {kind.id}: needs object_fields and objects_unnamed")
        if kind.resource_type is not None and kind.resource_type not in ("File", "Key"):
            problems.append(f"object_access.yaml sacl kind {kind.id}: resource_type must be File or Key")
        reg = kind.registry_value
        if reg is not None and (not reg.key.upper().startswith("HKLM\\") or not isinstance(reg.data, int)):
            problems.append(f"object_access.yaml sacl kind {kind.id}: registry_value needs an HKLM key and a number")
        for text in (kind.global_sacl, kind.option):
            if text is not None and not SAFE_NAME_RE.match(text):
                problems.append(f"object_access.yaml sacl kind {kind.id}: {text!r} is not a plain name")
    if not re.fullmatch(r"\{S-1(-\d+)+\}", data.global_sacl_trustee):
        problems.append(f"object_access.yaml: global_sacl_trustee {data.global_sacl_trustee!r} is not a SID in braces")
    for code, bits in data.access_codes.items():
        if not re.fullmatch(r"%%\d{4}", code) or not 0 < bits < 2 ** 32:
            problems.append(f"object_access.yaml access code {code!r}: {bits!r} invalid")
    return problems


