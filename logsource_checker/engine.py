"""The check as a library call: paths (+ policy inputs) -> ``CheckResult``."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

from . import knowledge as knowledge_mod
from ._gcpause import paused_gc
from .diff import PolicyDiff
from .ranking import rank_missing
from .plans import compute_plans
from .policy.model import PolicySnapshot
from .report import CheckResult
from .resolve import resolve
from .roles import decide_role, role_volumes
from .rules import LEVELS, LoadError, LoadResult, Rule, level_at_least


@dataclass
class CheckOptions:
    paths: Sequence[str]
    min_level: str | None = None
    statuses: Sequence[str] = ()
    gpresult: Sequence[str] = ()
    auditpol: Sequence[str] = ()
    sysmon_config: str | None = None
    sysmon_os: str | None = None       # --sysmon-os: windows | linux (None / auto: from the configuration's content)
    auditd_rules: Sequence[str] = ()   # --auditd-rules: Linux audit rules (auditctl -l output, rules files)
    role: str | None = None        # --role client|server|dc; None: detect from the inputs, else assume
    use_cache: bool = True
    progress: Any = None
    data_root: str | None = None
    plan: str | None = None             # native | sysmon; None: sysmon when a Sysmon config is given
    max_volume: str | None = None       # low | medium | high: hold back changes above it
    hold_unknown_volume: bool = False   # hold back changes of unknown volume too
    products: Sequence[str] = ()        # --product / --category / --service: only rules with one of these
    categories: Sequence[str] = ()
    services: Sequence[str] = ()
    collectors: Sequence[str] = ()      # --collector files (collection.py)
    events: Sequence[str] = ()          # --events files or folders (events_read.py, observed.py)


def load_rules(options: CheckOptions) -> LoadResult:
    from .loader import load_rules_fast

    return load_rules_fast(list(options.paths), use_cache=options.use_cache, progress=options.progress)


def read_policies(options: CheckOptions, kb: knowledge_mod.Knowledge) -> PolicySnapshot | None:
    """Read every policy input in command-line order (gpresult, auditpol, sysmon); None when none given."""
    if not (options.gpresult or options.auditpol or options.sysmon_config or options.auditd_rules):
        return None
    from .policy import merge, read_auditd, read_policy

    vocabulary = kb.policy_vocabulary()
    snapshots = [read_policy(path, "gpresult", vocabulary=vocabulary) for path in options.gpresult]
    snapshots += [read_policy(path, "auditpol", vocabulary=vocabulary) for path in options.auditpol]
    if options.sysmon_config:
        from .sysmon_linux import decide_os   # which OS the configuration is for (Sysmon or Sysmon for Linux)

        snapshots.append(read_policy(options.sysmon_config, "sysmon",
                                     sysmon_events=list(kb.sysmon_events.values())))
        decide_os(snapshots[-1], kb, options.sysmon_os)
    if options.auditd_rules:
        snapshots.append(read_auditd(options.auditd_rules))
    return merge(snapshots, vocabulary)


def read_collectors(options: CheckOptions) -> list:
    """Every --collector file, read in order (a file of no known format fails the run, exit status 2)."""
    if not options.collectors:
        return []
    from .collectors import read_collector

    return [read_collector(path) for path in options.collectors]


def read_event_samples(options: CheckOptions) -> list:
    """Every --events file or folder, read in order (an unusable file fails the run, exit status 2)."""
    if not options.events:
        return []
    from .events_read import read_events

    return [sample for path in options.events for sample in read_events(path)]


def check(options: CheckOptions) -> CheckResult:
    with paused_gc():
        return _check(options)


class KnowledgeError(Exception):
    """The guide data cannot be used (a broken install or an edited data folder): exit status 2."""


def load_knowledge(options: CheckOptions) -> knowledge_mod.Knowledge:
    kb = _read_knowledge(options, refresh=False)
    try:
        problems = knowledge_mod.validate(kb)
    except Exception:  # noqa: BLE001 - only a cached copy can be of a shape validate cannot read
        problems = ["cannot be validated"]
    if problems and options.use_cache:
        # the cached copy may be what is wrong (the data files are the truth): read them and recache
        kb = _read_knowledge(options, refresh=True)
        problems = knowledge_mod.validate(kb)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise KnowledgeError(f"guide data in {kb.root} is inconsistent: {problems[0]}{more}")
    return kb


def _where(rule: Rule) -> str:
    """How an error names a rule within its file: its id, else its document number in a multi-document file."""
    if rule.id:
        return f"rule {rule.id}: "
    return f"document {rule.document + 1}: " if rule.document else ""


def _read_knowledge(options: CheckOptions, refresh: bool) -> knowledge_mod.Knowledge:
    try:
        return knowledge_mod.load(options.data_root, use_cache=options.use_cache, refresh=refresh)
    except Exception as exc:  # noqa: BLE001 - any failure to read our own data is one clear message
        raise KnowledgeError(f"guide data in {options.data_root or knowledge_mod.data_root()} cannot be read: "
                             f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from exc


def select_rules(options: CheckOptions, rules: list[Rule]) -> list[Rule]:
    """The rules a run checks: ``--level``, ``--status``, ``--product`` / ``--category`` / ``--service``."""
    if options.min_level:
        rules = [r for r in rules if level_at_least(r.level, options.min_level)]
    if options.statuses:
        wanted = {s.lower() for s in options.statuses}
        rules = [r for r in rules if (r.status or "") in wanted]
    for index, values in enumerate((options.products, options.categories, options.services)):
        if values:
            keep = {v.strip().lower() for v in values}
            rules = [r for r in rules if r.logsource.key[index] in keep]
    return rules


def with_input_notes(snapshot: Any, resolution: Any) -> Any:
    """The snapshot with a note for each input for the other platform, ignored (auditd_check.input_notes);
    a new snapshot when there is a note, so a snapshot shared by other assessments (a fleet) is not changed."""
    if snapshot is None:
        return None
    from .auditd_check import input_notes

    notes = input_notes(snapshot, {r.kind for r in resolution.requirements.values()})
    return replace(snapshot, warnings=[*snapshot.warnings, *notes]) if notes else snapshot


def _check(options: CheckOptions) -> CheckResult:
    kb = load_knowledge(options)
    snapshot = read_policies(options, kb)   # bad policy input fails before the rules are read
    collectors = read_collectors(options)
    samples = read_event_samples(options)
    loaded = load_rules(options)
    before = len(loaded.rules)
    rules = select_rules(options, loaded.rules)
    resolution = resolve(rules, kb)
    # a condition that cannot be read as written is an error in the rule file (counted, exit status 1)
    loaded.errors.extend(LoadError(res.rule.path, None, _where(res.rule) + problem)
                         for res in resolution.rules for problem in res.condition_problems)
    role = decide_role(snapshot, kb, options.role)
    resolution = role_volumes(resolution, kb, role)   # new records: the resolution given is not changed
    snapshot = with_input_notes(snapshot, resolution)
    diff = PolicyDiff(kb, snapshot, role.role, role.known)
    diff.apply(resolution)
    collection = None
    if collectors:
        from .collection import judge_collection

        resolution, collection = judge_collection(resolution, collectors, kb)
    events = None
    if samples:
        from .observed import apply_events

        events = apply_events(resolution, samples, kb)
    limit, lost = None, frozenset()
    if collection is not None:   # what a change would unblind counts only rules whose events can arrive
        from .collection_plan import limit_by_collection, never_arriving

        limit, lost = limit_by_collection(collection, resolution), never_arriving(collection)
    ranked = rank_missing(resolution, limit, lost)
    result = CheckResult(loaded=loaded, resolution=resolution, knowledge=kb, snapshot=snapshot,
                         audit=diff.audit, ranked=ranked, filtered_out=before - len(rules), role=role,
                         max_volume=options.max_volume, hold_unknown_volume=options.hold_unknown_volume,
                         roots=list(options.paths), collectors=collectors, collection=collection, events=events)
    result.plans = compute_plans(result, options.plan, options.max_volume, options.hold_unknown_volume)
    return result


__all__ = ["CheckOptions", "check", "paused_gc", "LEVELS"]
