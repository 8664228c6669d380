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


@pytest.mark.parametrize("event_id", [1102])
def test_always_logged(kb, event_id):
    assert event_id in kb.always_logged and event_id not in kb.producers


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


def test_corpus_unmapped_event_ids_are_only_pre_vista(corpus_rules):
    from logsource_checker.engine import CheckOptions, check
    from logsource_checker.report import build

    report = build(check(CheckOptions(paths=[str(corpus_rules)], use_cache=False)))
    assert report["unmapped"]["logsources"] == []
    unmapped = report["unmapped"]["event_ids"]
    assert unmapped, "the corpus uses pre-Vista Security IDs, which must be listed"
    assert {u["event_id"] for u in unmapped} <= {517, 528, 529, 632, 633, 634, 675}
    assert all(u["logsource"]["service"] == "security" and u["replaced_by"] for u in unmapped)
    assert all(u["paths"] for u in unmapped)


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
