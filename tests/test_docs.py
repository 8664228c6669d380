"""``--docs`` (issue 3): one Markdown page per log-source guide, an index, the rules of the checked set on
each page, and an mkdocs.yml that ``mkdocs build --strict`` builds. Rule titles and paths are rule text:
they must stay literal (escaped) and never break a table or the page."""
from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import SAMPLES
from logsource_checker import knowledge
from logsource_checker.docs import _page_path

RULES = SAMPLES / "rules"
KB = knowledge.load()
MKDOCS_TIMEOUT = 300

# page (from the guide's path) -> titles of the sample rules it must list
SAMPLE_PAGES = {
    "windows/core/security": ["Admin Share Access Or Logon From A New Host",
                              "Failed Logon Attempts Against The Builtin Administrator",
                              "Service Installed Or Scheduled Task Created From A Temp Folder"],
    "windows/core/process_creation": ["Encoded PowerShell Command Line", "Renamed Windows Binary"],
    "windows/services/system": ["Service Control Manager Oddities", "Service Start Type Changed To Disabled"],
    "windows/core/ps_module": ["Invoke-Expression Seen By Module Logging"],
    "windows/core/ps_script": ["PowerShell Download Cradle In A Script Block"],
    "windows/sysmon/registry_set": ["Run Key Value Pointing To A Public Folder"],
    "windows/services/taskscheduler": ["Scheduled Task Registered By An Unusual User"],
    "other/cloud/aws_cloudtrail": ["CloudTrail Logging Stopped"],
    "other/linux/auditd": ["Shadow File Read Through Auditd"],
}

HOSTILE_TITLES = [
    'Quote " and \' and ` backtick',
    "Pipe | in | the title",
    "Line one\nline two",
    "Template {{ 7*7 }} and {% raw %} and ${7*7}",
    "<script>alert(1)</script> tag",
    "CDATA end ]]> and <!-- comment -->",
    "[link](javascript:alert(1)) and ![img](x) and *emphasis* and # heading",
]


def run_docs(cli, rules: Path, out: Path) -> None:
    result = cli(rules, "--docs", out, "--format", "json", "--no-cache")
    assert result.exit_code == 0, result.stderr  # no policy input, every log source mapped


