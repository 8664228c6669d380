"""What a Sysmon configuration logs per event type, as Sysmon's own source decides it.

Sources (Sysinternals/SysmonCommon): rules.c FilterEventRules (no filter element for a type: the type's
default; one element and no match: that element's default; several elements and no match: dropped),
manifest.xml ruledefault with manifest.tt (no attribute: Rule_exclude; onmatch is stored inverted),
xml.cpp (an element needs onmatch or default), UnitTests/rules.cpp ("Process create is include by default",
"Raw access read is exclude by default"). The configurations below are written for these tests.
"""
from __future__ import annotations

import pytest

from conftest import ROOT
from logsource_checker import knowledge
from logsource_checker.diff import PolicyDiff
from logsource_checker.policy.sysmon_config import read_sysmon_config
from logsource_checker.resolve import Requirement

KB = knowledge.load(str(ROOT))


def _config(filters: str, schema: str = "4.90") -> bytes:
    return (f'<Sysmon schemaversion="{schema}"><HashAlgorithms>SHA256</HashAlgorithms>'
            f"<EventFiltering>{filters}</EventFiltering></Sysmon>").encode()


def read_policy_bytes(data: bytes):
    return read_sysmon_config("config.xml", data, KB.sysmon_events.values())


# -- the data: each filterable type says what happens when a configuration does not mention it ----------------

# (event id, when_unmentioned) as the sources give it; the reasons are in mappings/sysmon.yaml
SOURCE_DEFAULTS = [
    (1, "logged"),        # ruledefault="include"; unit test "Process create is include by default"
    (5, "logged"),        # ruledefault="include"
    (3, "not_logged"),    # no ruledefault -> Rule_exclude; the Sysmon page: disabled by default
    (7, "not_logged"),    # likewise (needs -l or a filter)
    (9, "not_logged"),    # unit test "Raw access read is exclude by default"
    (11, "not_logged"), (12, "not_logged"), (13, "not_logged"), (14, "not_logged"), (15, "not_logged"),
    (17, "not_logged"), (22, "not_logged"),   # ruledefault="exclude"
    (2, "unknown"),       # manifest: Rule_exclude; Sysmon Community Guide: on in a default install
    (6, "unknown"),       # likewise
    (29, "unknown"),      # not in the public manifest
]


@pytest.mark.parametrize("event_id,expected", SOURCE_DEFAULTS)
def test_unmentioned_default_data(event_id, expected):
    event = KB.sysmon_events[event_id]
    assert event.when_unmentioned == expected
    assert event.unmentioned_basis


def test_every_filterable_type_has_a_default():
    for event in KB.sysmon_events.values():
        if event.filterable:
            assert event.when_unmentioned in ("logged", "not_logged", "unknown"), event.id
            assert event.unmentioned_basis, event.id


# -- verdicts: (configuration filters, schema, event id, status, a fragment of the reason) ----------------------

EXCLUDE_SOME = '<ProcessCreate onmatch="exclude"><Image condition="end with">\\updater.exe</Image></ProcessCreate>'
INCLUDE_SOME = '<ProcessCreate onmatch="include"><Image condition="end with">\\powershell.exe</Image></ProcessCreate>'
REG_INCLUDE = ('<RegistryEvent onmatch="include"><TargetObject condition="contains">\\Run\\</TargetObject>'
               '</RegistryEvent>')

