#!/usr/bin/env python3
"""Benchmark ``--fleet``: a generated fleet of HOSTS hosts in GROUPS distinct policies, end to end.

    python benchmarks/fleet.py [--corpus DIR] [--hosts 1000] [--groups 20] [--runs 3] [--seed 13]

The fleet is made reproducibly (``--seed``): each distinct policy is an audit.csv whose rows are a seeded
random choice of the subcategories in the guide data (names and GUIDs come from the installed data, none
is written here) with a seeded success/failure setting; one host in eight also gets the project's sample
gpresult (``samples/gpresult/advanced-audit.xml``) beside it, and every host's file is its own copy. Hosts
are spread over the policies round robin. Measured: the median wall time and the largest peak RSS of
``check-logsources <corpus> --fleet <hosts> -f json -o FILE --no-cache`` over ``--runs`` fresh processes,
next to one single-host run (``--auditpol`` of the first policy) for scale. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value\n"
LABELS = {1: "Success", 2: "Failure", 3: "Success and Failure"}


def policies(count: int, seed: int) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from logsource_checker import knowledge

    subs = sorted(knowledge.load(None, use_cache=False).subcategories.values(), key=lambda s: s.guid)
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < count:
        rows = [f",System,{s.gpo_name},{s.guid},{LABELS[v]},,{v}\n"
                for s in rng.sample(subs, rng.randint(5, len(subs))) for v in [rng.randint(1, 3)]]
        text = HEADER + "".join(sorted(rows))
        if text not in texts:
            texts.append(text)
    return texts


def make_fleet(folder: Path, hosts: int, groups: int, seed: int) -> list[str]:
    texts = policies(groups, seed)
    sample = ROOT / "samples" / "gpresult" / "advanced-audit.xml"
    for i in range(hosts):
        host = folder / f"host{i:05d}"
        host.mkdir(parents=True)
        (host / "audit.csv").write_text(texts[i % groups], encoding="utf-8")
        if (i // groups) % 8 == 7:   # some hosts have an RSoP export too (a distinct policy again)
            shutil.copyfile(sample, host / "gpresult.xml")
    return texts


def timed(command: list[str], env: dict) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one fresh process (its RSS is the largest child's since start)."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus" / "sigmahq-rules"))
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    tool = shutil.which("check-logsources") or str(Path(sys.executable).parent / "check-logsources")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        texts = make_fleet(tmpdir / "hosts", args.hosts, args.groups, args.seed)
        (tmpdir / "one.csv").write_text(texts[0], encoding="utf-8")
        env = dict(os.environ, XDG_CACHE_HOME=str(tmpdir / "cache"), PYTHONPYCACHEPREFIX=str(tmpdir / "pyc"))
        out = str(tmpdir / "fleet.json")
        commands = {
            "single host (--auditpol)": [tool, args.corpus, "--auditpol", str(tmpdir / "one.csv"), "-f", "json",
                                         "-o", str(tmpdir / "one.json"), "--no-cache"],
            f"fleet: {args.hosts} hosts": [tool, args.corpus, "--fleet", str(tmpdir / "hosts"), "-f", "json",
                                           "-o", out, "--no-cache"],
        }
        print("| command | median s | peak RSS MiB |\n|---|---|---|")
        for label, command in commands.items():
            timed(command, env)   # warm-up (bytecode, page cache)
            figures = [timed(command, env) for _ in range(args.runs)]
            print(f"| {label} | {statistics.median(f[0] for f in figures):.2f} | "
                  f"{max(f[1] for f in figures) / 1024:.0f} |")
        summary = json.loads(Path(out).read_text(encoding="utf-8"))["fleet"]["summary"]
        print(f"\nhosts read {summary['hosts_read']} of {summary['hosts']}, groups {summary['groups']}, "
              f"rules {summary['rules']}, requirements {summary['requirements']}")


if __name__ == "__main__":
    main()
