#!/usr/bin/env python3
"""Benchmark ``--fleet``: a generated fleet of HOSTS hosts in GROUPS distinct policies, end to end.

    python benchmarks/fleet.py [--corpus DIR] [--hosts 1000] [--groups 20] [--runs 3] [--seed 13]
    python benchmarks/fleet.py --gpresult --hosts 10000 --groups 40 --dir /tmp/fleet10k --jobs 1 2 --runs 1

``--gpresult``: every host gets a gpresult-heavy input instead (about 280 KB of UTF-16 XML, made from the real
samples in ``--samples``, see fleet_gen.py); ``--dir`` generates the fleet there (kept for the next run, and
not generated again when it holds a fleet of that size) instead of a temporary folder; ``--jobs`` times
``--fleet`` once per value. The memory figure is the peak of the whole process tree (the main process and its
workers), summed as PSS (proportional set size: pages shared by the forked workers are counted once), sampled
every 0.1 s from /proc; the peak RSS of the largest single process is printed too.

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
# the shared corpus: $LOGSOURCE_CHECKER_SHARED, else a "shared" folder beside the checkout or one level up
SHARED = Path(os.environ.get("LOGSOURCE_CHECKER_SHARED") or next(
    (p / "shared" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared").is_dir()), ROOT.parent / "shared"))
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


def _tree_pss_kib(root: int) -> int:
    """The summed PSS (KiB) of ``root`` and its descendants now (Linux /proc; 0 where unreadable)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
                total += next(int(line.split()[1]) for line in handle if line.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            continue
    return total


def timed(command: list[str], env: dict) -> tuple[float, int, int, float]:
    """Wall seconds, peak RSS (KiB) of the largest single process so far, the peak summed PSS (KiB) of the
    process tree of one fresh process, and its CPU seconds (user + system, workers included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_pss_kib(proc.pid))
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read() if proc.stderr else b""
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)}: exit {proc.returncode}: {stderr.decode()[-500:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, after.ru_maxrss, peak, cpu


def _fleet_folder(args: argparse.Namespace, tmpdir: Path) -> tuple[Path, str]:
    """The fleet to time (generated unless --dir already holds it) and the single-host input beside it."""
    if not args.gpresult:
        texts = make_fleet(tmpdir / "hosts", args.hosts, args.groups, args.seed)
        (tmpdir / "one.csv").write_text(texts[0], encoding="utf-8")
        return tmpdir / "hosts", "--auditpol=" + str(tmpdir / "one.csv")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fleet_gen

    folder = Path(args.dir) if args.dir else tmpdir / "hosts"
    stamp = folder / ".fleet-gen"   # hidden: --fleet skips names starting with '.'
    wanted = f"hosts={args.hosts} groups={args.groups} seed={args.seed} copies={args.copies}\n"
    if not (stamp.is_file() and stamp.read_text() == wanted):
        if folder.exists():
            shutil.rmtree(folder)
        start = time.perf_counter()
        size = fleet_gen.make_fleet(folder, Path(args.samples), args.hosts, args.groups, args.seed, args.copies)
        stamp.write_text(wanted)
        print(f"generated {args.hosts} hosts, {size / 1e9:.2f} GB, in {time.perf_counter() - start:.0f} s\n")
    return folder, "--gpresult=" + str(folder / "host00000" / "gpresult.xml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(SHARED / "corpus" / "sigmahq-rules"))
    parser.add_argument("--samples", default=str(SHARED / "corpus" / "policy-samples"))
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--gpresult", action="store_true", help="gpresult-heavy hosts (fleet_gen.py)")
    parser.add_argument("--copies", action="store_true", help="GPO-report hosts of a variant share its bytes")
    parser.add_argument("--dir", help="generate the fleet here and keep it (with --gpresult)")
    parser.add_argument("--jobs", type=int, nargs="*", default=[], help="time --fleet with each --jobs N")
    parser.add_argument("--no-single", action="store_true", help="do not time the single-host run")
    args = parser.parse_args()
    tool = shutil.which("check-logsources") or str(Path(sys.executable).parent / "check-logsources")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        hosts, single = _fleet_folder(args, tmpdir)
        env = dict(os.environ, XDG_CACHE_HOME=str(tmpdir / "cache"), PYTHONPYCACHEPREFIX=str(tmpdir / "pyc"))
        out = str(tmpdir / "fleet.json")
        commands = {} if args.no_single else {
            "single host": [tool, args.corpus, single, "-f", "json", "-o", str(tmpdir / "one.json"), "--no-cache"]}
        fleet = [tool, args.corpus, "--fleet", str(hosts), "-f", "json", "-o", out, "--no-cache"]
        for jobs in args.jobs or [None]:
            label = f"fleet: {args.hosts} hosts" + (f", --jobs {jobs}" if jobs else "")
            commands[label] = fleet + (["--jobs", str(jobs)] if jobs else [])
        print("| command | median wall s | median CPU s | peak PSS of the tree, MiB | peak RSS largest process, MiB |"
              "\n|---|---|---|---|---|")
        for label, command in commands.items():
            timed(command, env)   # warm-up (bytecode, page cache)
            figures = [timed(command, env) for _ in range(args.runs)]
            print(f"| {label} | {statistics.median(f[0] for f in figures):.2f} | "
                  f"{statistics.median(f[3] for f in figures):.2f} | "
                  f"{max(f[2] for f in figures) / 1024:.0f} | {max(f[1] for f in figures) / 1024:.0f} |", flush=True)
        summary = json.loads(Path(out).read_text(encoding="utf-8"))["fleet"]["summary"]
        print(f"\nhosts read {summary['hosts_read']} of {summary['hosts']}, groups {summary['groups']}, "
              f"rules {summary['rules']}, requirements {summary['requirements']}")


if __name__ == "__main__":
    main()
