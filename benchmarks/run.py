#!/usr/bin/env python3
"""Benchmark check-logsources end to end (process start included) on a Sigma rule corpus.

    python benchmarks/run.py [--corpus DIR] [--gpresult FILE] [--runs N] [--sigma-cli PATH] [--json FILE]

Every figure is the median of N runs of a fresh process (wall clock), with the peak RSS of the
process and its workers (the largest of the runs). Measured:

* ``--help``;
* cold: ``--no-cache`` (nothing read from or written to any cache);
* first run: an empty cache folder each time (the run parses everything and writes the caches);
* warm: caches filled, no file changed; and warm after touching one rule file;
* linearity: cold on 1x, 2x and 4x copies of the corpus (real copies);
* ``sigma analyze logsource`` (sigma-cli) on the same folder in the same run, when it is installed
  (on PATH or given with --sigma-cli), and the ratio to the cold run.

The command under test is ``check-logsources <corpus> --gpresult <sample> --format json -o FILE``.
Children get their own XDG_CACHE_HOME and PYTHONPYCACHEPREFIX (temporary folders, removed at the
end), so a PYTHONDONTWRITEBYTECODE environment does not make every run recompile the package; one
untimed warm-up run of each command comes first. Prints Markdown tables (for BENCHMARKS.md) and a
pass/fail line per target of issue 6.
"""
from __future__ import annotations

import argparse
import json
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

TARGET_COLD = 0.5       # seconds, median, --no-cache
TARGET_WARM = 0.25      # seconds, median, cache filled
TARGET_RATIO = 20.0     # sigma analyze logsource / cold
TARGET_RSS_MIB = 100.0  # peak RSS, 1x corpus
TARGET_LINEAR = 1.25    # seconds per file at 4x over seconds per file at 1x, at most


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in KiB of the process and the children it waited for, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss, proc.returncode


class Figure:
    def __init__(self, name: str, times: list[float], peaks: list[int], files: int | None = None) -> None:
        self.name, self.times, self.peaks, self.files = name, times, peaks, files

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def rss_mib(self) -> float:
        return max(self.peaks) / 1024

    def as_dict(self) -> dict:
        return {"name": self.name, "median_s": round(self.median, 4), "runs_s": [round(t, 4) for t in self.times],
                "peak_rss_mib": round(self.rss_mib, 1), "files": self.files}


def measure(name: str, cmd: list[str], runs: int, env: dict[str, str], before=None, files: int | None = None,
            ok_codes: tuple[int, ...] = (0, 1)) -> Figure:
    times, peaks = [], []
    for _ in range(runs):
        if before is not None:
            before()
        seconds, peak, code = timed(cmd, env)
        if code not in ok_codes:
            raise SystemExit(f"{' '.join(cmd)} failed with exit code {code}")
        times.append(seconds)
        peaks.append(peak)
    figure = Figure(name, times, peaks, files)
    print(f"  {name}: median {figure.median:.3f} s over {runs} runs", file=sys.stderr)
    return figure


def replicate(corpus: Path, times: int, into: Path) -> Path:
    """A folder holding `times` real copies of the corpus (not hard links: the loader reads a file
    reached twice through links only once, so linked copies would not add work)."""
    target = into / f"x{times}"
    for i in range(times):
        shutil.copytree(corpus, target / f"copy{i}")
    return target


def count_rule_files(folder: Path) -> int:
    return sum(1 for _, _, names in os.walk(folder) for n in names if n.endswith((".yml", ".yaml")))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError):
        pass
    return "RAM unknown"


def sigma_versions(sigma: str) -> str:
    """sigma-cli and pySigma versions, read from the interpreter of the sigma script (no network)."""
    try:
        with open(sigma, "rb") as handle:
            first = handle.readline().decode("utf-8", "replace").strip()
        python = first[2:].strip().split()[0] if first.startswith("#!") else sys.executable
        out = subprocess.run([python, "-c", "import importlib.metadata as m; "
                              "print(m.version('sigma-cli'), m.version('pySigma'))"],
                             capture_output=True, text=True, timeout=30).stdout.split()
        return f"sigma-cli {out[0]}, pySigma {out[1]}" if len(out) == 2 else "version unknown"
    except (OSError, subprocess.SubprocessError, IndexError):
        return "version unknown"


