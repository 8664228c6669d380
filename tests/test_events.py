"""--events: SIEM count exports (CSV/JSON), .evtx files, and the observed verdict on requirements and rules."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from logsource_checker.events_read import EventsInputError, read_event_file, read_events

from conftest import ROOT, shared_dir

RULES = ROOT / "samples" / "rules" / "windows"


@pytest.fixture
def evtx_samples() -> Path:
    shared = shared_dir()
    path = shared / "corpus" / "evtx-samples" if shared else None
    if path is None or not path.is_dir():
        pytest.skip("../shared/corpus/evtx-samples is not present")
    return path


def _counts(sample) -> Counter:
    out: Counter = Counter()
    for (channel, eid, _), seen in sample.seen.items():
        out[(channel, eid)] += seen.count
    return out


# -- .evtx -----------------------------------------------------------------------------------------

def _independent_count(path: Path) -> Counter:
    """Per (Channel, EventID), read from each record's XML with lxml (the evtx package's XML output, not
    the JSON output the tool reads)."""
    import evtx
    from lxml import etree

    ns = "{http://schemas.microsoft.com/win/2004/08/events/event}"
    out: Counter = Counter()
    parser = etree.XMLParser(recover=True)   # some samples' EventData holds control characters XML forbids
    for record in evtx.PyEvtxParser(str(path)).records():
        root = etree.fromstring(record["data"].encode("utf-8"), parser)
        system = root.find(f"{ns}System")
        channel = system.findtext(f"{ns}Channel")
        eid = system.findtext(f"{ns}EventID")
        if channel and channel.strip() and eid is not None:
            out[(channel, int(eid))] += 1
    return out


def test_evtx_counts_match_an_independent_xml_count(evtx_samples):
    files = sorted(evtx_samples.glob("*.evtx"))
    assert len(files) >= 20
    for path in files:
        sample = read_event_file(str(path))
        assert _counts(sample) == _independent_count(path), path.name


@pytest.mark.parametrize("name, expected", [
    ("sb_DE_RDP_Tunnel_5156.evtx", {("Security", 5156): 63, ("Security", 4688): 17, ("Security", 1102): 1}),
    ("md_ID7045-4697-SMBexec_service_registration.evtx", {("System", 7045): 1, ("Security", 4697): 1}),
    ("sb_rundll32_cmd_schtask.evtx", {("Microsoft-Windows-Sysmon/Operational", 13): 24}),
])
def test_evtx_counts_match_the_sources_table(evtx_samples, name, expected):
    counts = _counts(read_event_file(str(evtx_samples / name)))
    for key, value in expected.items():
        assert counts[key] == value


def test_evtx_record_without_channel_is_named_not_counted(evtx_samples):
    sample = read_event_file(str(evtx_samples / "md_ID5140-5145-Bloodhound-SharpHound_enumeration_via_SMB.evtx"))
    assert sample.events == 90
    assert any("1 records without Channel" in w for w in sample.warnings)


@pytest.mark.parametrize("cut", [70000, 200000])
def test_truncated_evtx_keeps_records_read_before_the_damage(evtx_samples, tmp_path, cut):
    data = (evtx_samples / "md_ID5140-5145-Bloodhound-SharpHound_enumeration_via_SMB.evtx").read_bytes()
    path = tmp_path / "cut.evtx"
    path.write_bytes(data[:cut])
    sample = read_event_file(str(path))
    assert 0 < sample.events < 90
    assert any("truncated" in w for w in sample.warnings)


def test_corrupt_chunk_keeps_the_other_records(evtx_samples, tmp_path):
    data = bytearray((evtx_samples / "md_ID5140-5145-Bloodhound-SharpHound_enumeration_via_SMB.evtx").read_bytes())
    data[4096:4096 + 2000] = b"\xff" * 2000      # the first chunk's header
    path = tmp_path / "bad.evtx"
    path.write_bytes(bytes(data))
    sample = read_event_file(str(path))
    assert 0 < sample.events < 90
    assert any("damaged" in w for w in sample.warnings)


@pytest.mark.parametrize("content, reason", [
    (b"ElfFile\x00", "unusable EVTX"),
    (b"ElfFile\x00" + b"\x00" * 4088 + b"\xff" * 70000, "no record could be read"),
    (b"garbage\x00\x01" * 50, "not an EVTX file"),
])
def test_unusable_evtx_is_one_error(tmp_path, content, reason):
    path = tmp_path / "x.evtx"
    path.write_bytes(content)
    with pytest.raises(EventsInputError) as err:
        read_event_file(str(path))
    assert reason in err.value.reason


# -- CSV / JSON ------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [
    "channel,event_id,count,host,provider,first_seen,last_seen",
    "winlog.channel,winlog.event_id,count,host.name,winlog.provider_name,first_seen,last_seen",
    "Channel,EventID,Count,ComputerName,ProviderName,FirstSeen,LastSeen",
    "LogName,EventCode,count,host,SourceName,earliest,latest",
    "source,event.code,doc_count,Computer,provider,min(_time),max(_time)",
    "Log Name,Event ID,Count,Hostname,Provider,first,last",
])
def test_csv_header_spellings(tmp_path, header):
    path = tmp_path / "counts.csv"
    path.write_text(header + "\n"
                    "Security,4688,120,pc1,Microsoft-Windows-Security-Auditing,2024-01-01T00:00:00Z,2024-01-02T00:00:00Z\n"
                    "Security,4688,30,pc2,Microsoft-Windows-Security-Auditing,2024-01-01T06:00:00Z,2024-01-01T07:00:00Z\n"
                    "Microsoft-Windows-Sysmon/Operational,1,5,pc1,Microsoft-Windows-Sysmon,1704067200,1704070800\n")
    sample = read_event_file(str(path))
    assert sample.bad_rows == 0, sample.warnings
    assert _counts(sample) == {("Security", 4688): 150, ("Microsoft-Windows-Sysmon/Operational", 1): 5}
    seen = sample.seen[("Security", 4688, "Microsoft-Windows-Security-Auditing")]
    assert seen.hosts == {"pc1", "pc2"}
    assert seen.first.isoformat() == "2024-01-01T00:00:00+00:00"
    assert seen.last.isoformat() == "2024-01-02T00:00:00+00:00"


@pytest.mark.parametrize("text", [
    json.dumps([{"winlog.channel": "Security", "event.code": "4624", "count": 7, "host.name": "dc1"}]),
    json.dumps([{"winlog": {"channel": "Security", "event_id": 4624}, "host": {"name": "dc1"}, "count": 7}]),
    json.dumps({"results": [{"LogName": "Security", "EventID": 4624, "Count": "7", "ComputerName": "dc1"}]}),
    '{"result": {"source": "WinEventLog:Security", "EventCode": "4624", "count": "4", "host": "dc1"}}\n'
    '{"result": {"source": "WinEventLog:Security", "EventCode": "4624", "count": "3", "host": "dc1"}}\n',
])
def test_json_shapes(tmp_path, text):
    path = tmp_path / "counts.json"
    path.write_text(text)
    sample = read_event_file(str(path))
    assert sample.bad_rows == 0, sample.warnings
    assert _counts(sample) == {("Security", 4624): 7}
    assert {h for s in sample.seen.values() for h in s.hosts} == {"dc1"}


_ES_NESTED = {"took": 5, "aggregations": {"winlog.channel": {"buckets": [
    {"key": "Security", "doc_count": 7, "winlog.event_id": {"buckets": [
        {"key": "4624", "doc_count": 5, "host.name": {"buckets": [
            {"key": "dc1", "doc_count": 3,
             "first_seen": {"value": 1704067200000, "value_as_string": "2024-01-01T00:00:00.000Z"},
             "last_seen": {"value": 1704153600000}},
            {"key": "dc2", "doc_count": 2}]}},
        {"key": "4625", "doc_count": 2}]}},
    {"key": "System", "doc_count": 2, "winlog.event_id": {"buckets": [{"key": 7045, "doc_count": 2}]}}]}}}
_ES_COMPOSITE = {"aggregations": {"counts": {"after_key": {}, "buckets": [
    {"key": {"winlog.channel": "Security", "event.code": "4624", "host.name": "dc1"}, "doc_count": 3},
    {"key": {"winlog.channel": "Security", "event.code": "4624", "host.name": "dc2"}, "doc_count": 2},
    {"key": {"winlog.channel": "Security", "event.code": "4625", "host.name": "dc1"}, "doc_count": 2},
    {"key": {"winlog.channel": "System", "event.code": 7045, "host.name": "dc1"}, "doc_count": 2}]}}}


@pytest.mark.parametrize("doc", [_ES_NESTED, _ES_COMPOSITE])
def test_elasticsearch_aggregations(tmp_path, doc):
    path = tmp_path / "agg.json"
    path.write_text(json.dumps(doc))
    sample = read_event_file(str(path))
    assert sample.bad_rows == 0, sample.warnings
    assert _counts(sample) == {("Security", 4624): 5, ("Security", 4625): 2, ("System", 7045): 2}
    assert sample.seen[("Security", 4624, None)].hosts == {"dc1", "dc2"}


def test_elasticsearch_min_max_times(tmp_path):
    path = tmp_path / "agg.json"
    path.write_text(json.dumps(_ES_NESTED))
    seen = read_event_file(str(path)).seen[("Security", 4624, None)]
    assert (seen.first.isoformat(), seen.last.isoformat()) == ("2024-01-01T00:00:00+00:00",
                                                               "2024-01-02T00:00:00+00:00")


def test_csv_without_count_counts_each_row_once(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_text("TimeCreated,LogName,Id\n2024-01-01T00:00:00,Security,4624\n"
                    "2024-01-01T01:00:00,Security,4624\n")
    with pytest.raises(EventsInputError):   # "Id" is not an EventID spelling: refused, not guessed
        read_event_file(str(path))
    path.write_text("TimeCreated,LogName,EventID\n2024-01-01T00:00:00,Security,4624\n"
                    "2024-01-01T01:00:00,Security,4624\n")
    sample = read_event_file(str(path))
    assert _counts(sample) == {("Security", 4624): 2}
    assert (sample.last - sample.first).total_seconds() == 3600


@pytest.mark.parametrize("row, reason", [
    ("Security,notanumber,3", "EventID 'notanumber'"),
    ("Security,70000,3", "EventID '70000'"),
    (",4624,3", "no channel"),
    ("Security,4624,-2", "count '-2'"),
    ("Security,4624,1.5", "count '1.5'"),
    ("Security,4624,abc", "count 'abc'"),
])
def test_bad_rows_are_named_with_file_and_line(tmp_path, row, reason):
    path = tmp_path / "counts.csv"
    path.write_text(f"channel,event_id,count\nSecurity,4624,10\n{row}\nSystem,7045,1\n")
    sample = read_event_file(str(path))
    assert _counts(sample) == {("Security", 4624): 10, ("System", 7045): 1}
    assert sample.bad_rows == 1
    assert sample.warnings[0].startswith(f"{path}:line 3: {reason}")


def test_a_bad_time_keeps_the_row(tmp_path):
    path = tmp_path / "counts.csv"
    path.write_text("channel,event_id,count,first_seen\nSecurity,4624,10,yesterday\n")
    sample = read_event_file(str(path))
    assert sample.events == 10 and sample.first is None
    assert "first_seen 'yesterday' is no time" in sample.warnings[0]


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"\x00\x01\x02binary\x00" * 10, "binary data"),
    (b"\xff\xfe\xfa\xfbnot text" * 3, "no channel or event_id column"),   # UTF-16 BOM: decodes, no header
    (b"\x80\x81 not utf8", "not UTF-8"),
    (b"a,b,c\n1,2,3\n", "no channel or event_id column"),
    (b"channel,event_id\n,\n", "no usable row"),
    (b"[1, 2, 3]", "item 1: not an object but int"),
    (b"[" * 100000, "JSON nested too deeply"),
    (b"{\"channel\": ", "not JSON"),
])
def test_hostile_text_inputs(tmp_path, content, reason):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(EventsInputError) as err:
        read_event_file(str(path))
    assert reason in err.value.reason


def test_size_limit(tmp_path, monkeypatch):
    from logsource_checker import events_read

    monkeypatch.setattr(events_read, "MAX_TEXT_BYTES", 100)
    path = tmp_path / "big.csv"
    path.write_text("channel,event_id,count\n" + "Security,4624,1\n" * 20)
    with pytest.raises(EventsInputError) as err:
        read_event_file(str(path))
    assert "larger than" in err.value.reason


def test_folder_reads_known_files_and_names_the_others(tmp_path):
    (tmp_path / "a.csv").write_text("channel,event_id,count\nSecurity,4624,2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_text('[{"channel": "System", "event_id": 7045, "count": 1}]')
    (tmp_path / "notes.txt").write_text("hello")
    samples = read_events(str(tmp_path))
    assert [Path(s.path).name for s in samples] == ["a.csv", "b.json"]
    assert any("notes.txt: skipped" in w for w in samples[0].warnings)


# -- verdict, end to end through the CLI ----------------------------------------------------------

def _req(report: dict, event_id: int, kind: str) -> dict:
    found = [r for r in report["requirements"] if r["kind"] == kind and r.get("observed")
             and event_id in r["observed"]["event_ids"]]
    assert found, f"no {kind} requirement observed with {event_id}"
    return found[0]


def test_cli_observed_on_requirements_and_rules(cli, tmp_path):
    counts = tmp_path / "counts.csv"
    counts.write_text("channel,event_id,count,host,first_seen,last_seen\n"
                      "Security,4688,480,pc1,2024-01-01T00:00:00Z,2024-01-03T00:00:00Z\n"
                      "Microsoft-Windows-Sysmon/Operational,1,96,pc2,2024-01-01T00:00:00Z,2024-01-03T00:00:00Z\n"
                      "Security,4624,x,pc1,,\n")
    result = cli(RULES, "--events", counts, "-f", "json", "--no-cache")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    audit = _req(report, 4688, "audit_subcategory")["observed"]
    assert audit["events"] == 480 and audit["hosts"] == ["pc1"]
    assert audit["per_day"] == 240.0 and audit["per_hour"] == 10.0
    assert audit["first"] == "2024-01-01T00:00:00Z" and audit["last"] == "2024-01-03T00:00:00Z"
    assert _req(report, 1, "sysmon_event")["observed"]["events"] == 96
    assert report["events"]["span_hours"] == 48.0
    assert any("line 4" in w for w in report["events"]["warnings"])
    seen_rules = [r for r in report["rules"] if r.get("observed") and r["observed"]["events"]]
    assert seen_rules and all(any(n["seen"] for n in r["observed"]["needs"]) for r in seen_rules)


def test_cli_not_observed_is_a_warning_not_a_verdict(cli, tmp_path):
    # a week of Sysmon events only: with a Sysmon config producing process creation (high volume) but
    # an export without a single such event, the requirement stays met and is flagged not_observed
    counts = tmp_path / "counts.csv"
    counts.write_text("channel,event_id,count,first_seen,last_seen\n"
                      "Microsoft-Windows-Sysmon/Operational,3,10,2024-01-01T00:00:00Z,2024-01-08T00:00:00Z\n")
    base = [RULES, "--sysmon-config", ROOT / "samples" / "sysmon" / "partial-config.xml", "-f", "json", "--no-cache"]
    before = cli(*base).json()
    after = cli(*base, "--events", counts).json()
    statuses = {r["id"]: r["status"] for r in before["requirements"]}
    assert {r["id"]: r["status"] for r in after["requirements"]} == statuses
    flagged = [r for r in after["requirements"] if (r.get("observed") or {}).get("flag") == "not_observed"]
    assert flagged and all(r["status"] == "met" and r["observed"]["events"] == 0 for r in flagged)
    assert all(r["volume"] in ("high", "medium") for r in flagged)
    assert after["summary"]["requirements_not_observed"] == len(flagged)
    assert "observed" not in before["requirements"][0]


def test_cli_unusable_events_file_exits_2(cli, tmp_path):
    bad = tmp_path / "bad.evtx"
    bad.write_bytes(b"\x00" * 100)
    result = cli(RULES, "--events", bad, "-f", "json", "--no-cache")
    assert result.exit_code == 2
    assert "not an EVTX file" in result.stderr


def test_cli_evtx_folder(cli, evtx_samples):
    result = cli(RULES, "--events", evtx_samples, "-f", "json", "--no-cache")
    assert result.exit_code in (0, 1), result.stderr
    events = result.json()["events"]
    assert len(events["files"]) == len(list(evtx_samples.glob("*.evtx")))
    assert events["events"] == sum(f["events"] for f in events["files"])


@pytest.mark.parametrize("fmt, line", [
    ("terminal", "not observed: "), ("text", "- not observed: "), ("markdown", "- Not observed: "),
])
def test_not_observed_in_human_reports(cli, tmp_path, fmt, line):
    counts = tmp_path / "counts.csv"
    counts.write_text("channel,event_id,count,first_seen,last_seen\n"
                      "Microsoft-Windows-Sysmon/Operational,3,10,2024-01-01T00:00:00Z,2024-01-08T00:00:00Z\n"
                      "Security,x,1,,\n")
    result = cli(RULES, "--sysmon-config", ROOT / "samples" / "sysmon" / "partial-config.xml", "--events", counts,
                 "-f", fmt, "--no-cache")
    assert "Events seen" in result.stdout
    assert line in result.stdout
    assert "counts.csv:line3:EventID'x'" in "".join(result.stdout.split())   # the bad row's note (may wrap)


def test_hostile_values_are_escaped_in_markdown(cli, tmp_path):
    counts = tmp_path / "counts.csv"
    counts.write_text('channel,event_id,count\nSecurity,4688,3\nSecurity,"<img src=x> | # [a](javascript:x)",1\n')
    result = cli(RULES, "--events", counts, "-f", "markdown", "--no-cache")
    note = next(line for line in result.stdout.splitlines() if "note:" in line)
    assert "<img" not in note and "&lt;img" in note
    assert "\\](javascript" in note and "\\|" in note and " | " not in note


def test_cli_missing_events_path_exits_2(cli, tmp_path):
    result = cli(RULES, "--events", tmp_path / "nope.csv", "-f", "json", "--no-cache")
    assert result.exit_code == 2
    assert "no such file or folder" in result.stderr


def test_evtx_package_missing_is_one_clear_error(tmp_path, monkeypatch):
    import sys

    path = tmp_path / "a.evtx"
    path.write_bytes(b"ElfFile\x00" + b"\x00" * 4088)
    monkeypatch.setitem(sys.modules, "evtx", None)
    with pytest.raises(EventsInputError) as err:
        read_event_file(str(path))
    assert "needs the 'evtx' package" in err.value.reason


# (format, what the events line says when the export has times, and when it has none)
SPAN_CASES = [
    ("terminal", "covering 48", "no times given"),
    ("text", "covering 48", "no times given"),
    ("markdown", "covering 48", "no times given"),   # Markdown escapes the dot
]


@pytest.mark.parametrize("fmt,with_times,without_times", SPAN_CASES, ids=[c[0] for c in SPAN_CASES])
def test_reports_say_when_an_export_has_no_times(cli, tmp_path, fmt, with_times, without_times):
    """A count export without first/last seen has no time span: the reports say so (they printed
    'covering None hours (None to None)')."""
    timed = tmp_path / "timed.csv"
    timed.write_text("channel,event_id,count,first_seen,last_seen\n"
                     "Security,4688,480,2024-01-01T00:00:00Z,2024-01-03T00:00:00Z\n", encoding="utf-8")
    untimed = tmp_path / "untimed.csv"
    untimed.write_text("channel,event_id,count\nSecurity,4688,480\n", encoding="utf-8")
    for counts, expected in ((timed, with_times), (untimed, without_times)):
        result = cli(RULES, "--events", counts, "-f", fmt, "--no-cache")
        assert result.exit_code == 0, result.stderr
        assert expected in result.stdout and "None hours" not in result.stdout
