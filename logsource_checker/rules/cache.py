"""A ``LoadResult`` as plain tuples, for the rule cache (loader.py) and worker pipes."""
from __future__ import annotations

from typing import Any

from .model import LoadError, LoadResult, LogSource, OtherDocument, Rule


def pack_result(result: LoadResult) -> tuple[Any, ...]:
    """A ``LoadResult`` as plain tuples (for the rule cache and for worker processes): cheaper to pickle,
    marshal and load than the dataclasses. ``unpack_result`` reverses it."""
    return (
        tuple((r.path, r.document, r.id, r.title, r.level, r.status, r.logsource.product, r.logsource.category,
               r.logsource.service, r.event_ids, r.channels, r.providers, r.fields, r.condition, r.selections,
               r.tags, r.definition)
              for r in result.rules),
        tuple((e.path, e.line, e.message) for e in result.errors),
        tuple((o.path, o.document, o.kind, o.id, o.title) for o in result.others),
        result.files,
    )


def unpack_result(packed: tuple[Any, ...], into: LoadResult,
                  logsources: dict[tuple[Any, ...], LogSource] | None = None) -> None:
    """Append a ``pack_result`` tuple to ``into``. Raises (TypeError, ValueError...) on a malformed one.
    ``logsources``: equal log sources (immutable) made once and shared, across the calls given the same dict."""
    rules, errors, others, files = packed
    rule_list = into.rules
    if logsources is None:
        logsources = {}
    for (path, document, rule_id, title, level, status, product, category, service, event_ids,
         channels, providers, fields, condition, selections, tags, definition) in rules:
        logsource = logsources.get((product, category, service))
        if logsource is None:
            logsource = logsources[(product, category, service)] = LogSource(product, category, service)
        rule_list.append(Rule(path, document, rule_id, title, level, status, logsource,
                              event_ids, channels, providers, fields, condition, selections, tags, definition))
    if errors:
        into.errors.extend(LoadError(path, line, message) for path, line, message in errors)
    if others:
        into.others.extend(OtherDocument(path, document, kind, other_id, title)
                           for path, document, kind, other_id, title in others)
    into.files += files

