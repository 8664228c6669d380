"""Renderers: one module per output format behind one small interface.

``render(report, fmt, verbose) -> str`` for every format; the terminal renderer can also print
straight to a rich console.
"""
from __future__ import annotations

from typing import Any, Callable

FORMATS = ("terminal", "text", "markdown", "json", "sarif")


def rel_path(path: str, roots: list[str] | tuple[str, ...] = ()) -> str:
    """A rule path as human reports show it: relative to the rule folder given that holds it (a file given
    by itself shows its name); a path below no root is shown as given. JSON keeps paths as given."""
    import os

    for root in roots:
        if path == root:
            return os.path.basename(path) or path
        prefix = root if root.endswith(("/", os.sep)) else root + os.sep
        if path.startswith(prefix) or (os.sep != "/" and path.startswith(root + "/")):
            return path[len(prefix):] or path
    return path


def ls_label(ls: dict[str, Any], compact: bool = False) -> str:
    """The label of a report's log-source entry (``rules.logsource_label``)."""
    from ..rules import LOGSOURCE_KEYS, logsource_label

    return logsource_label(tuple(ls.get(k) for k in LOGSOURCE_KEYS), compact)  # type: ignore[arg-type]


def _renderer(fmt: str) -> Callable[[dict[str, Any], bool], str]:
    if fmt == "json":
        from .json_format import render
    elif fmt == "markdown":
        from .markdown_format import render
    elif fmt == "text":
        from .text_format import render
    elif fmt == "terminal":
        from .terminal import render
    elif fmt == "sarif":
        from .sarif import render
    else:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return render


def render(report: dict[str, Any], fmt: str, verbose: bool = False) -> str:
    return _renderer(fmt)(report, verbose)
