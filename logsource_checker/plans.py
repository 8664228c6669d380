"""Two plans of changes, the cheapest path first: ``native`` and ``sysmon``.

``native`` uses only settings (advanced audit subcategories, registry-backed policies, event-log
channels); ``sysmon`` may also deploy Sysmon (software to install), and keeps a native way where it is
cheaper. Each plan is built greedily over the needs that are not met: needs with fewer ways to meet
them first, and for each need the option whose new changes cost least: with ``--collector``, events
that arrive (``collection_plan.lost_options``: an option whose events are not forwarded comes last);
then no software to deploy (Sysmon costs nothing more once it is in the plan or a Sysmon configuration
was given), then the fewest new changes (what the plan already switches on is free), then the guide's
primary option (as ``Need.best_option``), then the lowest volume. Changes are then ordered by benefit: the rules the
plan makes usable that need the change (rules lost if it were left out), high/critical ones, lower
volume first on ties.

``--max-volume`` holds back changes whose volume is above it: the plan is built without them (another
way within the limit is taken where one exists) and they are listed with the rules they would unblind
(the rules the plan without the limit makes usable that need them). A change of ``unknown`` volume is
held back only when the user asks (``--hold-unknown-volume``): its volume cannot be shown to exceed the
limit. It is always flagged, like a high-volume one.

Every figure comes from ``diff.coverage_if``: nothing here changes the resolver's records.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TYPE_CHECKING, Iterable

from .diff import WhatIf, improves, need_status
from .resolve import Need, Option, Requirement

if TYPE_CHECKING:
    from .report import CheckResult

PLAN_NAMES = ("native", "sysmon")
NATIVE_KINDS = ("audit_subcategory", "registry_policy", "event_channel", "sacl")  # settings, no software
PLAN_KINDS = {"native": NATIVE_KINDS, "sysmon": NATIVE_KINDS + ("sysmon_event",)}
VOLUME_LEVELS = ("low", "medium", "high")
# cost order: an unknown volume is not assumed cheap
_VOLUME_RANK = {"low": 0, "medium": 1, "high": 2, "unknown": 3}
FLAGGED_VOLUMES = ("high", "unknown")
_HIGH = ("high", "critical")
_RANK = {"usable": 2, "partial": 1}


def volume_of(req: Requirement) -> str:
    """The measured volume (--events, volume_measured.py) when the samples measure it, else the guide's."""
    volume = getattr(req, "volume_measured", None) or req.volume
    return volume if volume in _VOLUME_RANK else "unknown"


def option_signature(need: Need) -> tuple:
    """Needs with the same options are planned together (many rules share them)."""
    return tuple((o.primary, o.requirements) for o in need.options)


def unit_key(req: Requirement) -> str:
    """One change: an audit subcategory is set once for every outcome it needs, and so is a SACL kind (one
    audit entry on the objects, or one global SACL, audits success and failure)."""
    if req.kind == "audit_subcategory" and req.guid:
        return f"audit:{req.guid}"
    if req.kind == "sacl" and req.sacl:
        return f"sacl:{req.sacl}"
    return req.id


def baseline_statuses(result: CheckResult) -> dict[str, str]:
    """Requirement statuses a plan starts from. What the inputs cannot show (``not_checked`` without a
    policy input, ``unknown`` with one) is assumed off for what a plan can switch on: audit, registry
    policies, channels (except channels Windows enables by default) and Sysmon events (without a
    Sysmon configuration Sysmon is not known to run). Collection outside Windows stays unknown."""
    kb = result.knowledge
    statuses = {}
    for rid, req in result.resolution.requirements.items():
        status = req.status
        if status in ("not_checked", "unknown"):
            if req.kind == "event_channel":
                channel = kb.channel(req.channel or "")
                status = "met" if channel is not None and channel.enabled_by_default else "missing"
            elif req.kind == "sysmon_event" and _blocking(kb, req):
                status = "unknown"   # a blocking type is never switched on by a plan (it would block files)
            elif req.kind in PLAN_KINDS["sysmon"]:
                status = "missing"
            else:
                status = "unknown"
        statuses[rid] = status
    return statuses


def _what_if(result: CheckResult, rules: list) -> WhatIf:
    """The plan's what-if; with --collector, capped by what can arrive (collection_plan.py)."""
    if getattr(result, "collection", None) is None:
        return WhatIf(rules)
    from .collection_plan import planner_what_if

    return planner_what_if(result, rules)


def _blocking(kb: Any, req: Requirement) -> bool:
    event = kb.sysmon_events.get(req.event_id)
    return bool(event is not None and event.blocking)


@dataclass
class Step:
    """One change of a plan (an audit subcategory with all its outcomes, a policy, a channel, a Sysmon
    event type) and its benefit in the plan."""

    key: str
    requirements: list[str]
    volume: str
    needed_by: dict[str, None] = field(default_factory=dict)   # rule refs whose chosen way includes it
    for_rules: dict[str, list[str]] = field(default_factory=dict)  # requirement id -> those rule refs
    unblinds: list[str] = field(default_factory=list)          # rule refs the plan loses without it
    unblinds_high_critical: int = 0

    @property
    def flagged(self) -> bool:
        return self.volume in FLAGGED_VOLUMES


