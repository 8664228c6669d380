"""Rule loader: paths -> ``Rule`` records and ``LoadError``s.

Reads every YAML document of every ``.yml``/``.yaml`` file below the given paths, merges Sigma
rule collections (``action: global`` / ``reset`` / ``repeat``), recognises correlation and filter
documents, and extracts what the resolver needs: the log source, every EventID, the ``Channel`` and
``Provider_Name`` values and the field names used in the detection. One bad file never stops the
rest: it becomes a ``LoadError`` with its path, the line where known and a one-line reason.
"""
from __future__ import annotations

import os
import re
import reprlib
import stat
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

# PyYAML and yaml_rs are imported on first use (``_pyyaml()``, ``_yaml_rs_module()``): a run that takes
# every rule from the cache parses nothing and skips both imports (~25 ms).
_yaml: Any = None
_UNSET: Any = object()


def _pyyaml() -> Any:
    """The ``yaml`` module, with ``_Loader`` and ``_RuleLoader`` defined on first use."""
    global _yaml, _Loader, _RuleLoader
    if _yaml is not None:
        return _yaml
    import yaml

    try:  # the C loader is several times faster; fall back to pure Python where libyaml is missing
        from yaml import CSafeLoader as loader_base
    except ImportError:  # pragma: no cover - depends on the PyYAML build
        from yaml import SafeLoader as loader_base  # type: ignore[assignment]

    class RuleLoader(loader_base):  # type: ignore[misc, valid-type]
        """The safe loader, except that a scalar YAML 1.1 cannot convert (``date: 2020-02-30``,
        ``!!float abc``, an integer of 5000 digits) is kept as the text written instead of raising a bare
        ValueError. yaml_rs (parse_datetime=False) reads such values as text too, so both paths agree."""

        def construct_object(self, node: Any, deep: bool = False) -> Any:
            deep_before = self.deep_construct
            try:
                return super().construct_object(node, deep=deep)
            except yaml.YAMLError:
                raise
            except (ValueError, TypeError, AttributeError, OverflowError, IndexError, KeyError) as exc:
                self.deep_construct = deep_before
                self.recursive_objects.pop(node, None)
                if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
                    self.constructed_objects[node] = node.value
                    return node.value
                raise yaml.constructor.ConstructorError(
                    None, None, f"cannot read {node.tag} ({_short_text(str(exc) or type(exc).__name__, 80)})",
                    node.start_mark) from None

    RuleLoader.__name__ = RuleLoader.__qualname__ = "_RuleLoader"
    _Loader, _RuleLoader = loader_base, RuleLoader
    _yaml = yaml
    return yaml


def _yaml_rs_module() -> Any:
    """yaml_rs (a YAML parser in Rust, several times faster; used only where it must agree with PyYAML),
    or None where it is not installed."""
    module = globals().get("_yaml_rs", _UNSET)
    if module is _UNSET:
        try:
            import yaml_rs as module
        except ImportError:  # pragma: no cover - the fallback is PyYAML alone
            module = None
        globals()["_yaml_rs"] = module
    return module


def __getattr__(name: str) -> Any:  # PEP 562: ``rules.yaml``, ``rules._yaml_rs`` etc. import on first access
    if name == "_yaml_rs":
        return _yaml_rs_module()
    if name in ("yaml", "_Loader", "_RuleLoader"):
        _pyyaml()
        return _yaml if name == "yaml" else globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def prepare_parsers() -> None:
    """Import both YAML parsers now (before forking workers, so that no worker imports them again)."""
    _yaml_rs_module()
    _pyyaml()


_FINGERPRINT: Any = None


