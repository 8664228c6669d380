"""Loads the guide data (``guides/``) and the mappings (``mappings/``) into typed records.

The data files are the single source of truth: this module holds no GUID, event ID or channel
name. The records are defined in knowledge_model.py; ``validate`` (knowledge_validate.py, re-exported here)
checks the data against the schema in docs/DATA.md.

Parsing the ~130 data files takes tens of milliseconds, so the loaded ``Knowledge`` is kept in the
user's cache directory (next to the rule cache) and reused only while every data file, the set of
data files, this module and knowledge_model.py, the package version and the Python version are all
unchanged. The cache is safe to delete; a corrupt one, one from another version or one not owned by the
user is ignored, and so is one whose content does not have the shape of ``Knowledge``
(``_cache.conforms``, checked unless the file's seal shows it is exactly what was written) or that
``validate`` finds fault with (``load(..., refresh=True)``, see
engine.load_knowledge): it is rebuilt.
"""
from __future__ import annotations

import hashlib
import io
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import __version__, auditd_data, knowledge_model, object_data
from ._cache import cache_dir, conforms, read_sealed_pickle, write_pickle_atomically
from .object_data import ObjectAccess, ObjectClass, ObjectProducer, SaclKind  # noqa: F401 (re-exported)
from .object_data import _as_list, _opt_str
from .knowledge_model import (  # noqa: F401 (re-exported: the records are imported from here)
    GUID_RE, UUID_RE, SAFE_CHANNEL_RE, SAFE_REGISTRY_RE, SAFE_ELEMENT_RE, SAFE_FIELD_RE, VOLUMES, DEFAULTS, ROLES,
    SYSMON_UNMENTIONED, REQUIREMENT_KEYS, LogSourceKey, AuditEvent, AuditSubcategory, AuditCategory, SpecialEvent,
    RegistryValueSpec, PolicyDeferral, RegistryPolicy, Channel, SysmonEvent, RequirementSpec, Alternative,
    GuideEvent, Guide, Knowledge)
from .knowledge_validate import validate  # noqa: F401 (re-exported: knowledge.validate)
from .rules import yaml_read

_Loader: Any = None


def _yaml() -> Any:
    """PyYAML, with ``_Loader`` (its fastest safe loader, ``yaml_read.pyyaml_safe_loader``) set; imported
    on first use (not needed on a cache hit)."""
    global _Loader
    yaml, _Loader = yaml_read.pyyaml_safe_loader()
    return yaml


def data_root() -> Path:
    """Where guides/, mappings/ and templates/ are: inside the installed package, else the checkout."""
    env = os.environ.get("LOGSOURCE_CHECKER_DATA")
    if env:
        return Path(env)
    packaged = Path(__file__).resolve().parent / "_data"
    if (packaged / "mappings").is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- loading

def _read_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    fast = _read_yaml_fast(text)
    if fast is not None:
        return fast
    yaml = _yaml()
    # the text already read, as a stream named like the file: PyYAML's error messages name the file
    stream = io.StringIO(text)
    stream.name = os.fspath(path)  # type: ignore[misc]
    return yaml.load(stream, Loader=_Loader)


def _read_yaml_fast(text: str) -> dict[str, Any] | None:
    """The mapping PyYAML would read from ``text``, parsed by yaml_rs (several times faster), or None
    (then PyYAML reads the text, and words any error): ``yaml_read.load_mapping_like_pyyaml`` with every key
    and value checked, which tests/test_speed_invariants.py checks on the guide data. An empty text or
    one with a byte-order mark goes to PyYAML."""
    if not text or "\ufeff" in text:
        return None
    return yaml_read.load_mapping_like_pyyaml(text, check_all_keys=True)


def load(root: str | None = None, use_cache: bool = True, refresh: bool = False) -> Knowledge:
    """The guide data and mappings below ``root`` (default: ``data_root()``, which honours
    ``LOGSOURCE_CHECKER_DATA``), loaded once per process and folder.

    With ``use_cache`` the result is read from / written to the on-disk cache (see the module
    docstring); without it no cache file is read or written. ``refresh`` reads the data files and
    rewrites the cache (for a cached copy that turned out unusable).
    """
    if refresh:
        _load.cache_clear()   # the memo may hold the unusable copy
    return _load(str(Path(root) if root else data_root()), use_cache, refresh)