def default_command() -> str:
    beside = Path(sys.executable).parent / "check-logsources"
    return str(beside) if beside.exists() else (shutil.which("check-logsources") or "check-logsources")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus" / "sigmahq-rules"),
                        help="folder of Sigma rules (default: ../shared/corpus/sigmahq-rules)")
    parser.add_argument("--gpresult", default=str(ROOT / "samples" / "gpresult" / "advanced-audit.xml"),
                        help="policy sample; run without a policy when the file is missing")
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (default 7)")
    parser.add_argument("--sigma-runs", type=int, default=5, help="runs of sigma analyze logsource (default 5)")
    parser.add_argument("--sigma-cli", default=shutil.which("sigma"), help="path of the sigma command")
    parser.add_argument("--command", default=default_command(), help="path of check-logsources")
    parser.add_argument("--no-scaling", action="store_true", help="skip the 2x and 4x corpus runs")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures as JSON")
    args = parser.parse_args()

    source = Path(args.corpus).resolve()
    if not source.is_dir():
        raise SystemExit(f"corpus {source} not found (give --corpus)")
    work = Path(tempfile.mkdtemp(prefix="lsc-bench-"))
    # every command runs on a private copy: the "touched" runs change a file's mtime, never the source's
    corpus = work / source.name
    shutil.copytree(source, corpus)
    files = count_rule_files(corpus)
    cache = work / "cache"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "XDG_CACHE_HOME")}
    env.update(XDG_CACHE_HOME=str(cache), PYTHONPYCACHEPREFIX=str(work / "pycache"))
    policy = ["--gpresult", args.gpresult] if Path(args.gpresult).is_file() else []
    out_file = str(work / "report.json")
    base = [args.command, str(corpus), *policy, "--format", "json", "-o", out_file]
    load_before = os.getloadavg()
    started = time.time()
    figures: dict[str, Figure] = {}
    try:
        print("warming up (bytecode, page cache)...", file=sys.stderr)
        for cmd in ([args.command, "--help"], base + ["--no-cache"], base):
            timed(cmd, env)

        # the cold and warm reports must be the same bytes
        shutil.rmtree(cache, ignore_errors=True)
        timed(base + ["--no-cache"], env)
        uncached = Path(out_file).read_bytes()
        timed(base, env)
        timed(base, env)
        reports_identical = Path(out_file).read_bytes() == uncached

        figures["help"] = measure("--help", [args.command, "--help"], args.runs, env, ok_codes=(0,))
        figures["cold"] = measure("cold (--no-cache)", base + ["--no-cache"], args.runs, env, files=files)
        figures["first"] = measure("first run (empty cache folder)", base, args.runs, env, files=files,
                                   before=lambda: shutil.rmtree(cache, ignore_errors=True))
        timed(base, env)
        figures["warm"] = measure("warm (cache filled, files unchanged)", base, args.runs, env, files=files)
        victim = sorted(p for p in corpus.rglob("*") if p.suffix in (".yml", ".yaml"))[0]
        stat = victim.stat()

        def touch() -> None:
            # a later mtime each time (on the private copy); the content never changes
            now = time.time_ns()
            os.utime(victim, ns=(stat.st_atime_ns, max(now, stat.st_mtime_ns + 1_000_000_000)))

        figures["touched"] = measure("warm, one file touched", base, args.runs, env, files=files, before=touch)

        scaling: list[Figure] = []
        if not args.no_scaling:
            scale_runs = max(3, args.runs // 2)
            for factor in (1, 2, 4):
                folder = corpus if factor == 1 else replicate(corpus, factor, work)
                cmd = [args.command, str(folder), *policy, "--format", "json", "-o", out_file, "--no-cache"]
                scaling.append(measure(f"cold {factor}x", cmd, scale_runs, env, files=files * factor))

        sigma = None
        if args.sigma_cli:
            sigma_cmd = [args.sigma_cli, "analyze", "logsource", "-", str(corpus)]
            timed(sigma_cmd, env)  # warm-up (bytecode, imports)
            sigma = measure("sigma analyze logsource", sigma_cmd, args.sigma_runs, env, files=files,
                            ok_codes=(0,))
            figures["sigma"] = sigma
            # our cold figure again, right after sigma: the ratio compares like with like
            figures["cold_again"] = measure("cold (--no-cache), after sigma", base + ["--no-cache"], args.runs, env,
                                            files=files)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()

    from_version = subprocess.run([args.command, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"Machine: {cpu_model()}, {os.cpu_count()} CPUs, {memory_total()}; {platform.platform()}; "
          f"Python {platform.python_version()}")
    print(f"Command: {from_version} ({args.command})")
    print(f"Corpus: {source} ({files} rule files, run from a temporary copy); "
          f"policy: {args.gpresult if policy else 'none (sample missing)'}")
    print(f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; "
          f"after: {', '.join(f'{x:.2f}' for x in load_after)}; {time.time() - started:.0f} s in all")
    print(f"Runs per figure: {args.runs}; cold and warm JSON reports identical: {reports_identical}\n")
    print("| measurement | median s | min s | max s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for key in ("help", "cold", "first", "warm", "touched", "cold_again", "sigma"):
        if key in figures:
            f = figures[key]
            print(f"| {f.name} | {f.median:.3f} | {min(f.times):.3f} | {max(f.times):.3f} | {f.rss_mib:.0f} |")
    if scaling:
        print("\n| corpus copies | rule files | median s (cold) | ms per 1,000 files | peak RSS MiB |")
        print("|---:|---:|---:|---:|---:|")
        for f in scaling:
            print(f"| {f.name.split()[-1]} | {f.files} | {f.median:.3f} | {f.median / f.files * 1e6:.0f} | "
                  f"{f.rss_mib:.0f} |")

    cold = figures["cold"].median
    checks = [(f"cold median <= {TARGET_COLD} s", cold <= TARGET_COLD, f"{cold:.3f} s"),
              (f"warm median <= {TARGET_WARM} s", figures["warm"].median <= TARGET_WARM,
               f"{figures['warm'].median:.3f} s"),
              (f"peak RSS <= {TARGET_RSS_MIB:.0f} MiB (1x)",
               max(figures[k].rss_mib for k in ("cold", "first", "warm")) <= TARGET_RSS_MIB,
               f"{max(figures[k].rss_mib for k in ('cold', 'first', 'warm')):.0f} MiB")]
    if sigma is not None:
        ours = statistics.median(figures["cold"].times + figures["cold_again"].times)
        ratio = sigma.median / ours
        checks.append((f">= {TARGET_RATIO:.0f}x faster than sigma analyze logsource", ratio >= TARGET_RATIO,
                       f"{ratio:.1f}x ({sigma.median:.2f} s / {ours:.3f} s; {sigma_versions(args.sigma_cli)})"))
    if len(scaling) == 3:
        per_file = [f.median / f.files for f in scaling]
        growth = per_file[2] / per_file[0]
        checks.append((f"linear: time per file at 4x <= {TARGET_LINEAR}x that at 1x", growth <= TARGET_LINEAR,
                       f"{growth:.2f}x"))
    print("\n| target | met | measured |")
    print("|---|---|---|")
    for name, ok, value in checks:
        print(f"| {name} | {'yes' if ok else 'NO'} | {value} |")
    if sigma is None:
        print("\nsigma-cli not found: install it (pip install sigma-cli, ideally in its own venv) and give "
              "--sigma-cli PATH to compare with `sigma analyze logsource`")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version()},
            "command": from_version, "corpus": str(source), "files": files, "policy": bool(policy),
            "load_before": load_before, "load_after": load_after, "reports_identical": reports_identical,
            "figures": {k: f.as_dict() for k, f in figures.items()},
            "scaling": [f.as_dict() for f in scaling],
            "targets": [{"target": n, "met": ok, "measured": v} for n, ok, v in checks],
        }, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