@dataclass
class ChangePlan:
    name: str
    steps: list[Step] = field(default_factory=list)
    held_back: list[Step] = field(default_factory=list)
    unblinds: int = 0
    unblinds_high_critical: int = 0
    still_blind: int = 0
    still_partial: int = 0
    chosen: bool = False
    # the coverage of every rule (resolution order) once the plan is applied over its baseline (the report's
    # ``coverage_after_plan``), kept from building the plan
    coverage_after: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def changes(self) -> list[str]:
        return [rid for step in self.steps for rid in step.requirements]

    @property
    def volume(self) -> dict[str, int]:
        counts = dict.fromkeys(_VOLUME_RANK, 0)
        for step in self.steps:
            counts[step.volume] += 1
        return counts

    def step_of(self) -> dict[str, Step]:
        return {rid: step for step in self.steps for rid in step.requirements}


class _Planner:
    def __init__(self, result: CheckResult, max_volume: str | None, hold_unknown: bool = False) -> None:
        self.result = result
        self.reqs = result.resolution.requirements
        self.rules = result.resolution.rules
        self.baseline = baseline_statuses(result)
        self.what_if = _what_if(result, self.rules)
        self.before = self.what_if.coverage(self.baseline)
        snapshot = result.snapshot
        # Sysmon known to run on the Windows machines (a Sysmon for Linux configuration says nothing of them)
        self.sysmon_given = snapshot is not None and snapshot.sysmon is not None and snapshot.sysmon.os != "linux"
        self.cap = _VOLUME_RANK[max_volume] if max_volume else None
        self.hold_unknown = hold_unknown
        self.refs = [res.rule.ref for res in self.rules]
        self.index: dict[str, list[int]] = {}
        for i, ref in enumerate(self.refs):
            self.index.setdefault(ref, []).append(i)
        # needs that are not met, grouped by their options (many rules share them): options, rule refs
        groups: dict[tuple, tuple[list[Option], dict[str, None]]] = {}
        signatures: dict[int, tuple] = {}   # per Need object (rules of one resolver memo entry share them)
        for res, ref in zip(self.rules, self.refs):
            for need in res.needs:
                signature = signatures.get(id(need))
                if signature is None:
                    # option_signature(need), inlined: this loop runs per need of every rule
                    signature = signatures[id(need)] = tuple((o.primary, o.requirements) for o in need.options)
                group = groups.get(signature)
                if group is None:
                    group = groups[signature] = (need.options, {})
                group[1][ref] = None
        # with --collector: per options signature, the options whose events do not arrive (a plan prefers others)
        lost: dict[tuple, tuple[bool, ...]] = {}
        if getattr(result, "collection", None) is not None:
            from .collection_plan import lost_options

            lost = lost_options(result.collection, result.resolution, option_signature)
        self.open_needs = [(options, list(refs), lost.get(signature) if lost else None)
                           for signature, (options, refs) in groups.items()
                           if need_status(Need("", options), self.baseline) != "met"]

    def _allowed(self, rid: str, kinds: tuple[str, ...], capped: bool) -> bool:
        req = self.reqs[rid]
        if req.kind not in kinds:
            return False
        if not capped:
            return True
        volume = volume_of(req)
        if volume == "unknown":
            return not self.hold_unknown
        return self.cap is None or _VOLUME_RANK[volume] <= self.cap

    def _feasible(self, option: Option, kinds: tuple[str, ...], capped: bool) -> bool:
        return all(self.baseline[rid] == "met" or (self.baseline[rid] == "missing"
                                                   and self._allowed(rid, kinds, capped))
                   for rid in option.requirements)

    def choose(self, kinds: tuple[str, ...], capped: bool) -> dict[str, dict[str, None]]:
        """Requirement id -> rule refs it is chosen for. Needs with fewer feasible options first (a
        need only Sysmon can meet puts Sysmon in the plan before the needs that could go either way),
        then in rule order."""
        feasible = []
        for order, (options, refs, lost) in enumerate(self.open_needs):
            usable = [(n, o) for n, o in enumerate(options) if self._feasible(o, kinds, capped)]
            if usable:
                feasible.append((len(usable), order, usable, refs, lost))
        feasible.sort(key=lambda item: item[:2])
        chosen: dict[str, dict[str, None]] = {}
        deployed = self.sysmon_given

        def cost(item: tuple[int, Option]) -> tuple:
            index, option = item
            new = [rid for rid in option.requirements if self.baseline[rid] != "met" and rid not in chosen]
            software = any(self.reqs[rid].kind == "sysmon_event" for rid in new) and not deployed
            volume = max((_VOLUME_RANK[volume_of(self.reqs[rid])] for rid in new), default=-1)
            return software, len(new), not option.primary, volume, index

        for _, _, usable, refs, lost in feasible:
            # an option the plan already meets costs nothing: it wins, and the rules are recorded for it; with
            # --collector, an option whose events arrive (or cannot be judged) wins over one whose do not
            option = min(usable, key=cost if lost is None else lambda item: (lost[item[0]], *cost(item)))[1]
            for rid in option.requirements:
                if self.baseline[rid] != "met":
                    chosen.setdefault(rid, {}).update(dict.fromkeys(refs))
                    deployed = deployed or self.reqs[rid].kind == "sysmon_event"
        return chosen

    def improved(self, met: Iterable[str]) -> tuple[list[str], set[int]]:
        """The coverage of every rule with ``met`` switched on, and the indexes of the rules it unblinds."""
        after = self.what_if.coverage(self.baseline, met)
        return after, {i for i, cov in enumerate(after) if improves(self.before[i], cov)}

    def steps(self, chosen: dict[str, dict[str, None]]) -> list[Step]:
        steps: dict[str, Step] = {}
        for rid, refs in chosen.items():
            req = self.reqs[rid]
            key = unit_key(req)
            step = steps.get(key)
            if step is None:
                step = steps[key] = Step(key, [], volume_of(req))
            step.requirements.append(rid)
            # outcomes of one change may differ in measured volume (--events): the change has the highest
            step.volume = max(step.volume, volume_of(req), key=_VOLUME_RANK.__getitem__)
            step.needed_by.update(refs)
            step.for_rules[rid] = list(refs)
        for step in steps.values():
            step.requirements.sort()
        return list(steps.values())

    def rules_of(self, step: Step) -> set[int]:
        return {i for rid in step.requirements for ref in self.reqs[rid].rules for i in self.index.get(ref, ())}

    def benefit(self, step: Step, met: set[str], after: list[str], fixed: set[int]) -> None:
        """The rules ``met`` unblinds (``fixed``, with coverage ``after``) that would be worse off without
        this step: blind or partial instead of usable, or blind instead of partial."""
        mine = sorted(self.rules_of(step) & fixed)
        without = self.what_if.coverage(self.baseline, met - set(step.requirements), mine)
        lost = [i for i, cov in zip(mine, without) if _RANK.get(cov, 0) < _RANK.get(after[i], 0)]
        step.unblinds = list(dict.fromkeys(self.refs[i] for i in lost))
        step.unblinds_high_critical = sum(1 for i in lost if self.rules[i].rule.level in _HIGH)

    def plan(self, name: str) -> ChangePlan:
        kinds = PLAN_KINDS[name]
        chosen = self.choose(kinds, capped=True)
        plan = ChangePlan(name)
        plan.steps, after, fixed = self.judged_steps(chosen, chosen)
        plan.unblinds = len(fixed)
        plan.unblinds_high_critical = sum(1 for i in fixed if self.rules[i].rule.level in _HIGH)
        plan.coverage_after = after
        plan.still_blind = sum(1 for cov in after if cov == "blind")
        plan.still_partial = sum(1 for cov in after if cov == "partial")
        if self.cap is not None or self.hold_unknown:
            uncapped = self.choose(kinds, capped=False)
            over = {rid: refs for rid, refs in uncapped.items() if rid not in chosen
                    and not self._allowed(rid, kinds, capped=True)}
            # a held-back change is judged within the plan without the cap (what it would unblind there)
            plan.held_back = self.judged_steps(over, uncapped)[0]
        return plan

    def judged_steps(self, changes: dict[str, Any], met_ids: Any) -> tuple[list[Step], list[str], set[int]]:
        """The steps of ``changes``, each with the rules it unblinds when every requirement of ``met_ids`` is
        met, best first; with every rule's coverage then and the rules it improves."""
        steps = self.steps(changes)
        met = set(met_ids)
        after, fixed = self.improved(met)
        for step in steps:
            self.benefit(step, met, after, fixed)
        steps.sort(key=order_key)
        return steps, after, fixed


