"""YAML documents of one file -> ``Rule`` records: rule collections merged (``action: global`` / ``reset`` /
``repeat``), correlation and filter documents recognised, and from each rule's detection the EventIDs,
``Channel`` and ``Provider_Name`` values, field names, condition and selections."""
from __future__ import annotations

import reprlib
from sys import intern
from typing import Any

from .model import LoadError, LoadResult, LogSource, OtherDocument, Rule, _short_text

#: Detection walks stop after this many nodes (guards against YAML alias bombs).
MAX_DETECTION_NODES = 50_000
MAX_DETECTION_DEPTH = 40
#: Event IDs are 16-bit on Windows.
MAX_EVENT_ID = 65535
#: Rule collections merge at most this deep (deeper values replace instead of merging).
MAX_MERGE_DEPTH = 64

# Field names whose values the loader collects (besides EventID).
_CHANNEL_FIELDS = {"channel"}
_PROVIDER_FIELDS = {"provider_name"}
_EVENTID_FIELDS = {"eventid"}
# Modifiers that keep an EventID value an exact event ID.
_NEUTRAL_MODIFIERS = {"", "all"}


def _documents_to_rules(path: str, documents: list[Any], result: LoadResult) -> None:
    documents = [d for d in documents if d is not None]
    if not documents:
        result.errors.append(LoadError(path, None, "empty file: no YAML document"))
        return
    global_doc: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None
    for index, doc in enumerate(documents):
        if not isinstance(doc, dict):
            result.errors.append(LoadError(
                path, None, f"document {index + 1} is a {_type_name(doc)}, not a mapping"))
            continue
        action = doc.get("action")
        if action is not None:
            body = {k: v for k, v in doc.items() if k != "action"}
            if action == "global":
                global_doc = body
                continue
            if action == "reset":
                global_doc = None
                continue
            if action == "repeat":
                if previous is None:
                    result.errors.append(LoadError(
                        path, None, f"document {index + 1}: 'action: repeat' with no document before it"))
                    continue
                doc = _deep_merge(previous, body)
            else:
                result.errors.append(LoadError(
                    path, None, f"document {index + 1}: unknown action {_short(action)}"))
                continue
        elif global_doc is not None:
            doc = _deep_merge(global_doc, doc)
        previous = doc
        _one_document(path, index, doc, result)
    if not (result.rules or result.errors or result.others):
        result.errors.append(LoadError(path, None, "no rule in the file: only 'action: global' or 'reset' documents"))


def _one_document(path: str, index: int, doc: dict[str, Any], result: LoadResult) -> None:
    def err(message: str) -> None:
        prefix = f"document {index + 1}: " if index else ""
        result.errors.append(LoadError(path, None, prefix + message))

    title = _scalar_text(doc.get("title"), "title", err)
    rule_id = _scalar_text(doc.get("id"), "id", err)
    if "correlation" in doc:
        result.others.append(OtherDocument(path, index, "correlation", rule_id, title))
        return
    if "filter" in doc and "detection" not in doc:
        result.others.append(OtherDocument(path, index, "filter", rule_id, title))
        return
    logsource = doc.get("logsource")
    detection = doc.get("detection")
    if logsource is None:
        err("no 'logsource' in the rule")
        return
    if detection is None:
        err("no 'detection' in the rule")
        return
    if not isinstance(logsource, dict):
        err(f"'logsource' is a {_type_name(logsource)}, not a mapping")
        return
    if not isinstance(detection, dict):
        err(f"'detection' is a {_type_name(detection)}, not a mapping")
        return
    ls_values: dict[str, str | None] = {}
    for key in ("product", "category", "service"):
        value = logsource.get(key)
        if value is not None and not isinstance(value, str):
            err(f"logsource '{key}' is a {_type_name(value)}, not a string")
            return
        ls_values[key] = intern(value.strip().lower()) if isinstance(value, str) and value.strip() else None
    level = doc.get("level")
    status = doc.get("status")
    try:
        extract = _Extraction()
        extract.walk_detection(detection)
    except _TooLarge as exc:
        err(str(exc))
        return
    for problem in extract.problems:
        err(problem)
    condition = detection.get("condition")
    conditions = tuple(intern(str(c)) for c in (condition if isinstance(condition, list) else [condition])
                       if isinstance(c, str))
    if condition is not None and len(conditions) != (len(condition) if isinstance(condition, list) else 1):
        err(f"condition {_short(condition)} is not a string or a list of strings")
    result.rules.append(Rule(
        path=path,
        document=index,
        id=rule_id,
        title=title,
        level=intern(level.lower()) if isinstance(level, str) else None,
        status=intern(status.lower()) if isinstance(status, str) else None,
        logsource=LogSource(**ls_values),
        event_ids=tuple(sorted(extract.event_ids)),
        channels=tuple(sorted(extract.channels)),
        providers=tuple(sorted(extract.providers)),
        fields=tuple(sorted(extract.fields)),
        condition=conditions,
        selections=tuple(extract.selections),
        tags=_tags(doc.get("tags"), err),
        definition=_definition(logsource.get("definition")),
    ))


