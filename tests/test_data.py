"""The knowledge data (guides/ + mappings/): schema, internal consistency, coverage of real rule sets.

Facts are checked against the data files themselves (the single source of truth); the expected values
in the tables below were read from Microsoft's audit-policy documentation and the Sysmon schema.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from logsource_checker import knowledge

ROOT = Path(__file__).resolve().parent.parent
GUID_TEXT = re.compile(r"\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?")


@pytest.fixture(scope="module")
def kb():
    return knowledge.load(str(ROOT))


def test_data_validates_against_schema(kb):
    assert knowledge.validate(kb) == []


def test_all_59_subcategories_with_unique_guids(kb):
    assert len(kb.subcategories) == 59
    assert len(kb.categories) == 9
    assert len({sub.guid for sub in kb.subcategories.values()}) == 59
    assert {sub.category for sub in kb.subcategories.values()} == set(kb.categories)


# (event id, primary producer as auditpol prints it, outcomes of the primary, other producers)
PRODUCERS = [
    (4624, "Logon", {"success"}, set()),
    (4625, "Logon", {"failure"}, {"Account Lockout"}),
    (4688, "Process Creation", {"success"}, set()),
    (4697, "Security System Extension", {"success"}, set()),
    (4698, "Other Object Access Events", {"success"}, set()),
    (4768, "Kerberos Authentication Service", {"success", "failure"}, set()),
    (4776, "Credential Validation", {"success", "failure"}, set()),
    (5136, "Directory Service Changes", {"success"}, set()),
    (5140, "File Share", {"success", "failure"}, set()),
    (5145, "Detailed File Share", {"success", "failure"}, set()),
    (5156, "Filtering Platform Connection", {"success"}, set()),
    (4720, "User Account Management", {"success"}, set()),
    (4728, "Security Group Management", {"success"}, set()),
]


@pytest.mark.parametrize("event_id, primary, outcomes, others", PRODUCERS)
def test_event_producers(kb, event_id, primary, outcomes, others):
    producers = kb.producers[event_id]
    first_sub, first_event = producers[0]
    assert first_sub.name == primary
    assert set(first_event.outcomes) == outcomes
    assert others <= {sub.name for sub, _ in producers[1:]}
    if len(producers) > 1:
        assert first_event.primary and sum(ev.primary for _, ev in producers) == 1


@pytest.mark.parametrize("event_id", [4656, 4663, 4658])
def test_object_access_events_have_several_producers(kb, event_id):
    names = {sub.name for sub, _ in kb.producers[event_id]}
    assert {"File System", "Registry"} <= names


@pytest.mark.parametrize("event_id", [1102, 4715, 4719, 4817, 4906, 4908, 4912])
def test_always_logged(kb, event_id):
    assert event_id in kb.always_logged and event_id not in kb.producers
    assert (kb.always_logged[event_id].reference or "").startswith("https://")


@pytest.mark.parametrize("event_id, also", [
    (4658, "Handle Manipulation"), (4626, "Logon"), (4627, "Logon"),
])
def test_joint_requirements(kb, event_id, also):
    producers = kb.producers[event_id]
    assert producers and also not in {sub.name for sub, _ in producers}
    for _, event in producers:
        assert [kb.subcategories[spec.value].name for spec in event.also_requires] == [also]


def test_object_access_data(kb):
    data = kb.object_access
    assert {4656, 4658, 4660, 4663, 4661} <= data.events
    by_id = {c.id: c for c in data.classes}
    for class_id, subcategory in [("file", "File System"), ("registry_key", "Registry"), ("process", "Kernel Object"),
                                  ("removable_file", "Removable Storage"), ("sam", "SAM")]:
        assert kb.subcategories[by_id[class_id].producers[0].subcategory].name == subcategory
    # every subcategory that needs a SACL has a SACL kind wherever a class names it; Removable Storage needs none
    for cls in data.classes:
        for producer in cls.producers:
            assert (producer.sacl is not None) == kb.subcategories[producer.subcategory].requires_sacl, cls.id
    assert {k.resource_type for k in data.sacl_kinds.values()} == {"File", "Key", None}


@pytest.mark.parametrize("event_id, modern", [(528, 4624), (529, 4625)])
def test_legacy_events_point_to_modern_ids(kb, event_id, modern):
    assert modern in kb.legacy_events[event_id].replaced_by


def test_guide_ids_are_unique_uuids_and_cite_https(kb):
    ids = Counter(g.id for g in kb.guides)
    assert ids and max(ids.values()) == 1
    for guide in kb.guides:
        assert knowledge.UUID_RE.match(guide.id), guide.path
        assert any(u.startswith("https://") for u in guide.references), guide.path


# Windows facts the issue names explicitly: (logsource, what one alternative must require)
WINDOWS_FACTS = [
    (("windows", "process_creation", None), {"sysmon_event": 1}),
    (("windows", "process_creation", None), {"audit": "{0CCE922B-69AE-11D9-BED3-505054503030}"}),
    (("windows", "ps_script", None), {"registry_policy": "ps_scriptblock_logging"}),
    (("windows", "ps_module", None), {"registry_policy": "ps_module_logging"}),
    (("windows", "registry_set", None), {"sysmon_event": 13}),
    (("windows", "network_connection", None), {"sysmon_event": 3}),
    (("windows", "image_load", None), {"sysmon_event": 7}),
    (("windows", "dns_query", None), {"sysmon_event": 22}),
]


def _spec_values(guide):
    for alt in guide.enablement:
        for spec in alt.requires:
            yield spec.kind, spec.value


@pytest.mark.parametrize("logsource, needed", WINDOWS_FACTS)
def test_windows_guides_name_the_right_producers(kb, logsource, needed):
    guide = kb.by_logsource[logsource]
    ((kind, value),) = needed.items()
    assert (kind, value) in set((k, v) for k, v in _spec_values(guide) if not isinstance(v, dict))


@pytest.mark.parametrize("channel, on_by_default", [
    ("Microsoft-Windows-TaskScheduler/Operational", False),
    ("Microsoft-Windows-DNS-Client/Operational", False),
    ("Microsoft-Windows-CAPI2/Operational", False),
    ("Security", True),
    ("System", True),
    ("Microsoft-Windows-PowerShell/Operational", True),
])
def test_channel_defaults(kb, channel, on_by_default):
    assert kb.channel(channel).enabled_by_default is on_by_default


def test_no_guid_or_channel_literal_in_python_code(kb):
    """The data files are the single source of truth: the code holds no GUID or channel name."""
    channel_names = {ch.name for ch in kb.channels.values() if "/" in ch.name}
    for path in (ROOT / "logsource_checker").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not GUID_TEXT.search(text), f"{path}: GUID literal"
        for name in channel_names:
            assert name not in text, f"{path}: channel {name} written in code"


def _corpus_triples(root: Path) -> Counter:
    triples: Counter = Counter()
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name.endswith((".yml", ".yaml")):
                with open(os.path.join(dirpath, name), encoding="utf-8") as handle:
                    doc = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
                ls = doc.get("logsource") or {}
                triples[tuple((str(ls[k]).lower() if ls.get(k) is not None else None)
                              for k in ("product", "category", "service"))] += 1
    return triples


def test_every_corpus_logsource_has_a_guide(kb, corpus_rules):
    triples = _corpus_triples(corpus_rules)
    assert len(triples) == 138
    assert [t for t in triples if t not in kb.by_logsource] == []


def test_corpus_pre_vista_ids_are_notes_beside_their_replacement(kb, corpus_rules):
    """Every pre-Vista Security ID in the corpus sits in a rule that also names its modern replacement: a note
    on that rule, not an unmapped EventID (a pre-Vista ID alone stays unmapped: tests/test_object_access.py)."""
    from logsource_checker.engine import CheckOptions, check
    from logsource_checker.report import build

    report = build(check(CheckOptions(paths=[str(corpus_rules)], use_cache=False)))
    assert report["unmapped"]["logsources"] == [] and report["unmapped"]["event_ids"] == []
    old = [(rule, event_id) for rule in report["rules"] for event_id in rule["event_ids"] if event_id in kb.legacy_events]
    assert {event_id for _, event_id in old} == {517, 528, 529, 632, 633, 634, 675}
    for rule, event_id in old:
        assert set(kb.legacy_events[event_id].replaced_by) & set(rule["event_ids"])
        assert any(note.startswith(f"EventID {event_id} is a pre-Vista ID") for note in rule["notes"]), rule["title"]


BROKEN_DATA = [
    # (file to change, old text, new text, fragment of the one-line message)
    ("guides/windows/core/process_creation.yaml", "{0CCE922B-69AE-11D9-BED3-505054503030}",
     "{0CCE9FFF-69AE-11D9-BED3-505054503030}", "not in mappings/auditpol.yaml"),
    ("guides/windows/core/process_creation.yaml", "sysmon_event: 1\n", "sysmon_event: 999\n", "Sysmon event 999"),
    ("mappings/auditpol.yaml", "subcategories:", "subcategories: [\n", "cannot be read"),
    ("mappings/event_fields.yaml", "common_fields:\n", "common_fields: [EventID]\nold_fields:\n",
     "common_fields is not a mapping"),
]


@pytest.mark.parametrize("name, old, new, message", BROKEN_DATA)
def test_inconsistent_data_is_exit_2_with_one_line(cli, tmp_path, monkeypatch, name, old, new, message):
    import shutil

    data = tmp_path / "data"
    for part in ("guides", "mappings", "templates"):
        shutil.copytree(ROOT / part, data / part)
    target = data / name
    text = target.read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    monkeypatch.setenv("LOGSOURCE_CHECKER_DATA", str(data))
    knowledge.load.cache_clear()
    result = cli(ROOT / "samples" / "rules", "--format", "json")
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_registry_data_emit_would_refuse_is_refused_by_validation(cli, tmp_path, monkeypatch):
    """What emit refuses to place in registry.reg (here a ':' in string data) is caught when the data is
    loaded: exit 2 with one line, for every command, not a traceback at --emit time."""
    import shutil

    data = tmp_path / "data"
    for part in ("guides", "mappings", "templates"):
        shutil.copytree(ROOT / part, data / part)
    target = data / "mappings" / "registry_policies.yaml"
    text = target.read_text(encoding="utf-8")
    assert "data: '*'" in text
    target.write_text(text.replace("data: '*'", "data: 'C:\\Transcripts'", 1), encoding="utf-8")
    monkeypatch.setenv("LOGSOURCE_CHECKER_DATA", str(data))
    result = cli(ROOT / "samples" / "rules", "--emit", tmp_path / "out")
    assert result.exit_code == 2 and "unsafe in registry.reg" in result.stderr
    assert not (tmp_path / "out").exists()


# (file, text in it, replacement, problem validate reports) for the keys added by the data audit:
# inferred/basis on audit events, channel aliases, policy deferral
SCHEMA_BREAKS = [
    ("mappings/auditpol.yaml", "        inferred: true\n        basis: 'no Microsoft subcategory page lists it; OSSEM",
     "        inferred: true\n        notbasis: 'x", "event 4825 is inferred but gives no basis"),
    ("mappings/auditpol.yaml", "        inferred: true\n        basis: 'no Microsoft subcategory page lists it; OSSEM",
     "        inferred: 'yes'\n        basis: 'no Microsoft subcategory page lists it; OSSEM",
     "event 4825 inferred: 'yes' is not true/false"),
    ("mappings/auditpol.yaml", "        inferred: true\n        basis: 'no Microsoft subcategory page lists it; OSSEM",
     "        basis: 'no Microsoft subcategory page lists it; OSSEM",
     "event 4825 has a basis but is not marked inferred: true"),
    ("mappings/channels_services.yaml", "      - name: 'Microsoft-Windows-Security-Mitigations/User Mode'",
     "      - name: 'Microsoft-Windows-Security-Mitigations/Kernel Mode'", "names two channels"),
    ("mappings/channels_services.yaml", "      - name: 'Microsoft-Windows-Security-Mitigations/User Mode'",
     "      - name: 'Microsoft-Windows-NTLM/Operational'", "is itself a channel name"),
    ("mappings/channels_services.yaml", "      - name: 'Microsoft-Windows-Security-Mitigations/User Mode'",
     "      - name: 'Microsoft-Windows-Security-Mitigations/User \"Mode'", "unsafe in a wevtutil command"),
    ("mappings/registry_policies.yaml", "      policy: ps_scriptblock_logging",
     "      policy: no_such_policy", "not another policy"),
    ("mappings/registry_policies.yaml", "      policy: ps_scriptblock_logging",
     "      policy: pwsh_module_logging", "which defers itself"),
    ("mappings/registry_policies.yaml", "      policy: ps_scriptblock_logging\n      references:\n        - https:",
     "      policy: ps_scriptblock_logging\n      references:\n        - http:", "defer needs https references"),
]


@pytest.mark.parametrize("name, old, new, problem", SCHEMA_BREAKS)
def test_new_schema_keys_are_validated(tmp_path, name, old, new, problem):
    import shutil

    data = tmp_path / "data"
    for part in ("guides", "mappings"):
        shutil.copytree(ROOT / part, data / part)
    target = data / name
    text = target.read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    problems = knowledge.validate(knowledge.load(str(data), use_cache=False))
    assert any(problem in p for p in problems), problems


def test_aliases_cite_pysigma_and_name_no_channel(kb):
    aliases = {alias: (ch.name, ref) for ch in kb.channels.values() for alias, ref in ch.aliases}
    assert set(aliases) == {"Microsoft-Windows-Security-Mitigations/Kernel Mode",
                            "Microsoft-Windows-Security-Mitigations/User Mode",
                            "Microsoft-Windows-DNS Client Events/Operational",
                            "Microsoft-Windows-DNS-Server/Analytical"}
    for alias, (name, ref) in aliases.items():
        assert ref and "SigmaHQ/pySigma" in ref
        assert alias.casefold() != name.casefold() and kb.channel(alias).name == name


def test_inferred_events_listed_in_comment_are_marked(kb):
    """The events auditpol.yaml's header names as beyond Microsoft's lists, or with no outcome marker, carry
    inferred: true; no documented event does."""
    inferred = {ev.id for sub in kb.subcategories.values() for ev in sub.events if ev.inferred}
    assert {5379, 4825, 4899, 4900, 4868, 4888, 5150, 5151, 6273, 4671, 4666, 6400} <= inferred
    assert not {4624, 4625, 4688, 4720, 4768, 4769, 5145, 4663} & inferred


# (log source, alternative name prefix, fields it must list, fields it must not list). 4688 after the renames of
# pySigma's windows_audit pipeline (Image -> NewProcessName, ParentImage -> ParentProcessName, LogonId ->
# SubjectLogonId; https://github.com/SigmaHQ/pySigma-pipeline-windows/blob/main/sigma/pipelines/windows/windows.py);
# Sysmon event 1 as SigmaHQ's process_creation log-source guide lists its fields.
PRODUCER_FIELDS = [
    (("windows", "process_creation", None), "Security event 4688",
     {"Image", "ParentImage", "CommandLine", "LogonId", "NewProcessName", "ParentProcessName", "SubjectLogonId"},
     {"OriginalFileName", "Hashes", "ParentCommandLine", "CurrentDirectory", "IntegrityLevel", "ProcessId"}),
    (("windows", "process_creation", None), "Sysmon event 1",
     {"Image", "OriginalFileName", "Hashes", "ParentCommandLine", "CurrentDirectory", "IntegrityLevel", "User"},
     {"GrandParentImage", "EventID"}),
    (("windows", "network_connection", None), "Security event 5156", {"DestinationIp", "DestinationPort"},
     {"DestinationHostname", "User"}),
    (("windows", "network_connection", None), "Sysmon event 3", {"DestinationHostname", "Initiated"},
     {"CommandLine", "ParentImage"}),
    (("windows", "registry_set", None), "Sysmon event 13", {"TargetObject", "Details", "EventType"}, {"NewName"}),
    (("windows", "registry_set", None), "Security event 4657", {"TargetObject", "Details"}, {"EventType"}),
]


@pytest.mark.parametrize("logsource, prefix, listed, unlisted", PRODUCER_FIELDS)
def test_producer_fields(kb, logsource, prefix, listed, unlisted):
    (alt,) = [a for a in kb.by_logsource[logsource].enablement if a.name.startswith(prefix)]
    assert alt.fields is not None and listed <= alt.fields and not unlisted & alt.fields


def test_common_fields_are_data_and_never_a_producer_field(kb):
    common = kb.common_fields["windows"]
    assert {"EventID", "Channel", "Computer", "Provider_Name", "Security_UserID"} <= common
    for guide in kb.guides:
        for alt in guide.enablement:
            assert not (alt.fields or frozenset()) & common, (guide.path, alt.name)