VERDICTS = [
    # nothing mentioned: each type's default
    ("unmentioned-process-create", "", "4.90", 1, "met", "logs every event"),
    ("unmentioned-process-terminate", "", "4.90", 5, "met", "logs every event"),
    ("unmentioned-network", "", "4.90", 3, "missing", "logs none"),
    ("unmentioned-registry", "", "4.90", 13, "missing", "logs none"),
    ("unmentioned-dns", "", "4.90", 22, "missing", "logs none"),
    ("unmentioned-file-create-time", "", "4.90", 2, "unknown", "event sample"),
    ("unmentioned-driver-load", "", "4.90", 6, "unknown", "event sample"),
    ("unmentioned-executable-detected", "", "4.90", 29, "unknown", "sysmon -s"),
    ("not-filterable", "", "4.90", 4, "met", "cannot be filtered"),
    # one element
    ("exclude-with-conditions", EXCLUDE_SOME, "4.90", 1, "met", "do not match"),
    ("empty-exclude", '<NetworkConnect onmatch="exclude"/>', "4.90", 3, "met", "excludes nothing"),
    ("empty-include", '<ProcessCreate onmatch="include"/>', "4.90", 1, "missing", "matches nothing"),
    ("include-with-conditions", INCLUDE_SOME, "4.90", 1, "unknown", "include conditions match"),
    ("include-registry-all-three", REG_INCLUDE, "4.90", 14, "unknown", "include conditions match"),
    ("other-type-mentioned", INCLUDE_SOME, "4.90", 3, "missing", "logs none"),
    # RuleGroup wrappers
    ("rulegroup-include", f'<RuleGroup name="g" groupRelation="or">{INCLUDE_SOME}</RuleGroup>', "4.90", 1,
     "unknown", "include conditions match"),
    ("rulegroup-empty-exclude", '<RuleGroup groupRelation="and"><DnsQuery onmatch="exclude"/></RuleGroup>',
     "4.90", 22, "met", "excludes nothing"),
    ("rulegroup-empty-include", '<RuleGroup groupRelation="or"><ProcessTerminate onmatch="include"/></RuleGroup>',
     "4.90", 5, "missing", "matches nothing"),
    # spellings: onmatch values ignore case (STRCASECMP); `default` is the other attribute, not inverted
    ("onmatch-upper-case", '<NetworkConnect onmatch="EXCLUDE"/>', "4.90", 3, "met", "excludes nothing"),
    ("onmatch-mixed-case", '<ProcessCreate onmatch="Include"/>', "4.90", 1, "missing", "matches nothing"),
    ("default-include", '<NetworkConnect default="include"/>', "4.90", 3, "met", "excludes nothing"),
    ("default-exclude", '<ProcessCreate default="exclude"/>', "4.90", 1, "missing", "matches nothing"),
    ("no-onmatch", '<ProcessCreate><Image condition="is">a.exe</Image></ProcessCreate>', "4.90", 1,
     "unknown", "onmatch"),
    ("bogus-onmatch", '<NetworkConnect onmatch="log"/>', "4.90", 3, "unknown", "onmatch"),
    ("onmatch-and-default", '<NetworkConnect onmatch="exclude" default="include"/>', "4.90", 3, "unknown",
     "onmatch"),
    ("onmatch-with-blanks", '<NetworkConnect onmatch=" exclude"/>', "4.90", 3, "unknown", "onmatch"),
    # several elements of one type: no match means dropped
    ("include-and-exclude", INCLUDE_SOME + EXCLUDE_SOME, "4.90", 1, "unknown", "include conditions match"),
    ("empty-include-and-exclude", '<ProcessCreate onmatch="include"/>' + EXCLUDE_SOME, "4.90", 1, "missing",
     "several filter elements"),
    ("two-excludes", f"<RuleGroup>{EXCLUDE_SOME}</RuleGroup><RuleGroup>{EXCLUDE_SOME}</RuleGroup>", "4.90", 1,
     "missing", "several filter elements"),
    # a schema version that lacks the type: the binary's default still applies, and the reason says so
    ("old-schema-lacks-file-delete", EXCLUDE_SOME, "4.22", 23, "missing", "schema 4.22"),
    ("old-schema-lacks-dns", EXCLUDE_SOME, "3.30", 22, "missing", "schema 3.30"),
    ("old-schema-process-create-unmentioned", '<NetworkConnect onmatch="exclude"/>', "4.22", 1, "met",
     "logs every event"),
]


