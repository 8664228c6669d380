"""YAML reading for rules and guide data alike: PyYAML (YAML 1.1) is the meaning; yaml_rs (YAML 1.2, several
times faster) is used only where a proof on the text and on what it read shows PyYAML would read the same.

PyYAML and yaml_rs are imported on first use (``_pyyaml()``, ``_yaml_rs_module()``): a run that takes
every rule and the guide data from the caches parses nothing and skips both imports (~25 ms).
"""
from __future__ import annotations

import os
import re
from typing import Any

from .extract import MAX_DETECTION_NODES
from .model import _short_text

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


def __getattr__(name: str) -> Any:  # PEP 562: ``yaml_read.yaml``, ``yaml_read._yaml_rs`` etc. import on first access
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


def pyyaml_safe_loader() -> tuple[Any, Any]:
    """``(yaml, Loader)``: PyYAML and its fastest safe loader (libyaml's where built), imported on first
    use; for readers of other YAML than rules (the guide data)."""
    yaml = _pyyaml()
    return yaml, _Loader


def loaded_pyyaml() -> Any:
    """The ``yaml`` module if it was imported already, else None (then no error can be PyYAML's)."""
    return _yaml


_FINGERPRINT: Any = None


def parser_fingerprint() -> tuple[Any, ...]:
    """What a parse result depends on besides the text and this package's version, cheaply (no import):
    the size and modification time of every module of the ``rules`` package (walking, reading, this
    proof, extraction, the model and its packing all shape a cached result) and of the installed PyYAML
    (with libyaml) and yaml_rs packages (an upgrade rewrites their ``__init__.py``, which holds
    ``__version__``). Part of the rule cache's tag and of the guide-data cache's key, so an edited loader
    or another parser version never reuses results parsed under the old one."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        from importlib.util import find_spec

        here = os.path.dirname(os.path.abspath(__file__))
        try:
            own = [(name, os.path.join(here, name)) for name in sorted(os.listdir(here)) if name.endswith(".py")]
        except OSError:
            own = [(os.path.basename(__file__), __file__)]
        entries: list[Any] = []
        for name, origin in [*own, ("yaml", None), ("yaml_rs", None)]:
            try:
                origin = origin or getattr(find_spec(name), "origin", None)
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