def order_key(step: Step) -> tuple:
    """Benefit first: rules unblinded, high/critical ones, then lower volume, then fewer rules needing it
    last (more first), then the key, so the order is deterministic."""
    return (-len(step.unblinds), -step.unblinds_high_critical, _VOLUME_RANK[step.volume],
            -len(step.needed_by), step.key)


def compute_plans(result: CheckResult, choice: str | None = None, max_volume: str | None = None,
                  hold_unknown: bool = False) -> list[ChangePlan]:
    """Both plans, the recommended one marked ``chosen``: ``choice`` when given, else ``sysmon`` when a
    Sysmon configuration was given, else ``native``. ``max_volume`` holds back changes of a higher known
    volume, ``hold_unknown`` those of unknown volume."""
    if max_volume is not None and max_volume not in VOLUME_LEVELS:
        raise ValueError(f"max_volume {max_volume!r} not one of {VOLUME_LEVELS}")
    if choice is not None and choice not in PLAN_NAMES:
        raise ValueError(f"plan {choice!r} not one of {PLAN_NAMES}")
    planner = _Planner(result, max_volume, hold_unknown)
    plans = [planner.plan(name) for name in PLAN_NAMES]
    wanted = choice or ("sysmon" if planner.sysmon_given else "native")
    for plan in plans:
        plan.chosen = plan.name == wanted
    return plans


def chosen_plan(plans: list[ChangePlan]) -> ChangePlan | None:
    return next((p for p in plans if p.chosen), None)
