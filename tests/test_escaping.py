"""Rule text never escapes into generated Markdown, XML, scripts or the terminal."""
from __future__ import annotations

import re

import pytest

from logsource_checker.templating import (ESCAPERS, Trusted, environment, escape_markdown, escape_xml, escape_xml_comment, link_target,
                                          markdown_url,
                                          one_line, render, script_comment)

HOSTILE = [
    'quote " and \' here',
    "amp & pipe | semicolon ;",
    "line one\nline two\r\nline three",
    "{{ 7 * 7 }} {% raw %} {# c #}",
    "<script>alert(1)</script>",
    "]]> </Sysmon> <!-- -->",
    "$(rm -rf /) `whoami` %COMSPEC% ^& ",
    "[link](javascript:alert(1)) ![img](x) *bold* _it_ # head",
    "\x1b[31mred\x1b[0m \u202eevil\u202c \x00",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_one_line_folds_and_strips_control(text):
    out = one_line(text)
    assert "\n" not in out and "\r" not in out and "\x1b" not in out and "\u202e" not in out and "\x00" not in out


MARKDOWN_LINE_STARTS = ["# heading", "- item", "+ item", "1. item", "2) item", "=====", "  * item", "> quote",
                        "    indented code", "| a | b |", "{: #id .cls }", "`code`", "<b>bold</b>", "&amp; &lt;"]


@pytest.mark.parametrize("text", HOSTILE + MARKDOWN_LINE_STARTS)
def test_markdown_escape_renders_literally(text):
    """Rendered by Python-Markdown (what mkdocs uses), as a paragraph and inside a table cell, the escaped
    text shows exactly the original characters: no element, link, list, heading or extra cell appears."""
    import html

    markdown = pytest.importorskip("markdown")
    out = escape_markdown(text)
    assert "<" not in out and ">" not in out and "\n" not in out
    expected = " ".join(one_line(text).split())
    paragraph = markdown.markdown(out, extensions=["tables", "attr_list"])
    assert paragraph.startswith("<p>") and paragraph.endswith("</p>") and paragraph.count("<") == 2, paragraph
    assert " ".join(html.unescape(paragraph[3:-4]).split()) == expected
    table = markdown.markdown(f"| a | b |\n|---|---|\n| {out} | x |", extensions=["tables", "attr_list"])
    cells = re.findall(r"<td>(.*?)</td>", table, flags=re.S)
    assert len(cells) == 2 and cells[1] == "x", table
    assert " ".join(html.unescape(cells[0]).split()) == expected


@pytest.mark.parametrize("text", HOSTILE)
def test_xml_escapes(text):
    assert "<" not in escape_xml(text) and ">" not in escape_xml(text) and '"' not in escape_xml(text)
    comment = escape_xml_comment(text)
    assert "--" not in comment and not comment.endswith("-") and "<" not in comment


@pytest.mark.parametrize("text", HOSTILE)
def test_script_comment_keeps_only_harmless_characters(text):
    assert re.fullmatch(r"[A-Za-z0-9 .,:;/()_=+#@\-]*", script_comment(text))


def test_templates_never_evaluate_values():
    # a value that looks like a template is output, never rendered
    out = render("report.md.j2", "markdown", r=_report("{{ 7 * 7 }}"), s=_report("x")["summary"], verbose=True,
                 ls_label=lambda ls: "x", rel=lambda path: path)
    assert "49" not in out and out.count("\\{\\{ 7 \\* 7 \\}\\}") == 3  # title, lost selection, field


def test_trusted_values_pass_and_urls_are_checked():
    assert markdown_url("https://learn.microsoft.com/a_b") == "<https://learn.microsoft.com/a_b>"
    markdown = pytest.importorskip("markdown")
    for hostile in ("javascript:alert(1)", "[x](javascript:alert(1))", "<javascript:alert(1)>", "http://plain.example"):
        assert "<a" not in markdown.markdown(markdown_url(hostile))
        assert link_target(hostile) == "#"


@pytest.mark.parametrize("flavour", ["markdown", "text", "xml", "script"])
def test_only_trusted_values_skip_escaping(flavour):
    """Every {{ value }} is escaped for the output format unless it is wrapped in Trusted."""
    text = "<b>x</b> *y* & `z` \"q\" [l](u)\nline two"
    template = environment(flavour).from_string("[{{ value }}]")
    assert template.render(value=Trusted(text)) == f"[{text}]"
    escaped = template.render(value=text)
    assert escaped == f"[{ESCAPERS[flavour](text)}]" and escaped != f"[{text}]"


def _report(title: str) -> dict:
    summary = {"rules_checked": 1, "rules": 1, "files": 1, "errors": 0, "logsources": 1, "requirements": 0,
               "unmapped_logsources": 0, "unmapped_event_ids": 0, "policy_checked": False, "coverage": {},
               "coverage_by_level": {}, "unsatisfiable_field_rules": 1}
    return {"summary": summary, "logsources": [], "policy": None, "unmapped": {"logsources": [], "event_ids": []},
            "errors": [], "recommendations": [],
            "rules": [{"coverage": "not_checked", "title": title, "level": "high", "path": "p.yml",
                       "lost_selections": [title], "unsatisfiable_fields": [title]}]}
