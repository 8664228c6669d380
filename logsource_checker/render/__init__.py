"""Renderers: one module per output format behind one small interface.

``render(report, fmt, verbose) -> str`` for every format; the terminal renderer can also print
straight to a rich console.
"""
from __future__ import annotations

from typing import Any, Callable

FORMATS = ("terminal", "text", "markdown", "json")


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
    else:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return render


def render(report: dict[str, Any], fmt: str, verbose: bool = False) -> str:
    return _renderer(fmt)(report, verbose)
