#!/usr/bin/env python3
"""Benchmark check-logsources end to end (process start included) on a Sigma rule corpus.

    python benchmarks/run.py [--corpus DIR] [--gpresult FILE] [--runs N] [--sigma-cli PATH]

Measures, each as the median of N runs: cold (no cache: --no-cache), warm (cache filled, files
unchanged), peak RSS, and the time on 1x, 2x and 4x copies of the corpus (linearity). When
`sigma` (sigma-cli) is on PATH or given, also times `sigma analyze logsource` on the same files and
prints the ratio. Prints a Markdown table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, exit code) of one run of cmd."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    return elapsed, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def median_of(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> tuple[float, int]:
    times, peaks = [], []
    for _ in range(runs):
        seconds, peak, code = timed(cmd, env)
        if code not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)} failed with exit code {code}")
        times.append(seconds)
        peaks.append(peak)
    return statistics.median(times), max(peaks)


def replicate(corpus: Path, times: int, into: Path) -> Path:
    """A folder holding `times` copies of the corpus (hard links where possible)."""
    target = into / f"x{times}"
    for i in range(times):
        dest = target / f"copy{i}"
        try:
            shutil.copytree(corpus, dest, copy_function=os.link)
        except OSError:
            shutil.copytree(corpus, dest, dirs_exist_ok=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus" / "sigmahq-rules"))
    parser.add_argument("--gpresult", default=str(ROOT / "samples" / "gpresult" / "advanced-audit.xml"))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sigma-cli", default=shutil.which("sigma"))
    parser.add_argument("--command", default=shutil.which("check-logsources") or "check-logsources")
    args = parser.parse_args()
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        raise SystemExit(f"corpus {corpus} not found (give --corpus)")
    files = sum(1 for _ in corpus.rglob("*.yml"))
    cache = tempfile.mkdtemp(prefix="lsc-bench-cache-")
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    base = [args.command, str(corpus), "--gpresult", args.gpresult, "--format", "json", "-o", os.devnull]
    rows = []
    cold, cold_rss = median_of(base + ["--no-cache"], args.runs, env)
    rows.append(("cold (--no-cache)", cold, cold_rss))
    timed(base, env)  # fill the cache
    warm, warm_rss = median_of(base, args.runs, env)
    rows.append(("warm (cache)", warm, warm_rss))
    helper, _ = median_of([args.command, "--help"], args.runs, env)
    rows.append(("--help", helper, 0))
    scaling = []
    with tempfile.TemporaryDirectory(prefix="lsc-bench-") as tmp:
        for factor in (1, 2, 4):
            folder = corpus if factor == 1 else replicate(corpus, factor, Path(tmp))
            cmd = [args.command, str(folder), "--gpresult", args.gpresult, "--format", "json", "-o", os.devnull,
                   "--no-cache"]
            seconds, peak = median_of(cmd, max(3, args.runs // 2), env)
            scaling.append((factor, files * factor, seconds, peak))
    sigma = None
    if args.sigma_cli:
        sigma_cmd = [args.sigma_cli, "analyze", "logsource", "-", str(corpus)]
        sigma, _ = median_of(sigma_cmd, 3)
    shutil.rmtree(cache, ignore_errors=True)

    print(f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"Corpus: {corpus} ({files} files); runs per figure: {args.runs}\n")
    print("| measurement | median seconds | peak RSS MiB |")
    print("|---|---:|---:|")
    for name, seconds, peak in rows:
        print(f"| {name} | {seconds:.3f} | {peak / 1024:.0f} |" if peak else f"| {name} | {seconds:.3f} | |")
    print("\n| corpus copies | files | median seconds (cold) | seconds per 1,000 files | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|")
    for factor, count, seconds, peak in scaling:
        print(f"| {factor}x | {count} | {seconds:.3f} | {seconds / count * 1000:.3f} | {peak / 1024:.0f} |")
    if sigma is not None:
        print(f"\n`sigma analyze logsource` (same files): median {sigma:.2f} s; check-logsources cold is "
              f"{sigma / cold:.1f}x faster")
    else:
        print("\nsigma-cli not found: give --sigma-cli PATH to compare with `sigma analyze logsource`")


if __name__ == "__main__":
    sys.exit(main())
