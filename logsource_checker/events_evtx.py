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
        return evtx.PyEvtxParser(path)
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
    errors, first_error, no_channel = 0, "", 0
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
        try:
            system = json.loads(record["data"])["Event"]["System"]
        except (KeyError, TypeError, ValueError):
            errors += 1
            first_error = first_error or f"record {record.get('event_record_id')}: no Event/System part"
            continue
        if not _count(sample, system):
            no_channel += 1
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


def _count(sample: EventSample, system: dict) -> bool:
    channel = _value(system.get("Channel"))
    try:
        event_id = int(_value(system.get("EventID")))
    except (TypeError, ValueError):
        return False
    if not isinstance(channel, str) or not channel.strip():
        return False
    provider = _attribute(system.get("Provider"), "Name")
    host = _value(system.get("Computer"))
    when = None
    stamp = _attribute(system.get("TimeCreated"), "SystemTime")
    if isinstance(stamp, str):
        try:
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        if when is not None and when < _EPOCH_FLOOR:
            when = None
    sample.add(channel.strip(), event_id, provider if isinstance(provider, str) else None, 1,
               host if isinstance(host, str) else None, when, when, keywords_text(_value(system.get("Keywords"))))
    return True


__all__ = ["read_evtx"]
