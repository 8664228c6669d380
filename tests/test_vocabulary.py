"""Knowledge stays data: what the policy parsers recognise comes from mappings/, and registry keys are
normalised in one place (policy/model.py) for every parser, the diff and emit."""
from __future__ import annotations

import dataclasses

import pytest

import gpxml
from logsource_checker import knowledge
from logsource_checker.policy import read_policy
from logsource_checker.policy.model import (PolicyVocabulary, long_registry_key, norm_registry_key,
                                            rooted_registry_key)

KB = knowledge.load()


@pytest.mark.parametrize("key, norm, rooted, long", [
    ("MACHINE\\System\\CurrentControlSet\\Control\\Lsa", "hklm\\system\\currentcontrolset\\control\\lsa",
     "MACHINE\\System\\CurrentControlSet\\Control\\Lsa", "HKEY_LOCAL_MACHINE\\System\\CurrentControlSet\\Control\\Lsa"),
    ("HKLM\\SOFTWARE\\Policies", "hklm\\software\\policies", "HKLM\\SOFTWARE\\Policies",
     "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies"),
    ("hkey_local_machine\\Software", "hklm\\software", "hkey_local_machine\\Software", "HKEY_LOCAL_MACHINE\\Software"),
    ("USER\\Software\\X", "hkcu\\software\\x", "USER\\Software\\X", "HKEY_CURRENT_USER\\Software\\X"),
    ("HKCU\\Software\\X", "hkcu\\software\\x", "HKCU\\Software\\X", "HKEY_CURRENT_USER\\Software\\X"),
    # registry.pol keys carry no hive: a Machine registry.pol is relative to HKLM
    ("SOFTWARE\\Policies\\Microsoft", "software\\policies\\microsoft", "HKLM\\SOFTWARE\\Policies\\Microsoft",
     "SOFTWARE\\Policies\\Microsoft"),
    ("HKLM/SOFTWARE/Policies", "hklm\\software\\policies", "HKLM/SOFTWARE/Policies",
     "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies"),
    ("MACHINEX\\Software", "machinex\\software", "HKLM\\MACHINEX\\Software", "MACHINEX\\Software"),
])
def test_one_registry_key_normaliser(key, norm, rooted, long):
    assert (norm_registry_key(key), rooted_registry_key(key), long_registry_key(key)) == (norm, rooted, long)


def test_vocabulary_comes_from_the_data():
    vocabulary = KB.policy_vocabulary()
    force = KB.registry_policies[KB.force_subcategory_policy]
    assert vocabulary.force_value == force.registry[0].value == "SCENoApplyLegacyAuditPolicy"
    assert dict(vocabulary.inclusion) == {"No Auditing": 0, "Success": 1, "Failure": 2, "Success and Failure": 3}
    assert vocabulary.eventlog_category == "Windows Components/Event Log Service"
    assert len(KB.subcategories) == KB.subcategory_count


LSA = "MACHINE\\System\\CurrentControlSet\\Control\\Lsa"


@pytest.mark.parametrize("vocabulary, force", [
    (None, False),                                               # the installed data
    (PolicyVocabulary(force_value="SCENoApplyLegacyAuditPolicy"), False),
    (PolicyVocabulary(force_value="SomeOtherOption"), None),     # the parser knows only what the data names
    (PolicyVocabulary(), None),
])
def test_parsers_recognise_what_the_vocabulary_names(tmp_path, vocabulary, force):
    doc = gpxml.rsop(gpxml.security(gpxml.security_option(LSA + "\\SCENoApplyLegacyAuditPolicy", 0)))
    snap = read_policy(gpxml.write(tmp_path, "gpresult.xml", doc), "gpresult", vocabulary=vocabulary)
    assert snap.force_subcategory is force


