"""Thin command-line layer: options -> engine -> renderers, and exit codes.

Exit codes: 0 every file read, every log source and EventID known and (with a policy) nothing
missing, or ``--fail-on never`` and the run completed; 1 rule files with errors, unmapped log sources /
EventIDs, or missing requirements (see ``--fail-on``); 2 wrong invocation, a path that does not exist, a
policy input that cannot be used, or an output the writer refuses (``writer.WriteRefused``).
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
    sarif = "sarif"


class Level(str, Enum):
    informational = "informational"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class Role(str, Enum):
    client = "client"
    server = "server"
    dc = "dc"


class SysmonOs(str, Enum):
    auto = "auto"
    windows = "windows"
    linux = "linux"


class PlanName(str, Enum):
    native = "native"
    sysmon = "sysmon"


class Volume(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"


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


#: the longer option help texts (kept here so that main() stays a readable list of options)
_HELP = {
    "collector": ("A log collector's configuration (Winlogbeat/Elastic Agent YAML, Splunk inputs.conf, WEF "
                 "subscription, Wazuh/OSSEC ossec.conf, NXLog, Fluent Bit, OpenTelemetry, Telegraf): are the "
                 "needed events forwarded? Repeatable; format recognised by content."),
    "fleet": ("A whole fleet: one folder per host (its name is the host name) holding its inputs, or "
             "HOST.<kind>.<ext> files (kind: gpresult, auditpol, sysmon, collector, auditd); hosts with the same "
             "effective policy are assessed once (README, A whole fleet)."),
    "plan": ("The plan to recommend and emit: native (audit policy, registry policies, channels; no Sysmon) or "
            "sysmon (Sysmon allowed, native where cheaper). Default: sysmon when --sysmon-config is given, else "
            "native."),
    "fail_on": ("With a policy input: exit 1 when a rule is blind or partial for lack of a recommended change "
               "(missing), only when a high/critical rule is (critical), or never."),
}


@app.command(cls=_Command)
def main(
    ctx: typer.Context,
    paths: List[Path] = typer.Argument(..., metavar="RULES",
                                       help="Sigma rule files or folders (searched recursively).",
                                       show_default=False),
    gpresult: List[Path] = typer.Option([], "--gpresult", metavar="FILE", help="gpresult /x XML or a GPO report XML "
                                        "(Get-GPOReport -ReportType Xml). Repeatable."),
    auditpol: List[Path] = typer.Option([], "--auditpol", metavar="FILE", help="audit.csv (GPO backup, auditpol /backup) or "
                                        "'auditpol /get /category:* /r' output. Repeatable."),
    sysmon_config: Optional[Path] = typer.Option(None, "--sysmon-config", metavar="FILE", help="Sysmon configuration XML "
                                                 "(Sysmon, or Sysmon for Linux: told by its content)."),
    sysmon_os: SysmonOs = typer.Option(SysmonOs.auto, "--sysmon-os", help="Which OS the --sysmon-config is for; auto: "
                                       "told by its content (event types, paths)."),
    auditd_rules: List[Path] = typer.Option([], "--auditd-rules", metavar="FILE", help="Linux audit rules: "
                                            "'auditctl -l' output or a rules file (/etc/audit/rules.d/*.rules). "
                                            "Repeatable, read in order."),
    collector: List[Path] = typer.Option([], "--collector", metavar="FILE", help=_HELP["collector"]),
    events: List[Path] = typer.Option([], "--events", metavar="FILE|DIR", help="Events really seen: .evtx files or "
                                      "a SIEM's event-count export (CSV or JSON: channel, event_id, count[, host]"
                                      "[, provider][, first_seen, last_seen]), or a folder of them. Repeatable."),
    fleet: Optional[Path] = typer.Option(None, "--fleet", metavar="DIR", help=_HELP["fleet"]),
    fleet_csv: Optional[Path] = typer.Option(None, "--fleet-csv", metavar="DIR", help="With --fleet: write the host x "
                                             "requirement and host x rule CSV matrices into this folder."),
    jobs: Optional[str] = typer.Option(None, "--jobs", metavar="N", help="With --fleet: read the hosts' "
                                       "inputs in N processes (default: the number of cores; 1: in this one)."),
    role: Optional[Role] = typer.Option(None, "--role", help="The machine's role (its Windows audit defaults and "
                                        "event volumes): client, server or dc. Default: detected from the policy "
                                        "input, else client (the policy report says which)."),
    fmt: Format = typer.Option(Format.terminal, "--format", "-f", help="Report format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE", help="Write the report to this file."),
    level: Optional[Level] = typer.Option(None, "--level", help="Only rules of this level or higher."),
    status: List[str] = typer.Option([], "--status", metavar="STATUS", help="Only rules with this status (repeatable), "
                                     "e.g. --status stable --status test."),
    product: List[str] = typer.Option([], "--product", metavar="PRODUCT", help="Only rules whose logsource "
                                      "product is this (repeatable), e.g. --product windows."),
    category: List[str] = typer.Option([], "--category", metavar="CATEGORY", help="Only rules whose logsource "
                                       "category is this (repeatable), e.g. --category process_creation."),
    service: List[str] = typer.Option([], "--service", metavar="SERVICE", help="Only rules whose logsource "
                                      "service is this (repeatable), e.g. --service security."),
    fail_on: FailOn = typer.Option(FailOn.missing, "--fail-on", help=_HELP["fail_on"]),
    emit: Optional[Path] = typer.Option(None, "--emit", metavar="DIR", help="Write the changes to apply (auditpol, audit.csv, "
                                        "GPO, registry, channels, Sysmon config, reports) into this folder."),
    plan: Optional[PlanName] = typer.Option(None, "--plan", help=_HELP["plan"]),
    max_volume: Optional[Volume] = typer.Option(None, "--max-volume", help="Hold back changes whose event volume "
                                                "is above this (listed with the rules they would unblind)."),
    hold_unknown_volume: bool = typer.Option(False, "--hold-unknown-volume", help="Hold back changes whose event "
                                             "volume is unknown too."),
    navigator: Optional[Path] = typer.Option(None, "--navigator", metavar="FILE", help="Write an ATT&CK Navigator "
                                             "layer file: techniques from the rules' attack.tNNNN tags, coloured "
                                             "usable/partial/blind, now and after the recommended plan."),
    docs: Optional[Path] = typer.Option(None, "--docs", metavar="DIR", help="Write Markdown guides and mkdocs.yml into this folder."),
    force: bool = typer.Option(False, "--force", help="Replace existing files in the --emit/--docs folder or the "
                               "-o file that check-logsources did not write (or that were edited since)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Per-rule detail."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the caches (parsed rules, guide data)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Which logs must be switched on for these Sigma rules, which of them the policy already
    produces, and exactly what must change."""
    inputs = [*gpresult, *auditpol, *([sysmon_config] if sysmon_config else []), *auditd_rules, *collector]
    _check_paths(paths, inputs, events, status)
    if fleet is not None or fleet_csv is not None or jobs is not None:
        _fleet_checks(fleet, fmt.value, [*inputs, *events, docs, navigator], jobs)
    options = _options(paths, level, status, [gpresult, auditpol, auditd_rules, collector, events],
                       (sysmon_config, sysmon_os), no_cache, role, plan, max_volume, hold_unknown_volume,
                       (product, category, service))
    result = _run(options, fleet, fmt.value, output, fleet_csv, fail_on.value, force, jobs, emit)
    _warn_unmatched_filters(result, (("--product", 0, product), ("--category", 1, category), ("--service", 2, service)))
    # with --emit / --docs a short summary replaces the terminal report; a report format asked for with
    # --format still goes to standard output (the summary then goes to standard error)
    asked = getattr(ctx.get_parameter_source("fmt"), "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP")
    guard = _guard(result, paths, [*inputs, *events], force)
    raise typer.Exit(_report(result, fmt.value, output, verbose, fail_on.value, asked, guard, emit, docs, navigator))


