"""``--docs`` (issue 3): one Markdown page per log-source guide, an index, the rules of the checked set on
each page, and an mkdocs.yml that ``mkdocs build --strict`` builds. Rule titles and paths are rule text:
they must stay literal (escaped) and never break a table or the page."""
from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import SAMPLES
from logsource_checker import knowledge
from logsource_checker.docs import FOLD_RULES, _page_path, attack_tags

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


def nav_entries(folder: Path) -> list:
    return yaml.safe_load((folder / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]


def nav_pages(items) -> list[str]:
    pages = []
    for item in items:
        (title, target), = item.items()
        assert isinstance(title, str) and title
        pages.extend(nav_pages(target) if isinstance(target, list) else [target])
    return pages


def check_site(folder: Path, rule_count: int) -> None:
    """Structure every --docs folder must have, whatever the rules."""
    config = yaml.safe_load((folder / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["docs_dir"] == "docs"
    pages = nav_pages(config["nav"])
    expected = {_page_path(g) for g in KB.guides}
    assert len(expected) == len(KB.guides)
    tactic_pages = sorted(p.relative_to(folder / "docs").as_posix() for p in (folder / "docs" / "attack").glob("*.md"))
    assert sorted(pages) == sorted(["index.md", "audit-policy.md", "log-sources.md", *tactic_pages, *expected])
    for page in pages:
        assert (folder / "docs" / page).is_file(), page
    # the products, Windows first, right after the landing page
    titles = [next(iter(item)) for item in config["nav"]]
    assert titles[:3] == ["Overview", "Windows", "Other"], titles
    index = (folder / "docs" / "index.md").read_text(encoding="utf-8")
    assert f"the {rule_count} Sigma rules checked here" in index
    listing = (folder / "docs" / "log-sources.md").read_text(encoding="utf-8")
    for guide in KB.guides:
        assert f"]({_page_path(guide)})" in listing
    for page in pages:
        text = (folder / "docs" / page).read_text(encoding="utf-8")
        for table in tables(text):
            widths = {len(row) for row in table}
            assert len(widths) == 1, f"{page}: a table row with a different number of cells: {table}"


def rules_table(folder: Path, guide_path: str) -> list[list[str]]:
    text = (folder / "docs" / "sources" / f"{guide_path}.md").read_text(encoding="utf-8")
    section = text.split("## Rules in this set", 1)[1]
    assert "Coverage" not in section or "| Coverage |" in section
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
        assert len(rows[0]) == 3  # no policy given: no coverage column
    assert rules_table(out, "windows/services/applocker") == []
    assert "No rule of the checked set uses this log source." in (
        out / "docs" / "sources" / "windows" / "services" / "applocker.md").read_text()
    mkdocs_build(out)
    check_html(out)
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
            assert len(row) == 3, row
            seen[unescape(row[0])] = row
    for title, (_, name) in made.items():
        shown = " ".join(title.split("\n"))
        assert shown in seen, (title, list(seen))
        row = seen[shown]
        assert "49" not in row[0] and "\n" not in row[0]
        assert "<script>" not in row[0] and "]]>" not in row[0] and "<!--" not in row[0]
        assert unescape(row[2]) == name   # relative to the rule folder given


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
    check_html(out)
    tactics = {t.replace("_", "-") for r in report["rules"] for tag in r["tags"]
               if re.fullmatch(r"attack\.([a-z]+(?:[-_][a-z]+)*)", t := tag.strip().lower())}
    pages = {f"attack.{p.stem}" for p in (out / "docs" / "attack").glob("*.md") if p.stem != "index"}
    assert tactics and pages == tactics


ABSOLUTE = re.compile(r"/work/|/tmp/|/home/|[A-Za-z]:\\\\")


def check_html(folder: Path) -> None:
    """The built site: no absolute path on any page, every guide page linked from the navigation (the
    landing page's menu), the Windows menu before the other products, the tactic pages built."""
    site = folder / "site"
    html_pages = sorted(site.rglob("*.html"))
    assert html_pages
    for page in html_pages:
        text = page.read_text(encoding="utf-8")
        found = ABSOLUTE.search(text)
        assert found is None, (page.relative_to(site), text[max(0, found.start() - 80):found.end() + 80])
    landing = (site / "index.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"#]+)"', landing))
    for guide in KB.guides:
        target = _page_path(guide).removesuffix(".md") + "/"
        assert target in links, target
        assert (site / target / "index.html").is_file()
    menus = re.findall(r'class="nav-link dropdown-toggle"[^>]*>\s*([^<]+?)\s*<', landing)
    assert menus[:2] == ["Windows", "Other"], menus
    for tactic in (folder / "docs" / "attack").glob("*.md"):
        assert (site / "attack" / tactic.stem / "index.html").is_file() or tactic.stem == "index"
        assert f"attack/{tactic.stem}/" in links or tactic.stem == "index"


@pytest.mark.parametrize("tags, tactics, techniques", [
    (["attack.persistence", "attack.t1543.003"], {"persistence"}, {"T1543.003"}),
    (["attack.privilege_escalation", "attack.defense-evasion"], {"privilege-escalation", "defense-evasion"}, set()),
    (["ATTACK.T1059", " attack.execution "], {"execution"}, {"T1059"}),
    (["attack.g0010", "attack.s0002", "cve.2021-1675", "detection.threat-hunting"], set(), set()),
    (["attack.t12", "attack.../x", "attack.a b", "attack."], set(), set()),
    ([], set(), set()),
])
def test_attack_tags(tags, tactics, techniques):
    assert attack_tags(tags) == (tactics, techniques)


# tags given to copies of the sample rules: (file-name prefix, tags)
SAMPLE_TAGS = {
    "proc_creation": ["attack.execution", "attack.t1059.001"],
    "security": ["attack.persistence", "attack.privilege_escalation", "attack.t1543.003", "attack.g0010"],
    "registry_set": ["attack.persistence", "attack.t1547.001"],
    "taskscheduler": ["attack.execution"],                 # a tactic without a technique
    "ps_script": ["attack.t1059.001", "attack.<b>x</b>"],  # a technique without a tactic; a tag that is neither
}


@pytest.fixture(scope="module")
def tagged_site(tmp_path_factory):
    """The sample rules (copies, some with ATT&CK tags) documented with the sample policy and built."""
    from typer.testing import CliRunner

    from logsource_checker.cli import app

    base = tmp_path_factory.mktemp("tagged")
    rules = base / "rules"
    for source in RULES.rglob("*.yml"):
        target = rules / source.relative_to(RULES)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text(encoding="utf-8")
        prefix = next((p for p in SAMPLE_TAGS if source.name.startswith(p)), None)
        if prefix:
            docs = list(yaml.safe_load_all(text))
            docs[0]["tags"] = SAMPLE_TAGS[prefix]
            text = yaml.safe_dump_all(docs, allow_unicode=True, sort_keys=False)
        target.write_text(text, encoding="utf-8")
    out, report_file = base / "site", base / "report.json"
    result = CliRunner().invoke(app, [str(rules), "--gpresult", str(SAMPLES / "gpresult" / "advanced-audit.xml"),
                                      "--docs", str(out), "--format", "json", "-o", str(report_file), "--no-cache"],
                                catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output[-2000:]
    mkdocs_build(out)
    return out, json.loads(report_file.read_text(encoding="utf-8"))


def test_docs_with_a_policy_show_coverage(tagged_site):
    out, report = tagged_site
    check_site(out, report["summary"]["rules_checked"])
    check_html(out)
    by_title = {r["title"]: r for r in report["rules"]}
    seen = 0
    for guide_path in SAMPLE_PAGES:
        for row in rules_table(out, guide_path):
            assert len(row) == 4, row
            rule = by_title[unescape(row[0])]
            assert unescape(row[2]) == rule["coverage"] != "not_checked"
            assert not row[3].startswith("/") and unescape(row[3]).endswith(Path(rule["path"]).name)
            seen += 1
    assert seen == sum(1 for r in report["rules"] if r["guide"]) == sum(map(len, SAMPLE_PAGES.values()))
    landing = (out / "docs" / "index.md").read_text(encoding="utf-8")
    levels = {row[0]: row for row in tables(landing.split("## The rule set", 1)[1].split("##", 1)[0])[0][1:]}
    header = tables(landing)[0][0]
    for level, counts in report["summary"]["coverage_by_level"].items():
        row = levels[level]
        for state in ("usable", "partial", "blind", "unknown"):
            assert int(row[header.index(state.capitalize())]) == counts[state], (level, state)
        assert int(row[1]) == sum(counts.values())


def test_landing_page_lists_the_recommended_plan(tagged_site):
    out, report = tagged_site
    chosen = [p for p in report["plans"] if p["chosen"]]
    assert len(chosen) == 1
    landing = (out / "docs" / "index.md").read_text(encoding="utf-8")
    section = landing.split("## Recommended changes", 1)[1]
    rows = tables(section)[0][1:] if chosen[0]["steps"] else []
    assert [unescape(r[0]) for r in rows] == [s["label"] for s in chosen[0]["steps"]]
    assert [int(r[5]) for r in rows] == [s["unblinds"] for s in chosen[0]["steps"]]
    assert f"The {chosen[0]['name']} plan" in section


def test_tactic_pages_list_techniques_and_coverage(tagged_site):
    out, report = tagged_site
    attack = out / "docs" / "attack"
    assert sorted(p.stem for p in attack.glob("*.md")) == ["execution", "index", "persistence",
                                                             "privilege-escalation"]
    expected: dict[tuple[str, str], list[str]] = {}
    for rule in report["rules"]:
        tactics, techniques = attack_tags(rule["tags"])
        for tactic in tactics:
            for technique in techniques or ["(no technique tag)"]:
                expected.setdefault((tactic, technique), []).append(rule["coverage"])
    assert set(expected) == {("execution", "T1059.001"), ("persistence", "T1543.003"),
                             ("persistence", "T1547.001"), ("privilege-escalation", "T1543.003"),
                             ("execution", "(no technique tag)")}
    for (tactic, technique), coverages in expected.items():
        table = tables((attack / f"{tactic}.md").read_text(encoding="utf-8"))[0]
        header, rows = table[0], {r[0]: r for r in table[1:]}
        row = rows[unescape(technique)] if technique in rows else rows[technique.replace("(", "\\(")
                                                                         .replace(")", "\\)")]
        assert int(row[1]) == len(coverages)
        for state in ("usable", "partial", "blind", "unknown"):
            assert int(row[header.index(state.capitalize())]) == coverages.count(state), (tactic, technique, state)
        assert "](../sources/windows/" in row[-1]
    overview = (attack / "index.md").read_text(encoding="utf-8")
    untagged = sum(1 for r in report["rules"] if not attack_tags(r["tags"])[0])
    assert f"{untagged} of the {len(report['rules'])} rules carry no tactic tag (1 of them carry a technique tag)" \
        in overview
    html_page = (out / "site" / "attack" / "persistence" / "index.html").read_text(encoding="utf-8")
    assert "T1547.001" in html_page and 'href="../../sources/windows/' in html_page


def test_long_rule_lists_fold_and_wrap(cli, tmp_path):
    """A guide page with more rules than FOLD_RULES puts them in a <details>; the site's CSS wraps long cells."""
    rules = tmp_path / "rules"
    source = RULES / "windows" / "proc_creation_encoded_powershell.yml"
    docs = list(yaml.safe_load_all(source.read_text(encoding="utf-8")))
    for i in range(FOLD_RULES + 1):
        docs[0]["id"] = f"00000000-0000-4000-8000-{i:012d}"
        docs[0]["title"] = f"Copy {i}"
        target = rules / ("deep/" * 3) / f"proc_creation_{'long_name_' * 8}{i}.yml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    out = tmp_path / "site"
    run_docs(cli, rules, out)
    page = (out / "docs" / "sources" / "windows" / "core" / "process_creation.md").read_text(encoding="utf-8")
    assert f"<summary>Show the {FOLD_RULES + 1} rules</summary>" in page
    assert len(rules_table(out, "windows/core/process_creation")) == FOLD_RULES + 1
    assert "overflow-wrap: anywhere" in (out / "docs" / "extra.css").read_text(encoding="utf-8")
    audit = (out / "docs" / "audit-policy.md").read_text(encoding="utf-8")
    assert "4774, 4775, 4776, 4777" in audit and "4774,4775" not in audit
    mkdocs_build(out)
    built = (out / "site" / "sources" / "windows" / "core" / "process_creation" / "index.html").read_text()
    assert "<details>" in built and built.count("<td>Copy ") == FOLD_RULES + 1
    check_html(out)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of an 8-bit RGB or RGBA PNG (what Chromium writes), filters undone."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(b"".join(bytes(line[x:x + 3]) for x in range(0, stride, bpp)))
        prev = line
    return width, height, rows


def test_landing_page_screenshot_is_not_blank(tagged_site, tmp_path):
    """Headless Chromium renders the built landing page: the picture has text and a menu bar, not one colour."""
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium or chromium-browser on PATH")
    out, _ = tagged_site
    shot = tmp_path / "landing.png"
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1000,700", f"--screenshot={shot}",
                           (out / "site" / "index.html").as_uri()],
                          capture_output=True, text=True, timeout=MKDOCS_TIMEOUT)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1000, 700)
    pixels = [row[x:x + 3] for row in rows[::4] for x in range(0, len(row), 12)]
    colours = set(pixels)
    background = max(colours, key=pixels.count)
    assert len(colours) > 20, len(colours)                       # text is anti-aliased: many shades
    assert sum(p != background for p in pixels) > len(pixels) // 50   # more than 2% of the page is drawn


def test_docs_summary_counts_the_log_source_pages(cli, tmp_path):
    """The one-line summary of --docs counts the log-source pages written (not every file)."""
    import re as _re

    site = tmp_path / "site"
    result = cli(SAMPLES / "rules", "--docs", site)
    assert result.exit_code in (0, 1), result.stderr
    pages = [p for p in (site / "docs" / "sources").rglob("*.md")]
    match = _re.search(r"(\d+) log-source pages", result.stdout)
    assert match and int(match.group(1)) == len(pages) > 0
