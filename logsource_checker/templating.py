"""Jinja2 environments for every generated artefact, with escaping that cannot be forgotten.

Every ``{{ expression }}`` passes through the environment's ``finalize`` hook, which escapes it for
the target format, unless the value is wrapped in ``Trusted`` (values that come from our own
validated data, never from a rule). Templates are loaded from ``templates/`` and never compiled from
rule text.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable

from .knowledge import data_root

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Escaped everywhere: emphasis, code, links, attribute lists, tables. '#', '+', '-' and '1.' / '1)' only make
# markup at the start of a line (headings, lists), where they are escaped too; '(' ')' '!' '.' elsewhere are
# inert once '[' and ']' are escaped.
_MD_SPECIAL = set("\\`*_{}[]|")
_MD_LINE_START_RE = re.compile(r"^([#+\-]|\d+[.)])")
# '$' (math in some renderers) has no backslash escape in Python-Markdown (mkdocs): '\$' would show its
# backslash there, so it becomes a character reference, which every renderer shows as '$'. '~' is left as
# it is for the same reason ('~~' can strike text through in GitHub's Markdown: cosmetic only).
_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "$": "&dollar;"}


class Trusted(str):
    """A string from our own data, safe to place in a generated file as it is."""


def one_line(value: Any) -> str:
    """Any value as a single printable line: newlines folded, control and bidi characters removed."""
    text = "" if value is None else str(value)
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return _CONTROL_RE.sub("", text)


def escape_markdown(value: Any) -> str:
    """Inline Markdown text that renders literally: no markup, links, HTML or table breaks."""
    out = []
    for ch in one_line(value):
        if ch in _HTML_ENTITIES:
            out.append(_HTML_ENTITIES[ch])
        elif ch in _MD_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    text = "".join(out)
    text = text.strip()  # leading blanks would make an indented code block at the start of a line
    match = _MD_LINE_START_RE.match(text)
    if match:  # a heading or list item if it began a line
        head = match.group(1)
        text = head[:-1] + "\\" + head[-1] + text[match.end():]
    return text


def escape_xml_comment(value: Any) -> str:
    text = one_line(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    while "--" in text:
        text = text.replace("--", "- -")
    return text.rstrip("-")


def escape_xml(value: Any) -> str:
    return (one_line(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


_SCRIPT_COMMENT_SAFE_RE = re.compile(r"[^A-Za-z0-9 .,:;/()_=+#@\-]")


def script_comment(value: Any) -> str:
    """Text for a comment in a .cmd/.ps1/.reg file: only harmless characters survive."""
    return _SCRIPT_COMMENT_SAFE_RE.sub("_", one_line(value))


_URL_RE = re.compile(r"^https://[A-Za-z0-9._~:/?#@!$&'*+,;=%-]+$")


def markdown_url(value: Any) -> str:
    """A URL from our data as a Markdown autolink; anything else is shown as escaped text."""
    text = "" if value is None else str(value)
    if _URL_RE.match(text):
        return Trusted(f"<{text}>")
    return escape_markdown(text)


def link_target(value: Any) -> str:
    """A URL from our data as a Markdown link target; '#' when it is not a plain https URL."""
    text = "" if value is None else str(value)
    return Trusted(text) if _URL_RE.match(text) else Trusted("#")


def nrules(count: Any) -> str:
    """'1 rule', '2 rules'."""
    return f"{count} rule" if count == 1 else f"{count} rules"


_BACKTICKS_RE = re.compile(r"`+")


def code_span(value: Any) -> str:
    """Any value as a one-line Markdown code span (shown literally; backticks in it cannot close it)."""
    text = one_line(value)
    longest = max((len(m) for m in _BACKTICKS_RE.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return Trusted(f"{fence}{pad}{text}{pad}{fence}")


def _finalizer(escape: Callable[[Any], str]) -> Callable[[Any], Any]:
    def finalize(value: Any) -> Any:
        if isinstance(value, Trusted):
            return value
        if isinstance(value, bool) or (isinstance(value, int)):
            return str(value)
        return escape(value)
    return finalize


ESCAPERS: dict[str, Callable[[Any], str]] = {
    "markdown": escape_markdown,
    "text": one_line,
    "xml": escape_xml,
    "script": script_comment,
}


@lru_cache(maxsize=8)
def environment(flavour: str):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_root() / "templates")),
        autoescape=False,
        finalize=_finalizer(ESCAPERS[flavour]),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["trusted"] = Trusted
    env.filters["md"] = escape_markdown
    env.filters["xml_comment"] = escape_xml_comment
    env.filters["comment"] = script_comment
    env.filters["one_line"] = one_line
    env.filters["url"] = markdown_url
    env.filters["href"] = link_target
    env.filters["nrules"] = nrules
    env.filters["code"] = code_span
    return env


def render(template: str, flavour: str, **context: Any) -> str:
    return environment(flavour).get_template(template).render(**context)
