"""Events really seen (``--events FILE|DIR``): event counts from a SIEM export (CSV, JSON) or ``.evtx`` files.

Every input becomes an ``EventSample``: counts per (channel, EventID, provider) with the hosts and the first
and last time seen, plus warnings (bad rows with file and line, a damaged ``.evtx``). Inputs are untrusted:
CSV/JSON are size-limited and must be text; an ``.evtx`` is read record by record by the ``evtx`` package
(pyevtx-rs), and records read before a damaged chunk still count. A file that yields nothing usable is an
``EventsInputError`` (exit status 2). Header spellings: ``FIELDS`` below, documented in the README
("Events really seen").
"""
from __future__ import annotations

import csv
import io
import json
import os
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from .policy.model import PolicyInputError

MAX_TEXT_BYTES = 64 * 1024 * 1024     # a CSV/JSON export of counts is far smaller
MAX_HOSTS = 1000                      # hosts kept per (channel, EventID, provider); more are counted only
MAX_WARNINGS = 20                     # bad rows named one by one; the rest are counted
_FLATTEN_DEPTH = 8
_EXTENSIONS = (".evtx", ".csv", ".json", ".jsonl", ".ndjson")

# column -> field, after _norm (case-folded; spaces, "_" and "-" removed). README "Events really seen".
FIELDS = {
    "channel": "channel", "winlog.channel": "channel", "logname": "channel", "log": "channel",
    "source": "channel",
    "eventid": "event_id", "eventcode": "event_id", "event.code": "event_id", "winlog.eventid": "event_id",
    "count": "count", "doccount": "count", "events": "count", "count()": "count",
    "host": "host", "hostname": "host", "host.name": "host", "host.hostname": "host", "computername": "host",
    "computer": "host", "winlog.computername": "host", "agent.hostname": "host", "device": "host",
    "provider": "provider", "providername": "provider", "winlog.providername": "provider",
    "event.provider": "provider", "sourcename": "provider",
    "firstseen": "first_seen", "first": "first_seen", "earliest": "first_seen", "mintime": "first_seen",
    "min(time)": "first_seen", "min(timestamp)": "first_seen", "min(@timestamp)": "first_seen",
    "lastseen": "last_seen", "last": "last_seen", "latest": "last_seen", "maxtime": "last_seen",
    "max(time)": "last_seen", "max(timestamp)": "last_seen", "max(@timestamp)": "last_seen",
    "time": "time", "@timestamp": "time", "timestamp": "time", "timecreated": "time",
    "timegenerated": "time", "systemtime": "time",
    # the audit outcome (Success / Failure of one subcategory): Keywords as text or number, ECS event.outcome
    "keywords": "keywords", "winlog.keywords": "keywords", "keywordsdisplayname": "keywords",
    "event.outcome": "keywords", "outcome": "keywords",
}
# Splunk names a Windows log's source "WinEventLog:<channel>" (or XmlWinEventLog:)
_SOURCE_PREFIXES = ("xmlwineventlog:", "wineventlog:")


class EventsInputError(PolicyInputError):
    """An --events file that cannot be used at all (exit status 2)."""


@dataclass
class Seen:
    """One (channel, EventID, provider): how many events, on which hosts, first and last time."""

    channel: str
    event_id: int | None
    provider: str | None
    count: int = 0
    hosts: set = field(default_factory=set)
    more_hosts: bool = False
    first: datetime | None = None
    last: datetime | None = None
    keywords: dict = field(default_factory=dict)   # Keywords / outcome text (case-folded) -> events with it

    def add(self, count: int, host: str | None, first: datetime | None, last: datetime | None,
            keywords: str | None = None) -> None:
        self.count += count
        if keywords:
            self.keywords[keywords] = self.keywords.get(keywords, 0) + count
        if host:
            if len(self.hosts) < MAX_HOSTS or host in self.hosts:
                self.hosts.add(host)
            else:
                self.more_hosts = True
        if first is not None and (self.first is None or first < self.first):
            self.first = first
        if last is not None and (self.last is None or last > self.last):
            self.last = last


