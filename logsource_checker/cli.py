"""Thin command-line layer: options -> engine -> renderers, and exit codes.

Exit codes: 0 every file read, every log source and EventID known and (with a policy) nothing
missing; 1 rule files with errors, unmapped log sources / EventIDs, or missing requirements (see
``--fail-on``); 2 wrong invocation, a path that does not exist, or a policy input that cannot be used.
"""
from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

from ._gcpause import paused_gc

# Imports create tens of thousands of long-lived objects and no garbage; the collector is paused
# while they run (typer here, the engine in ``main``), which saves several ms per run.
with paused_gc():
    import typer

    from ._typer_fast import FastCommand as _Command  # typer's option conversion without pydantic

from . import __version__  # noqa: E402

app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


class Format(str, Enum):
    terminal = "terminal"
    text = "text"
    markdown = "markdown"
    json = "json"


class Level(str, Enum):
    informational = "informational"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class FailOn(str, Enum):
    missing = "missing"
    critical = "critical"
    never = "never"


def _die(message: str) -> "typer.Exit":
    sys.stderr.write(f"check-logsources: error: {message}\n")
    return typer.Exit(2)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"check-logsources {__version__}\n")
        raise typer.Exit(0)


class _Progress:
    """A progress bar on stderr, only when stderr is a terminal and there is much to do."""

    def __init__(self) -> None:
        self._bar = None
        self._task = None

    def start(self, total: int) -> None:
        if total < 200 or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import Progress

        self._bar = Progress(console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("reading rules", total=total)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@app.command(cls=_Command)
def main(
    paths: List[Path] = typer.Argument(..., metavar="RULES",
                                       help="Sigma rule files or folders (searched recursively).",
                                       show_default=False),
    gpresult: List[Path] = typer.Option([], "--gpresult", metavar="FILE", help="gpresult /x XML or a GPO report XML "
                                        "(Get-GPOReport -ReportType Xml). Repeatable."),
    auditpol: List[Path] = typer.Option([], "--auditpol", metavar="FILE", help="audit.csv (GPO backup, auditpol /backup) or "
                                        "'auditpol /get /category:* /r' output. Repeatable."),
    sysmon_config: Optional[Path] = typer.Option(None, "--sysmon-config", metavar="FILE", help="Sysmon configuration XML."),
    fmt: Format = typer.Option(Format.terminal, "--format", "-f", help="Report format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE", help="Write the report to this file."),
    level: Optional[Level] = typer.Option(None, "--level", help="Only rules of this level or higher."),
    status: List[str] = typer.Option([], "--status", metavar="STATUS", help="Only rules with this status (repeatable), "
                                     "e.g. --status stable --status test."),
    fail_on: FailOn = typer.Option(FailOn.missing, "--fail-on",
                                   help="With a policy input: exit 1 when a rule is blind or partial for lack of a "
                                   "recommended change (missing), only when a high/critical rule is (critical), "
                                   "or never."),
    emit: Optional[Path] = typer.Option(None, "--emit", metavar="DIR", help="Write the changes to apply (auditpol, audit.csv, "
                                        "GPO, registry, channels, Sysmon config, reports) into this folder."),
    docs: Optional[Path] = typer.Option(None, "--docs", metavar="DIR", help="Write Markdown guides and mkdocs.yml into this folder."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Per-rule detail."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the caches (parsed rules, guide data)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Which logs must be switched on for these Sigma rules, which of them the policy already
    produces, and exactly what must change."""
    for path in paths:
        if not path.exists():
            raise _die(f"{path}: no such file or folder")
    for path in [*gpresult, *auditpol, *([sysmon_config] if sysmon_config else [])]:
        if not path.is_file():
            raise _die(f"{path}: no such file")
    if status:
        from .rules import STATUSES

        for value in status:
            if value.lower() not in STATUSES:
                raise _die(f"--status {value!r}: choose from {', '.join(STATUSES)}")

    with paused_gc():
        from .engine import CheckOptions, KnowledgeError, check
        from .policy.model import PolicyInputError

    options = CheckOptions(
        paths=[str(p) for p in paths], min_level=level.value if level else None, statuses=status,
        gpresult=[str(p) for p in gpresult], auditpol=[str(p) for p in auditpol],
        sysmon_config=str(sysmon_config) if sysmon_config else None, use_cache=not no_cache,
        progress=_Progress())
    try:
        result = check(options)
    except PolicyInputError as exc:
        raise _die(f"{exc.path}: {exc.reason}")
    except KnowledgeError as exc:
        raise _die(str(exc))

    from .report import build

    report = build(result, verbose=verbose or emit is not None)
    if emit is not None:
        from .emit import emit_all

        from .emit import UnsafeValue

        try:
            written = emit_all(result, report, emit)
        except OSError as exc:
            raise _die(f"{emit}: cannot write: {exc.strerror or exc}")
        except UnsafeValue as exc:  # our own data holds a value unfit for a command: refuse to emit
            raise _die(f"guide data: {exc}")
        sys.stderr.write(f"check-logsources: wrote {len(written)} files to {emit}\n")
    if docs is not None:
        from .docs import write_docs

        try:
            written = write_docs(result, docs)
        except OSError as exc:
            raise _die(f"{docs}: cannot write: {exc.strerror or exc}")
        sys.stderr.write(f"check-logsources: wrote {len(written)} files to {docs}\n")

    _output(report, fmt.value, output, verbose)
    raise typer.Exit(exit_code(report, fail_on.value))


def _output(report: dict, fmt: str, output: Optional[Path], verbose: bool) -> None:
    if fmt == "terminal" and output is None:
        from rich.console import Console

        from .render.terminal import print_report

        print_report(report, Console(highlight=False, emoji=False), verbose)
        return
    from .render import render

    text = render(report, fmt, verbose)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8", errors="backslashreplace")
    except OSError as exc:
        raise _die(f"{output}: cannot write: {exc.strerror or exc}")


def exit_code(report: dict, fail_on: str) -> int:
    summary = report["summary"]
    if summary["errors"] or summary["unmapped_logsources"] or summary["unmapped_event_ids"]:
        return 1
    if not summary["policy_checked"] or fail_on == "never":
        return 0
    if fail_on == "critical":
        return 1 if any(r["coverage"] in ("blind", "partial") and r["level"] in ("high", "critical")
                        for r in report["rules"]) else 0
    return 1 if summary["missing_requirements"] else 0


def run() -> None:
    """Console-script entry point. Undecodable bytes in file names never crash the output, and the
    process ends as soon as its output is flushed (nothing is left to clean up by then)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # noqa: BLE001 - a bug: one line and exit 3, never a traceback
        where = exc.__traceback__
        while where is not None and where.tb_next is not None:
            where = where.tb_next
        at = f" at {os.path.basename(where.tb_frame.f_code.co_filename)}:{where.tb_lineno}" if where else ""
        sys.stderr.write(f"check-logsources: internal error{at}: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:300]} (please report it)\n")
        code = 3
    if code is not None and not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # e.g. the reader of a pipe went away
        code = code or 1
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    run()
