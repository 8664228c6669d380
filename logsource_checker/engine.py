"""The check as a library call: paths (+ policy inputs) -> ``CheckResult``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from . import knowledge as knowledge_mod
from ._gcpause import paused_gc
from .diff import PolicyDiff, rank_missing
from .policy.model import PolicySnapshot
from .report import CheckResult
from .resolve import resolve
from .rules import LEVELS, LoadResult, level_at_least


@dataclass
class CheckOptions:
    paths: Sequence[str]
    min_level: str | None = None
    statuses: Sequence[str] = ()
    gpresult: Sequence[str] = ()
    auditpol: Sequence[str] = ()
    sysmon_config: str | None = None
    use_cache: bool = True
    progress: Any = None
    data_root: str | None = None


def load_rules(options: CheckOptions) -> LoadResult:
    from .loader import load_rules_fast

    return load_rules_fast(list(options.paths), use_cache=options.use_cache, progress=options.progress)


def read_policies(options: CheckOptions, kb: knowledge_mod.Knowledge) -> PolicySnapshot | None:
    """Read every policy input in command-line order (gpresult, auditpol, sysmon); None when none given."""
    if not (options.gpresult or options.auditpol or options.sysmon_config):
        return None
    from .policy import merge, read_policy

    vocabulary = kb.policy_vocabulary()
    snapshots = [read_policy(path, "gpresult", vocabulary=vocabulary) for path in options.gpresult]
    snapshots += [read_policy(path, "auditpol", vocabulary=vocabulary) for path in options.auditpol]
    if options.sysmon_config:
        snapshots.append(read_policy(options.sysmon_config, "sysmon",
                                     sysmon_events=list(kb.sysmon_events.values())))
    return merge(snapshots, vocabulary)


def check(options: CheckOptions) -> CheckResult:
    with paused_gc():
        return _check(options)


class KnowledgeError(Exception):
    """The guide data cannot be used (a broken install or an edited data folder): exit status 2."""


def load_knowledge(options: CheckOptions) -> knowledge_mod.Knowledge:
    try:
        kb = knowledge_mod.load(options.data_root, use_cache=options.use_cache)
    except Exception as exc:  # noqa: BLE001 - any failure to read our own data is one clear message
        raise KnowledgeError(f"guide data in {options.data_root or knowledge_mod.data_root()} cannot be read: "
                             f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from exc
    problems = knowledge_mod.validate(kb)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise KnowledgeError(f"guide data in {kb.root} is inconsistent: {problems[0]}{more}")
    return kb


def _check(options: CheckOptions) -> CheckResult:
    kb = load_knowledge(options)
    snapshot = read_policies(options, kb)   # bad policy input fails before the rules are read
    loaded = load_rules(options)
    rules = loaded.rules
    before = len(rules)
    if options.min_level:
        rules = [r for r in rules if level_at_least(r.level, options.min_level)]
    if options.statuses:
        wanted = {s.lower() for s in options.statuses}
        rules = [r for r in rules if (r.status or "") in wanted]
    resolution = resolve(rules, kb)
    diff = PolicyDiff(kb, snapshot)
    diff.apply(resolution)
    ranked = rank_missing(resolution)
    return CheckResult(loaded=loaded, resolution=resolution, knowledge=kb, snapshot=snapshot,
                       audit=diff.audit, ranked=ranked, filtered_out=before - len(rules))


__all__ = ["CheckOptions", "check", "paused_gc", "LEVELS"]