def _options(paths: List[Path], level, status: List[str], files: list, sysmon: tuple,  # noqa: ANN001
             no_cache: bool, role, plan, max_volume, hold_unknown_volume: bool, filters: tuple):  # noqa: ANN001, ANN202
    """The engine's options from the command line's (``files``: the --gpresult, --auditpol, --auditd-rules,
    --collector and --events paths; ``sysmon``: --sysmon-config and --sysmon-os; ``filters``: the --product,
    --category and --service values)."""
    with paused_gc():
        from .engine import CheckOptions

    gpresult, auditpol, auditd_rules, collector, events = ([str(p) for p in group] for group in files)
    product, category, service = filters
    sysmon_config, sysmon_os = sysmon
    return CheckOptions(
        paths=[str(p) for p in paths], min_level=level.value if level else None, statuses=status,
        gpresult=gpresult, auditpol=auditpol, sysmon_config=str(sysmon_config) if sysmon_config else None,
        sysmon_os=sysmon_os.value,
        auditd_rules=auditd_rules, use_cache=not no_cache, progress=_Progress(), role=role.value if role else None,
        plan=plan.value if plan else None, max_volume=max_volume.value if max_volume else None,
        hold_unknown_volume=hold_unknown_volume, products=product, categories=category, services=service,
        collectors=collector, events=events)


