"""How much the tailored sysmon.xml logs compared with collecting every event type the rules need.

For each rule set, ``check-logsources RULES --emit DIR`` (no policy input) writes the tailored
configuration; every Sysmon record of the .evtx samples is then run through the reference Sysmon filter
evaluator of the tests (tests/sysmon_eval.py, written from Sysmon's documented and published rules). The
baseline is what the previous emitter wrote: an empty ``onmatch="exclude"`` for every type the rules need,
i.e. every record of those types.

Needs the ``evtx`` package (``pip install -e '.[bench]'``), which reads .evtx files; it is not a runtime
dependency of the tool.

    python benchmarks/sysmon_tailoring.py [--rules DIR ...] [--evtx FILE ...] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from sysmon_eval import SysmonConfig, sigma_matches  # noqa: E402

from logsource_checker import knowledge  # noqa: E402

SHARED = Path(os.environ.get("LOGSOURCE_CHECKER_SHARED") or ROOT.parent / "shared") / "corpus"
DEFAULT_EVTX = sorted((SHARED / "evtx-samples").glob("*.evtx"))
DEFAULT_RULES = [ROOT / "samples" / "rules", SHARED / "sigmahq-rules"]


def sysmon_records(paths: list[Path], channel: str) -> list[tuple[int, dict[str, str]]]:
    import evtx

    records = []
    for path in paths:
        for record in evtx.PyEvtxParser(str(path)).records_json():
            event = json.loads(record["data"]).get("Event", {})
            system = event.get("System", {})
            if system.get("Channel") != channel:
                continue
            event_id = system.get("EventID")
            event_id = event_id.get("#text") if isinstance(event_id, dict) else event_id
            data = event.get("EventData") or {}
            fields = {k: "" if v is None else str(v) for k, v in data.items() if not k.startswith("#")}
            records.append((int(event_id), fields))
    return records


_EVALUATED = {"contains", "startswith", "endswith", "all", "windash", "re", "cased"}


def _detection(path: str) -> dict | None:
    """A rule's detection when the reference Sigma evaluator of the tests can judge it exactly, else None."""
    import yaml

    try:
        docs = list(yaml.safe_load_all(Path(path).read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError):
        return None
    if len(docs) != 1 or not isinstance(docs[0], dict) or not isinstance(docs[0].get("detection"), dict):
        return None
    detection = docs[0]["detection"]
    if not isinstance(detection.get("condition"), str) or "|" in detection["condition"]:
        return None
    for name, selection in detection.items():
        if name in ("condition", "timeframe"):
            continue
        for item in (selection if isinstance(selection, list) else [selection]):
            if not isinstance(item, dict):
                continue
            for key, values in item.items():
                mods = set(str(key).split("|")[1:])
                values = values if isinstance(values, list) else [values]
                if not mods <= _EVALUATED or any(v is None or isinstance(v, (dict, list)) for v in values):
                    return None
    return detection


def rule_hits(report: dict, records: list[tuple[int, dict[str, str]]]) -> tuple[int, list[tuple[int, int, str]]]:
    """(rules judged, [(record index, event id, rule id)] for every record a judged rule matches)."""
    judged, hits = 0, []
    for rule in report["rules"]:
        ids = {int(r.split(":")[1]) for r in rule.get("requirements") or [] if r.startswith("sysmon:")}
        detection = _detection(rule["path"]) if ids else None
        if detection is None:
            continue
        judged += 1
        for index, (event_id, fields) in enumerate(records):
            if event_id in ids:
                try:
                    matched = sigma_matches(detection, fields)
                except Exception:  # noqa: BLE001 - a condition the small evaluator cannot read: no verdict
                    break
                if matched:
                    hits.append((index, event_id, rule["id"]))
    return judged, hits


def measure(rules: Path, records: list[tuple[int, dict[str, str]]], kb) -> dict:
    elements = {i: e.element for i, e in kb.sysmon_events.items() if e.element}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "logsource_checker", str(rules), "--emit", tmp, "--no-cache",
                        "-f", "json", "-o", str(Path(tmp) / "check.json")], check=False, capture_output=True)
        xml = (Path(tmp) / "sysmon.xml").read_bytes()
        report = json.loads((Path(tmp) / "report.json").read_text(encoding="utf-8"))
    config = SysmonConfig(xml, elements)
    judged, hits = rule_hits(report, records)
    missed = sorted({(i, rid) for i, event_id, rid in hits if config.logs(event_id, records[i][1]) is False})
    needed = {n for n in config.root.iter() if isinstance(n.tag, str) and n.get("onmatch")}
    needed_types = {n.tag for n in needed}
    tailored_types = {n.tag for n in needed if n.get("onmatch") == "include"}
    per_type: dict[str, Counter] = {}
    for event_id, fields in records:
        element = elements.get(event_id)
        counts = per_type.setdefault(element or f"event {event_id} (not filterable)", Counter())
        counts["records"] += 1
        if element is None:
            continue  # logged whatever the configuration says: not counted in either column
        if element in needed_types:
            counts["collect_all"] += 1
            counts["tailored"] += bool(config.logs(event_id, fields))
    total = Counter()
    for counts in per_type.values():
        total.update(counts)
    return {"rules": str(rules), "rules_judged": judged, "records_matched": len({i for i, _, _ in hits}),
            "rule_matches": len(hits), "missed": [list(m) for m in missed],
            "types_needed": sorted(needed_types), "types_tailored": sorted(tailored_types),
            "per_type": {k: dict(v) for k, v in sorted(per_type.items())}, "total": dict(total)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, action="append")
    parser.add_argument("--evtx", type=Path, action="append")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    kb = knowledge.load(use_cache=False)
    records = sysmon_records(args.evtx or DEFAULT_EVTX, kb.sysmon_meta["channel"])
    print(f"{len(records)} Sysmon records in {len(args.evtx or DEFAULT_EVTX)} .evtx files")
    results = []
    for rules in args.rules or DEFAULT_RULES:
        if not rules.exists():
            print(f"{rules}: not found, skipped")
            continue
        result = measure(rules, records, kb)
        results.append(result)
        total = result["total"]
        share = total.get("tailored", 0) / total["collect_all"] if total.get("collect_all") else 0.0
        print(f"\n{rules}: types needed {', '.join(result['types_needed'])}; tailored (include): "
              f"{', '.join(result['types_tailored']) or 'none'}")
        print(f"| event type | records | collect-all logs | tailored logs |\n|---|---:|---:|---:|")
        for name, counts in result["per_type"].items():
            print(f"| {name} | {counts['records']} | {counts.get('collect_all', 0)} | {counts.get('tailored', 0)} |")
        print(f"rules the reference Sigma evaluator can judge: {result['rules_judged']}; they match "
              f"{result['records_matched']} records ({result['rule_matches']} rule/record pairs); "
              f"matched records the tailored configuration drops: {len(result['missed'])}")
        print(f"| all | {total.get('records', 0)} | {total.get('collect_all', 0)} | {total.get('tailored', 0)} "
              f"({share:.0%}) |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