def parser_fingerprint() -> tuple[Any, ...]:
    """What a parse result depends on besides the text and this package's version, cheaply (no import):
    the size and modification time of this module and of the installed PyYAML (with libyaml) and yaml_rs
    packages (an upgrade rewrites their ``__init__.py``, which holds ``__version__``). Part of the rule
    cache's tag and of the guide-data cache's key, so an edited loader or another parser version never
    reuses results parsed under the old one."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        from importlib.util import find_spec

        entries: list[Any] = []
        for name in (None, "yaml", "yaml_rs"):
            try:
                origin = __file__ if name is None else getattr(find_spec(name), "origin", None)
                st = os.stat(origin) if origin else None
            except (ImportError, ValueError, OSError):
                origin = st = None
            entries.append((name, origin, st.st_size, st.st_mtime_ns) if st is not None else (name, origin))
        _FINGERPRINT = tuple(entries)
    return _FINGERPRINT


#: Top-level keys whose values the loader reads; only these must agree between the two parsers.
_READ_KEYS = ("title", "id", "level", "status", "logsource", "detection", "action", "correlation", "filter",
              "tags")
#: PyYAML's implicit resolvers (yaml/resolver.py): a plain scalar matching one of these is not read as a
#: string in YAML 1.1. tests/test_fast_yaml.py checks this list against the installed PyYAML.
_PYYAML_IMPLICIT_PATTERNS = (
    r"""^(?:yes|Yes|YES|no|No|NO
                    |true|True|TRUE|false|False|FALSE
                    |on|On|ON|off|Off|OFF)$""",
    r"""^(?: ~
                    |null|Null|NULL
                    | )$""",
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
                    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
                    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""",
    r"""^(?:[-+]?0b[0-1_]+
                    |[-+]?0[0-7_]+
                    |[-+]?(?:0|[1-9][0-9_]*)
                    |[-+]?0x[0-9a-fA-F_]+
                    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""",
    r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
                    |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
                     (?:[Tt]|[ \t]+)[0-9][0-9]?
                     :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
                     (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
    r"^(?:<<)$",
    r"^(?:=)$",
    r"^(?:!|&|\*)$",
)
_PYYAML_NOT_STR_RE = re.compile("|".join(f"(?:{p})" for p in _PYYAML_IMPLICIT_PATTERNS), re.VERBOSE)
#: First characters of every text those resolvers can match (PyYAML looks them up by first character).
_RESOLVED_FIRST_CHARS = frozenset("yYnNtTfFoO-+0123456789.<~=!&*")
#: Forms yaml_rs never reads as a string when written plain (an integer, float, boolean or null for it, or
#: an error: ``*`` and ``&`` alone are an alias and an anchor): a string of such a form from yaml_rs was
#: quoted, and PyYAML reads a quoted string as a string too. tests/test_fast_yaml.py checks the claim.
_YAML_RS_PLAIN_NOT_STR_RE = re.compile(
    r"(?:[-+]?(?:[0-9]+|0[xX][0-9a-fA-F]+)"
    r"|true|True|TRUE|false|False|FALSE|~|null|Null|NULL"
    r"|[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    r"|[*&])\Z")
#: A token yaml_rs may read as an integer of another value than PyYAML does (``0123``, ``0o17``, ``0X1F``,
#: ``0B1``, ``_1``, ``1_0``...): any plain token of sign, digit or underscore, then letters, digits or
#: underscores, except plain decimals (``[-+]?(0|[1-9][0-9]*)``), which both read alike.
_RISKY_INT_TOKEN_RE = re.compile(  # search it in "\n" + text: the token's first character is found fast
    r"[\s\[{,:](?=[-+0-9_])(?![-+]?(?:0|[1-9][0-9]*)[ \t]*(?:[\r\n#,\]}:]|$))"
    r"[-+]*[0-9_][0-9A-Za-z_]*(?=[ \t]*(?:[\r\n#,\]}:]|$))", re.MULTILINE)
#: An anchor (``&name``) or an alias (``*name``) token. yaml_rs copies aliased nodes (an alias bomb would
#: expand) and reads a recursive alias as null, PyYAML shares them; so a text with both goes to PyYAML.
_ANCHOR_RE = re.compile(r"[\s\[{,:]&([^\s,\[\]{}]+)")
_ALIAS_RE = re.compile(r"[\s\[{,:]\*[^\s,\[\]{}]")
#: Anchor names PyYAML accepts (its scanner stops at any other character).
_PYYAML_ANCHOR_NAME_RE = re.compile(r"[0-9A-Za-z_-]+\Z")

#: Files larger than this are refused without being read (see README, "Bad input").
MAX_RULE_FILE_BYTES = 5 * 1024 * 1024
#: Detection walks stop after this many nodes (guards against YAML alias bombs).
MAX_DETECTION_NODES = 50_000
MAX_DETECTION_DEPTH = 40
#: Event IDs are 16-bit on Windows.
MAX_EVENT_ID = 65535
#: Rule collections merge at most this deep (deeper values replace instead of merging).
MAX_MERGE_DEPTH = 64
#: At most this many problems are listed per file; the rest are summed up in one more entry.
MAX_ERRORS_PER_FILE = 100

