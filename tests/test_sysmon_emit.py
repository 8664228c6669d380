"""The tailored sysmon.xml (issue 11): include filters built from the rules, checked with a reference
Sysmon filter evaluator (tests/sysmon_eval.py) on hand-written events that each rule matches.

- every event a rule matches is logged by the emitted configuration; events no rule matches are not
  logged where the type could be tailored (the filter really filters);
- blocking event types (FileBlockExecutable, FileBlockShredding) are never written, with or without a
  user configuration, and the rules on them are named in a comment;
- merging into a user configuration keeps their content, never logs less than before, and adds filters
  only where Sysmon's rules say an added include cannot lower what is logged;
- the sample rules give exactly tests/expected/sysmon-samples-windows.xml.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from lxml import etree

from conftest import ROOT, SAMPLES
from logsource_checker import __version__, knowledge
from logsource_checker.rules import load_file
from logsource_checker.sysmon_emit import merge_sysmon_config
from logsource_checker.sysmon_filters import Conditions, condition_terms, sigma_pieces, translate_rule
from sysmon_eval import SysmonConfig, sigma_matches

KB = knowledge.load()
ELEMENTS = {i: e.element for i, e in KB.sysmon_events.items() if e.element}
BLOCKING = {e.element for e in KB.sysmon_events.values() if e.blocking}
# what Sysmon does with a type the configuration does not mention (None: not settled by the sources)
DEFAULTS = {i: {"logged": True, "not_logged": False}.get(e.when_unmentioned) for i, e in KB.sysmon_events.items()}
CONDS = Conditions.from_meta(KB.sysmon_meta)
EXPECTED_SAMPLES = ROOT / "tests" / "expected" / "sysmon-samples-windows.xml"

PS = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"


def proc(image: str, cmd: str = "", **more: str) -> dict[str, str]:
    event = {"Image": image, "CommandLine": cmd or image, "OriginalFileName": image.rsplit("\\", 1)[-1],
             "ParentImage": "C:\\Windows\\explorer.exe", "User": "LAB\\bob", "IntegrityLevel": "Medium"}
    event.update(more)
    return event


# name -> (logsource, detection, event id, events the rule matches)
RULES = {
    "encoded_ps": ({"category": "process_creation"}, {
        "selection": {"Image|endswith": ["\\powershell.exe", "\\pwsh.exe"],
                      "CommandLine|contains|windash": ["-enc ", "-EncodedCommand "]},
        "condition": "selection"}, 1, [
        proc(PS, "powershell.exe /enc SQBFAFgA"),
        proc("C:\\Program Files\\PowerShell\\7\\PWSH.EXE", "pwsh \u2014EncodedCommand SQBFAFgA")]),
    "renamed_binary": ({"category": "process_creation"}, {
        "selection": {"OriginalFileName": ["Cmd.Exe", "PowerShell.EXE"]},
        "filter": {"Image|endswith": ["\\cmd.exe", "\\powershell.exe"]},
        "condition": "selection and not filter"}, 1, [
        proc("C:\\Users\\Public\\svc.exe", "svc.exe /c whoami", OriginalFileName="Cmd.Exe")]),
    "appdata_or_invoke": ({"category": "process_creation"}, {
        "selection_img": {"Image": "C:\\Users\\\\*\\AppData\\\\*.exe"},  # '\\\\*': a backslash, then a wildcard
        "selection_cli": {"Image|endswith": "\\cmd.exe", "CommandLine|re": "(?i)invoke-[a-z]+"},
        "condition": "1 of selection_*"}, 1, [
        proc("C:\\Users\\bob\\AppData\\Local\\Temp\\drop.exe"),
        proc("C:\\Windows\\System32\\cmd.exe", "cmd /c powershell Invoke-Stuff")]),
    "net_user_add": ({"category": "process_creation"}, {
        "sel_a": {"CommandLine|contains|all": ["net", " user ", "/add"]},
        "sel_b": {"ParentImage|endswith": "\\wmiprvse.exe"},
        "sel_c": {"ParentImage|endswith": "\\services.exe"},
        "condition": "sel_a and (sel_b or sel_c)"}, 1, [
        proc("C:\\Windows\\System32\\net.exe", "net.exe user eve P4ss /add",
             ParentImage="C:\\Windows\\System32\\wbem\\WmiPrvSE.exe")]),
    "hostile_values": ({"category": "process_creation"}, {
        "selection": {"CommandLine|contains": "a</CommandLine>--><b & \"c\" 'd'"},
        "condition": "selection"}, 1, [
        proc("C:\\Windows\\System32\\cmd.exe", "cmd /c echo a</CommandLine>--><b & \"c\" 'd'")]),
    "lsass_access": ({"category": "process_access"}, {
        "selection": {"TargetImage|endswith": "\\lsass.exe",
                      "GrantedAccess": [f"0x{v:x}" for v in range(0x1010, 0x1024)],
                      "SourceImage|endswith": ["\\procdump.exe", "\\procdump64.exe", "\\rundll32.exe",
                                               "\\taskmgr.exe", "\\sqldumper.exe"]},
        "condition": "selection"}, 10, [
        {"SourceImage": "C:\\Tools\\procdump64.exe", "TargetImage": "C:\\Windows\\system32\\lsass.exe",
         "GrantedAccess": "0x1010", "CallTrace": "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4"}]),
    "dbghelp_from_temp": ({"category": "image_load"}, {
        "selection": {"ImageLoaded|endswith": "\\dbghelp.dll", "Image|contains": "\\Temp\\"},
        "condition": "selection"}, 7, [
        {"Image": "C:\\Users\\bob\\AppData\\Local\\Temp\\x.exe", "ImageLoaded": "C:\\Windows\\System32\\DbgHelp.dll",
         "Signed": "true"}]),
    "rundll_beacon": ({"category": "network_connection"}, {
        "selection": {"Initiated": True, "DestinationPort": [4444, 1337], "Image|endswith": "\\rundll32.exe"},
        "condition": "selection"}, 3, [
        {"Image": "C:\\Windows\\System32\\rundll32.exe", "Initiated": "true", "DestinationPort": "4444",
         "DestinationIp": "203.0.113.7"}]),
    "startup_script": ({"category": "file_event"}, {
        "selection": {"TargetFilename|contains": "\\Start Menu\\Programs\\Startup\\",
                      "TargetFilename|endswith": [".lnk", ".vbs"]},
        "condition": "selection"}, 11, [
        {"Image": "C:\\Windows\\System32\\wscript.exe",
         "TargetFilename": "C:\\Users\\bob\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs\\Startup\\u.VBS"}]),
    "run_key_public": ({"category": "registry_set"}, {
        "selection": {"TargetObject|contains": "\\CurrentVersion\\Run", "Details|startswith": "C:\\Users\\Public\\"},
        "condition": "selection"}, 13, [
        {"EventType": "SetValue", "Image": "C:\\Windows\\regedit.exe",
         "TargetObject": "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\upd",
         "Details": "c:\\users\\public\\upd.exe"}]),
    "dns_keyword": ({"category": "dns_query"}, {
        "keywords": ["evil.example"], "condition": "keywords"}, 22, [
        {"QueryName": "cdn.evil.example", "Image": "C:\\Windows\\System32\\svchost.exe"}]),
    "blocked_exe": ({"service": "sysmon"}, {
        "selection": {"EventID": 27}, "condition": "selection"}, 27, []),
}

# events no rule matches, on the types the rules above let the configuration tailor
UNMATCHED = [
    (1, proc("C:\\Windows\\System32\\notepad.exe", "notepad.exe C:\\notes.txt")),
    (1, proc("C:\\Windows\\System32\\whoami.exe", "whoami /all")),
    (7, {"Image": "C:\\Windows\\explorer.exe", "ImageLoaded": "C:\\Windows\\System32\\kernel32.dll"}),
    (3, {"Image": "C:\\Program Files\\Browser\\browser.exe", "Initiated": "true", "DestinationPort": "443"}),
    (11, {"Image": "C:\\Windows\\explorer.exe", "TargetFilename": "C:\\Users\\bob\\Documents\\report.docx"}),
    (13, {"EventType": "SetValue", "Image": "C:\\Windows\\explorer.exe",
          "TargetObject": "HKCU\\Software\\Vendor\\Setting", "Details": "DWORD (0x00000001)"}),
    (10, {"SourceImage": "C:\\Windows\\System32\\svchost.exe", "TargetImage": "C:\\Windows\\explorer.exe",
          "GrantedAccess": "0x1000"}),
]
TAILORED = {"ProcessCreate": 1, "ImageLoad": 7, "NetworkConnect": 3, "FileCreate": 11, "RegistryEvent": 13,
            "ProcessAccess": 10}


def write_rules(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, (name, (logsource, detection, _, _)) in enumerate(sorted(RULES.items())):
        doc = {"title": f"Test {name} --> <x> & y", "id": f"00000000-0000-4000-8000-{index:012d}",
               "status": "test", "logsource": {"product": "windows", **logsource}, "detection": detection,
               "level": "high"}
        (folder / f"{name}.yml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return folder


def emitted(cli, tmp_path: Path, *args) -> bytes:
    rules = write_rules(tmp_path / "rules")
    # sysmon.xml carries event types only in the sysmon plan (the default one when a config is given)
    plan = () if "--plan" in args else ("--plan", "sysmon")
    result = cli(rules, *args, *plan, "--emit", tmp_path / "out", "--format", "json", "--no-cache")
    assert result.exit_code in (0, 1), result.stderr
    return (tmp_path / "out" / "sysmon.xml").read_bytes()


def filters_of(xml: bytes) -> dict[str, list[tuple[str, int]]]:
    root = etree.fromstring(xml)
    out: dict[str, list[tuple[str, int]]] = {}
    for filtering in root.iter("EventFiltering"):
        for node in filtering.iter():
            if isinstance(node.tag, str) and node.tag in set(ELEMENTS.values()):
                out.setdefault(node.tag, []).append((node.get("onmatch"), len([c for c in node if isinstance(c.tag, str)])))
    return out


# --------------------------------------------------------------------------- a new configuration

@pytest.mark.parametrize("name", sorted(n for n in RULES if RULES[n][3]))
def test_every_event_a_rule_matches_is_logged(cli, tmp_path, name):
    config = SysmonConfig(emitted(cli, tmp_path), ELEMENTS)
    _, detection, event_id, events = RULES[name]
    for event in events:
        assert sigma_matches(detection, event), f"test data: {name} must match {event}"
        assert config.logs(event_id, event) is True, (name, event)


@pytest.mark.parametrize("event_id, event", UNMATCHED)
def test_events_no_rule_matches_are_not_logged(cli, tmp_path, event_id, event):
    assert not any(sigma_matches(d, event) for _, d, i, _ in RULES.values() if i == event_id)
    config = SysmonConfig(emitted(cli, tmp_path), ELEMENTS)
    assert config.logs(event_id, event) is False


def test_shape_of_the_new_configuration(cli, tmp_path):
    xml = emitted(cli, tmp_path)
    filters = filters_of(xml)
    assert {k: [m for m, _ in v] for k, v in filters.items()} == {
        **{element: ["include"] for element in TAILORED}, "DnsQuery": ["exclude"]}
    assert filters["DnsQuery"] == [("exclude", 0)]        # a keyword rule needs every DNS query
    assert not set(filters) & BLOCKING
    root = etree.fromstring(xml)
    groups = [g for g in root.iter("RuleGroup")]
    assert len(groups) == len(filters)                      # one RuleGroup per event type
    comments = " ".join(c.text for c in root.iter(etree.Comment))
    assert "Not written: Sysmon event 27 (FileBlockExecutable)" in comments
    assert "00000000-0000-4000-8000-000000000000" in comments   # blocked_exe is the first rule, named
    assert "regular expression read as the literal text it requires" in comments and "keyword search" in comments
    # rule text only in escaped comments: the hostile value is one CommandLine text, nothing more
    values = [n.text for n in root.iter("CommandLine")]
    assert "a</CommandLine>--><b & \"c\" 'd'" in values
    assert all("--" not in c.text for c in root.iter(etree.Comment))


def test_blocking_types_never_written_even_when_a_user_config_has_them(cli, tmp_path):
    # their file blocks nothing (an include with no condition) and shreds-protects one tool: both kept as
    # they are; the rule on event 27 stays unserved rather than an exclude that would block every executable
    config = (b'<Sysmon schemaversion="4.90">\n  <EventFiltering>\n'
              b'    <RuleGroup name="" groupRelation="or">\n'
              b'      <FileBlockShredding onmatch="include">\n'
              b'        <Image condition="is">C:\\Tools\\sdelete.exe</Image>\n'
              b'      </FileBlockShredding>\n    </RuleGroup>\n'
              b'    <FileBlockExecutable onmatch="include"/>\n'
              b'    <ProcessCreate onmatch="include"/>\n  </EventFiltering>\n</Sysmon>\n')
    user = tmp_path / "user.xml"
    user.write_bytes(config)
    merged = emitted(cli, tmp_path, "--sysmon-config", user)
    filters = filters_of(merged)
    assert filters["FileBlockExecutable"] == [("include", 0)]
    assert filters["FileBlockShredding"] == [("include", 1)]
    assert [m for m, _ in filters["ProcessCreate"]] == ["include"]
    assert b"Not written: Sysmon event 27 (FileBlockExecutable)" in merged


# --------------------------------------------------------------------------- merging into a user's config

USER = b"""<Sysmon schemaversion="4.82">
  <!-- our site configuration -->
  <HashAlgorithms>sha256</HashAlgorithms>
  <EventFiltering>
    <RuleGroup name="site" groupRelation="or">
      <ProcessCreate onmatch="include">
        <Image condition="end with">\\cmd.exe</Image>
      </ProcessCreate>
    </RuleGroup>
    <RuleGroup name="" groupRelation="or">
      <!-- nothing wanted here yet -->
      <ImageLoad onmatch="include"/>
    </RuleGroup>
    <RegistryEvent onmatch="exclude">
      <TargetObject condition="begin with">HKCU\\Software\\Vendor\\</TargetObject>
    </RegistryEvent>
    <NetworkConnect onmatch="exclude"/>
    <FileBlockShredding onmatch="include">
      <Image condition="is">C:\\Tools\\sdelete.exe</Image>
    </FileBlockShredding>
  </EventFiltering>