def _definition(value: Any) -> str | None:
    """The logsource ``definition`` when it is text (repeated texts shared, as for other rule strings)."""
    return intern(value) if isinstance(value, str) else None


def _tags(value: Any, err: Any) -> tuple[str, ...]:
    """The rule's tags as written (stripped); anything but a list of strings is reported and skipped."""
    if value is None:
        return ()
    if not isinstance(value, list):
        err(f"'tags' is a {_type_name(value)}, not a list")
        return ()
    tags = tuple(dict.fromkeys(intern(v.strip()) for v in value if isinstance(v, str) and v.strip()))
    if len(tags) != len(value) and any(not isinstance(v, str) for v in value):
        err("'tags' holds values that are not strings (skipped)")
    return tags


class _TooLarge(Exception):
    pass


class _Extraction:
    """Walks a detection block once, collecting EventIDs, Channel/Provider_Name values and fields."""

    def __init__(self) -> None:
        self.event_ids: set[int] = set()
        self.channels: set[str] = set()
        self.providers: set[str] = set()
        self.fields: set[str] = set()
        self.problems: list[str] = []
        self.selections: list[tuple[str, tuple[Any, ...]]] = []
        self._branches: list[tuple[Any, ...]] = []
        self._nodes = 0

    def _count(self, depth: int) -> None:
        self._nodes += 1
        if self._nodes > MAX_DETECTION_NODES or depth > MAX_DETECTION_DEPTH:
            self._too_large(depth)

    def _too_large(self, depth: int) -> None:
        if self._nodes > MAX_DETECTION_NODES:
            raise _TooLarge(f"detection has more than {MAX_DETECTION_NODES} values (alias bomb?); rule skipped")
        if depth > MAX_DETECTION_DEPTH:
            raise _TooLarge(f"detection nested deeper than {MAX_DETECTION_DEPTH} levels; rule skipped")

    def walk_detection(self, detection: dict[Any, Any]) -> None:
        for name, selection in detection.items():
            if name in ("condition", "timeframe"):
                continue
            self._branches = []
            self._selection(selection, 1)
            self.selections.append((intern(str(name)), tuple(self._branches)))

    def _selection(self, value: Any, depth: int) -> None:
        self._count(depth)
        if isinstance(value, dict):
            self._map(value, depth + 1)
        elif isinstance(value, list):
            keywords: list[str | None] = []
            for item in value:
                if isinstance(item, dict):
                    self._count(depth + 1)
                    self._map(item, depth + 2)
                elif isinstance(item, list):
                    self._selection(item, depth + 1)
                else:
                    self._count(depth + 1)
                    keywords.append(_value_text(item))
            if keywords:
                self._branches.append(((None, (), tuple(keywords)),))
        elif value is not None:
            self._branches.append(((None, (), (_value_text(value),)),))

    def _map(self, mapping: dict[Any, Any], depth: int) -> None:
        branch: list[tuple[str | None, tuple[str, ...], tuple[str | None, ...]]] = []
        for key, value in mapping.items():
            self._count(depth)
            if not isinstance(key, str):
                self.problems.append(f"detection field name {_short(key)} is not a string")
                continue
            field_name, _, modifiers = key.partition("|")
            # names that repeat across rules (fields, modifiers, selections, log sources, levels, statuses, tags)
            # are interned: one string object each, so a smaller rule cache, read faster, and less memory
            field_name = intern(field_name.strip())
            mods = tuple([intern(m.strip().lower()) for m in modifiers.split("|")]) if modifiers else ()
            items = value if isinstance(value, list) else [value]
            texts = tuple(_value_text(v) for v in items if not isinstance(v, (dict, list)))
            if not field_name:
                branch.append((None, mods, texts))
                continue
            branch.append((field_name, mods, texts))
            self.fields.add(field_name)
            lowered = field_name.lower()
            if lowered in _EVENTID_FIELDS:
                self._event_ids(value, modifiers, depth)
            elif lowered in _CHANNEL_FIELDS:
                self._strings(value, self.channels, depth)
            elif lowered in _PROVIDER_FIELDS:
                self._strings(value, self.providers, depth)
            else:
                self._values(value, depth)
        self._branches.append(tuple(branch))

    def _values(self, value: Any, depth: int) -> None:
        if isinstance(value, list):
            for item in value:
                self._count(depth + 1)
                if isinstance(item, (dict, list)):
                    self._values(item, depth + 1)
        elif isinstance(value, dict):
            for item in value.values():
                self._count(depth + 1)
                self._values(item, depth + 1)

    def _strings(self, value: Any, into: set[str], depth: int) -> None:
        for item in (value if isinstance(value, list) else [value]):
            self._count(depth + 1)
            if isinstance(item, str):
                into.add(item)
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                into.add(str(item))

    def _event_ids(self, value: Any, modifiers: str, depth: int) -> None:
        mods = {m.strip().lower() for m in modifiers.split("|")} if modifiers else {""}
        if not mods <= _NEUTRAL_MODIFIERS:
            bad = ", ".join(sorted(m for m in mods if m not in _NEUTRAL_MODIFIERS))
            self.problems.append(f"EventID with modifier '{bad}' cannot be resolved to event IDs")
            return
        items = value if isinstance(value, list) else [value]
        for item in items:
            self._count(depth + 1)
            event_id = _as_event_id(item)
            if event_id is None:
                self.problems.append(f"EventID value {_short(item)} is not an event ID (0-{MAX_EVENT_ID})")
            else:
                self.event_ids.add(event_id)