LEVELS = ("informational", "low", "medium", "high", "critical")
STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported")
RULE_SUFFIXES = (".yml", ".yaml")

# Field names whose values the loader collects (besides EventID).
_CHANNEL_FIELDS = {"channel"}
_PROVIDER_FIELDS = {"provider_name"}
_EVENTID_FIELDS = {"eventid"}
# Modifiers that keep an EventID value an exact event ID.
_NEUTRAL_MODIFIERS = {"", "all"}


@dataclass(frozen=True)
class LogSource:
    product: str | None = None
    category: str | None = None
    service: str | None = None

    @property
    def key(self) -> tuple[str | None, str | None, str | None]:
        return (self.product, self.category, self.service)

    def label(self) -> str:
        return logsource_label(self.key)


LOGSOURCE_KEYS = ("product", "category", "service")


def logsource_label(key: tuple[str | None, str | None, str | None], compact: bool = False) -> str:
    """'product: windows, category: process_creation' (compact: 'windows / process_creation'), the one
    wording of a log source everywhere (reports, docs, notes); absent parts are left out."""
    present = [(name, value) for name, value in zip(LOGSOURCE_KEYS, key) if value]
    if compact:
        return " / ".join(str(value) for _, value in present) or "(empty)"
    return ", ".join(f"{name}: {value}" for name, value in present) or "(empty logsource)"


def logsource_dict(key: tuple[str | None, str | None, str | None]) -> dict[str, str | None]:
    """A log-source key as the JSON report writes it: every part, None where absent."""
    return dict(zip(LOGSOURCE_KEYS, key))


@dataclass
class Rule:
    path: str
    document: int  # 0-based index of the YAML document in its file
    id: str | None
    title: str | None
    level: str | None
    status: str | None
    logsource: LogSource
    definition: str | None = None
    event_ids: tuple[int, ...] = ()
    channels: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    has_keywords: bool = False
    # The detection as plain tuples (marshal-able, for the cache and worker pipes); see ``detection.py``:
    # condition: the condition text(s), a list meaning "any of them";
    # selections: ((name, branches), ...); a selection is the OR of its branches, a branch the AND of its
    # matches, a match (field or None for a keyword, (modifier, ...), (value text or None, ...)).
    condition: tuple[str, ...] = ()
    selections: tuple[Any, ...] = ()
    tags: tuple[str, ...] = ()   # the rule's ``tags`` as written (``attack.t1059.001``, ``cve.2021-1675``...)

    @property
    def ref(self) -> str:
        """A stable name for the rule in reports: its id, else path#document."""
        return self.id or f"{self.path}#{self.document}"


@dataclass(frozen=True)
class LoadError:
    path: str
    line: int | None
    message: str


@dataclass(frozen=True)
class OtherDocument:
    """A correlation rule or a filter: recognised, counted, not checked for log sources."""

    path: str
    document: int
    kind: str  # "correlation" or "filter"
    id: str | None
    title: str | None


@dataclass
class LoadResult:
    rules: list[Rule] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    others: list[OtherDocument] = field(default_factory=list)
    files: int = 0

    def extend(self, other: "LoadResult") -> None:
        self.rules.extend(other.rules)
        self.errors.extend(other.errors)
        self.others.extend(other.others)
        self.files += other.files


def pack_result(result: LoadResult) -> tuple[Any, ...]:
    """A ``LoadResult`` as plain tuples (for the rule cache and for worker processes): cheaper to pickle,
    marshal and load than the dataclasses. ``unpack_result`` reverses it."""
    return (
        tuple((r.path, r.document, r.id, r.title, r.level, r.status, r.logsource.product, r.logsource.category,
               r.logsource.service, r.definition, r.event_ids, r.channels, r.providers, r.fields, r.has_keywords,
               r.condition, r.selections, r.tags)
              for r in result.rules),
        tuple((e.path, e.line, e.message) for e in result.errors),
        tuple((o.path, o.document, o.kind, o.id, o.title) for o in result.others),
        result.files,
    )


