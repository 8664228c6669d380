"""Telegraf ``[[inputs.win_eventlog]]`` inputs (TOML).

What an input reads (Telegraf's win_eventlog plugin README and sample.conf,
https://github.com/influxdata/telegraf/tree/master/plugins/inputs/win_eventlog): ``xpath_query`` is a
Windows event query, a ``<QueryList>`` (one input per Query and channel, evaluated like a WEF query) or the
short XPath form (``Event/System[EventID=999]``) for the channel ``eventlog_name``; with no query,
``eventlog_name`` is read whole. Telegraf's metric selectors on the input (Telegraf "Filter Telegraf
metrics", https://docs.influxdata.com/telegraf/v1/configuration/filtering/) may drop whole events:
``namepass`` / ``namedrop`` test the measurement name (``win_eventlog``, or ``name_override``),
``tagpass`` / ``tagdrop`` map tag keys to glob patterns (a metric passes ``tagpass`` when some key's value
matches one of its patterns; ``tagdrop`` is the inverse). The tags ``EventID``, ``Channel`` and ``Source``
(the provider) are judged; any other tag key, and ``metricpass`` (an expression), make the verdict null.
``exclude_fields`` only removes fields (all of them, ``*``, drops every event: "if you exclude all fields
then no metrics are produced"); ``event_batch_size``, ``only_first_line_of_message``, ``from_beginning``
and the other rendering options do not decide which events arrive. ``event_size_limit`` drops events
larger than it: noted, as the size of an event is not known beforehand.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any

from .model import AllOf, ChannelInput, CollectorConfig, CollectorInputError, Filter, Unknowable
from .nxlog import ANY_CHANNEL
from .xpath import Event
from ._common import query_inputs

FORMAT = "telegraf"
_SECTION = re.compile(r"(?m)^[ \t]*\[\[[ \t]*inputs\.win_eventlog[ \t]*\]\]")
_MEASUREMENT = "win_eventlog"
# the plugin's default event_tags (sample.conf); a tag the input does not make cannot match a tagpass
_DEFAULT_TAGS = ("Source", "EventID", "Level", "LevelText", "Task", "TaskText", "Opcode", "OpcodeText",
                 "Keywords", "Channel", "Computer")
_JUDGED = ("EventID", "Channel", "Source")


def sniff(text: str) -> bool:
    return _SECTION.search(text) is not None


def _toml(path: str, text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:   # Python 3.10
        try:
            import tomli as tomllib   # type: ignore[no-redef]
        except ImportError:
            raise CollectorInputError(path, "reading a Telegraf configuration needs Python 3.11 (tomllib) "
                                            "or the 'tomli' package") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CollectorInputError(path, f"not valid TOML: {' '.join(str(exc).split())[:200]}") from None
    except RecursionError:   # arrays or inline tables nested thousands deep
        raise CollectorInputError(path, "not usable TOML: nested too deeply") from None


def _globs(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)] if value is not None else []


class MetricSelectors(Filter):
    """Telegraf's namepass/namedrop/tagpass/tagdrop/metricpass on one input, for one event."""

    def __init__(self, settings: dict[str, Any], stanza: str) -> None:
        self.stanza = stanza
        self.name = str(settings.get("name_override") or _MEASUREMENT)
        self.namepass, self.namedrop = _globs(settings.get("namepass")), _globs(settings.get("namedrop"))
        self.tagpass = {str(k): _globs(v) for k, v in (settings.get("tagpass") or {}).items()}
        self.tagdrop = {str(k): _globs(v) for k, v in (settings.get("tagdrop") or {}).items()}
        self.metricpass = settings.get("metricpass")
        tags = _globs(settings.get("event_tags")) if "event_tags" in settings else list(_DEFAULT_TAGS)
        self.tags = {t for t in _JUDGED if any(fnmatch.fnmatchcase(t, p) for p in tags)}
        self.description = f"{stanza} metric selectors"
        self.active = bool(self.namepass or self.namedrop or self.tagpass or self.tagdrop or self.metricpass)

    def _tag_values(self, event: Event) -> dict[str, str | None]:
        return {"EventID": str(event.event_id) if event.event_id is not None else None,
                "Channel": event.channel, "Source": event.provider}

    def _matches(self, table: dict[str, list[str]], event: Event) -> bool | None:
        """Does some key of the table have a matching value? None when it depends on what we cannot know."""
        values = self._tag_values(event)
        unknown = False
        for key, patterns in table.items():
            if key not in _JUDGED:
                unknown = True
                continue
            if key not in self.tags:
                continue      # the input does not make this tag: it cannot match
            value = values[key]
            if value is None:
                unknown = True
            elif any(fnmatch.fnmatchcase(value, p) for p in patterns):
                return True
        return None if unknown else False

    def test(self, event: Event) -> tuple[bool | None, str]:
        if self.namepass and not any(fnmatch.fnmatchcase(self.name, p) for p in self.namepass):
            return False, f"{self.stanza}: namepass does not pass the measurement {self.name}"
        if any(fnmatch.fnmatchcase(self.name, p) for p in self.namedrop):
            return False, f"{self.stanza}: namedrop drops the measurement {self.name}"
        # tagpass keeps what matches, tagdrop drops it: (name, selectors, the match result that loses the event)
        for name, selectors, loses, verb in (("tagpass", self.tagpass, False, "does not pass"),
                                             ("tagdrop", self.tagdrop, True, "drops")):
            if not selectors:
                continue
            hit = self._matches(selectors, event)
            if hit is loses:
                return False, f"{self.stanza}: {name} {verb} EventID {event.event_id}"
            if hit is None:
                return None, f"{self.stanza}: {name} tests a tag the tool cannot know for EventID {event.event_id}"
        if self.metricpass:
            return None, f"{self.stanza}: metricpass (an expression) may drop EventID {event.event_id}"
        return True, f"{self.stanza}: its metric selectors pass EventID {event.event_id}"


