"""A rule a producer serves only partly (it loses selections the producer cannot see) gets a recommendation:
which other way of meeting the need would serve the lost part, with its volume, what is not yet known about it,
and how many rules it would make fully usable."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import SAMPLES
from logsource_checker.engine import CheckOptions, check
from logsource_checker.report import build

GPRESULT = SAMPLES / "gpresult" / "advanced-audit.xml"   # Process Creation audited, command line off
SYSMON = SAMPLES / "sysmon" / "partial-config.xml"       # ProcessCreate logged (one exclusion)

CERTUTIL = """\
    title: Certutil by name or by original name
    id: 1a2b3c4d-1111-4222-8333-444455556666
    status: test
    level: high
    logsource:
      product: windows
      category: process_creation
    detection:
      selection_img:
        Image|endswith: '\\certutil.exe'
      selection_ofn:
        OriginalFileName: 'CertUtil.exe'
      condition: 1 of selection_*
    """
WHOAMI = """\
    title: Whoami
    id: 2b3c4d5e-2222-4333-8444-555566667777
    status: test
    level: medium
    logsource:
      product: windows
      category: process_creation
    detection:
      selection:
        Image|endswith: '\\whoami.exe'
      condition: selection
    """


def _rules(folder: Path, *texts: str) -> Path:
    for n, text in enumerate(texts):
        (folder / f"r{n}.yml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


# (rules, extra inputs, recoveries expected: (option, requirements, statuses, rules, usable after, volume))
CASES = [
    ([CERTUTIL], {}, [("Sysmon event 1 (ProcessCreate)", ["sysmon:1"], {"sysmon:1": "unknown"}, 1, 1, "high")]),
    ([CERTUTIL, WHOAMI], {}, [("Sysmon event 1 (ProcessCreate)", ["sysmon:1"], {"sysmon:1": "unknown"}, 1, 1,
                               "high")]),
    ([WHOAMI], {}, []),                                   # not partial: nothing to recover
    ([CERTUTIL], {"sysmon_config": str(SYSMON)}, []),     # Sysmon 1 is collected: the rule is usable already
]


@pytest.mark.parametrize("texts,extra,want", CASES, ids=["partial", "partial+usable", "usable", "sysmon-given"])
def test_lost_selections_get_a_recovery(tmp_path, texts, extra, want):
    folder = _rules(tmp_path, *texts)
    result = check(CheckOptions(paths=[str(folder)], use_cache=False, gpresult=[str(GPRESULT)], **extra))
    report = build(result)
    got = [(r["option"], r["requirements"], r["statuses"], r["rules"], r["usable_after"], r["volume"])
           for r in report["lost_selection_recoveries"]]
    assert got == want
    for entry in report["lost_selection_recoveries"]:
        assert entry["selections"] == ["selection_ofn"]
        assert entry["serving"] == ["Security event 4688 (Audit Process Creation)"]


@pytest.mark.parametrize("fmt", ["terminal", "text", "markdown"])
def test_reports_show_the_recovery(cli, tmp_path, fmt):
    folder = _rules(tmp_path, CERTUTIL)
    out = cli(folder, "--gpresult", GPRESULT, *(["-f", fmt] if fmt != "terminal" else [])).stdout
    assert "Sysmon event 1" in out and "selection_ofn" in out and "high" in out


def test_corpus_recoveries(corpus_rules, policy_samples):
    """On a real policy (full59 audits Process Creation) the partial rules are named with what would serve their
    lost selections; a recovery lists only rules that lose selections now, and never more usable rules than
    it names. Prints the figures (pytest -s)."""
    result = check(CheckOptions(paths=[str(corpus_rules)], use_cache=False,
                                auditpol=[str(policy_samples / "auditpol_backup_full59_with-options.csv")]))
    report = build(result)
    losing = {res.rule.ref for res in result.resolution.rules if res.lost_selections}
    print(f"\nrules partial through lost selections: {len(losing)}")
    for entry in report["lost_selection_recoveries"]:
        print(f"  {entry['option']}: {entry['rules']} rules ({entry['high_critical']} high/critical), "
              f"{entry['usable_after']} fully usable after, volume {entry['volume']}, statuses {entry['statuses']}")
        assert entry["rules"] == len(entry["rule_refs"]) and set(entry["rule_refs"]) <= losing
        assert 0 <= entry["usable_after"] <= entry["rules"]
    assert losing and report["lost_selection_recoveries"]
    assert losing <= {ref for e in report["lost_selection_recoveries"] for ref in e["rule_refs"]}