def unpack_result(packed: tuple[Any, ...], into: LoadResult) -> None:
    """Append a ``pack_result`` tuple to ``into``. Raises (TypeError, ValueError...) on a malformed one."""
    rules, errors, others, files = packed
    rule_list = into.rules
    for (path, document, rule_id, title, level, status, product, category, service, definition, event_ids,
         channels, providers, fields, has_keywords, condition, selections, tags) in rules:
        rule_list.append(Rule(path, document, rule_id, title, level, status, LogSource(product, category, service),
                              definition, event_ids, channels, providers, fields, has_keywords, condition,
                              selections, tags))
    into.errors.extend(LoadError(path, line, message) for path, line, message in errors)
    into.others.extend(OtherDocument(path, document, kind, other_id, title)
                       for path, document, kind, other_id, title in others)
    into.files += files


# --------------------------------------------------------------------------- finding files

def display_path(path: str) -> str:
    """A path as reports show it: a file name that is not valid UTF-8 (undecodable bytes, which
    Python keeps as lone surrogates) gets ``\\xNN`` escapes, so every report can be written as UTF-8."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def iter_rule_files(paths: Iterable[str], errors: list[LoadError]) -> Iterator[str]:
    """Yield rule files below ``paths`` in sorted order, each real file once, never looping."""
    for path, _st in iter_rule_files_stat(paths, errors):
        yield path


def iter_rule_files_stat(paths: Iterable[str], errors: list[LoadError]) -> Iterator[tuple[str, os.stat_result]]:
    """As ``iter_rule_files``, with each file's ``os.stat`` result (taken once, by the walk)."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()

    def walk(directory: str) -> Iterator[tuple[str, os.stat_result]]:
        try:
            st = os.stat(directory)
        except OSError as exc:
            errors.append(LoadError(display_path(directory), None, f"cannot read folder: {exc.strerror or exc}"))
            return
        ident = (st.st_dev, st.st_ino)
        if ident in seen_dirs:
            return  # a symlink back into a folder already walked
        seen_dirs.add(ident)
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=_entry_name)
        except OSError as exc:
            errors.append(LoadError(display_path(directory), None, f"cannot read folder: {exc.strerror or exc}"))
            return
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if entry.name.startswith("."):
                    continue  # .git and friends
                yield from walk(entry.path)
            elif entry.name.lower().endswith(RULE_SUFFIXES):
                yield from one_file(entry.path)

    def one_file(path: str) -> Iterator[tuple[str, os.stat_result]]:
        try:
            st = os.stat(path)
        except OSError as exc:
            errors.append(LoadError(display_path(path), None, f"cannot read file: {exc.strerror or exc}"))
            return
        if not stat.S_ISREG(st.st_mode):
            errors.append(LoadError(display_path(path), None, "not a regular file (device, pipe or socket); not read"))
            return
        ident = (st.st_dev, st.st_ino)
        if ident in seen_files:
            return
        seen_files.add(ident)
        yield path, st

    for path in paths:
        if os.path.isdir(path):
            yield from walk(path)
        else:
            yield from one_file(path)


def _entry_name(entry: os.DirEntry) -> str:  # type: ignore[type-arg]
    return entry.name


# --------------------------------------------------------------------------- reading files

def _open_nonblocking(path: str, flags: int) -> int:
    # non-blocking: a pipe swapped in after the folder walk must not hang the run
    return os.open(path, flags | _O_NONBLOCK)


_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def read_text(path: str, size: int | None = None) -> str:
    """Read a rule file as text: UTF-8 with or without BOM, UTF-16 with BOM. Raises ValueError.

    ``size``: the file's size from a ``stat`` the caller just made (the folder walk); else it is looked up.
    Either way a file over the limit is never opened, and no more than the limit + 1 bytes are read."""
    if size is None:
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise ValueError(f"cannot read file: {exc.strerror or exc}") from None
    if size > MAX_RULE_FILE_BYTES:
        raise ValueError(f"file is {size} bytes, over the {MAX_RULE_FILE_BYTES} byte limit; not read")
    try:
        with open(path, "rb", buffering=0, opener=_open_nonblocking) as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ValueError("not a regular file (device, pipe or socket); not read")
            # one read of the whole file (its size + 1 shows growth), then on to the end, never past the limit
            want = min(st.st_size, MAX_RULE_FILE_BYTES) + 1
            chunks: list[bytes] = []
            total = 0
            while total <= MAX_RULE_FILE_BYTES:
                chunk = handle.read(want)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                want = min(MAX_RULE_FILE_BYTES + 1 - total, 1 << 16)
    except OSError as exc:
        raise ValueError(f"cannot read file: {exc.strerror or exc}") from None
    if total > MAX_RULE_FILE_BYTES:
        raise ValueError(f"file is over the {MAX_RULE_FILE_BYTES} byte limit; not read")
    return decode_rule_bytes(chunks[0] if len(chunks) == 1 else b"".join(chunks))


