"""``.evtx`` files for ``--events``: counted per channel, EventID and provider with the ``evtx`` package.

The ``evtx`` package (pyevtx-rs, Python bindings of the Rust ``evtx`` crate) parses the binary XML of each
record; we read each record's ``System`` part as JSON. A damaged chunk or record raises an error for that
item only and reading goes on, so the records read before (and after) the damage still count, with one
warning naming the file. A file whose header says it holds more chunks than its size allows is truncated
(warning). A file that yields no record and had errors is unusable (``EventsInputError``, exit status 2).
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

from .events_read import EventSample, EventsInputError, keywords_text, unpack_header

_CHUNK = 65536
_EPOCH_FLOOR = datetime(1980, 1, 1, tzinfo=timezone.utc)   # an all-zero record's time is 1601-01-01


def _parser(path: str) -> Any:
    try:
        import evtx
    except ImportError:
        raise EventsInputError(path, "reading .evtx needs the 'evtx' package (pip install evtx)") from None
    try:
        return evtx.PyEvtxParser(path, number_of_threads=_THREADS)
    except (OSError, RuntimeError, ValueError) as exc:
        raise EventsInputError(path, f"unusable EVTX file: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text.replace("An error occurred while trying to deserialize evtx stream.: ", "")[:200]


def _value(node: Any) -> Any:
    """A System element as the evtx JSON gives it: a plain value, or {"#text": v, "#attributes": {...}}."""
    return node.get("#text") if isinstance(node, dict) else node


def _attribute(node: Any, name: str) -> Any:
    return (node.get("#attributes") or {}).get(name) if isinstance(node, dict) else None


# The Python side is what costs (profiled on an 18,200-record, 39 MB file built from the corpus's SharpHound
# recording: 0.47 s reading whole records with json.loads, 0.12 s as below): only the System part of each
# record is decoded, records are grouped by their raw (channel, EventID, provider, computer, keywords) in a
# plain dict, and times are parsed once per group. One parser thread: on a busy 2-core machine the library's
# own thread pool made it slower (0.26 s against 0.12 s), and the Python loop is the bottleneck anyway.
_THREADS = 1
_DECODER = json.JSONDecoder()


def _system(text: str) -> dict | None:
    """The record's Event/System object, decoded alone (the EventData after it is never parsed)."""
    at = text.find('"System":')
    if at < 0:
        return None
    start = text.find("{", at)
    if start < 0:
        return None
    try:
        found, _ = _DECODER.raw_decode(text, start)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def read_evtx(path: str) -> EventSample:
    sample = EventSample(path, "evtx")
    with open(path, "rb") as handle:
        header = unpack_header(handle.read(64))
    if header is not None:
        block, chunks = header
        expected = block + chunks * _CHUNK
        size = os.path.getsize(path)
        if block and size < expected:
            sample.warnings.append(f"{path}: truncated ({size} bytes; its header announces {chunks} chunks, "
                                   f"{expected} bytes): the records read before the damage count")
    parser = _parser(path)
    errors, first_error = 0, ""
    groups: dict[tuple, list] = {}
    records = parser.records_json()
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except Exception as exc:  # noqa: BLE001 - the parser raises per damaged chunk/record, then goes on
            errors += 1
            first_error = first_error or _short(exc)
            if errors > 10000:
                break
            continue
        system = _system(record.get("data") or "")
        if system is None:
            errors += 1
            first_error = first_error or f"record {record.get('event_record_id')}: no Event/System part"
            continue
        # inlined _value / _attribute: this loop runs once per record
        node = system.get("TimeCreated")
        stamp = (node.get("#attributes") or {}).get("SystemTime") if type(node) is dict else None
        stamp = stamp if type(stamp) is str else None
        node = system.get("Provider")
        provider = (node.get("#attributes") or {}).get("Name") if type(node) is dict else None
        event_id = system.get("EventID")
        if type(event_id) is dict:       # {"#text": 4624, "#attributes": {"Qualifiers": ...}}
            event_id = event_id.get("#text")
        key = (_value(system.get("Channel")), event_id, provider, _value(system.get("Computer")),
               system.get("Keywords"))
        try:
            group = groups.get(key)
        except TypeError:        # an unhashable value where a plain one belongs: a malformed System part
            key = (None,) + key[1:]
            group = None
        if group is None:
            groups[key] = [1, stamp, stamp]
        else:
            group[0] += 1
            if stamp is not None:
                if group[1] is None or stamp < group[1]:
                    group[1] = stamp
                if group[2] is None or stamp > group[2]:
                    group[2] = stamp
    no_channel = sum(group[0] for key, group in groups.items() if not _count(sample, key, group))
    if errors:
        if not sample.rows:
            raise EventsInputError(path, f"unusable EVTX file: no record could be read ({first_error})")
        sample.warnings.append(f"{path}: {errors} damaged chunks or records skipped (first: {first_error}); "
                               f"the {sample.rows} records read count")
    if no_channel:
        sample.warnings.append(f"{path}: {no_channel} records without Channel or EventID not counted")
    if not sample.rows and not errors:
        sample.warnings.append(f"{path}: no records")
    return sample


def _time(stamp: str | None) -> datetime | None:
    if stamp is None:
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return None if when < _EPOCH_FLOOR else when


def _count(sample: EventSample, key: tuple, group: list) -> bool:
    """One group of records with the same System values: counted, or False when it has no channel or
    EventID. Times: the group's earliest and latest (the parser writes them all in one ISO format, so the
    text compares as the time does)."""
    channel, raw_id, provider, host, keywords = key
    try:
        event_id = int(raw_id)
    except (TypeError, ValueError):
        return False
    if not isinstance(channel, str) or not channel.strip():
        return False
    first, last = _time(group[1]), _time(group[2])
    sample.add(channel.strip(), event_id, provider if isinstance(provider, str) else None, group[0],
               host if isinstance(host, str) else None, first or last, last or first,
               keywords_text(_value(keywords)) if isinstance(_value(keywords), (str, int)) else None,
               rows=group[0])
    return True


__all__ = ["read_evtx"]