@dataclass
class EventSample:
    path: str
    format: str                     # evtx | csv | json
    seen: dict[tuple, Seen] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    bad_rows: int = 0
    rows: int = 0                   # rows (records) read and counted

    def add(self, channel: str, event_id: int | None, provider: str | None, count: int = 1,
            host: str | None = None, first: datetime | None = None, last: datetime | None = None,
            keywords: str | None = None, rows: int = 1) -> None:
        key = (channel, event_id, provider)
        item = self.seen.get(key)
        if item is None:
            item = self.seen[key] = Seen(channel, event_id, provider)
        item.add(count, host, first, last if last is not None else first, keywords)
        self.rows += rows

    def bad(self, where: str, reason: str) -> None:
        self.bad_rows += 1
        if self.bad_rows <= MAX_WARNINGS:
            self.warnings.append(f"{self.path}:{where}: {reason}")

    def finish(self) -> "EventSample":
        if self.bad_rows > MAX_WARNINGS:
            self.warnings.append(f"{self.path}: {self.bad_rows - MAX_WARNINGS} more bad rows not listed")
        return self

    @property
    def events(self) -> int:
        return sum(s.count for s in self.seen.values())

    @property
    def first(self) -> datetime | None:
        times = [s.first for s in self.seen.values() if s.first is not None]
        return min(times) if times else None

    @property
    def last(self) -> datetime | None:
        times = [s.last for s in self.seen.values() if s.last is not None]
        return max(times) if times else None


def read_events(path: str) -> list[EventSample]:
    """The samples in ``path``: one file, or every .evtx/.csv/.json/.jsonl/.ndjson file below a folder
    (sorted; other files are named in a warning of the first sample)."""
    if os.path.isdir(path):
        files, skipped = [], []
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                full = os.path.join(root, name)
                (files if name.lower().endswith(_EXTENSIONS) else skipped).append(full)
        if not files:
            raise EventsInputError(path, "folder holds no .evtx, .csv or .json file")
        samples = [read_event_file(f) for f in files]
        samples[0].warnings.extend(f"{f}: skipped (not .evtx, .csv or .json)" for f in skipped[:MAX_WARNINGS])
        return samples
    return [read_event_file(path)]


def read_event_file(path: str) -> EventSample:
    try:
        return _read_file(path)
    except OSError as exc:
        raise EventsInputError(path, f"cannot be read: {exc.strerror or exc}") from None


def _read_file(path: str) -> EventSample:
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head == b"ElfFile\x00":
        from .events_evtx import read_evtx

        return read_evtx(path)
    if path.lower().endswith(".evtx"):
        raise EventsInputError(path, "not an EVTX file (no ElfFile signature)")
    return _read_text(path)


def _read_text(path: str) -> EventSample:
    size = os.path.getsize(path)
    if size > MAX_TEXT_BYTES:
        raise EventsInputError(path, f"{size} bytes: larger than the {MAX_TEXT_BYTES} bytes allowed for CSV/JSON")
    with open(path, "rb") as handle:
        data = handle.read(MAX_TEXT_BYTES + 1)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise EventsInputError(path, f"not UTF-8 or UTF-16 text (byte {exc.start})") from None
    if "\x00" in text:
        raise EventsInputError(path, "binary data, not a CSV or JSON export")
    if not text.strip():
        raise EventsInputError(path, "empty file")
    first = text.lstrip()[:1]
    sample = _read_json(path, text) if first in "[{" else _read_csv(path, text)
    if not sample.seen:
        why = f" ({sample.warnings[0]})" if sample.warnings else ""
        raise EventsInputError(path, f"no usable row{why}")
    return sample.finish()


def _norm(name: str) -> str:
    return "".join(ch for ch in name.strip().casefold() if ch not in " _-")