def decode_rule_bytes(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ValueError("not valid UTF-16 text") from None
    if b"\x00" in data:
        raise ValueError("binary file (contains NUL bytes), not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (invalid byte at offset {exc.start})") from None


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
        yaml = _yaml
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


def parse_documents(text: str, allow_fast: bool = True) -> list[Any]:
    """Every YAML document of ``text``, with PyYAML's (YAML 1.1) meaning.

    yaml_rs (YAML 1.2) parses single-document texts without tags, merge keys or aliases; its result is
    kept only when every value the loader reads is a string, mapping, list, boolean, null or integer
    that PyYAML would read the same way (see ``_reads_like_pyyaml``). Anything else, and anything
    yaml_rs rejects, is parsed by PyYAML, so errors and edge cases always get PyYAML's reading and
    messages. tests/test_fast_yaml.py proves the two agree on the whole SigmaHQ corpus.
    """
    if allow_fast:
        doc = load_mapping_like_pyyaml(text, check_all_keys=False)
        if doc is not None:
            return [doc]
    yaml = _pyyaml()
    return list(yaml.load_all(text, Loader=_RuleLoader))


def load_mapping_like_pyyaml(text: str, check_all_keys: bool = True) -> dict[Any, Any] | None:
    """The mapping PyYAML (YAML 1.1) reads from the single-document ``text``, parsed by yaml_rs (several
    times faster); None when that cannot be proven, and then the caller parses ``text`` with PyYAML.

    The proof: the raw text passes ``_fast_candidate``, yaml_rs reads a mapping without error (a
    duplicate key, for one, makes it raise), ``_reads_like_pyyaml`` accepts every value read, and no
    integer token is written in a form the two parsers read differently. ``check_all_keys``: check the
    whole mapping, every key and value (guide data); else only the top-level keys a rule loader reads
    (``_READ_KEYS``). tests/test_fast_yaml.py and tests/test_speed_invariants.py check both uses.
    """
    if not _fast_candidate(text):
        return None
    fast = _yaml_rs_module()
    if fast is None:  # pragma: no cover - yaml_rs not installed
        return None
    try:
        doc = fast.loads(text, parse_datetime=False)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - also a Rust panic; any disagreement is settled by PyYAML
        return None
    if type(doc) is not dict:
        return None
    verdict = _reads_like_pyyaml(doc, check_all_keys)
    if verdict is True or (verdict == "ints" and not _RISKY_INT_TOKEN_RE.search("\n" + text)):
        return doc
    return None


def _fast_candidate(text: str) -> bool:
    """False for texts yaml_rs must not see or may read unlike PyYAML (checked on the raw text)."""
    if text.startswith(("---", "...", "%", "!", "&", "*")) or "<<" in text or "\n---" in text or "\n..." in text:
        return False
    if "%" in text and "\n%" in text:
        return False
    # YAML 1.1 (PyYAML) treats NEL and the Unicode line/paragraph separators as line breaks, YAML 1.2 does not
    if not text.isascii() and ("\x85" in text or "\u2028" in text or "\u2029" in text):
        return False
    if "!" in text and any(marker in text for marker in (" !", "[!", "{!", ",!", "\t!", "\n!")):
        return False
    if "&" in text:
        # An anchor alone changes nothing (neither parser uses it without an alias) if PyYAML accepts its
        # name; an alias without any anchor is an error for both (yaml_rs raises, PyYAML then reports it).
        names = _ANCHOR_RE.findall(text)
        if names and (_ALIAS_RE.search(text) or not all(_PYYAML_ANCHOR_NAME_RE.match(n) for n in names)):
            return False
    return True


def _reads_like_pyyaml(doc: dict[Any, Any], check_all_keys: bool = False) -> bool | str:
    """True: PyYAML reads every value the loader uses alike; "ints": alike if no integer token of the
    text is written in a form the two read differently (``_RISKY_INT_TOKEN_RE``); False: use PyYAML.

    Strings: a string PyYAML would resolve to another type if it was written plain (a YAML 1.1 boolean,
    number, timestamp, null, ``=``, ``<<``) is refused, unless yaml_rs never reads that form as a string
    when plain (then the string was quoted, and PyYAML reads a quoted string as a string too). Keys must
    be such strings. Floats and other types are refused. Only the values of ``_READ_KEYS`` are checked,
    or with ``check_all_keys`` the whole mapping, its own keys included.
    """
    saw_int = False
    stack: list[Any] = [doc] if check_all_keys else [doc[key] for key in _READ_KEYS if key in doc]
    budget = MAX_DETECTION_NODES
    first_chars = _RESOLVED_FIRST_CHARS
    while stack:
        budget -= 1
        if budget < 0:
            return False
        node = stack.pop()
        kind = type(node)
        if kind is str:
            if node and node[0] in first_chars and _PYYAML_NOT_STR_RE.match(node) \
                    and not _YAML_RS_PLAIN_NOT_STR_RE.match(node):
                return False
        elif kind is dict:
            for key in node:
                if type(key) is not str or (key and key[0] in first_chars and _PYYAML_NOT_STR_RE.match(key)
                                            and not _YAML_RS_PLAIN_NOT_STR_RE.match(key)):
                    return False
            stack.extend(node.values())
        elif kind is list:
            stack.extend(node)
        elif node is None or kind is bool:
            continue  # true/false/null are spelled alike in both
        elif kind is int:
            saw_int = True
        else:
            return False  # floats and anything else: their text may mean something else in YAML 1.1
    return "ints" if saw_int else True


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
        ls_values[key] = value.strip().lower() if isinstance(value, str) and value.strip() else None
    definition = logsource.get("definition")
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
    conditions = tuple(c for c in (condition if isinstance(condition, list) else [condition]) if isinstance(c, str))
    if condition is not None and len(conditions) != (len(condition) if isinstance(condition, list) else 1):
        err(f"condition {_short(condition)} is not a string or a list of strings")
    result.rules.append(Rule(
        path=path,
        document=index,
        id=rule_id,
        title=title,
        level=level.lower() if isinstance(level, str) else None,
        status=status.lower() if isinstance(status, str) else None,
        logsource=LogSource(**ls_values),
        definition=definition if isinstance(definition, str) else None,
        event_ids=tuple(sorted(extract.event_ids)),
        channels=tuple(sorted(extract.channels)),
        providers=tuple(sorted(extract.providers)),
        fields=tuple(sorted(extract.fields)),
        has_keywords=extract.has_keywords,
        condition=conditions,
        selections=tuple(extract.selections),
        tags=_tags(doc.get("tags"), err),
    ))


def _tags(value: Any, err: Any) -> tuple[str, ...]:
    """The rule's tags as written (stripped); anything but a list of strings is reported and skipped."""
    if value is None:
        return ()
    if not isinstance(value, list):
        err(f"'tags' is a {_type_name(value)}, not a list")
        return ()
    tags = tuple(dict.fromkeys(v.strip() for v in value if isinstance(v, str) and v.strip()))
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
        self.has_keywords = False
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
            self.selections.append((str(name), tuple(self._branches)))

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
                    self.has_keywords = True
                    keywords.append(_value_text(item))
            if keywords:
                self._branches.append(((None, (), tuple(keywords)),))
        elif value is not None:
            self.has_keywords = True
            self._branches.append(((None, (), (_value_text(value),)),))

    def _map(self, mapping: dict[Any, Any], depth: int) -> None:
        branch: list[tuple[str | None, tuple[str, ...], tuple[str | None, ...]]] = []
        for key, value in mapping.items():
            self._count(depth)
            if not isinstance(key, str):
                self.problems.append(f"detection field name {_short(key)} is not a string")
                continue
            field_name, _, modifiers = key.partition("|")
            field_name = field_name.strip()
            mods = tuple(m.strip().lower() for m in modifiers.split("|")) if modifiers else ()
            items = value if isinstance(value, list) else [value]
            texts = tuple(_value_text(v) for v in items if not isinstance(v, (dict, list)))
            if not field_name:
                self.has_keywords = True  # '|re' etc. on a keyword list
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


def _short_text(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- filters

def level_at_least(level: str | None, minimum: str) -> bool:
    if level not in LEVELS:
        return False
    return LEVELS.index(level) >= LEVELS.index(minimum)


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