def _check_paths(paths: List[Path], files: List[Path], events: List[Path], status: List[str]) -> None:
    """Every input exists (rule paths and --events: a file or folder; policy and collector inputs: a file)
    and every --status value is one Sigma defines; else exit status 2."""
    for path in paths:
        if not path.exists():
            raise _die(f"{path}: no such file or folder")
    for path in files:
        if not path.is_file():
            raise _die(f"{path}: no such file")
    for path in events:
        if not path.exists():
            raise _die(f"{path}: no such file or folder")
    if status:
        from .rules import STATUSES

        for value in status:
            if value.lower() not in STATUSES:
                raise _die(f"--status {value!r}: choose from {', '.join(STATUSES)}")


def _run(options, fleet: Optional[Path], fmt: str, output: Optional[Path], fleet_csv: Optional[Path],  # noqa: ANN001
         fail_on: str, force: bool, jobs: Optional[str], emit: Optional[Path]):  # noqa: ANN202
    """The check (engine.check); with --fleet the whole fleet's run, which ends the command."""
    with paused_gc():
        from .engine import KnowledgeError, check
        from .policy.model import PolicyInputError

    try:
        if fleet is not None:
            from .fleet_report import run_cli

            code, reason = run_cli(options, fleet, fmt, output, fleet_csv, fail_on, force,
                                   jobs=int(jobs) if jobs else None, emit=emit)
            sys.stderr.write(f"Verdict: exit {code}, {reason}\n")
            raise typer.Exit(code)
        return check(options)
    except PolicyInputError as exc:
        raise _die(f"{exc.path}: {exc.reason}")
    except KnowledgeError as exc:
        raise _die(str(exc))


def _report(result, fmt: str, output: Optional[Path], verbose: bool, fail_on: str, asked: bool,  # noqa: ANN001
            guard, emit: Optional[Path], docs: Optional[Path], navigator: Optional[Path]) -> int:  # noqa: ANN001
    """Build the report, write every output asked for, and return the exit status."""
    from .report import build

    report = build(result, verbose=verbose or emit is not None)
    outputs = _write_outputs(result, report, emit, docs, guard)
    if navigator is not None:
        written = _write_navigator(report, navigator, guard)
        if outputs:   # listed in the summary that replaces the report
            outputs.append(written)
        else:         # the report stays on standard output
            sys.stderr.write(f"Wrote {written['what']} to {written['directory']} ({written['detail']})\n")
    code, reason = verdict(report, fail_on)
    _output(report, fmt, output, verbose, guard, summary=bool(outputs) and not asked)
    if outputs:
        from .templating import render as render_template

        text = render_template("summary.txt.j2", "text", outputs=outputs, s=report["summary"],
                               report_file=str(output) if output else None, code=code, reason=reason)
        (sys.stderr if asked and output is None else sys.stdout).write(text)
    return code


def _fleet_checks(fleet: Optional[Path], fmt: str, single: list, jobs: Optional[str]) -> None:
    """--fleet reads each host's inputs from its folder: no per-run policy input or output folder beside it;
    --jobs is a whole number (a str option: an int one would make typer import pydantic)."""
    if fleet is None:
        raise _die("--fleet-csv and --jobs need --fleet")
    if jobs is not None and not (jobs.isdigit() and int(jobs) >= 1):
        raise _die(f"--jobs {jobs!r}: give a whole number of processes, 1 or more")
    if not fleet.is_dir():
        raise _die(f"{fleet}: no such folder")
    if any(item is not None for item in single):
        raise _die("--fleet takes each host's inputs from its folder: give no --gpresult, --auditpol, --sysmon-config, "
                   "--auditd-rules, --collector, --events, --docs or --navigator with it")
    if fmt == "sarif":
        raise _die("--fleet reports as terminal, text, markdown or json")


def _warn_unmatched_filters(result, filters) -> None:  # noqa: ANN001
    """A --product / --category / --service value no rule read has is named on standard error (a typo would
    otherwise just filter everything out)."""
    for option, index, values in filters:
        if not values:
            continue
        seen = {rule.logsource.key[index] for rule in result.loaded.rules}
        for value in values:
            if value.strip().lower() not in seen:
                sys.stderr.write(f"check-logsources: warning: {option} {value!r} matches no rule's logsource\n")