def _value_text(value: Any) -> str | None:
    """A detection value as text (how Sigma compares it); None stays None (a null match)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        return str(value)
    except ValueError:  # an integer past Python's digit limit
        return "<number too long>"


def _as_event_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        digits = value.strip().lstrip("0") or "0"
        if len(digits) > len(str(MAX_EVENT_ID)):
            return None  # never int() a string of thousands of digits
        number = int(digits)
    else:
        return None
    return number if 0 <= number <= MAX_EVENT_ID else None


def _scalar_text(value: Any, name: str, err: Any) -> str | None:
    """A title or id as text; a mapping or list there is reported (never turned into text: an alias
    bomb would expand)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list, set, tuple, bytes)):
        err(f"'{name}' is a {_type_name(value)}, not a string")
        return None
    return _short_text(str(value), 200)


def _deep_merge(base: dict[str, Any], update: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and depth < MAX_MERGE_DEPTH:
            merged[key] = _deep_merge(merged[key], value, depth + 1)
        else:
            merged[key] = value
    return merged


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "mapping", list: "list", str: "string", int: "number", float: "number",
            bool: "boolean"}.get(type(value), type(value).__name__)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = 4


def _short(value: Any, limit: int = 40) -> str:
    """A bounded repr: never expands an alias bomb, a self-referencing list or a huge number."""
    try:
        text = _REPR.repr(value)
    except (ValueError, RecursionError):  # e.g. an int too long to print
        text = f"<{type(value).__name__}>"
    return _short_text(text, limit)

