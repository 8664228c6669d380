"""Collector configurations: each format on the shared real samples (expected values read by hand from
each file) and on our own small files for the corner cases; hostile input."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import shared_dir
from logsource_checker import knowledge
from logsource_checker.collection import CollectionCheck
from logsource_checker.collectors import CollectorInputError, read_collector
from logsource_checker.collectors.xpath import Event

SEC, SYSMON, PS = "Security", "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-PowerShell/Operational"
AUD, SYS_P = "Microsoft-Windows-Security-Auditing", "Microsoft-Windows-Sysmon"


@pytest.fixture(scope="module")
def kb():
    return knowledge.load(use_cache=False)


@pytest.fixture(scope="module")
def samples() -> Path:
    shared = shared_dir()
    path = shared / "corpus" / "collector-samples" if shared else None
    if path is None or not path.is_dir():
        pytest.skip("../shared/corpus/collector-samples is not present")
    return path


def _verdict(kb, paths, channel, event_id, provider=None):
    check = CollectionCheck([read_collector(str(p)) for p in paths], kb)
    return check.event(Event(channel, event_id, provider))


# (sample file, format, channel stanzas) - counted by hand in each file
SAMPLE_SHAPES = [
    ("winlogbeat_HELK_winlogbeat.yml", "winlogbeat", 7),
    ("winlogbeat_espy_winlogbeat.yml", "winlogbeat", 1),
    ("splunk_attack_range_sysmon_inputs.conf", "splunk", 1),
    ("splunk_attack_range_powershell_inputs.conf", "splunk", 1),
    ("splunk_DetectionLab_wef_inputs.conf", "splunk", 47),
    ("wef_palantir_Authentication.xml", "wef", 1),
    ("wef_palantir_Process-Execution.xml", "wef", 1),
    ("wef_palantir_Sysmon.xml", "wef", 1),
    ("wef_palantir_Powershell.xml", "wef", 3),
    ("wef_nsacyber_LogDel.xml", "wef", 2),
    ("wef_nsacyber_ServiceManager.xml", "wef", 1),
    ("wef_Blacksmith_security.xml", "wef", 1),
    ("wef_Blacksmith_task-scheduler.xml", "wef", 1),
    ("wazuh_test_agent_backslash_query.conf", "wazuh", 1),
    ("ossec_hids_win32_ossec.conf", "wazuh", 4),
    ("nxlog_Blacksmith_nxlogWEC.conf", "nxlog", 1),
    ("fluentbit_fluent-bit-win32.conf", "fluentbit", 2),
    ("fluentbit_fluent-bit-win32.yaml", "fluentbit", 2),
    ("otel_contrib_windowseventlog_collector-config-example.yaml", "otel", 4),
    ("otel_contrib_windowseventlog_testdata_config.yaml", "otel", 1),
]


@pytest.mark.parametrize("name, fmt, stanzas", SAMPLE_SHAPES)
def test_real_sample_is_recognised(samples, name, fmt, stanzas):
    config = read_collector(str(samples / name))
    assert (config.format, len(config.inputs)) == (fmt, stanzas)
    assert all(item.enabled for item in config.inputs)


# (sample file, channel, EventID, provider, expected collected, a word of the reason)
SAMPLE_VERDICTS = [
    ("winlogbeat_HELK_winlogbeat.yml", SEC, 4624, AUD, True, "every event"),
    ("winlogbeat_HELK_winlogbeat.yml", SYSMON, 1, SYS_P, True, ""),            # name written in other case
    ("winlogbeat_HELK_winlogbeat.yml", PS, 4104, None, True, "4104"),
    ("winlogbeat_HELK_winlogbeat.yml", PS, 4105, None, False, "not in"),
    ("winlogbeat_HELK_winlogbeat.yml", "Windows PowerShell", 403, None, False, "400,600"),
    ("winlogbeat_HELK_winlogbeat.yml", "Microsoft-Windows-WMI-Activity/Operational", 5861, None, True, ""),
    ("winlogbeat_HELK_winlogbeat.yml", "Microsoft-Windows-TaskScheduler/Operational", 106, None, False,
     "no collector configuration"),
    ("winlogbeat_espy_winlogbeat.yml", SYSMON, 3, SYS_P, None, "script"),
    ("winlogbeat_espy_winlogbeat.yml", SYSMON, 1, SYS_P, False, "not in"),
    ("splunk_attack_range_sysmon_inputs.conf", SYSMON, 11, SYS_P, True, ""),
    ("splunk_attack_range_powershell_inputs.conf", PS, 4104, None, True, ""),
    ("splunk_attack_range_powershell_inputs.conf", SEC, 4104, None, False, "no collector"),
    ("splunk_DetectionLab_wef_inputs.conf", "WEC-Process-Execution", 4688, AUD, None, "Message"),
    ("splunk_DetectionLab_wef_inputs.conf", "WEC-Authentication", 4624, AUD, True, ""),
    ("splunk_DetectionLab_wef_inputs.conf", SEC, 4624, AUD, False, "no collector"),
    ("wef_palantir_Authentication.xml", SEC, 4625, AUD, None, "Suppress"),     # data-level suppress of SYSTEM
    ("wef_palantir_Authentication.xml", SEC, 4688, AUD, False, "does not select"),
    ("wef_palantir_Authentication.xml", SEC, 4801, AUD, None, "Suppress"),
    ("wef_palantir_Process-Execution.xml", SEC, 4689, AUD, True, "selected"),
    ("wef_palantir_Process-Execution.xml", SEC, 4624, AUD, False, "does not select"),
    ("wef_palantir_Sysmon.xml", SYSMON, 22, SYS_P, True, ""),
    ("wef_palantir_Powershell.xml", "Windows PowerShell", 400, None, True, ""),
    ("wef_nsacyber_LogDel.xml", SEC, 1102, "Microsoft-Windows-Eventlog", None, "Level"),
    ("wef_nsacyber_LogDel.xml", SEC, 1102, AUD, False, "does not select"),
    ("wef_nsacyber_ServiceManager.xml", "System", 7045, "Service Control Manager", None, "Level"),
    ("wef_nsacyber_ServiceManager.xml", "System", 7040, "Service Control Manager", False, "does not select"),
    ("wef_Blacksmith_security.xml", SEC, 4624, AUD, True, "selected"),
    ("wef_Blacksmith_security.xml", SEC, 5156, AUD, None, "Suppress"),
    ("wef_Blacksmith_task-scheduler.xml", "Microsoft-Windows-TaskScheduler/Operational", 106,
     "Microsoft-Windows-TaskScheduler", True, ""),
    ("wef_Blacksmith_task-scheduler.xml", "Microsoft-Windows-TaskScheduler/Operational", 200,
     "Microsoft-Windows-TaskScheduler", False, "does not select"),
    ("wazuh_test_agent_backslash_query.conf", "System", 7045, "Service Control Manager", None, "Level"),
    ("ossec_hids_win32_ossec.conf", SEC, 4624, AUD, True, ""),
    ("ossec_hids_win32_ossec.conf", SYSMON, 1, SYS_P, False, "no collector"),
    ("nxlog_Blacksmith_nxlogWEC.conf", SEC, 4624, AUD, False, "no collector"),
    ("nxlog_Blacksmith_nxlogWEC.conf", "ForwardedEvents", 4624, AUD, True, ""),
    ("fluentbit_fluent-bit-win32.conf", "Windows PowerShell", 400, None, True, ""),
    ("fluentbit_fluent-bit-win32.yaml", SEC, 4624, AUD, False, "no collector"),
    ("otel_contrib_windowseventlog_collector-config-example.yaml", SEC, 4624, AUD, True, ""),
    ("otel_contrib_windowseventlog_collector-config-example.yaml", PS, 4104, None, True, ""),
    ("otel_contrib_windowseventlog_testdata_config.yaml", "Application", 1000, None, True, ""),
]


@pytest.mark.parametrize("name, channel, event_id, provider, expected, word", SAMPLE_VERDICTS)
def test_real_sample_verdict(kb, samples, name, channel, event_id, provider, expected, word):
    verdict = _verdict(kb, [samples / name], channel, event_id, provider)
    assert verdict.collected is expected, verdict
    assert word.casefold() in verdict.reason.casefold(), verdict


# -- our own files: the corner cases ---------------------------------------------------------------

WINLOGBEAT = """\
winlogbeat.event_logs:
  - name: Security
    event_id: 4624, 4700-4800, -4735, -4740-4745
    processors:
      - drop_event.when.equals.winlog.event_id: 4798
  - name: System
    level: critical, error
  - name: Microsoft-Windows-Sysmon/Operational
    processors:
      - drop_event:
          when:
            or:
              - equals.winlog.event_id: 3
              - equals: {event.code: 22}
  - name: Application
    processors:
      - drop_event:
          when.contains.message: noisy
  - name: Windows PowerShell
    processors:
      - drop_event: {}
  - name: Microsoft-Windows-TaskScheduler/Operational
    xml_query: >
      <QueryList><Query Id="0"><Select Path="Microsoft-Windows-TaskScheduler/Operational">*[System[EventID=106]]</Select></Query></QueryList>
