"""Reports people read first (issue 14): the terminal's first screen, log-source filters, what decides an
unknown rule, relative paths, SARIF, ATT&CK Navigator layers, rule tags."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import SAMPLES

RULES = SAMPLES / "rules"
GPRESULT = SAMPLES / "gpresult" / "advanced-audit.xml"
SCHEMA = Path(__file__).parent / "schemas" / "sarif-schema-2.1.0.json"
DC_GPRESULT = "gpresult_x_childdc_adlab_2023.xml"


def _rule(folder: Path, name: str, *, product: str = "windows", service: str | None = "security",
          category: str | None = None, event_id: int = 4624, level: str = "high", tags: str = "") -> Path:
    ls = f"    product: {product}\n" + (f"    service: {service}\n" if service else "") + \
        (f"    category: {category}\n" if category else "")
    text = (f"title: {name}\nid: {name}\nlevel: {level}\n{tags}logsource:\n{ls}"
            f"detection:\n    selection:\n        EventID: {event_id}\n    condition: selection\n")
    path = folder / f"{name}.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def narrow(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


# --------------------------------------------------------------------------- first screen

def _first_screen_checks(out: str, changes: list[dict]) -> None:
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    top = lines[:40]
    assert top[0].startswith("Verdict: ")
    assert any(line.startswith("Changes, ") for line in top)
    # every change of the first screen is one line: number, kind, its name whole or cut with an ellipsis
    shown = [line for line in top if re.match(r"^\s*\d+\s{2}(audit|policy|channel|sysmon|sacl)\s", line)]
    assert len(shown) == min(len(changes), 20)
    for line, step in zip(shown, changes):
        name = step["label"]
        assert name in line or (line.split(step["kind"], 1)[1].strip().split("…")[0].strip() in name
                                and "…" in line), (line, name)
        assert str(step["unblinds"]) in line.split()


def test_first_screen_on_the_samples(cli, narrow):
    report = cli(RULES, "--gpresult", GPRESULT, "--format", "json").json()
    chosen = next(p for p in report["plans"] if p["chosen"])
    out = cli(RULES, "--gpresult", GPRESULT).stdout
    _first_screen_checks(out, chosen["steps"])
    assert "Log sources (" not in out          # the log-source table comes with -v only
    assert "Log sources (" in cli(RULES, "--gpresult", GPRESULT, "-v").stdout


def test_first_screen_on_the_corpus_with_a_dc_gpresult(cli, narrow, corpus_rules, policy_samples):
    gpresult = policy_samples / DC_GPRESULT
    if not gpresult.is_file():
        pytest.skip(f"{DC_GPRESULT} not in the policy samples")
    report = cli(corpus_rules, "--gpresult", gpresult, "--format", "json").json()
    chosen = next(p for p in report["plans"] if p["chosen"])
    out = cli(corpus_rules, "--gpresult", gpresult).stdout
    _first_screen_checks(out, chosen["steps"])
    c = report["summary"]["coverage"]
    assert out.splitlines()[0] == (f"Verdict: {c['usable']} usable, {c['partial']} partial, {c['blind']} blind, "
                                   f"{c['unknown']} unknown of {report['summary']['rules_checked']} rules")
    outside = report["summary"]["outside_windows"]
    assert outside["rules"] > 500 and "windows" not in outside["by_source"]
    from logsource_checker.decide import AUDITD, OUTSIDE, SYSMON_LINUX, WINDOWS_OTHER

    # Linux rules that audit rules or a Sysmon for Linux configuration would decide say so, not "outside"
    linux = sum(1 for r in report["rules"] if r["logsource"]["product"] == "linux")
    assert report["summary"]["unknown_by_input"][AUDITD] > 100 and report["summary"]["unknown_by_input"][SYSMON_LINUX]
    assert outside["by_source"].get("linux", 0) < linux - 100

    # the unknown rules counted under "outside Windows" are the ones the one line counts
    assert report["summary"]["unknown_by_input"][OUTSIDE] == outside["rules"]
    windows_only = cli(corpus_rules, "--gpresult", gpresult, "--product", "windows", "--format", "json").json()
    assert OUTSIDE not in windows_only["summary"]["unknown_by_input"]
    assert windows_only["summary"]["outside_windows"]["rules"] == 0
    assert windows_only["summary"]["unknown_by_input"].get(WINDOWS_OTHER) == \
        report["summary"]["unknown_by_input"].get(WINDOWS_OTHER)
    assert f"{outside['rules']} rules need collection outside Windows policy: " in " ".join(out.split())
    # every unknown rule says which input would decide it, and none falls to the catch-all
    unknown = [r for r in report["rules"] if r["coverage"] == "unknown"]
    assert unknown and all(r["decided_by"] for r in unknown)
    assert "an input showing this setting" not in report["summary"]["unknown_by_input"]
    assert all(not r["decided_by"] for r in report["rules"] if r["coverage"] != "unknown")


def test_change_line_never_breaks_a_word(cli, narrow):
    """A long change name is cut with an ellipsis on its own line, never folded onto the next."""
    out = cli(RULES).stdout
    rows = [line for line in out.splitlines() if re.match(r"^\s*\d+\s{2}[a-z]+\s", line)]
    assert rows
    for line in rows:
        assert re.search(r"\s\d+\s{2}(low|medium|high !|unknown !)\s*$", line), line


# --------------------------------------------------------------------------- filters

@pytest.mark.parametrize("option,values,key", [
    ("--product", ["windows"], 0), ("--product", ["linux", "aws"], 0),
    ("--service", ["security"], 2), ("--category", ["process_creation"], 1)])
def test_logsource_filters(cli, option, values, key, tmp_path):
    everything = cli(RULES, "--format", "json").json()
    args = [a for v in values for a in (option, v.upper() if key == 0 else v)]   # any case
    report = cli(RULES, *args, "--format", "json").json()
    field = ("product", "category", "service")[key]
    wanted = [r for r in everything["rules"] if r["logsource"][field] in values]
    assert wanted and sorted(r["path"] for r in report["rules"]) == sorted(r["path"] for r in wanted)
    assert report["summary"]["filtered_out"] == len(everything["rules"]) - len(wanted)


def test_product_windows_leaves_no_rule_outside_windows(cli):
    report = cli(RULES, "--product", "windows", "--format", "json").json()
    assert report["summary"]["outside_windows"] == {"rules": 0, "by_source": {}}
    everything = cli(RULES, "--format", "json").json()["summary"]["outside_windows"]
    assert everything["rules"] == sum(everything["by_source"].values()) > 0


# --------------------------------------------------------------------------- unknown: what decides it

_PROCESS = ("process_creation", None, "Image|endswith: '\\x.exe'")
_TASKS = (None, "taskscheduler", "EventID: 129")


@pytest.mark.parametrize("source,policy,extra,coverage,hints", [
    # native way missing (no computer results), Sysmon way unknown: either input decides
    (_PROCESS, "no-computer-results.xml", (), "unknown", {"--sysmon-config", "gpresult /x run elevated"}),
    (_PROCESS, "no-computer-results.xml", ("--sysmon-config", SAMPLES / "sysmon" / "partial-config.xml"),
     "usable", set()),
    # a channel off by default that no input configures: its state on the machine decides
    (_TASKS, "advanced-audit.xml", (), "unknown", {"wevtutil gl"}),
])
def test_unknown_names_the_deciding_input(cli, tmp_path, source, policy, extra, coverage, hints):
    category, service, selection = source
    rule = tmp_path / "r.yml"
    rule.write_text("title: t\nid: t\nlevel: high\nlogsource:\n    product: windows\n"
                    + (f"    category: {category}\n" if category else "") + (f"    service: {service}\n" if service else "")
                    + f"detection:\n    selection:\n        {selection}\n    condition: selection\n", encoding="utf-8")
    report = cli(rule, "--gpresult", SAMPLES / "gpresult" / policy, *extra, "--format", "json", "--no-cache").json()
    entry = report["rules"][0]
    assert entry["coverage"] == coverage
    assert all(any(h in d for d in entry["decided_by"]) for h in hints) and bool(entry["decided_by"]) == bool(hints)
    out = " ".join(cli(rule, "--gpresult", SAMPLES / "gpresult" / policy, *extra, "--no-cache").stdout.split())
    assert all(h in out for h in hints)


# --------------------------------------------------------------------------- relative paths

@pytest.mark.parametrize("fmt", ["terminal", "text", "markdown"])
def test_human_reports_show_paths_below_the_folder_given(cli, tmp_path, fmt):
    folder = tmp_path / "my-rules"
    (folder / "sub").mkdir(parents=True)
    _rule(folder / "sub", "r1", event_id=4624)
    (folder / "sub" / "broken.yml").write_text("title: [unclosed\n", encoding="utf-8")
    out = cli(folder, "--format", fmt, "-v", "--no-cache").stdout
    assert str(folder) not in out and str(tmp_path) not in out
    assert "sub/broken.yml" in out
    report = cli(folder, "--format", "json", "--no-cache").json()
    assert report["rules"][0]["path"] == str(folder / "sub" / "r1.yml")      # JSON keeps the path as given
    assert report["rule_roots"] == [str(folder)]


# --------------------------------------------------------------------------- SARIF

def _validate(sarif: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(sarif, json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_sarif_validates_and_has_one_result_per_blind_or_partial_rule(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(RULES.parent.parent)           # the project root: paths relative to it
    report = cli("samples/rules", "--gpresult", GPRESULT, "--format", "json").json()
    sarif = json.loads(cli("samples/rules", "--gpresult", GPRESULT, "--format", "sarif").stdout)
    _validate(sarif)
    run = sarif["runs"][0]
    weak = [r for r in report["rules"] if r["coverage"] in ("blind", "partial")]
    assert weak and len(run["results"]) == len(weak)
    ids = {d["id"] for d in run["tool"]["driver"]["rules"]}
    assert ids <= {"missing-audit-subcategory", "missing-registry-policy", "missing-channel",
                   "missing-sysmon-event", "missing-sacl", "held-back-change", "unknown-change"}
    levels = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "informational": "note"}
    by_path = {r["path"]: r for r in weak}
    for result in run["results"]:
        location = result["locations"][0]["physicalLocation"]
        uri = location["artifactLocation"]["uri"]
        assert location["artifactLocation"]["uriBaseId"] == "SRCROOT" and uri.startswith("samples/rules/")
        rule = by_path[uri]
        assert result["level"] == levels[rule["level"]]
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        line = Path(uri).read_text(encoding="utf-8").splitlines()[location["region"]["startLine"] - 1]
        assert line.startswith("logsource")
        if rule["changes"]:
            first = next(q for q in report["requirements"] if q["id"] == rule["changes"][0])
            assert result["ruleId"].startswith("missing-") and first["name"] in result["message"]["text"]


def test_sarif_of_hostile_titles_stays_valid(cli, tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    path = _rule(folder, "hostile", event_id=4663)
    path.write_text(path.read_text().replace("title: hostile", "title: '\"}]} <x> \\u0000 [red]x[/red]'"))
    sarif = json.loads(cli(folder, "--gpresult", GPRESULT, "--format", "sarif", "--no-cache").stdout)
    _validate(sarif)


@pytest.mark.parametrize("text,document,line", [
    ("title: a\nlogsource:\n  product: windows\n", 0, 2),
    ("---\ntitle: a\nlogsource: {product: windows}\n", 0, 3),
    ("title: a\nlogsource:\n  product: x\n---\ntitle: b\n\nlogsource:\n  product: y\n", 1, 7),
    ("title: a\ndetection: {logsource: 1}\n", 0, None),
])
def test_logsource_line(tmp_path, text, document, line):
    from logsource_checker.render.sarif import logsource_line

    path = tmp_path / "r.yml"
    path.write_text(text, encoding="utf-8")
    assert logsource_line(str(path), document) == line


# --------------------------------------------------------------------------- tags and the Navigator

@pytest.mark.parametrize("tags,expected", [
    ("tags:\n    - attack.execution\n    - attack.t1059.001\n    - attack.T1003\n    - cve.2021-1675\n",
     ["attack.execution", "attack.t1059.001", "attack.T1003", "cve.2021-1675"]),
    ("", []),
])
def test_rule_tags_are_kept_through_the_cache(cli, tmp_path, tags, expected):
    _rule(tmp_path, "r", tags=tags)
    for _ in range(2):     # parsed, then read back from the cache
        report = cli(tmp_path, "--format", "json").json()
        assert report["rules"][0]["tags"] == expected and report["summary"]["errors"] == 0


def test_tags_that_are_not_a_list_are_reported(cli, tmp_path):
    _rule(tmp_path, "r", tags="tags: attack.t1059\n")
    report = cli(tmp_path, "--format", "json", "--no-cache").json()
    assert report["rules"][0]["tags"] == [] and "'tags' is a" in report["errors"][0]["message"]


def test_navigator_layers(cli, tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    # 4624 is produced by the sample policy's Logon auditing; 4663 (File System) is not set there
    _rule(folder, "usable", event_id=4624, tags="tags:\n    - attack.t1078\n    - attack.t1021.002\n")
    _rule(folder, "blind", event_id=4663, tags="tags:\n    - attack.t1021.002\n    - attack.t1005\n")
    layers_file = tmp_path / "layers.json"
    result = cli(folder, "--gpresult", GPRESULT, "--navigator", layers_file, "--format", "json", "--no-cache")
    report = result.json()
    coverage = {r["id"]: r["coverage"] for r in report["rules"]}
    layers = json.loads(layers_file.read_text(encoding="utf-8"))
    assert [layer["domain"] for layer in layers] == ["enterprise-attack"] * 2
    now, after = ({t["techniqueID"]: t for t in layer["techniques"]} for layer in layers)
    assert set(now) == set(after) == {"T1078", "T1021.002", "T1005"}
    for layer in layers:
        assert layer["versions"]["layer"] == "4.5" and len(layer["gradient"]["colors"]) >= 2
        assert {item["color"] for item in layer["legendItems"]} >= {t["color"] for t in layer["techniques"]}
        assert all(0 <= t["score"] <= 100 and t["metadata"] for t in layer["techniques"])
    from logsource_checker.render.navigator import COLORS

    assert now["T1078"]["color"] == COLORS[coverage["usable"]]
    assert now["T1005"]["color"] == COLORS[coverage["blind"]]
    assert now["T1021.002"]["comment"].startswith("2 rules")
    after_cov = {r["id"]: r["coverage_after_plan"] for r in report["rules"]}
    assert after["T1005"]["color"] == COLORS[after_cov["blind"]]
    assert coverage["blind"] == "blind" and after_cov["blind"] == "usable"


def test_docs_site_shows_no_absolute_rule_path(cli, tmp_path):
    folder = tmp_path / "my-rules"
    folder.mkdir()
    _rule(folder, "r1", event_id=4624)
    site = tmp_path / "site"
    cli(folder, "--docs", site, "--no-cache")
    pages = [p.read_text(encoding="utf-8") for p in site.rglob("*.md")]
    assert any("r1.yml" in page for page in pages)
    assert not any(str(tmp_path) in page for page in pages)


def test_decided_by_memo_agrees_with_each_rule(corpus_rules, policy_samples):
    """report.py judges what decides a rule once per shape of rule: the same answer as rule by rule."""
    from logsource_checker.decide import deciding_inputs
    from logsource_checker.engine import CheckOptions, check
    from logsource_checker.report import build

    gpresult = policy_samples / DC_GPRESULT
    if not gpresult.is_file():
        pytest.skip(f"{DC_GPRESULT} not in the policy samples")
    result = check(CheckOptions(paths=[str(corpus_rules)], gpresult=[str(gpresult)], use_cache=False))
    statuses = {rid: req.status for rid, req in result.resolution.requirements.items()}
    report = build(result, verbose=False)
    expected = [deciding_inputs(res, statuses, result.resolution.requirements) for res in result.resolution.rules]
    assert [r["decided_by"] for r in report["rules"]] == expected
    assert sum(1 for hints in expected if hints) == report["summary"]["coverage"]["unknown"]


def test_a_filter_value_no_rule_has_is_named(cli):
    result = cli(RULES, "--product", "windwos", "--product", "windows", "--format", "json")
    assert "--product 'windwos' matches no rule's logsource" in result.stderr
    assert "'windows'" not in result.stderr
    assert result.json()["summary"]["rules_checked"] > 0


def test_navigator_with_emit_is_listed_in_the_summary(cli, tmp_path):
    layers = tmp_path / "layers.json"
    result = cli(RULES, "--gpresult", GPRESULT, "--emit", tmp_path / "out", "--navigator", layers)
    assert "Wrote the ATT&CK Navigator layers to" in result.stdout and str(layers) in result.stdout
    assert [layer["name"] for layer in json.loads(layers.read_text(encoding="utf-8"))] == [
        "Sigma coverage: now", "Sigma coverage: after the native plan"]
    again = cli(RULES, "--gpresult", GPRESULT, "--navigator", layers, "--format", "json")
    assert "Wrote the ATT&CK Navigator layers" in again.stderr and again.json()["summary"]


# (rule: product, category, service; the input its hint names)
LINUX_HINTS = [
    (("linux", "process_creation", None), ["AUDITD", "SYSMON_LINUX"]),
    (("linux", "network_connection", None), ["AUDITD", "SYSMON_LINUX"]),
    (("linux", None, "sshd"), ["OUTSIDE"]),
]


@pytest.mark.parametrize("logsource,hints", LINUX_HINTS, ids=[ls[1] or ls[2] for ls, _ in LINUX_HINTS])
def test_linux_rules_name_the_input_that_decides_them(cli, tmp_path, logsource, hints):
    """A Linux rule met by audit rules or a Sysmon for Linux event is decided by --auditd-rules or a Sysmon for
    Linux --sysmon-config; only a rule needing a log collected elsewhere (sshd's) is 'outside Windows policy'."""
    from logsource_checker import decide

    product, category, service = logsource
    ls = "".join(f"    {k}: {v}\n" for k, v in (("product", product), ("category", category), ("service", service)) if v)
    (tmp_path / "r.yml").write_text(f"title: r\nid: r\nlevel: high\nlogsource:\n{ls}detection:\n    selection:\n"
                                     f"        Image|endswith: '/curl'\n    condition: selection\n", encoding="utf-8")
    report = cli(tmp_path / "r.yml", "--gpresult", SAMPLES / "gpresult" / "advanced-audit.xml", "-f", "json",
                 "--no-cache").json()
    (rule,) = report["rules"]
    assert rule["coverage"] == "unknown"
    assert sorted(rule["decided_by"]) == sorted(getattr(decide, name) for name in hints)
    assert report["summary"]["outside_windows"]["rules"] == (1 if hints == ["OUTSIDE"] else 0)