def _guard(result, paths: List[Path], policy_inputs: List[Path], force: bool):  # noqa: ANN001, ANN202
    """What every output must respect: the run's inputs (never written over) and --force."""
    from .writer import Guard

    loaded = result.loaded
    return Guard(inputs=[str(p) for p in [*paths, *policy_inputs]], force=force,
                 rule_files=lambda: [x.path for x in [*loaded.rules, *loaded.errors, *loaded.others]])


def _write_outputs(result, report: dict, emit: Optional[Path], docs: Optional[Path], guard) -> list:  # noqa: ANN001
    """Write --emit and --docs through the writer; one summary entry per output written."""
    from .writer import WriteRefused

    outputs = []
    if emit is not None:
        from .emit import UnsafeValue, emit_all

        try:
            written = emit_all(result, report, emit, guard)
        except (OSError, WriteRefused) as exc:
            raise _write_error(emit, exc)
        except UnsafeValue as exc:  # our own data holds a value unfit for a command: refuse to emit
            raise _die(f"guide data: {exc}")
        outputs.append(_written("the changes", written, f"{len(report['recommendations'])} changes to apply"
                                if report["summary"]["policy_checked"] else "everything the rules need"))
    if docs is not None:
        from .docs import write_docs

        try:
            written = write_docs(result, docs, guard)
        except (OSError, WriteRefused) as exc:
            raise _write_error(docs, exc)
        guides = sum(1 for path in written if path.suffix == ".md" and "sources" in path.parts[:-1])
        outputs.append(_written("the docs site", written, f"{guides} log-source pages, index, ATT&CK tactic pages, "
                                "audit policy, mkdocs.yml"))
    return outputs


def _write_navigator(report: dict, target: Path, guard) -> dict:  # noqa: ANN001
    """The ATT&CK Navigator layers (render/navigator.py) to ``target`` through the writer."""
    from .render.navigator import navigator_file
    from .writer import WriteRefused, write_file

    text, techniques = navigator_file(report)
    try:
        written = write_file(target, text.encode("utf-8"), guard)
    except (OSError, WriteRefused) as exc:
        raise _write_error(target, exc)
    return {"what": "the ATT&CK Navigator layers", "directory": str(target), "files": 1,
            "changed": written.changed, "unchanged": written.unchanged, "detail": f"{techniques} techniques"}


def _write_error(target: Path, exc: Exception) -> "typer.Exit":
    if isinstance(exc, OSError):
        return _die(f"{exc.filename or target}: cannot write: {exc.strerror or exc}; nothing was changed")
    return _die(str(exc))


def _written(what: str, written: list, detail: str) -> dict:
    return {"what": what, "directory": str(written.directory), "files": len(written),  # type: ignore[attr-defined]
            "changed": written.changed, "unchanged": written.unchanged, "detail": detail}  # type: ignore[attr-defined]


def _output(report: dict, fmt: str, output: Optional[Path], verbose: bool, guard=None,  # noqa: ANN001
            summary: bool = False) -> None:
    """The report: to ``output`` when given, else to standard output unless a summary replaces it."""
    if output is None and summary:
        return
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
    from .writer import WriteRefused, write_file

    try:
        write_file(output, text.encode("utf-8", errors="backslashreplace"), guard)
    except (OSError, WriteRefused) as exc:
        raise _write_error(output, exc)


def exit_code(report: dict, fail_on: str) -> int:
    return verdict(report, fail_on)[0]


def verdict(report: dict, fail_on: str) -> tuple[int, str]:
    """The exit status of a completed run and why (see the module docstring and README, Exit status)."""
    summary = report["summary"]
    problems = [f"{summary[key]} {label}" for key, label in (
        ("errors", "rule file errors"), ("unmapped_logsources", "unmapped log sources"),
        ("unmapped_event_ids", "unmapped event IDs")) if summary[key]]
    from .failon import decide

    weak = sum(1 for r in report["rules"] if r["coverage"] in ("blind", "partial")
               and r["level"] in ("high", "critical")) if fail_on == "critical" else 0
    return decide(fail_on, problems, checked=bool(summary["policy_checked"]), weak=weak,
                  missing=summary["missing_requirements"],
                  unchecked="every file read, every log source and EventID known (no policy input to compare)")


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