def _input(path: str, settings: dict[str, Any], stanza: str, config: CollectorConfig) -> list[ChannelInput]:
    query = str(settings.get("xpath_query") or "").strip()
    channel = str(settings.get("eventlog_name") or "").strip()
    if query.startswith("<"):
        inputs = query_inputs(path, query, stanza, f"{stanza} xpath_query")
    elif query and channel:
        inputs = query_inputs(path, query, stanza, f"{stanza} xpath_query", default_path=channel)
    elif query:
        config.warnings.append(f"{stanza}: a short XPath query without eventlog_name: the channel it reads "
                               "is not known (every verdict null)")
        inputs = [ChannelInput(ANY_CHANNEL, True, Unknowable(f"{stanza} (short XPath without eventlog_name)"),
                               path, stanza)]
    elif channel:
        inputs = [ChannelInput(channel, True, Filter(), path, stanza)]
    else:
        raise CollectorInputError(path, f"{stanza}: neither xpath_query nor eventlog_name")
    selectors = MetricSelectors(settings, stanza)
    if any(p == "*" for p in _globs(settings.get("exclude_fields"))):
        for item in inputs:
            item.enabled, item.disabled_why = False, "exclude_fields = ['*'] removes every field: no metric"
    if settings.get("event_size_limit"):
        config.warnings.append(f"{stanza}: event_size_limit = {str(settings['event_size_limit'])[:20]} drops "
                               "larger events (not judged per event)")
    if selectors.active:
        for item in inputs:
            item.filter = AllOf([item.filter, selectors])
    return inputs


def read(path: str, text: str) -> CollectorConfig:
    config = CollectorConfig(path, FORMAT)
    doc = _toml(path, text)
    tables = (doc.get("inputs") or {}).get("win_eventlog") if isinstance(doc.get("inputs"), dict) else None
    if isinstance(tables, dict):
        tables = [tables]
    if not isinstance(tables, list) or not tables:
        raise CollectorInputError(path, "no [[inputs.win_eventlog]] table")
    for number, settings in enumerate(tables, 1):
        if not isinstance(settings, dict):
            raise CollectorInputError(path, f"[[inputs.win_eventlog]] {number} is not a table")
        config.inputs += _input(path, settings, f"[[inputs.win_eventlog]] {number}", config)
    for section in ("processors", "aggregators"):
        if doc.get(section):
            config.warnings.append(f"[[{section}.*]] present: their filters (which may drop events) are not judged")
    return config


__all__ = ["FORMAT", "read", "sniff"]