def _columns(names: Iterable[str]) -> dict[str, str]:
    """Original column name -> field, for the columns we know (first spelling of a field wins)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        target = FIELDS.get(_norm(str(name)))
        if target and target not in taken:
            out[str(name)] = target
            taken.add(target)
    return out


def _read_csv(path: str, text: str) -> EventSample:
    sample = EventSample(path, "csv")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise EventsInputError(path, f"no CSV header: {exc}") from None
    columns = _columns(header)
    _require(path, columns, header)
    index = {target: header.index(name) for name, target in columns.items()}
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            values = {target: (row[i] if i < len(row) else "") for target, i in index.items()}
            _row(sample, f"line {line}", values)
    except csv.Error as exc:
        sample.bad(f"line {reader.line_num}", f"unreadable CSV ({exc}); the rest of the file is ignored")
    return sample


def _require(path: str, columns: dict[str, str], header: Iterable[Any]) -> None:
    targets = set(columns.values())
    missing = [f for f in ("channel", "event_id") if f not in targets]
    if missing:
        shown = ", ".join(str(h)[:40] for h in list(header)[:12])
        raise EventsInputError(path, f"no {' or '.join(missing)} column (columns: {shown}); "
                                     "see README, Events really seen")


def _flatten(obj: dict, prefix: str = "", depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < _FLATTEN_DEPTH:
            out.update(_flatten(value, name + ".", depth + 1))
        else:
            out[name] = value
    return out


def _json_items(path: str, text: str) -> Iterator[tuple[str, Any]]:
    """(where, object) per row: a JSON list, {"results"|"rows"|"events": [...]}, or JSON Lines."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise EventsInputError(path, f"not JSON: {exc.msg} at line {exc.lineno}") from None
        for number, line in enumerate(text.splitlines(), 1):   # JSON Lines (Splunk export)
            if line.strip():
                try:
                    yield f"line {number}", json.loads(line)
                except json.JSONDecodeError as err:
                    yield f"line {number}", err
        return
    except RecursionError:
        raise EventsInputError(path, "JSON nested too deeply") from None
    if isinstance(doc, dict) and isinstance(doc.get("aggregations"), dict):
        doc = list(_es_rows(doc["aggregations"], {}, 0))
    if isinstance(doc, dict):
        for key in ("results", "rows", "events", "data"):
            if isinstance(doc.get(key), list):
                doc = doc[key]
                break
        else:
            doc = [doc]
    if not isinstance(doc, list):
        raise EventsInputError(path, "JSON is neither a list of objects nor an object holding one")
    for number, item in enumerate(doc, 1):
        yield f"item {number}", item


def _es_rows(aggs: dict, above: dict[str, Any], depth: int) -> Iterator[dict[str, Any]]:
    """Rows from an Elasticsearch search response's ``aggregations``: nested ``terms`` aggregations (each
    named for its field, e.g. ``winlog.channel`` > ``winlog.event_id`` > ``host.name``) or a ``composite``
    one (``key`` holds the fields); a bucket's ``doc_count`` is the count, a ``min``/``max`` sub-aggregation
    named ``first_seen``/``last_seen`` its times. A bucket with no deeper buckets is one row."""
    if depth > _FLATTEN_DEPTH:
        return
    values = {name: (agg.get("value_as_string") or agg.get("value")) for name, agg in aggs.items()
              if isinstance(agg, dict) and "value" in agg}
    nested = [(name, agg["buckets"]) for name, agg in aggs.items()
              if isinstance(agg, dict) and isinstance(agg.get("buckets"), list)]
    for name, buckets in nested[:1]:
        for bucket in buckets:
            if not isinstance(bucket, dict):
                continue
            key = bucket.get("key")
            row = {**above, **values, **(key if isinstance(key, dict) else {name: key})}
            row["doc_count"] = bucket.get("doc_count")
            inner = {k: v for k, v in bucket.items() if isinstance(v, dict)}
            deeper = list(_es_rows(inner, row, depth + 1)) if inner else []
            yield from deeper or [{**row, **{k: (v.get("value_as_string") or v.get("value"))
                                              for k, v in inner.items() if "value" in v}}]