@pytest.mark.parametrize("name,filters,schema,event_id,status,fragment", VERDICTS, ids=[v[0] for v in VERDICTS])
def test_sysmon_verdicts(name, filters, schema, event_id, status, fragment):
    snap = read_policy_bytes(_config(filters, schema))
    cfg = snap.sysmon
    assert cfg is not None
    assert cfg.status[event_id] == status, cfg.reasons[event_id]
    assert fragment in cfg.reasons[event_id]
    assert cfg.collected[event_id] is (status == "met")
    req = Requirement(id=f"sysmon:{event_id}", kind="sysmon_event", name="x", event_id=event_id)
    diff_status, reason = PolicyDiff(KB, snap).status(req)
    if KB.sysmon_events[event_id].blocking and status != "met":
        assert diff_status == "unknown"
    else:
        assert (diff_status, reason) == (status, cfg.reasons[event_id])


def test_no_event_filtering_section_means_every_default():
    snap = read_policy_bytes(b'<Sysmon schemaversion="4.90"><HashAlgorithms>SHA1</HashAlgorithms></Sysmon>')
    cfg = snap.sysmon
    assert cfg is not None
    for event in KB.sysmon_events.values():
        if event.filterable:
            expected = {"logged": "met", "not_logged": "missing", "unknown": "unknown"}[event.when_unmentioned]
            assert cfg.status[event.id] == expected, event.id


def test_missing_onmatch_is_warned():
    snap = read_policy_bytes(_config('<ProcessCreate><Image condition="is">a.exe</Image></ProcessCreate>'))
    assert any("onmatch" in w for w in snap.warnings)


def test_element_newer_than_declared_schema_is_warned():
    snap = read_policy_bytes(_config('<FileDeleteDetected onmatch="exclude"/>', "4.22"))
    assert any("FileDeleteDetected" in w and "4.22" in w for w in snap.warnings)


# -- merging into the user's file: never add an include where Sysmon may log every event already ---------------

def _decide(filters: str, element: str, event_ids: list[int]):
    from lxml import etree

    from logsource_checker.sysmon_merge import decide

    events = [KB.sysmon_events[i] for i in event_ids]
    defaults = {e.when_unmentioned for e in events}
    group = {"element": element, "event_ids": event_ids, "missing": True, "collect_all": False,
             "when_unmentioned": ("not_logged" if defaults == {"not_logged"} else
                                  "logged" if "logged" in defaults else "unknown")}
    root = etree.fromstring(_config(filters))
    return decide(root, [group])


MERGES = [
    # not mentioned, default logs none: an include only adds events
    ("unmentioned-registry", "", "RegistryEvent", [12, 13, 14], True, ""),
    ("unmentioned-network", "", "NetworkConnect", [3], True, ""),
    # not mentioned, default not settled (may log every event): left alone, with a note
    ("unmentioned-driver-load", "", "DriverLoad", [6], False, "may log every event"),
    ("unmentioned-file-create-time", "", "FileCreateTime", [2], False, "may log every event"),
    # a filter element Sysmon would refuse or read with the type's default: left alone
    ("bogus-onmatch", '<ProcessCreate onmatch="log"><Image condition="is">a.exe</Image></ProcessCreate>',
     "ProcessCreate", [1], False, "no valid onmatch"),
    # default="include" is an exclude-like element: it logs every event it does not match
    ("default-include", '<ProcessCreate default="include"/>', "ProcessCreate", [1], False, "one exclude filter"),
    # default="exclude" with conditions is include-like: another include only adds events
    ("default-exclude", '<ProcessCreate default="exclude"><Image condition="is">a.exe</Image></ProcessCreate>',
     "ProcessCreate", [1], True, ""),
    # two excludes drop every unmatched event already: an include only adds events
    ("two-excludes", '<RuleGroup><ProcessCreate onmatch="exclude"><Image condition="is">a.exe</Image>'
     '</ProcessCreate></RuleGroup><RuleGroup><ProcessCreate onmatch="exclude"><Image condition="is">b.exe'
     '</Image></ProcessCreate></RuleGroup>', "ProcessCreate", [1], True, ""),
]


@pytest.mark.parametrize("name,filters,element,event_ids,added,note", MERGES, ids=[m[0] for m in MERGES])
def test_merge_guard(name, filters, element, event_ids, added, note):
    cut, additions, notes = _decide(filters, element, event_ids)
    assert bool(additions) is added, notes
    assert (note in " ".join(notes)) if note else not notes