"""

SPLUNK = """\
[default]
host = x

[WinEventLog://Security]
disabled = 0
whitelist = 4624,4625,4700-4800
blacklist = 4735

[WinEventLog://Security]
blacklist1 = EventCode="4798" Message="Account Name:\\s+svc_"

[WinEventLog://System]
disabled = 1

[WinEventLog://Microsoft-Windows-Sysmon/Operational]
disabled = false
whitelist1 = EventCode="^(1|3|11)$"
whitelist2 = SourceName="Microsoft-Windows-Sysmon" EventCode="^22$"

[WinEventLog://Application]
whitelist = Message="error"

[monitor://C:\\logs]
disabled = 0
"""

WEF = """<Subscription xmlns="http://schemas.microsoft.com/2006/03/windows/events/subscription">
  <SubscriptionId>Mine</SubscriptionId><Enabled>{enabled}</Enabled>
  <Query><![CDATA[<QueryList>
    <Query Id="0" Path="Security">
      <Select>*[System[(EventID=4624 or EventID=4625) or (EventID &gt;= 4720 and EventID &lt;= 4740)]]</Select>
      <Suppress>*[System[EventID=4735]]</Suppress>
    </Query>
    <Query Id="1"><Select Path="Microsoft-Windows-Sysmon/Operational">*[System[not(EventID=3)]]</Select></Query>
    <Query Id="2"><Select Path="System">*[System[myfunc(EventID)]]</Select></Query>
    <Query Id="3"><Select Path="Application">*[System[EventID=</Select></Query>
  </QueryList>]]></Query>
</Subscription>
"""

WAZUH = """<ossec_config>
  <localfile>
    <location>Security</location>
    <log_format>eventchannel</log_format>
    <query>Event/System[EventID != 5145 and EventID != 5156]</query>
  </localfile>
</ossec_config>
<ossec_config>
  <localfile>
    <location>Microsoft-Windows-Sysmon/Operational</location>
    <log_format>eventchannel</log_format>
  </localfile>
  <localfile><location>/var/log/syslog</location><log_format>syslog</log_format></localfile>
</ossec_config>
"""

NXLOG = """<Input sec>
    Module  im_msvistalog
    <QueryXML>
      <QueryList><Query Id="0"><Select Path="Security">*[System[EventID=4624]]</Select></Query></QueryList>
    </QueryXML>
    Exec if $EventID == 4624 and $TargetUserName == 'x' drop();
</Input>
<Input sys>
    Module  im_msvistalog
    Channel Microsoft-Windows-Sysmon/Operational
</Input>
<Input all>
    Module  im_msvistalog
</Input>
"""

FLUENTBIT = """[INPUT]
    Name         winevtlog
    Channels     Security, Microsoft-Windows-Sysmon/Operational
    Event_Query  *[System[EventID=4624 or EventID=1]]
"""

OTEL = """receivers:
  windowseventlog/sec:
    channel: security
    exclude_providers: [Microsoft-Windows-Security-Auditing]
  windowseventlog/sysmon:
    xml_query: <QueryList><Query Id="0"><Select Path="Microsoft-Windows-Sysmon/Operational">*[System[EventID=1]]</Select></Query></QueryList>
  windowseventlog/unused:
    channel: System
service:
  pipelines:
    logs:
      receivers: [windowseventlog/sec, windowseventlog/sysmon]
"""

ELASTIC_AGENT = """inputs:
  - type: winlog
    id: windows
    streams:
      - name: Security
        event_id: 4688
  - type: winlog
    enabled: false
    streams:
      - name: System
"""

# (file name, text, channel, EventID, provider, expected, a word of the reason)
OWN = [
    ("w.yml", WINLOGBEAT, SEC, 4624, AUD, True, ""),
    ("w.yml", WINLOGBEAT, SEC, 4750, AUD, True, ""),                      # in the range
    ("w.yml", WINLOGBEAT, SEC, 4735, AUD, False, "excluded"),             # -4735
    ("w.yml", WINLOGBEAT, SEC, 4742, AUD, False, "excluded"),             # -4740-4745
    ("w.yml", WINLOGBEAT, SEC, 4625, AUD, False, "not in"),
    ("w.yml", WINLOGBEAT, SEC, 4798, AUD, False, "drops EventIDs 4798"),  # drop_event on the event id
    ("w.yml", WINLOGBEAT, "System", 7045, None, None, "level"),
    ("w.yml", WINLOGBEAT, SYSMON, 3, SYS_P, False, "drops"),
    ("w.yml", WINLOGBEAT, SYSMON, 22, SYS_P, False, "drops"),
    ("w.yml", WINLOGBEAT, SYSMON, 1, SYS_P, True, ""),
    ("w.yml", WINLOGBEAT, "Application", 1000, None, None, "cannot evaluate"),
    ("w.yml", WINLOGBEAT, "Windows PowerShell", 400, None, False, "drops every event"),
    ("w.yml", WINLOGBEAT, "Microsoft-Windows-TaskScheduler/Operational", 106, None, True, ""),
    ("w.yml", WINLOGBEAT, "Microsoft-Windows-TaskScheduler/Operational", 129, None, False, "does not select"),
    ("inputs.conf", SPLUNK, SEC, 4625, AUD, True, ""),
    ("inputs.conf", SPLUNK, SEC, 4735, AUD, False, "excluded"),            # blacklist wins
    ("inputs.conf", SPLUNK, SEC, 4634, AUD, False, "whitelist"),
    ("inputs.conf", SPLUNK, SEC, 4798, AUD, None, "Message"),              # merged stanza, data regex
    ("inputs.conf", SPLUNK, SEC, 4799, AUD, True, ""),                     # EventCode of blacklist1 decides
    ("inputs.conf", SPLUNK, "System", 7045, None, False, "disabled"),
    ("inputs.conf", SPLUNK, SYSMON, 11, SYS_P, True, ""),
    ("inputs.conf", SPLUNK, SYSMON, 22, SYS_P, True, ""),
    ("inputs.conf", SPLUNK, SYSMON, 22, None, None, "SourceName"),
    ("inputs.conf", SPLUNK, SYSMON, 12, SYS_P, False, "whitelist"),
    ("inputs.conf", SPLUNK, "Application", 1000, None, None, "Message"),
    ("sub.xml", WEF.format(enabled="true"), SEC, 4625, AUD, True, ""),
    ("sub.xml", WEF.format(enabled="true"), SEC, 4735, AUD, False, "suppressed"),
    ("sub.xml", WEF.format(enabled="true"), SEC, 4740, AUD, True, ""),
    ("sub.xml", WEF.format(enabled="true"), SEC, 4741, AUD, False, "does not select"),
    ("sub.xml", WEF.format(enabled="true"), SYSMON, 3, SYS_P, False, "does not select"),
    ("sub.xml", WEF.format(enabled="true"), SYSMON, 1, SYS_P, True, ""),
    ("sub.xml", WEF.format(enabled="true"), "System", 7045, None, None, "myfunc"),
    ("sub.xml", WEF.format(enabled="true"), "Application", 1000, None, None, "not understood"),
    ("sub.xml", WEF.format(enabled="false"), SEC, 4625, AUD, False, "disabled"),
    ("ossec.conf", WAZUH, SEC, 4624, AUD, True, ""),
    ("ossec.conf", WAZUH, SEC, 5145, AUD, False, "does not select"),
    ("ossec.conf", WAZUH, SYSMON, 1, SYS_P, True, ""),
    ("nxlog.conf", NXLOG, SEC, 4624, AUD, None, "drop()"),
    ("nxlog.conf", NXLOG, SEC, 4625, AUD, None, "NXLog's default"),        # the input without Query/Channel
    ("nxlog.conf", NXLOG, SYSMON, 1, SYS_P, True, ""),
    ("fluent-bit.conf", FLUENTBIT, SEC, 4624, AUD, True, ""),
    ("fluent-bit.conf", FLUENTBIT, SEC, 4625, AUD, False, "does not select"),
    ("fluent-bit.conf", FLUENTBIT, SYSMON, 1, SYS_P, True, ""),
    ("otel.yaml", OTEL, SEC, 4624, AUD, False, "excluded"),
    ("otel.yaml", OTEL, SYSMON, 1, SYS_P, True, ""),
    ("otel.yaml", OTEL, SYSMON, 3, SYS_P, False, "does not select"),
    ("otel.yaml", OTEL, "System", 7045, None, False, "no service pipeline"),
    ("fb.yaml", "pipeline:\n  inputs:\n    - name: winevtlog\n      channels: [Security, System]\n", "System", 7045,
     None, True, ""),
    ("agent.yml", ELASTIC_AGENT, SEC, 4688, AUD, True, ""),
    ("agent.yml", ELASTIC_AGENT, SEC, 4624, AUD, False, "not in"),
    ("agent.yml", ELASTIC_AGENT, "System", 7045, None, False, "disabled"),
]


@pytest.mark.parametrize("name, text, channel, event_id, provider, expected, word", OWN)
def test_own_file_verdict(kb, tmp_path, name, text, channel, event_id, provider, expected, word):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    verdict = _verdict(kb, [path], channel, event_id, provider)
    assert verdict.collected is expected, verdict
    assert word.casefold() in verdict.reason.casefold(), verdict
    if expected is not None or verdict.stanza:
        assert verdict.file == str(path)


def test_several_files_are_a_union(kb, tmp_path):
    (tmp_path / "a.yml").write_text("winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624\n")
    (tmp_path / "inputs.conf").write_text("[WinEventLog://Security]\nwhitelist = 4625\n")
    paths = [tmp_path / "a.yml", tmp_path / "inputs.conf"]
    assert _verdict(kb, paths, SEC, 4625, AUD).file == str(tmp_path / "inputs.conf")
    assert _verdict(kb, paths, SEC, 4624, AUD).collected is True
    assert _verdict(kb, paths, SEC, 4688, AUD).collected is False


def test_channel_aliases_resolve(kb, tmp_path):
    """A collector naming a channel by another spelling (case, pySigma alias) still matches it."""
    alias = next((a for ch in kb.channels.values() for a, _ in ch.aliases), None)
    if alias is None:
        pytest.skip("no channel alias in the data")
    canonical = kb.channel(alias).name
    (tmp_path / "a.yml").write_text(f"winlogbeat.event_logs:\n  - name: '{alias}'\n")
    assert _verdict(kb, [tmp_path / "a.yml"], canonical, 1, None).collected is True


# -- hostile and unknown input ---------------------------------------------------------------------

HOSTILE = [
    ("unknown.txt", "just some text\n", "no known collector format"),
    ("empty.conf", "", "empty"),
    ("dtd.xml", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Subscription/>', "DOCTYPE"),
    ("other.xml", "<Sysmon schemaversion='4.90'/>", "no known collector configuration"),
    ("bomb.yml", "a: &a [x, x]\nb: &b [*a, *a]\nwinlogbeat.event_logs:\n  - name: *b\n", "aliases"),
    ("badid.yml", "winlogbeat.event_logs:\n  - name: Security\n    event_id: 4624, abc\n", "not an EventID"),
    ("badrange.yml", "winlogbeat.event_logs:\n  - name: Security\n    event_id: 5000-4000\n", "not a valid"),
    ("noname.yml", "winlogbeat.event_logs:\n  - event_id: 1\n", "no channel name"),
    ("badyaml.yml", "winlogbeat.event_logs: [\n", "not valid YAML"),
    ("inputs.conf", "[WinEventLog://Security]\nthis line has no equals sign\n", "neither"),
    ("inputs2.conf", "[WinEventLog://Security]\ndisabled = maybe\n", "not a boolean"),
    ("sub.xml", "<Subscription><SubscriptionId>x</SubscriptionId></Subscription>", "no <Query>"),
    ("sub2.xml", "<Subscription><Query><![CDATA[<Other/>]]></Query></Subscription>", "not <QueryList>"),
    ("binary.conf", "\x00\x01\x02winlogbeat", "binary"),
]


@pytest.mark.parametrize("name, text, word", HOSTILE)
def test_hostile_or_unknown_input_is_one_line_error(tmp_path, name, text, word):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    with pytest.raises(CollectorInputError) as info:
        read_collector(str(path))
    assert word.casefold() in info.value.reason.casefold()
    assert "\n" not in info.value.reason


def test_oversized_file_is_refused_unread(tmp_path, monkeypatch):
    from logsource_checker import collectors

    monkeypatch.setattr(collectors, "MAX_BYTES", 100)
    path = tmp_path / "big.yml"
    path.write_text("winlogbeat.event_logs:\n" + "  - name: Security\n" * 20)
    with pytest.raises(CollectorInputError, match="limit"):
        read_collector(str(path))


def test_utf16_file_with_bom_is_read(tmp_path):
    path = tmp_path / "inputs.conf"
    path.write_bytes("[WinEventLog://Security]\r\ndisabled = 0\r\n".encode("utf-16"))
    assert read_collector(str(path)).inputs[0].channel == "Security"


# input shaped to make a careless parser backtrack or rescan: each must be read (or refused) at once
PATHOLOGICAL = [
    ("spaces.conf", " " * 200_000 + "x\n", "no known collector format"),
    ("newlines.conf", "\n" * 200_000 + "x", "no known collector format"),
    ("names.conf", ("name" + " " * 5000 + "\n") * 40, "no known collector format"),
    ("inputs.conf", "<Input a>\n    Module im_msvistalog\n" * 20_000, "no im_msvistalog <Input>"),
    ("queryxml.conf", "<Input a>\nModule im_msvistalog\n" + "<QueryXML>" * 50_000 + "\n</Input>\n", None),
]


@pytest.mark.parametrize("name, text, word", PATHOLOGICAL)
def test_pathological_input_is_linear(tmp_path, name, text, word):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    if word is None:
        config = read_collector(str(path))
        assert config.inputs[0].channel == "*"      # no usable query: NXLog's default channels
        return
    with pytest.raises(CollectorInputError, match=word):
        read_collector(str(path))


def test_risky_regex_is_not_evaluated(kb, tmp_path):
    path = tmp_path / "inputs.conf"
    path.write_text('[WinEventLog://Security]\nblacklist1 = SourceName="(a+)+$"\n', encoding="utf-8")
    verdict = _verdict(kb, [path], SEC, 4624, "a" * 40 + "!")
    assert verdict.collected is None and "repeated group" in verdict.reason
