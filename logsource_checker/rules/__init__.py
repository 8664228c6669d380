"""Rule loader: paths -> ``Rule`` records and ``LoadError``s.

Reads every YAML document of every ``.yml``/``.yaml`` file below the given paths, merges Sigma
rule collections (``action: global`` / ``reset`` / ``repeat``), recognises correlation and filter
documents, and extracts what the resolver needs: the log source, every EventID, the ``Channel`` and
``Provider_Name`` values and the field names used in the detection. One bad file never stops the
rest: it becomes a ``LoadError`` with its path, the line where known and a one-line reason.

One module per job: ``model`` (the records), ``walk`` (finding and reading files), ``yaml_read``
(PyYAML, the yaml_rs fast path and its proof), ``extract`` (documents -> rules), ``cache`` (packing for
the rule cache). This module ties them together (``load_file``) and re-exports their public names.
"""
from __future__ import annotations

from typing import Any, Iterable

from . import yaml_read
from .cache import pack_result, unpack_result
from .extract import (MAX_DETECTION_DEPTH, MAX_DETECTION_NODES, MAX_EVENT_ID, MAX_MERGE_DEPTH,
                      _documents_to_rules)
from .model import (LEVELS, LOGSOURCE_KEYS, STATUSES, LoadError, LoadResult, LogSource, OtherDocument, Rule,
                    _short_text, level_at_least, logsource_dict, logsource_label)
from .walk import (MAX_RULE_FILE_BYTES, RULE_SUFFIXES, decode_rule_bytes, display_path, iter_rule_files,
                   iter_rule_files_stat, read_text)
from .yaml_read import (load_mapping_like_pyyaml, parse_documents, parser_fingerprint, prepare_parsers,
                        pyyaml_safe_loader)

__all__ = ["LEVELS", "LOGSOURCE_KEYS", "MAX_DETECTION_DEPTH", "MAX_DETECTION_NODES", "MAX_ERRORS_PER_FILE",
           "MAX_EVENT_ID", "MAX_MERGE_DEPTH", "MAX_RULE_FILE_BYTES", "RULE_SUFFIXES", "STATUSES", "LoadError",
           "LoadResult", "LogSource", "OtherDocument", "Rule", "decode_rule_bytes", "display_path",
           "iter_rule_files", "iter_rule_files_stat", "level_at_least", "load_file", "load_mapping_like_pyyaml",
           "load_paths", "logsource_dict", "logsource_label", "pack_result", "parse_documents",
           "parser_fingerprint", "prepare_parsers", "pyyaml_safe_loader", "read_text", "unpack_result"]

#: At most this many problems are listed per file; the rest are summed up in one more entry.
MAX_ERRORS_PER_FILE = 100


def load_file(path: str, size: int | None = None) -> LoadResult:
    """Load every document of one file. Never raises for bad content. ``size``: see ``read_text``."""
    shown = display_path(path)
    try:
        result = _load_file(path, shown, size)
    except (RecursionError, ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as exc:
        # a bug, not a verdict on the file: report it instead of ending the whole run with a traceback
        result = LoadResult(files=1)
        result.errors.append(LoadError(shown, None, f"internal error while reading the rule: {type(exc).__name__}: "
                                                   f"{_short_text(str(exc), 120)}"))
    if len(result.errors) > MAX_ERRORS_PER_FILE:
        more = len(result.errors) - MAX_ERRORS_PER_FILE
        result.errors[MAX_ERRORS_PER_FILE:] = [LoadError(shown, None, f"{more} more problems in this file not listed")]
    return result


def _load_file(path: str, shown: str, size: int | None = None) -> LoadResult:
    result = LoadResult(files=1)
    try:
        text = read_text(path, size)
    except ValueError as exc:
        result.errors.append(LoadError(shown, None, str(exc)))
        return result
    try:
        documents = parse_documents(text)
    except RecursionError:
        result.errors.append(LoadError(shown, None, "YAML nested too deeply"))
        return result
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:  # a constructor the loader missed
        result.errors.append(LoadError(shown, None, f"not valid YAML: {_short_text(str(exc), 200)}"))
        return result
    except Exception as exc:  # PyYAML's errors (only PyYAML raises out of parse_documents)
        yaml = yaml_read.loaded_pyyaml()
        if yaml is None or not isinstance(exc, yaml.YAMLError):
            raise
        if isinstance(exc, yaml.MarkedYAMLError):
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            reason = _short_text(str(exc.problem or exc.context or "YAML syntax error"), 200)
            result.errors.append(LoadError(shown, line, f"not valid YAML: {reason}"))
        else:
            result.errors.append(LoadError(shown, None, f"not valid YAML: {_short_text(str(exc), 200)}"))
        return result
    _documents_to_rules(shown, documents, result)
    return result


def load_paths(paths: Iterable[str], progress: Any = None) -> LoadResult:
    """Load every rule file below ``paths`` (sequentially; see ``engine`` for the parallel path)."""
    result = LoadResult()
    files = list(iter_rule_files(paths, result.errors))
    if progress is not None:
        progress.start(len(files))
    for path in files:
        result.extend(load_file(path))
        if progress is not None:
            progress.advance()
    return result


_PARTS = ("yaml_read", "extract", "walk", "model", "cache")


def __getattr__(name: str) -> Any:
    """PEP 562: ``rules._READ_KEYS``, ``rules._yaml_rs``, ``rules._pyyaml`` and the other private names of
    the modules this package was split into still resolve (for code written before the split). Public
    names are imported above; new code imports from the module that does the job."""
    if name.startswith("_") and not name.startswith("__"):
        import sys

        for part in _PARTS:
            module = sys.modules[f"{__name__}.{part}"]
            try:
                return getattr(module, name)
            except AttributeError:
                continue
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