def mkdocs_build(folder: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=folder, capture_output=True,
                          text=True, timeout=MKDOCS_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def split_row(line: str) -> list[str]:
    """Cells of a Markdown table row; a pipe escaped with a backslash or inside a code span stays in its cell."""
    assert line.startswith("|") and line.endswith("|"), line
    cells, cell, i, in_code = [], "", 1, ""
    body = line[1:-1]
    while i <= len(body):
        ch = body[i - 1]
        if in_code:
            cell += ch
            if body.startswith(in_code, i - 1):
                cell += in_code[1:]
                i += len(in_code) - 1
                in_code = ""
        elif ch == "\\" and i < len(body):
            cell += ch + body[i]
            i += 1
        elif ch == "`":
            run = re.match(r"`+", body[i - 1:]).group(0)
            in_code = run
            cell += run
            i += len(run) - 1
        elif ch == "|":
            cells.append(cell)
            cell = ""
        else:
            cell += ch
        i += 1
    cells.append(cell)
    return [c.strip() for c in cells]


def tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of a page as rows of cells (header first, separator dropped)."""
    out, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                out.append(current)
            if not re.fullmatch(r"\|(\s*-+:?\s*\|)+|\|(\s*:?-+:?\s*\|)+", line):
                current.append(split_row(line))
        else:
            current = None
    return out


def check_site(folder: Path, rule_count: int) -> None:
    """Structure every --docs folder must have, whatever the rules."""
    config = yaml.safe_load((folder / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["docs_dir"] == "docs"
    nav_pages = []

    def walk(items):
        for item in items:
            (title, target), = item.items()
            assert isinstance(title, str) and title
            if isinstance(target, list):
                walk(target)
            else:
                nav_pages.append(target)

    walk(config["nav"])
    expected = {_page_path(g) for g in KB.guides}
    assert len(expected) == len(KB.guides)
    assert sorted(nav_pages) == sorted(["index.md", "audit-policy.md", *expected])
    for page in nav_pages:
        assert (folder / "docs" / page).is_file(), page
    index = (folder / "docs" / "index.md").read_text(encoding="utf-8")
    assert f"the {rule_count} Sigma rules checked here" in index
    for guide in KB.guides:
        assert f"]({_page_path(guide)})" in index
    for page in [*expected, "index.md", "audit-policy.md"]:
        text = (folder / "docs" / page).read_text(encoding="utf-8")
        for table in tables(text):
            widths = {len(row) for row in table}
            assert len(widths) == 1, f"{page}: a table row with a different number of cells: {table}"


def rules_table(folder: Path, guide_path: str) -> list[list[str]]:
    text = (folder / "docs" / "sources" / f"{guide_path}.md").read_text(encoding="utf-8")
    section = text.split("## Rules in this set", 1)[1]
    found = tables(section)
    return found[0][1:] if found else []


def unescape(cell: str) -> str:
    return html.unescape(re.sub(r"\\(.)", r"\1", cell))


def test_docs_on_the_samples(cli, tmp_path):
    out = tmp_path / "site"
    run_docs(cli, RULES, out)
    check_site(out, 13)
    for guide_path, titles in SAMPLE_PAGES.items():
        rows = rules_table(out, guide_path)
        assert sorted(unescape(r[0]) for r in rows) == sorted(titles), guide_path
        assert all(r[2] == "not\\_checked" for r in rows)
    assert rules_table(out, "windows/services/applocker") == []
    assert "No rule of the checked set uses this log source." in (
        out / "docs" / "sources" / "windows" / "services" / "applocker.md").read_text()
    mkdocs_build(out)
    page = (out / "site" / "sources" / "windows" / "core" / "process_creation" / "index.html").read_text()
    # commands and paths from our data render as code, inside the list of their requirement
    assert ('<code>auditpol /set /subcategory:"{0CCE922B-69AE-11D9-BED3-505054503030}" /success:enable</code>'
            in html.unescape(page))
    assert "```" not in page


def test_docs_twice_give_the_same_files(cli, tmp_path):
    run_docs(cli, RULES, tmp_path / "a")
    run_docs(cli, RULES, tmp_path / "b")
    files_a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    files_b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert files_a == files_b


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    """The sample rules, each titled with one hostile title (file names too), documented and built."""
    from typer.testing import CliRunner

    from logsource_checker.cli import app

    base = tmp_path_factory.mktemp("hostile")
    rules = base / "rules"
    sources = sorted((RULES / "windows").glob("security_*.yml")) + sorted((RULES / "windows").glob("proc_*.yml"))
    made = {}
    for i, title in enumerate(HOSTILE_TITLES):
        source = sources[i % len(sources)]
        docs = list(yaml.safe_load_all(source.read_text(encoding="utf-8")))
        docs[0]["title"] = title
        docs[0]["id"] = f"00000000-0000-4000-8000-{i:012d}"
        name = f"{i}_{re.sub(r'[^A-Za-z0-9]+', '_', title)[:20]}|`[x].yml"
        target = rules / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump_all(docs, allow_unicode=True, sort_keys=False), encoding="utf-8")
        made[title] = (source.stem, name)
    out = base / "site"
    result = CliRunner().invoke(app, [str(rules), "--docs", str(out), "--format", "json", "--no-cache"],
                                catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output[-2000:]
    return out, made


def test_hostile_titles_stay_escaped_in_markdown(hostile_site):
    out, made = hostile_site
    check_site(out, len(HOSTILE_TITLES))
    seen = {}
    for guide_path in ("windows/core/security", "windows/core/process_creation"):
        for row in rules_table(out, guide_path):
            assert len(row) == 4, row
            seen[unescape(row[0])] = row
    for title, (_, name) in made.items():
        shown = " ".join(title.split("\n"))
        assert shown in seen, (title, list(seen))
        row = seen[shown]
        assert "49" not in row[0] and "\n" not in row[0]
        assert "<script>" not in row[0] and "]]>" not in row[0] and "<!--" not in row[0]
        assert unescape(row[3]).endswith(name)


def test_hostile_titles_render_as_text(hostile_site):
    out, made = hostile_site
    mkdocs_build(out)
    text = ""
    for guide_path in ("windows/core/security", "windows/core/process_creation"):
        text += (out / "site" / "sources" / guide_path / "index.html").read_text(encoding="utf-8")
    assert "<script>alert" not in text and "javascript:" not in text.replace("javascript:alert(1))", "")
    assert 'href="javascript' not in text and "<img" not in text and "<em>emphasis</em>" not in text
    cells = [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", text)]   # what a browser shows
    for title in made:
        assert " ".join(title.split("\n")) in cells, title


def test_docs_on_the_corpus(cli, tmp_path, corpus_rules):
    out = tmp_path / "site"
    result = cli(corpus_rules, "--docs", out, "--format", "json")
    assert result.exit_code == 0  # every log source and EventID is known (pre-Vista IDs beside their replacement)
    report = result.json()
    check_site(out, report["summary"]["rules_checked"])
    listed = 0
    for guide in KB.guides:
        listed += len(rules_table(out, _page_path(guide).removeprefix("sources/").removesuffix(".md")))
    mapped = sum(1 for r in report["rules"] if r["guide"])
    assert listed == mapped
    mkdocs_build(out)