</Sysmon>
"""


def all_events() -> list[tuple[int, dict[str, str]]]:
    return [(i, e) for _, _, i, events in RULES.values() for e in events] + UNMATCHED


def test_merge_keeps_their_content_and_never_logs_less(cli, tmp_path):
    user = tmp_path / "user.xml"
    user.write_bytes(USER)
    merged = emitted(cli, tmp_path, "--sysmon-config", user)
    before, after = SysmonConfig(USER, ELEMENTS), SysmonConfig(merged, ELEMENTS)
    for event_id, event in all_events():
        assert before.logs(event_id, event, DEFAULTS) is not True or after.logs(event_id, event, DEFAULTS) is True, event
    # the rules on types their file filters with includes, or does not mention (Sysmon's default for
    # ProcessAccess, FileCreate and DnsQuery logs none), are now served
    for name, (_, _, event_id, events) in RULES.items():
        if ELEMENTS.get(event_id) in ("ProcessCreate", "ImageLoad", "ProcessAccess", "FileCreate", "DnsQuery"):
            assert all(after.logs(event_id, e) for e in events), name
    filters = filters_of(merged)
    assert filters["ProcessCreate"][0] == ("include", 1) and filters["ProcessCreate"][1][0] == "include"
    assert [m for m, _ in filters["ImageLoad"]] == ["include"]          # their empty include replaced
    assert filters["RegistryEvent"] == [("exclude", 1)]                   # one exclude: logs all but theirs
    assert filters["NetworkConnect"] == [("exclude", 0)]
    assert filters["FileBlockShredding"] == [("include", 1)]
    for name in ("ProcessAccess", "FileCreate", "DnsQuery"):  # added where the rules need them: includes,
        found = filters.get(name, [])                          # or an empty exclude (a rule needs them all)
        assert all(m == "include" for m, _ in found) or found == [("exclude", 0)], (name, found)
    assert filters.get("DnsQuery") == [("exclude", 0)]
    assert "FileBlockExecutable" not in set(filters)
    # everything of theirs except the empty include (and its group and comment) is byte-for-byte there
    text = merged.decode()
    for line in USER.decode().splitlines():
        if "ImageLoad" in line or "nothing wanted" in line or line.strip() == '<RuleGroup name="" groupRelation="or">':
            continue
        assert line in text, line
    assert text.index("</EventFiltering>") > text.index("added by logsource_checker")


@pytest.mark.parametrize("config, element, added", [
    # a type whose one filter element is an exclude logs everything it does not exclude: an include beside
    # it would make Sysmon drop every event no filter matches (rules.c, FilterEventRules)
    ('<ProcessCreate onmatch="exclude"><Image condition="is">C:\\a.exe</Image></ProcessCreate>', "ProcessCreate", False),
    ('<ProcessCreate onmatch="exclude"/>', "ProcessCreate", False),
    # includes already: another include only adds events
    ('<ProcessCreate onmatch="include"><Image condition="is">C:\\a.exe</Image></ProcessCreate>', "ProcessCreate", True),
    # an exclude and an empty include log nothing; the empty include goes, and the exclude left alone
    # logs every event it does not exclude: more than any include could add
    ('<ProcessCreate onmatch="exclude"><Image condition="is">C:\\a.exe</Image></ProcessCreate>'
     '<ProcessCreate onmatch="include"/>', "ProcessCreate", False),
    # an exclude and an include with conditions: unmatched events are dropped already, an include only adds
    ('<ProcessCreate onmatch="exclude"><Image condition="is">C:\\a.exe</Image></ProcessCreate>'
     '<ProcessCreate onmatch="include"><Image condition="is">C:\\b.exe</Image></ProcessCreate>',
     "ProcessCreate", True),
    # not mentioned: Sysmon's default for the type applies; left as it is
    ('<DnsQuery onmatch="exclude"/>', "ProcessCreate", False),
])
def test_merge_adds_an_include_only_where_it_cannot_lower_what_is_logged(cli, tmp_path, config, element, added):
    xml = f'<Sysmon schemaversion="4.90">\n  <EventFiltering>\n    {config}\n  </EventFiltering>\n</Sysmon>\n'.encode()
    user = tmp_path / "user.xml"
    user.write_bytes(xml)
    merged = emitted(cli, tmp_path, "--sysmon-config", user)
    before, after = SysmonConfig(xml, ELEMENTS), SysmonConfig(merged, ELEMENTS)
    for event_id, event in all_events():
        if ELEMENTS[event_id] == element and before.logs(event_id, event) is not None:
            assert not before.logs(event_id, event) or after.logs(event_id, event), event
    ours = [g for g in etree.fromstring(merged).iter("RuleGroup")
            if any("added by logsource_checker" in (c.text or "") for c in g.iter(etree.Comment))]
    assert any(g.find(element) is not None for g in ours) is added


# --------------------------------------------------------------------------- the samples, exactly

def test_sample_rules_give_the_expected_configuration(cli, tmp_path):
    result = cli(SAMPLES / "rules" / "windows", "--plan", "sysmon", "--emit", tmp_path, "--format", "json", "--no-cache")
    assert result.exit_code in (0, 1), result.stderr
    got = (tmp_path / "sysmon.xml").read_text(encoding="utf-8")
    want = EXPECTED_SAMPLES.read_text(encoding="utf-8").replace("@VERSION@", __version__)
    assert got == want
    config = SysmonConfig(got.encode(), ELEMENTS)
    assert config.logs(1, proc(PS, "powershell.exe -EncodedCommand SQBFAFgA")) is True
    assert config.logs(1, proc("C:\\x\\svc.exe", OriginalFileName="cmd.exe")) is True
    assert config.logs(1, proc("C:\\Windows\\System32\\notepad.exe")) is False
    assert config.logs(13, {"TargetObject": "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\a",
                            "Details": "C:\\Users\\Public\\a.exe", "EventType": "SetValue"}) is True


# --------------------------------------------------------------------------- the pieces

@pytest.mark.parametrize("condition, names, want", [
    (["selection"], ["selection"], [{"selection"}]),
    (["selection and not filter"], ["selection", "filter"], [{"selection"}]),
    (["not filter"], ["filter"], [set()]),
    (["1 of selection_* and main"], ["selection_a", "selection_b", "main"], [{"main", "selection_a"}, {"main", "selection_b"}]),
    (["all of selection_*"], ["selection_a", "selection_b", "x"], [{"selection_a", "selection_b"}]),
    (["all of them"], ["a", "_b"], [{"a"}]),
    # `them` leaves out identifiers starting with `_` (Sigma specification, pySigma; condition.py): `_b`
    # alone never makes the rule match, so the filter need not collect it
    (["1 of them"], ["a", "_b"], [{"a"}]),
    (["1 of _*"], ["a", "_b", "_c"], [{"_b"}, {"_c"}]),
    (["1 of sel*"], ["sel_a", "_sel_b"], [{"sel_a"}]),
    (["2 of sel*"], ["sel_a", "sel_b", "sel_c"], [{"sel_a", "sel_b"}, {"sel_a", "sel_c"}, {"sel_b", "sel_c"}]),
    (["3 of them and not _f"], ["a", "b", "c", "_f"], [{"a", "b", "c"}]),
    (["a and not (b or not c)"], list("abc"), [{"a"}]),
    (["1 of them and all of x*"], ["a", "x1", "x2"], [{"x1", "x2"}]),   # (a and x1 and x2) is implied
    # more than MAX_TERMS (256) conjunctions: any one selection named (wider)
    (["1 of a* and 1 of b*"], [f"a{i}" for i in range(17)] + [f"b{i}" for i in range(17)],
     [{f"a{i}"} for i in range(17)] + [{f"b{i}"} for i in range(17)]),
    (["9 of them"], [f"s{i}" for i in range(20)], [{f"s{i}"} for i in range(20)]),
    (["2 of them"], [f"s{i}" for i in range(23)], [{f"s{i}", f"s{j}"} for i in range(23) for j in range(i + 1, 23)]),
    (["a or (a and b)"], ["a", "b"], [{"a"}]),
    (["a", "b and c"], ["a", "b", "c"], [{"a"}, {"b", "c"}]),
    (["(a or b) and (c or d)"], list("abcd"), [{"a", "c"}, {"a", "d"}, {"b", "c"}, {"b", "d"}]),
])
def test_condition_terms(condition, names, want):
    assert sorted(map(sorted, condition_terms(condition, names))) == sorted(map(sorted, want))


@pytest.mark.parametrize("condition", [["selection | count() > 5"], ["missing"], ["(a"], ["a and"], [],
                                       ["a AND a"], ["1 of x*"], ["2 of a"], ["(" * 150 + "a" + ")" * 150],
                                       ["a & a"]])
def test_unreadable_conditions_collect_everything(condition):
    rule = type("R", (), {"ref": "r", "condition": tuple(condition), "selections": (("a", ((("Image", (), ("x",)),),)),)})
    out = translate_rule(rule, frozenset(KB.sysmon_events[1].fields), CONDS)
    assert out.collect_all and out.notes


@pytest.mark.parametrize("value, want", [
    ("abc", (["abc"], False, False, False)),
    ("*abc", (["abc"], True, False, True)),
    ("a*b?c*", (["a", "b", "c"], False, True, True)),
    ("a\\*b", (["a*b"], False, False, False)),
    ("C:\\Windows\\", (["C:\\Windows\\"], False, False, False)),
    ("a\\\\*", (["a\\"], False, True, True)),
])
def test_sigma_pieces(value, want):
    assert sigma_pieces(value) == want


@pytest.mark.parametrize("match, want", [
    (("Image", (), ("C:\\a.exe",)), {(("Image", "is", "C:\\a.exe"),)}),
    (("Image", (), ("C:\\\\*\\a.exe",)), {(("Image", "begin with", "C:\\"), ("Image", "end with", "\\a.exe"))}),
    (("Image", (), ("C:\\*\\a.exe",)), {(("Image", "is", "C:*\\a.exe"),)}),     # '\\*' is a literal star
    (("Image", ("endswith",), ("\\a.exe", "\\b.exe")),
     {(("Image", "end with", "\\a.exe"),), (("Image", "end with", "\\b.exe"),)}),
    (("CommandLine", ("contains", "all"), ("x", "y")), {(("CommandLine", "contains all", "x;y"),)}),
    (("CommandLine", ("contains",), ("a;b", "c")),
     {(("CommandLine", "contains", "a;b"),), (("CommandLine", "contains", "c"),)}),
    (("Image", ("startswith",), (" C:\\x",)), {(("Image", "contains", "C:\\x"),)}),   # outer blank: wider
    (("Image", (), (" a ",)), {(("Image", "contains", "a"),)}),
    (("CommandLine", ("contains",), ("a\nb", "\xa0", "\u202e")),
     {(("CommandLine", "contains any", "a\nb;\xa0;\u202e"),)}),                    # written as character references                   # 'is' would break if trimmed
    (("Image", ("cased",), ("C:\\a.exe",)), {(("Image", "is", "C:\\a.exe"),)}),
    (("Image", ("re", "i"), ("^C:\\\\Temp\\\\[a-z]+\\.exe$", "(?i)evil")),
     {(("Image", "contains any", "C:\\Temp\\;evil"),)}),
])
def test_one_selection_translates(match, want):
    rule = type("R", (), {"ref": "r", "condition": ("sel",), "selections": (("sel", ((match,),)),)})
    out = translate_rule(rule, frozenset(KB.sysmon_events[1].fields), CONDS)
    assert not out.collect_all
    assert {tuple((c.field, c.condition, c.value) for c in r) for r in out.rules} == want


@pytest.mark.parametrize("match, note", [
    (("Image", ("re",), ("[ab]+",)), "modifier re with no literal text"),
    (("Image", ("re",), ("foo|bar",)), "modifier re with no literal text"),
    (("Image", ("base64offset", "contains"), ("a*b",)), "base64 of a value with wildcards"),
    (("Image", ("base64", "utf16le", "contains"), ("ab",)), "utf16le cannot be written"),
    (("Image", (), (None,)), "null"),
    ((None, (), ("evil",)), "keyword"),
    (("TargetObject", (), ("x",)), "not a field"),
    (("Image", (), (" \t",)), "cannot carry"),        # blank: an XML reader may trim it to nothing
    (("Image", (), ("a\ufffeb",)), "cannot carry"),     # not an XML character at all
])
def test_what_sysmon_cannot_express_collects_everything_here(match, note):
    rule = type("R", (), {"ref": "r", "condition": ("sel",), "selections": (("sel", ((match,),)),)})
    out = translate_rule(rule, frozenset(KB.sysmon_events[1].fields), CONDS)
    assert out.collect_all and any(note in n for n in out.notes)


def test_blocking_types_are_marked_in_the_data():
    assert BLOCKING == {"FileBlockExecutable", "FileBlockShredding"}
    assert all((KB.sysmon_events[i].blocking_reference or "").startswith("https://learn.microsoft.com/")
               for i in KB.sysmon_events if KB.sysmon_events[i].blocking)


def test_sample_rules_translate_without_widening():
    rules = [r for p in sorted((SAMPLES / "rules" / "windows").glob("proc_creation_*.yml")) for r in load_file(str(p)).rules]
    for rule in rules:
        out = translate_rule(rule, frozenset(KB.sysmon_events[1].fields), CONDS)
        assert not out.collect_all and not out.notes and out.rules


def test_rule_text_that_xml_cannot_carry_never_breaks_the_file():
    from logsource_checker.templating import Trusted

    group = {"element": Trusted("ProcessCreate"), "event_ids": [1], "rules": 1, "unblinds": 0, "unblinds_all": 0,
             "refs": ["id\ufffe-->x\ud800"], "collect_all": False, "notes": ["rule id\ufffe: -- <b>"],
             "filters": [{"conds": [{"field": Trusted("Image"), "condition": Trusted("is"), "value": "a & <b>"}],
                          "served": ["id\ufffe-->x"]}]}
    config = b'<Sysmon schemaversion="4.90">\n  <EventFiltering>\n    <ProcessCreate onmatch="include"/>\n' \
             b'  </EventFiltering>\n</Sysmon>\n'
    merged = merge_sysmon_config(config, [group])
    root = etree.fromstring(merged)
    assert [n.text for n in root.iter("Image")] == ["a & <b>"]
    assert all("--" not in c.text for c in root.iter(etree.Comment))
    assert SysmonConfig(merged, ELEMENTS).logs(1, {"Image": "A & <B>"}) is True


@pytest.mark.parametrize("encoding, bom", [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"),
                                           ("utf-16-be", b"\xfe\xff")])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_merge_keeps_every_other_byte(cli, tmp_path, encoding, bom, newline):
    declared = "UTF-8" if encoding == "utf-8" else "UTF-16"
    lines = [f'<?xml version="1.0" encoding="{declared}"?>', "<!-- theirs: é -->", '<Sysmon schemaversion="4.90">',
             "\t<HashAlgorithms>sha256</HashAlgorithms>", "\t<EventFiltering>",
             "\t\t<RegistryEvent onmatch = 'include' ></RegistryEvent>",
             "\t\t<ProcessCreate onmatch='include' >", "\t\t\t<Image condition='end with'>\\cmd.exe</Image>",
             "\t\t</ProcessCreate>", "\t</EventFiltering>", "</Sysmon>", ""]
    data = bom + newline.join(lines).encode(encoding)
    user = tmp_path / "user.xml"
    user.write_bytes(data)
    merged = emitted(cli, tmp_path, "--sysmon-config", user)
    assert merged.startswith(bom)
    text = merged[len(bom):].decode(encoding)
    assert "\n" not in text.replace("\r\n", "") if newline == "\r\n" else "\r" not in text
    kept = [line for line in lines if "RegistryEvent" not in line]
    got = text.split(newline)
    assert [line for line in got if line in kept] == kept                # their lines, unchanged and in order
    assert got.index("\t</EventFiltering>") > got.index("\t\t</ProcessCreate>") + 1   # ours before the close
    filters = filters_of(merged)
    assert [m for m, _ in filters["RegistryEvent"]] == ["include"] and filters["ProcessCreate"][0] == ("include", 1)
    assert [m for m, _ in filters["ProcessCreate"]] == ["include", "include"]   # theirs, and ours added


@pytest.mark.parametrize("body", [
    # two filters on one line: the line-based text locator finds the first twice; the tree edit takes over
    '<RegistryEvent onmatch="include"/><RegistryEvent onmatch="include"/>',
    # a comment that looks like the element, before it on its line
    '<!-- <RegistryEvent onmatch="exclude"/> --><RegistryEvent onmatch="include"/>',
    '<![CDATA[</EventFiltering>]]><RegistryEvent onmatch="include"/>',
])
def test_merge_of_unusual_layouts_is_still_right(cli, tmp_path, body):
    xml = f'<Sysmon schemaversion="4.90"><EventFiltering>{body}</EventFiltering></Sysmon>'.encode()
    user = tmp_path / "user.xml"
    user.write_bytes(xml)
    merged = emitted(cli, tmp_path, "--sysmon-config", user)
    filters = filters_of(merged)
    assert [m for m, _ in filters["RegistryEvent"]] == ["include"] and filters["RegistryEvent"][0][1] > 0
    event = RULES["run_key_public"][3][0]
    assert SysmonConfig(merged, ELEMENTS).logs(13, event) is True


def test_an_unknown_modifier_is_named_as_such():
    rule = type("R", (), {"ref": "r", "condition": ("sel",), "selections": (("sel", ((("Image", ("sparkle",), ("x",)),),)),)})
    out = translate_rule(rule, frozenset(KB.sysmon_events[1].fields), CONDS)
    assert out.collect_all and any("unknown modifier sparkle" in n for n in out.notes)


@pytest.mark.parametrize("change, problem", [
    ({"filter_conditions": {"equals": {"one": "is"}, "endswith": {"one": "ends with"}}}, "'ends with' is not a Sysmon condition"),
    ({"filter_conditions": {"contains": {"one": "contains"}}}, "no 'equals' entry"),
    ({"filter_conditions": {"equals": {"one": "is", "some": "is any"}}}, "unknown form 'some'"),
    ({"conditions": ["is", "contains</x>"], "filter_conditions": {"equals": {"one": "is"}}}, "not a plain name"),
])
def test_the_condition_table_is_validated(change, problem):
    from logsource_checker.knowledge_validate import _sysmon_condition_problems

    assert not _sysmon_condition_problems(KB.sysmon_meta)
    problems = _sysmon_condition_problems({**KB.sysmon_meta, **change})
    assert any(problem in p for p in problems), problems


def test_a_blocking_type_the_config_does_not_collect_is_unknown_never_recommended(cli, tmp_path):
    user = tmp_path / "user.xml"
    user.write_bytes(b'<Sysmon schemaversion="4.90"><EventFiltering><FileBlockExecutable onmatch="include"/>'
                     b'</EventFiltering></Sysmon>')
    rules = write_rules(tmp_path / "rules")
    report = cli(rules, "--sysmon-config", user, "--format", "json", "--no-cache").json()
    req = next(r for r in report["requirements"] if r["id"] == "sysmon:27")
    assert req["status"] == "unknown" and "blocking" in req["reason"]
    assert "sysmon:27" not in json_ids(report["recommendations"])


def json_ids(value) -> set[str]:
    """Every string anywhere in a JSON value (requirement ids included)."""
    if isinstance(value, dict):
        return set().union(*(json_ids(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(json_ids(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) else set()


# --------------------------------------------------------------------------- property: never narrower than the rule

from hypothesis import given, settings, strategies as st  # noqa: E402

from logsource_checker.sysmon_emit import group_context, xml_text  # noqa: E402
from logsource_checker.templating import Trusted, render  # noqa: E402

_VALUE = st.text(alphabet="ab-/\\*? ;\n\xa0\u202e", min_size=1, max_size=4)
_DATA = st.text(alphabet="ab-/\\*? ;\u2013\n\xa0\u202e", max_size=6)
_MODS = st.sampled_from([(), ("contains",), ("startswith",), ("endswith",), ("contains", "all"),
                         ("contains", "windash"), ("windash",), ("endswith", "windash"), ("cased",), ("re",)])
_FIELDS = ("Image", "CommandLine", "ParentImage")


@st.composite
def _selection(draw):
    keys = draw(st.lists(st.sampled_from(_FIELDS), min_size=1, max_size=2, unique=True))
    return {k: (draw(_MODS), draw(st.lists(_VALUE, min_size=1, max_size=3))) for k in keys}


def _sysmon_xml(rule) -> bytes:
    out = translate_rule(rule, frozenset(KB.sysmon_events[1].fields), CONDS)
    group = {"element": Trusted("ProcessCreate"), "event_ids": [1], "rules": 1, "unblinds": 0, "unblinds_all": 0,
             "refs": ["r"], "notes": out.notes, "collect_all": out.collect_all,
             "filters": [] if out.collect_all else [{"conds": [{"field": Trusted(c.field), "condition": Trusted(c.condition),
                                                               "value": xml_text(c.value)} for c in r], "served": ["r"]}
                                                    for r in sorted(out.rules)]}
    fragment = render("emit/sysmon_group.xml.j2", "xml", **group_context(group, "    "))
    return f'<Sysmon schemaversion="4.90">\n  <EventFiltering>\n{fragment}  </EventFiltering>\n</Sysmon>\n'.encode()


@settings(max_examples=300, deadline=None)
@given(sel_a=_selection(), sel_b=_selection(),
       condition=st.sampled_from(["sel_a", "sel_a and sel_b", "sel_a or sel_b", "sel_a and not sel_b",
                                  "1 of sel_*", "all of sel_*", "(sel_a or sel_b) and sel_a"]),
       data=st.data())
def test_whatever_a_rule_matches_is_logged(sel_a, sel_b, condition, data):
    values = [v for sel in (sel_a, sel_b) for _, vs in sel.values() for v in vs]
    near = st.builds(lambda pre, v, post: pre + v.replace("*", "").replace("?", "") + post,
                     st.sampled_from(["", " ", "x", "-"]), st.sampled_from(values), st.sampled_from(["", " ", "b"]))
    event = data.draw(st.fixed_dictionaries({f: st.one_of(_DATA, near) for f in _FIELDS}))
    selections = tuple((name, (tuple((f, mods, tuple(values)) for f, (mods, values) in sel.items()),))
                       for name, sel in (("sel_a", sel_a), ("sel_b", sel_b)))
    rule = type("R", (), {"ref": "r", "condition": (condition,), "selections": selections})
    detection = {name: {"|".join((f, *mods)): values for f, (mods, values) in sel.items()}
                 for name, sel in (("sel_a", sel_a), ("sel_b", sel_b))}
    detection["condition"] = condition
    try:
        matched = sigma_matches(detection, event)
    except re.error:
        return  # a drawn value that is not a valid regular expression: the rule matches nothing
    if matched:  # whether or not Sysmon's XML reader trims the blanks around a condition's text
        xml = _sysmon_xml(rule)
        assert SysmonConfig(xml, ELEMENTS).logs(1, event) is True
        assert SysmonConfig(xml, ELEMENTS, trim=True).logs(1, event) is True


def test_an_escaped_backslash_before_a_windash_character_stays_a_backslash():
    # found by the property test: '\/' under windash is a backslash then a dash character, not an escape
    rule = type("R", (), {"ref": "r", "condition": ("s",), "selections": (
        ("s", ((("CommandLine", ("contains", "windash"), ("\\/x",)),),)),)})
    out = translate_rule(rule, frozenset(KB.sysmon_events[1].fields), CONDS)
    assert {tuple((c.condition, c.value) for c in r) for r in out.rules} == {(("contains", "\\"), ("contains", "x"))}



@pytest.mark.parametrize("prefix", ["", "z", "zz", "zzz"])
@pytest.mark.parametrize("mods", [("base64offset", "contains"), ("contains", "base64offset")])
def test_base64offset_finds_the_text_at_every_alignment(prefix, mods):
    import base64

    rule = type("R", (), {"ref": "r", "condition": ("s",), "selections": (
        ("s", ((("CommandLine", mods, ("IEX (New", "::FromBase64String")),),)),)})
    out = translate_rule(rule, frozenset(KB.sysmon_events[1].fields), CONDS)
    assert not out.collect_all
    config = SysmonConfig(_sysmon_xml(rule), ELEMENTS)
    for text in ("IEX (New-Object Net.WebClient)", "[Convert]::FromBase64String($x)"):
        encoded = base64.b64encode((prefix + "p " + text + " q").encode()).decode()
        event = {"Image": "C:\\w\\powershell.exe", "CommandLine": f"powershell -e {encoded}", "ParentImage": "x"}
        assert config.logs(1, event) is True, (prefix, text)
    assert config.logs(1, {"Image": "a", "CommandLine": "powershell -e SQBFAFgA", "ParentImage": "x"}) is False


def test_rules_without_id_are_named_by_path_in_escaped_comments(cli, tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    doc = {"title": "t", "logsource": {"product": "windows", "category": "process_creation"},
           "detection": {"s": {"OriginalFileName": "x.exe"}, "condition": "s"}}   # Sysmon-only field
    (folder / "odd--><!-- name.yml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = cli(folder, "--plan", "sysmon", "--emit", tmp_path / "out", "--format", "json", "--no-cache")
    assert result.exit_code in (0, 1), result.stderr
    xml = (tmp_path / "out" / "sysmon.xml").read_bytes()
    root = etree.fromstring(xml)
    comments = [c.text for c in root.iter(etree.Comment)]
    assert any("odd- -&gt;&lt;!- - name.yml#0" in c for c in comments), comments
    assert [n.text for n in root.iter("OriginalFileName")] == ["x.exe"]