def _eventlog_settings(tmp_path, vocabulary):
    """Event-log settings of a gpresult (security template size, 'Turn on logging', a size policy's option) and
    of a GptTmpl.inf, read with ``vocabulary``: {log: (enabled, max size)}."""
    category = "Windows Components/Event Log Service"
    size_option = ("<q3:Numeric><q3:Name>Maximum Log Size (KB)</q3:Name><q3:State>Enabled</q3:State>"
                   "<q3:Value>65536</q3:Value></q3:Numeric>")
    doc = gpxml.rsop(
        gpxml.security(f'        <q1:EventLog>{gpxml._origin(1)}<q1:Name>MaximumLogSize</q1:Name>'
                       '<q1:SettingNumber>196608</q1:SettingNumber><q1:Log>Security</q1:Log></q1:EventLog>\n'),
        gpxml.registry(gpxml.policy("Turn on logging", category + "/Setup"),
                       gpxml.policy("Specify the maximum log file size (KB)", category + "/System", parts=size_option)))
    snap = read_policy(gpxml.write(tmp_path, "gpresult.xml", doc), "gpresult", vocabulary=vocabulary)
    inf = tmp_path / "GptTmpl.inf"
    inf.write_text('[Unicode]\nUnicode=yes\n[Application Log]\nMaximumLogSize=32768\n[Version]\n'
                   'signature="$CHICAGO$"\nRevision=1\n', encoding="utf-16")
    template = read_policy(str(inf), "gpresult", vocabulary=vocabulary)
    return {c.name: (c.enabled, c.max_size_kb) for c in snap.channels + template.channels}


ALL_LOGS = {"Security": (None, 196608), "Setup": (True, None), "System": (None, 65536), "Application": (None, 32768)}


@pytest.mark.parametrize("change, want", [
    ({}, ALL_LOGS),
    ({"eventlog_enable_policy": "Enable the log"}, {k: v for k, v in ALL_LOGS.items() if k != "Setup"}),
    ({"eventlog_size_option": "capacity"}, {k: v for k, v in ALL_LOGS.items() if k != "System"}),
    ({"eventlog_template_size_key": "MaxSize"}, {"Setup": (True, None), "System": (None, 65536)}),
    ({"eventlog_category": "Windows Components/Event Logging"}, {"Security": (None, 196608),
                                                                  "Application": (None, 32768)}),
])
def test_eventlog_settings_follow_the_vocabulary(tmp_path, change, want):
    """The names of event-log settings are data (channels.yaml eventlog_setting_names): a parser given other
    names does not recognise these settings."""
    vocabulary = dataclasses.replace(KB.policy_vocabulary(), **change)
    assert _eventlog_settings(tmp_path, vocabulary) == want


@pytest.mark.parametrize("text, value", [
    ("Success and Failure", 3), ("success  and failure", 3), ("No Auditing", 0), ("Failure", 2),
    ("Erfolg und Fehler", None),   # localized text without a Setting Value: not understood, reported
])
def test_inclusion_text_from_the_data(text, value):
    assert KB.policy_vocabulary().inclusion_value(text) == value


@pytest.mark.parametrize("change, problem", [
    ({"subcategory_count": 58}, "59 subcategories, subcategory_count says 58"),
    ({"inclusion_settings": {0: "No Auditing", 1: "Success", 3: "Success and Failure"}}, "inclusion_settings"),
    ({"inclusion_settings": {0: "No Auditing", 1: "Success", 2: "Fail,ure", 3: "Both"}}, "inclusion_settings"),
    ({"force_subcategory_policy": "no_such_policy"}, "force_subcategory_policy 'no_such_policy'"),
    ({"eventlog_setting_names": {"enable_policy": "Turn on logging", "size_option": "size"}}, "eventlog_setting_names"),
    ({"eventlog_setting_names": {"enable_policy": "Turn on logging", "size_option": " ", "template_size_key": "x"}},
     "eventlog_setting_names"),
])
def test_validate_checks_the_vocabulary(change, problem):
    broken = dataclasses.replace(KB, problems=[], **change)
    assert any(problem in p for p in knowledge.validate(broken))
    assert knowledge.validate(KB) == []


# --------------------------------------------------------------------------- one label, one level order

def test_one_level_order():
    from logsource_checker.cli import Level
    from logsource_checker.diff import LEVEL_ORDER
    from logsource_checker.rules import LEVELS

    assert tuple(level.value for level in Level) == LEVELS   # --level choices in the rules' order
    assert LEVEL_ORDER == tuple(reversed(LEVELS))


@pytest.mark.parametrize("key, label, compact", [
    (("windows", "process_creation", None), "product: windows, category: process_creation",
     "windows / process_creation"),
    (("windows", None, "security"), "product: windows, service: security", "windows / security"),
    ((None, None, None), "(empty logsource)", "(empty)"),
])
def test_one_logsource_label(key, label, compact):
    from logsource_checker.render import ls_label
    from logsource_checker.rules import LogSource, logsource_dict, logsource_label

    assert LogSource(*key).label() == logsource_label(key) == ls_label(logsource_dict(key)) == label
    assert ls_label(logsource_dict(key), compact=True) == compact