@lru_cache(maxsize=4)
def _load(root: str, use_cache: bool, refresh: bool = False) -> Knowledge:
    base = Path(root)
    if not use_cache:
        return _load_files(base, _data_files(base))
    files = _data_files(base)
    cache_file = _kb_cache_path(base)
    key = _kb_cache_key(base, files)
    if key is not None and not refresh:
        cached = _read_kb_cache(cache_file, key)
        if cached is not None:
            return cached
    kb = _load_files(base, files)
    if key is not None and key == _kb_cache_key(base, _data_files(base)):  # unchanged while read
        _write_kb_cache(cache_file, key, kb)
    return kb


def _data_files(base: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(registry policy files, channel files, guide files) below base, in load order."""
    mappings = base / "mappings"
    return (sorted(mappings.glob("registry_policies*.yaml")), sorted(mappings.glob("channels*.yaml")),
            sorted((base / "guides").rglob("*.yaml")))


def _load_files(base: Path, files: tuple[list[Path], list[Path], list[Path]]) -> Knowledge:
    kb = Knowledge(root=base)
    mappings = base / "mappings"
    registry_files, channel_files, guide_files = files
    _load_auditpol(kb, mappings / "auditpol.yaml")
    for path in registry_files:
        _load_registry_policies(kb, path)
    for path in channel_files:
        _load_channels(kb, path)
    _load_sysmon(kb, mappings / "sysmon.yaml")
    object_data.load_object_access(kb, mappings / "object_access.yaml", _read_yaml)
    _load_event_fields(kb, mappings / "event_fields.yaml")
    kb.auditd = auditd_data.load_auditd(mappings / "auditd.yaml", _read_yaml)
    guide_dir = base / "guides"
    for path in guide_files:
        _load_guide(kb, path, guide_dir)
    return kb


# --------------------------------------------------------------------------- on-disk cache

KB_CACHE_FORMAT = 3   # 3: the file is sealed (_cache.read_sealed_pickle)


def _kb_cache_path(base: Path) -> str:
    digest = hashlib.sha256(os.fsencode(os.path.abspath(base))).hexdigest()[:24]
    return os.path.join(cache_dir(), f"knowledge-{digest}.pickle")


def _kb_cache_key(base: Path, files: tuple[list[Path], list[Path], list[Path]]) -> tuple[Any, ...] | None:
    """What the cached Knowledge depends on: every data file's path, size, times and inode, plus this
    module's source and rules/yaml_read.py (whose proof decides which texts yaml_rs reads), the installed
    YAML parsers (``yaml_read.parser_fingerprint``), the package version and the Python version. None when a
    file cannot be stat'ed (then no cache is used)."""
    mappings = base / "mappings"
    paths = [mappings / "auditpol.yaml", mappings / "sysmon.yaml", mappings / "object_access.yaml",
             mappings / "event_fields.yaml", mappings / "auditd.yaml", Path(__file__), Path(knowledge_model.__file__),
             Path(object_data.__file__),
             Path(auditd_data.__file__), Path(yaml_read.__file__),
             *files[0], *files[1], *files[2]]
    entries = []
    try:
        for path in paths:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                entries.append((str(path), None))  # a missing mapping is a (cached) problem, not an error
                continue
            entries.append((str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    except OSError:
        return None
    return (KB_CACHE_FORMAT, __version__, sys.version_info[:2], yaml_read.parser_fingerprint(), os.path.abspath(base),
            tuple(entries))


def _read_kb_cache(path: str, key: tuple[Any, ...]) -> Knowledge | None:
    data, sealed = read_sealed_pickle(path)
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    kb = data.get("knowledge")
    # sealed: the bytes this module pickled; otherwise a pickle of the wrong shape is rebuilt
    return kb if (sealed and type(kb) is Knowledge) or conforms(kb, Knowledge) else None


def _write_kb_cache(path: str, key: tuple[Any, ...], kb: Knowledge) -> None:
    write_pickle_atomically(path, {"key": key, "knowledge": kb}, sealed=True)


def _load_auditpol(kb: Knowledge, path: Path) -> None:
    if not path.is_file():
        kb.problems.append(f"{path.name}: missing")
        return
    data = _read_yaml(path) or {}
    prefix = str(data.get("gpo_path_prefix", "")).rstrip("\\")
    legacy_prefix = str(data.get("legacy_gpo_path_prefix", "")).rstrip("\\")
    kb.force_subcategory_default = bool(data.get("force_subcategory_default", True))
    kb.force_subcategory_policy = _opt_str(data.get("force_subcategory_policy"))
    kb.roles = dict(data.get("roles") or {})
    kb.audit_channel = _opt_str(data.get("channel"))
    kb.audit_provider = _opt_str(data.get("provider"))
    kb.outcome_keywords = {str(outcome): {"mask": int((spec or {}).get("mask") or 0),
                                          "names": [str(n).casefold() for n in (spec or {}).get("names") or []]}
                           for outcome, spec in (data.get("outcome_keywords") or {}).items()}
    kb.subcategory_count = int(data.get("subcategory_count") or 0)
    kb.inclusion_settings = {int(value): str(label) for value, label in (data.get("inclusion_settings") or {}).items()}
    for cat in data.get("categories") or []:
        kb.categories[cat["name"]] = AuditCategory(
            name=cat["name"], guid=str(cat["guid"]).upper(), legacy_policy=cat.get("legacy_policy", ""),
            legacy_key=cat.get("legacy_key", ""),
            gpo_path=f"{legacy_prefix}\\{cat.get('legacy_policy', '')}")
    for sub in data.get("subcategories") or []:
        for ev in sub.get("events") or []:
            if "inferred" in ev and not isinstance(ev["inferred"], bool):
                kb.problems.append(f"auditpol.yaml: event {ev.get('id')} inferred: {ev['inferred']!r} is not true/false")
        events = tuple(
            AuditEvent(id=int(ev["id"]), name=_opt_str(ev.get("name")),
                       outcomes=frozenset(_as_list(ev.get("outcomes"))), primary=bool(ev.get("primary", False)),
                       inferred=ev.get("inferred", False) is True, basis=_opt_str(ev.get("basis")),
                       also_requires=tuple(s for s in (_parse_spec(r, f"auditpol.yaml {sub.get('name')} event "
                                                                       f"{ev.get('id')}", kb)
                                                       for r in _as_list(ev.get("also_requires"))) if s is not None),
                       produced_alone=bool(ev.get("produced_alone", True)),
                       regardless_of_setting=bool(ev.get("regardless_of_setting", False)))
            for ev in sub.get("events") or [])
        record = AuditSubcategory(
            name=sub["name"], gpo_name=sub.get("gpo_name") or f"Audit {sub['name']}",
            guid=str(sub["guid"]).upper(), category=sub.get("category", ""),
            volume=str(sub.get("volume", "unknown")), defaults=dict(sub.get("defaults") or {}),
            requires_sacl=bool(sub.get("requires_sacl", False)), reference=str(sub.get("reference", "")),
            events=events, volume_by_role=dict(sub.get("volume_by_role") or {}),
            gpo_path=f"{prefix}\\{sub.get('category', '')}\\{sub.get('gpo_name') or 'Audit ' + sub['name']}")
        if record.guid in kb.subcategories:
            kb.problems.append(f"auditpol.yaml: GUID {record.guid} listed twice")
        kb.subcategories[record.guid] = record
        for event in events:
            if event.regardless_of_setting:
                kb.always_logged[event.id] = SpecialEvent(event.id, event.name, record.reference)
            elif event.produced_alone:
                kb.producers.setdefault(event.id, []).append((record, event))
    # An event with several producers: the primary one first.
    for event_id, producers in kb.producers.items():
        producers.sort(key=lambda pair: (not pair[1].primary,))
    for entry in data.get("always_logged") or []:
        kb.always_logged[int(entry["id"])] = SpecialEvent(
            int(entry["id"]), _opt_str(entry.get("name")), _opt_str(entry.get("reference")))
    for entry in data.get("legacy_events") or []:
        kb.legacy_events[int(entry["id"])] = SpecialEvent(
            int(entry["id"]), _opt_str(entry.get("name")), _opt_str(entry.get("reference")),
            tuple(int(x) for x in _as_list(entry.get("replaced_by"))))


def _load_registry_policies(kb: Knowledge, path: Path) -> None:
    data = _read_yaml(path) or {}
    for pol in data.get("policies") or []:
        settings = tuple((str(s.get("name")), str(s.get("value"))) for s in pol.get("settings") or [])
        registry = tuple(RegistryValueSpec(key=str(r["key"]), value=str(r["value"]),
                                           type=str(r.get("type", "REG_DWORD")), data=r.get("data"))
                         for r in pol.get("registry") or [])
        record = RegistryPolicy(
            id=str(pol["id"]), name=str(pol.get("name", "")), category=str(pol.get("category", "")),
            kind=str(pol.get("kind", "administrative_template")), gpo_path=str(pol.get("gpo_path", "")),
            state=str(pol.get("state", "Enabled")), settings=settings, registry=registry,
            reference=str(pol.get("reference", "")), defer=_parse_deferral(pol.get("defer"), path, kb),
            volume=str(pol.get("volume", "unknown")), volume_reference=_opt_str(pol.get("volume_reference")))
        if record.id in kb.registry_policies:
            kb.problems.append(f"{path.name}: registry policy id {record.id} defined twice")
        kb.registry_policies[record.id] = record


def _parse_deferral(raw: Any, path: Path, kb: Knowledge) -> PolicyDeferral | None:
    if raw is None:
        return None
    reg = raw.get("registry") if isinstance(raw, dict) else None
    if not isinstance(reg, dict) or not raw.get("setting") or not raw.get("policy"):
        kb.problems.append(f"{path.name}: defer needs setting, registry and policy")
        return None
    return PolicyDeferral(
        setting=str(raw["setting"]), value=str(raw.get("value", "Enabled")), policy=str(raw["policy"]),
        registry=RegistryValueSpec(key=str(reg.get("key", "")), value=str(reg.get("value", "")),
                                   type=str(reg.get("type", "REG_DWORD")), data=reg.get("data")),
        references=tuple(str(u) for u in _as_list(raw.get("references"))))


def _load_channels(kb: Knowledge, path: Path) -> None:
    data = _read_yaml(path) or {}
    kb.eventlog_policy_category = str(data.get("eventlog_policy_category") or kb.eventlog_policy_category)
    kb.wef_default_log = _opt_str(data.get("wef_default_log")) or kb.wef_default_log
    names = data.get("eventlog_setting_names")
    if isinstance(names, dict):
        kb.eventlog_setting_names.update({str(k): str(v) for k, v in names.items()})
    for ch in data.get("channels") or []:
        size = ch.get("recommended_max_size_mb")
        record = Channel(
            name=str(ch["name"]), provider=_opt_str(ch.get("provider")),
            provider_guid=_opt_str(ch.get("provider_guid")), type=str(ch.get("type", "")),
            enabled_by_default=bool(ch.get("enabled_by_default", True)),
            recommended_max_size_mb=int(size) if isinstance(size, (int, float)) else None,
            gpo_path=_opt_str(ch.get("gpo_path")), reference=_opt_str(ch.get("reference")),
            aliases=tuple((str(a.get("name", "")), _opt_str(a.get("reference"))) if isinstance(a, dict)
                          else (str(a), None) for a in _as_list(ch.get("aliases"))))
        if record.name.casefold() in kb.channels:
            kb.problems.append(f"{path.name}: channel {record.name} listed twice")
        kb.channels[record.name.casefold()] = record
        for alias, _ in record.aliases:
            key = alias.strip().casefold()
            if key in kb.channel_aliases and kb.channel_aliases[key] != record.name.casefold():
                kb.problems.append(f"{path.name}: alias {alias!r} names two channels")
            kb.channel_aliases[key] = record.name.casefold()


def _load_sysmon(kb: Knowledge, path: Path) -> None:
    if not path.is_file():
        kb.problems.append(f"{path.name}: missing")
        return
    data = _read_yaml(path) or {}
    kb.sysmon_meta = {k: v for k, v in data.items() if k != "events"}
    for ev in data.get("events") or []:
        kb.sysmon_events[int(ev["id"])] = SysmonEvent(
            id=int(ev["id"]), name=str(ev.get("name", "")), element=_opt_str(ev.get("element")),
            filterable=bool(ev.get("filterable", ev.get("element") is not None)),
            fields=tuple(str(f) for f in _as_list(ev.get("fields"))), blocking=bool(ev.get("blocking", False)),
            blocking_reference=_opt_str(ev.get("blocking_reference")),
            when_unmentioned=str(ev.get("when_unmentioned", "unknown")),
            unmentioned_basis=str(ev.get("unmentioned_basis") or ""), since_schema=_opt_str(ev.get("since_schema")))


def _load_event_fields(kb: Knowledge, path: Path) -> None:
    if not path.is_file():
        kb.problems.append(f"{path.name}: missing")
        return
    data = _read_yaml(path) or {}
    common = data.get("common_fields")
    if not isinstance(common, dict):
        kb.problems.append(f"{path.name}: common_fields is not a mapping of product to field names")
        return
    for product, names in common.items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            kb.problems.append(f"{path.name}: common_fields.{product} is not a list of field names")
            continue
        kb.common_fields[str(product).lower()] = frozenset(names)


def _parse_spec(raw: Any, where: str, kb: Knowledge) -> RequirementSpec | None:
    if not isinstance(raw, dict):
        kb.problems.append(f"{where}: requirement is not a mapping")
        return None
    kinds = [k for k in REQUIREMENT_KEYS if k in raw]
    if len(kinds) != 1:
        kb.problems.append(f"{where}: requirement needs exactly one of {', '.join(REQUIREMENT_KEYS)}")
        return None
    kind = kinds[0]
    value = raw[kind]
    if kind == "audit":
        value = str(value).upper()
    elif kind in ("sysmon_event", "sysmon_linux_event"):
        value = int(value)
    elif kind == "sacl":
        value = str(value)
    when_fields = raw.get("when_fields")
    when_ids = raw.get("when_event_ids")
    access = 0
    for bits in _as_list(raw.get("access")):   # sacl: the rights to audit, one mask or several OR-ed
        access |= bits if isinstance(bits, int) and not isinstance(bits, bool) and 0 < bits < 2 ** 32 else 0
        if not (isinstance(bits, int) and not isinstance(bits, bool) and 0 < bits < 2 ** 32) or kind != "sacl":
            kb.problems.append(f"{where}: access {bits!r} must be an access mask (1 to 2^32-1) on a sacl requirement")
    return RequirementSpec(
        kind=kind, value=value, success=bool(raw.get("success", True)), failure=bool(raw.get("failure", False)),
        when_fields=frozenset(str(f) for f in when_fields) if when_fields else None,
        when_event_ids=frozenset(int(i) for i in when_ids) if when_ids else None, access=access)


def _load_guide(kb: Knowledge, path: Path, guide_dir: Path) -> None:
    rel = path.relative_to(guide_dir).as_posix()
    try:
        data = _read_yaml(path)
    except _yaml().YAMLError as exc:
        kb.problems.append(f"guides/{rel}: not valid YAML: {' '.join(str(exc).split())}")
        return
    if not isinstance(data, dict):
        kb.problems.append(f"guides/{rel}: not a mapping")
        return
    logsources = []
    for ls in data.get("logsources") or []:
        logsources.append(tuple(
            (str(ls[k]).lower() if ls.get(k) is not None else None) for k in ("product", "category", "service")))
    events: dict[int, GuideEvent] = {}
    for ev in data.get("events") or []:
        specs = tuple(s for s in (_parse_spec(r, f"guides/{rel} event {ev.get('id')}", kb)
                                  for r in ev.get("requires") or []) if s is not None)
        events[int(ev["id"])] = GuideEvent(int(ev["id"]), _opt_str(ev.get("name")),
                                           _opt_str(ev.get("provider")), specs)
    alternatives = []
    raw_alts = data.get("enablement") or []
    any_primary = any(alt.get("primary") for alt in raw_alts if isinstance(alt, dict))
    for index, alt in enumerate(raw_alts):
        specs = tuple(s for s in (_parse_spec(r, f"guides/{rel} enablement {index + 1}", kb)
                                  for r in alt.get("requires") or []) if s is not None)
        fields = alt.get("fields")
        alternatives.append(Alternative(
            name=str(alt.get("name", f"alternative {index + 1}")),
            primary=bool(alt.get("primary")) if any_primary else index == 0,
            fields=frozenset(str(f) for f in fields) if fields else None,
            notes=_opt_str(alt.get("notes")), requires=specs))
    guide = Guide(
        id=str(data.get("id", "")), title=str(data.get("title", rel)), path=f"guides/{rel}",
        logsources=tuple(logsources), description=str(data.get("description", "")).strip(),
        volume=str(data.get("volume", "unknown")), references=tuple(str(u) for u in _as_list(data.get("references"))),
        sources=tuple(s for s in data.get("sources") or [] if isinstance(s, dict)), events=events,
        key_fields=tuple(str(f) for f in data.get("key_fields") or []), enablement=tuple(alternatives))
    kb.guides.append(guide)
    for key in guide.logsources:
        if key in kb.by_logsource:
            kb.problems.append(
                f"guides/{rel}: log source {key} already served by {kb.by_logsource[key].path}")
            continue
        kb.by_logsource[key] = guide


load.cache_clear = _load.cache_clear  # type: ignore[attr-defined]
