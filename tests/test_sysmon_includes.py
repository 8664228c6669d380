"""Rules compared with a Sysmon configuration's include conditions (logsource_checker/sysmon_includes.py).

A rule is within the includes when every event it can match is matched by some include element, as
Sysmon reads the element (xml.cpp: entries combine by the RuleGroup's groupRelation, else AND above schema
4.1 and OR up to it; same-field entries OR'ed under AND; <Rule> by its own groupRelation, OR without one).
Configurations and rules are written for these tests.
"""
from __future__ import annotations

import pytest
import yaml

from conftest import ROOT
from logsource_checker import knowledge
from logsource_checker.policy.sysmon_config import read_sysmon_config
from logsource_checker.rules import load_file
from logsource_checker.sysmon_filters import Conditions
from logsource_checker.sysmon_includes import rule_within

KB = knowledge.load(str(ROOT))
CONDS = Conditions.from_meta(KB.sysmon_meta)

PS = {"selection": {"Image|endswith": ["\\powershell.exe", "\\pwsh.exe"], "CommandLine|contains": " -enc "},
      "condition": "selection"}
CERTUTIL = {"selection": {"Image|endswith": "\\certutil.exe", "CommandLine|contains|all": ["-urlcache", "http"]},
            "condition": "selection"}
ANY_CMD = {"selection": {"CommandLine|contains": "mimikatz"}, "condition": "selection"}
TWO_SEL = {"a": {"Image|endswith": "\\rundll32.exe"}, "b": {"Image|endswith": "\\regsvr32.exe"},
           "condition": "a or b"}
NOT_ONLY = {"filter": {"Image|endswith": "\\explorer.exe"}, "condition": "not filter"}
EXACT = {"selection": {"Image": "C:\\Windows\\System32\\whoami.exe"}, "condition": "selection"}
RUN_KEY = {"selection": {"TargetObject|contains": "\\CurrentVersion\\Run\\"}, "condition": "selection"}

SCRIPT_HOSTS = ('<ProcessCreate onmatch="include"><Image condition="end with">\\powershell.exe</Image>'
                '<Image condition="end with">\\pwsh.exe</Image><Image condition="end with">\\certutil.exe</Image>'
                '</ProcessCreate>')