def _read_json(path: str, text: str) -> EventSample:
    sample = EventSample(path, "json")
    checked = False
    for where, item in _json_items(path, text):
        if isinstance(item, Exception):
            sample.bad(where, f"not JSON: {item}")
            continue
        if isinstance(item, dict) and isinstance(item.get("result"), dict):
            item = item["result"]      # Splunk JSON export: {"result": {...}} per line
        if not isinstance(item, dict):
            sample.bad(where, f"not an object but {type(item).__name__}")
            continue
        flat = _flatten(item)
        columns = _columns(flat)
        if not checked:
            _require(path, columns, flat)
            checked = True
        _row(sample, where, {target: flat.get(name) for name, target in columns.items()})
    return sample


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):   # Elasticsearch may give one-element lists
        value = value[0] if len(value) == 1 else ""
    return str(value).strip()


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (Z or offset; no zone: UTC) or Unix epoch seconds (Splunk _time); raises ValueError."""
    text = _text(value)
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if number > 1e11:     # milliseconds (Elasticsearch)
            number /= 1000
        return datetime.fromtimestamp(number, tz=timezone.utc)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _row(sample: EventSample, where: str, values: dict[str, Any]) -> None:
    channel = _text(values.get("channel"))
    if channel.casefold().startswith(_SOURCE_PREFIXES):
        channel = channel.split(":", 1)[1].strip()
    if not channel or len(channel) > 256:
        sample.bad(where, "no channel" if not channel else "channel longer than 256 characters")
        return
    raw_id = _text(values.get("event_id"))
    try:
        event_id = int(raw_id)
        if not 0 <= event_id <= 65535:
            raise ValueError
    except ValueError:
        sample.bad(where, f"EventID {raw_id[:40]!r} is not a number from 0 to 65535")
        return
    raw_count = _text(values.get("count")) if "count" in values else "1"
    try:
        count = int(float(raw_count)) if raw_count else -1
        if count < 0 or count != float(raw_count):
            raise ValueError
    except (ValueError, OverflowError):
        sample.bad(where, f"count {raw_count[:40]!r} is not a whole number of 0 or more")
        return
    times = []
    for key in ("first_seen", "last_seen", "time"):
        try:
            times.append(parse_time(values.get(key)))
        except (ValueError, OverflowError, OSError):
            sample.bad(where, f"{key} {_text(values.get(key))[:40]!r} is no time (ISO 8601 or epoch seconds); "
                              "the row counts without it")
            times.append(None)
    first, last, when = times
    provider = _text(values.get("provider"))[:256] or None
    host = _text(values.get("host"))[:256] or None
    sample.add(channel, event_id, provider, count, host, first or when, last or when,
               keywords_text(values.get("keywords")))


def keywords_text(value: Any) -> str | None:
    """A Keywords / outcome value as compared later (observed.outcome_of): case-folded text, a list joined by
    commas; at most 200 characters."""
    if isinstance(value, list):
        value = ",".join(str(v) for v in value[:8])
    text = "" if value is None else str(value).strip().casefold()
    return text[:200] or None


def unpack_header(data: bytes) -> tuple[int, int] | None:
    """(header block size, chunk count) of an EVTX file header, None if too short. Layout: libyal's
    "Windows XML Event Log (EVTX) format" (file header: header block size at 40, number of chunks at 42)."""
    if len(data) < 44:
        return None
    block, chunks = struct.unpack_from("<HH", data, 40)
    return block, chunks


__all__ = ["EventSample", "EventsInputError", "FIELDS", "Seen", "keywords_text", "parse_time", "read_events"]