CASES = [
    # (name, detection, event id, filters, schema, within)
    ("endswith-in-or-group", PS, 1, f'<RuleGroup groupRelation="or">{SCRIPT_HOSTS}</RuleGroup>', "4.90", True),
    ("same-field-or-under-and", PS, 1, SCRIPT_HOSTS, "4.90", True),
    ("one-value-not-covered", PS, 1, '<ProcessCreate onmatch="include"><Image condition="end with">'
     '\\powershell.exe</Image></ProcessCreate>', "4.90", False),
    ("and-needs-every-field", PS, 1, '<ProcessCreate onmatch="include"><Image condition="end with">'
     '\\powershell.exe</Image><Image condition="end with">\\pwsh.exe</Image>'
     '<ParentImage condition="end with">\\explorer.exe</ParentImage></ProcessCreate>', "4.90", False),
    ("or-group-any-field", PS, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<ParentImage condition="end with">\\explorer.exe</ParentImage>'
     '<CommandLine condition="contains">-enc</CommandLine></ProcessCreate></RuleGroup>', "4.90", True),
    ("old-schema-reads-or", PS, 1, '<ProcessCreate onmatch="include">'
     '<ParentImage condition="end with">\\explorer.exe</ParentImage>'
     '<CommandLine condition="contains">-enc</CommandLine></ProcessCreate>', "4.1", True),
    ("new-schema-reads-and", PS, 1, '<ProcessCreate onmatch="include">'
     '<ParentImage condition="end with">\\explorer.exe</ParentImage>'
     '<CommandLine condition="contains">-enc</CommandLine></ProcessCreate>', "4.22", False),
    ("contains-all-implies-contains", CERTUTIL, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<CommandLine condition="contains">urlcache</CommandLine></ProcessCreate></RuleGroup>', "4.90", True),
    ("contains-all-implies-contains-all", CERTUTIL, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<CommandLine condition="contains all">URLCACHE;http</CommandLine></ProcessCreate></RuleGroup>', "4.90", True),
    ("contains-all-needs-every-token", CERTUTIL, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<CommandLine condition="contains all">urlcache;ftp</CommandLine></ProcessCreate></RuleGroup>', "4.90", False),
    ("case-ignored", CERTUTIL, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<Image condition="image">CERTUTIL.EXE</Image></ProcessCreate></RuleGroup>', "4.90", True),
    ("rule-and-element", CERTUTIL, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<Rule groupRelation="and"><Image condition="end with">certutil.exe</Image>'
     '<CommandLine condition="contains any">-urlcache;-verifyctl</CommandLine></Rule></ProcessCreate></RuleGroup>',
     "4.90", True),
    ("rule-and-needs-both", PS, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<Rule groupRelation="and"><Image condition="end with">.exe</Image>'
     '<User condition="contains">admin</User></Rule></ProcessCreate></RuleGroup>', "4.90", False),
    ("field-the-rule-does-not-test", ANY_CMD, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<Image condition="end with">.exe</Image></ProcessCreate></RuleGroup>', "4.90", False),
    ("each-selection-needs-a-home", TWO_SEL, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<Image condition="end with">\\rundll32.exe</Image></ProcessCreate></RuleGroup>', "4.90", False),
    ("both-selections-covered", TWO_SEL, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<Image condition="contains any">rundll32;regsvr32</Image></ProcessCreate></RuleGroup>', "4.90", True),
    ("negation-only-needs-everything", NOT_ONLY, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<Image condition="end with">.exe</Image></ProcessCreate></RuleGroup>', "4.90", False),
    ("negative-condition-never-shown", EXACT, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<Image condition="is not">C:\\a.exe</Image></ProcessCreate></RuleGroup>', "4.90", False),
    ("exact-path-begin-with", EXACT, 1, '<RuleGroup groupRelation="or"><ProcessCreate onmatch="include">'
     '<Image condition="begin with">c:\\windows\\</Image></ProcessCreate></RuleGroup>', "4.90", True),
    ("registry-all-three", RUN_KEY, 13, '<RuleGroup groupRelation="or"><RegistryEvent onmatch="include">'
     '<TargetObject condition="contains">CurrentVersion\\Run</TargetObject></RegistryEvent></RuleGroup>', "4.90", True),
]


def _rule(tmp_path, detection, event_id):
    category = {1: "process_creation", 13: "registry_set"}[event_id]
    doc = {"title": "t", "id": "00000000-0000-0000-0000-000000000001", "status": "test",
           "logsource": {"product": "windows", "category": category}, "detection": detection, "level": "high"}
    path = tmp_path / "rule.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_file(str(path)).rules[0]


@pytest.mark.parametrize("name,detection,event_id,filters,schema,within", CASES, ids=[c[0] for c in CASES])
def test_rule_within_includes(tmp_path, name, detection, event_id, filters, schema, within):
    xml = f'<Sysmon schemaversion="{schema}"><EventFiltering>{filters}</EventFiltering></Sysmon>'.encode()
    config = read_sysmon_config("c.xml", xml, KB.sysmon_events.values()).sysmon
    assert config is not None and config.status[event_id] == "unknown"
    elements = config.includes[event_id]
    fields = frozenset(KB.sysmon_events[event_id].fields)
    assert rule_within(_rule(tmp_path, detection, event_id), fields, elements, CONDS) is within


@pytest.mark.parametrize("filters,status,fragment", [
    (f'<RuleGroup groupRelation="or">{SCRIPT_HOSTS}</RuleGroup>', "met", "each of the 1 rules"),
    ('<RuleGroup groupRelation="or"><ProcessCreate onmatch="include"><Image condition="end with">'
     '\\cmd.exe</Image></ProcessCreate></RuleGroup>', "unknown", "not every one of the 1 rules"),
    (f'<RuleGroup groupRelation="or">{SCRIPT_HOSTS}</RuleGroup><ProcessCreate onmatch="exclude">'
     '<User condition="is">svc</User></ProcessCreate>', "met", "exclude filters still drop"),
])
def test_requirement_status_from_the_rules(cli, tmp_path, filters, status, fragment):
    rules = tmp_path / "rules"
    rules.mkdir()
    doc = {"title": "t", "id": "00000000-0000-0000-0000-000000000002", "status": "test", "level": "high",
           "logsource": {"product": "windows", "category": "process_creation"},
           "detection": {"selection": {"Image|endswith": "\\powershell.exe", "Hashes|contains": "IMPHASH="},
                         "condition": "selection"}}
    (rules / "r.yml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    config = tmp_path / "sysmon.xml"
    config.write_text(f'<Sysmon schemaversion="4.90"><EventFiltering>{filters}</EventFiltering></Sysmon>',
                      encoding="utf-8")
    result = cli(rules, "--sysmon-config", config, "--no-cache", "-f", "json")
    assert result.exit_code in (0, 1), result.stderr
    req = next(r for r in result.json()["requirements"] if r["id"] == "sysmon:1")
    assert req["status"] == status and fragment in req["reason"], req
    sysmon = result.json()["policy"]["sysmon"]
    assert 1 in sysmon["unknown"] and 1 not in sysmon["collected"]   # the configuration alone cannot tell
    assert 5 in sysmon["collected"] and 3 not in sysmon["collected"] + sysmon["unknown"]   # their defaults
