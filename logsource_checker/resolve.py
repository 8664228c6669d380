"""Resolver: ``Rule``s + guide data -> ``Requirement``s.

For every rule the resolver finds the guide of its log source and turns the guide's enablement
alternatives into ``Need``s: a rule is usable when each of its needs is met through at least one
``Option`` (an option is a set of requirements that must all be met). Security rules get one need per
EventID, resolved through the audit-policy mapping; an EventID with several producing subcategories
gets one option per producer, the primary producer first.
"""
from __future__ import annotations

import re
from typing import Iterable

from . import auditd_needs
from .resolution import Need, Option, Requirement, Resolution, RuleResolution, UnmappedEvent
from .knowledge import AuditEvent, AuditSubcategory, Guide, Knowledge, RequirementSpec
from .objects import ObjectHint, producer_options, rule_objects, sacl_of
from .rules import Rule
from . import condition as cond
from .serving import Decision, ProducerFields, decide, served_fields


_SLUG_RE = re.compile(r"[^a-z0-9]+")


class Resolver:
    def __init__(self, kb: Knowledge) -> None:
        self.kb = kb
        self.result = Resolution()
        # Per-run memo tables (the guide data does not change while rules are resolved): the
        # requirement ids a spec yields for a guide, case-folded field sets, and the audit options
        # of an EventID, and what a rule needs per (log source, EventIDs, case-folded fields). They only
        # save work; rules of one memo entry share its Need/Option objects (each rule has its own list),
        # which no stage changes once resolved.
        self._spec_ids: dict[tuple[int, int], tuple[str, ...]] = {}
        self._folded: dict[int, frozenset[str] | None] = {}
        self._rule_memo: dict[tuple, tuple] = {}
        self._resolved_needs: list[list[Need]] = []   # the needs of each rule resolved (not from the memo)
        self._rule_fields: dict[tuple[str, ...], frozenset[str]] = {}
        self._producers = ProducerFields(kb)
        self._unmapped_calls: list[tuple[int, str, tuple[int, ...]]] | None = None
        self._objects: dict[int, ObjectHint] = {}   # the rule being resolved: object hint per EventID
        self._object_events = kb.object_access.events
        self._object_options: dict[tuple[int, ObjectHint | None], tuple[tuple, str | None]] = {}
        self._auditd: dict[int, tuple] = {}   # the rule being resolved: derived audit rule options per spec index
        self._used: dict[int, tuple] = {}   # selections each parsed condition uses (serving.served_fields)
        # guides with a requirement that depends on the rule's fields (when_fields): log source -> those fields
        self._when_guides = {ls: frozenset(f.casefold() for alt in guide.enablement for s in alt.requires
                                           for f in s.when_fields or ())
                             for guide in kb.guides for ls in guide.logsources
                             if any(s.when_fields for alt in guide.enablement for s in alt.requires)}
        # every field a requirement of the guide depends on (when_fields of its producers' and events' specs):
        # what a rule needs depends on its fields only through these (and the decision), log source -> fields
        self._fields_read = {ls: fields for guide in kb.guides for ls in guide.logsources
                             for fields in [frozenset(f.casefold() for spec in self._specs(guide)
                                                      for f in spec.when_fields or ())] if fields}
        self._auditd_guides = {ls for guide in kb.guides for ls in guide.logsources
                               if any(s.kind == "auditd_rule" and not s.value.get("syscalls")
                                      for alt in guide.enablement for s in alt.requires)}

    @staticmethod
    def _specs(guide: Guide) -> Iterable[RequirementSpec]:
        """Every requirement spec of a guide: its producers' and its events'."""
        for alt in guide.enablement:
            yield from alt.requires
        for event in guide.events.values():
            yield from event.requires or ()

    # -- requirements ------------------------------------------------------------------

    def _add(self, req: Requirement) -> Requirement:
        existing = self.result.requirements.get(req.id)
        if existing is not None:
            return existing
        self.result.requirements[req.id] = req
        return req

    def _audit(self, sub: AuditSubcategory, outcome: str) -> Requirement:
        return self._add(Requirement(
            id=f"audit:{sub.guid}:{outcome}", kind="audit_subcategory", name=f"{sub.name} ({outcome})",
            guid=sub.guid, success=outcome == "success", failure=outcome == "failure",
            volume=sub.volume, reference=sub.reference))

    def _from_spec(self, spec: RequirementSpec, guide: Guide) -> list[Requirement]:
        kb = self.kb
        if spec.kind == "audit":
            sub = kb.subcategories[spec.value]
            outcomes = [o for o, wanted in (("success", spec.success), ("failure", spec.failure)) if wanted]
            return [self._audit(sub, outcome) for outcome in outcomes]
        if spec.kind == "registry_policy":
            pol = kb.registry_policies[spec.value]
            return [self._add(Requirement(
                id=f"registry:{pol.id}", kind="registry_policy", name=f"{pol.name} ({pol.category})", policy=pol.id,
                volume=pol.volume, reference=pol.reference))]
        if spec.kind == "channel":
            channel = kb.channel(str(spec.value))
            assert channel is not None
            return [self._add(Requirement(
                id=f"channel:{channel.name}", kind="event_channel", name=channel.name, channel=channel.name,
                volume=guide.volume, reference=channel.reference))]
        if spec.kind == "sysmon_event":
            event = kb.sysmon_events[spec.value]
            return [self._add(Requirement(
                id=f"sysmon:{event.id}", kind="sysmon_event", name=f"Sysmon event {event.id} ({event.name})",
                event_id=event.id, channel=kb.sysmon_meta.get("channel"), volume=guide.volume,
                reference=kb.sysmon_meta.get("reference")))]
        if spec.kind == "sysmon_linux_event":   # Sysmon for Linux (sysmon_linux.py): same event ids and fields
            event = kb.sysmon_events[spec.value]
            linux = kb.sysmon_meta.get("linux") or {}
            return [self._add(Requirement(
                id=f"sysmon-linux:{event.id}", kind="sysmon_linux_event",
                name=f"Sysmon for Linux event {event.id} ({event.name})", event_id=event.id, volume=guide.volume,
                reference=linux.get("reference"),
                how=f"a {event.element} filter in the Sysmon for Linux configuration"))]
        if spec.kind == "sacl":
            return [self._sacl(str(spec.value), outcome)
                    for outcome, wanted in (("success", spec.success), ("failure", spec.failure)) if wanted]
        if spec.kind == "auditd_rule":   # fixed syscalls; from_rule / watch_fields are derived per rule
            return [self._auditd_req(item) for item in auditd_needs.syscall_items(spec.value.get("syscalls") or (),
                                                                                  kb.auditd)]
        if spec.kind == "external":
            ext = spec.value
            slug = _SLUG_RE.sub("-", str(ext.get("name", "")).lower()).strip("-")
            return [self._add(Requirement(
                id=f"external:{slug}", kind="external", name=str(ext.get("name")), how=str(ext.get("how")),
                reference=str(ext.get("reference")), volume=guide.volume))]
        return []  # audit_events is expanded per EventID by the caller

    def _auditd_req(self, item: tuple[str, ...]) -> Requirement:
        return self._add(Requirement(kind="auditd_rule", auditd=item,
                                     **auditd_needs.requirement_fields(item, self.kb.auditd)))

    def _auditd_derived(self, rule: Rule, guide: Guide, node: tuple | None) -> tuple:
        """Per guide spec that derives audit rules from the rule (``from_rule`` / ``watch_fields``): the
        options, as (spec index, ((label, items), ...)) pairs; () for guides without one."""
        found = []
        for index, spec in enumerate(s for alt in guide.enablement for s in alt.requires):
            if spec.kind != "auditd_rule" or spec.value.get("syscalls"):
                continue
            if spec.value.get("from_rule"):
                found.append((index, auditd_needs.derive(rule, node, self.kb.auditd)))
                continue
            fields = frozenset(str(f).casefold() for f in spec.value.get("watch_fields") or ())
            positive = set(cond.used_positively(node)) if node is not None else None
            items = tuple(dict.fromkeys(
                item for name, branches in rule.selections if positive is None or name in positive
                for matches in branches for item in auditd_needs.watch_items(matches, fields, self.kb.auditd)))
            found.append((index, (("auditd watches", items or (
                ("undetermined", f"the rule names no path in {', '.join(sorted(fields))}"),)),)))
        return tuple(found)

    # -- rules -------------------------------------------------------------------------

    def resolve(self, rules: Iterable[Rule]) -> Resolution:
        for rule in rules:
            self.result.rules.append(self._rule(rule))
        for req in self.result.requirements.values():
            req.rules = dict(req.rules)
        self._link_alternatives()
        return self.result

    def _fold(self, obj: object, names: frozenset[str] | None) -> frozenset[str] | None:
        """``names`` case-folded, computed once per guide object (alternative or spec)."""
        key = id(obj)
        try:
            return self._folded[key]
        except KeyError:
            folded = self._folded[key] = None if names is None else frozenset(f.casefold() for f in names)
            return folded

    def _spec_req_ids(self, spec: RequirementSpec, guide: Guide) -> tuple[str, ...]:
        key = (id(spec), id(guide))
        ids = self._spec_ids.get(key)
        if ids is None:
            ids = self._spec_ids[key] = tuple(r.id for r in self._from_spec(spec, guide))
        return ids

    def _rule(self, rule: Rule) -> RuleResolution:
        key = rule.logsource.key
        guide = self.kb.by_logsource.get(key)
        if guide is None:
            res = RuleResolution(rule=rule, guide=guide)
            self.result.unmapped_logsources.setdefault(key, []).append(rule)
            res.notes.append(f"no guide for log source {rule.logsource.label()}")
            return res
        rule_fields = self._rule_fields.get(rule.fields)
        if rule_fields is None:   # one set per distinct field tuple: its hash is then computed once
            rule_fields = self._rule_fields[rule.fields] = frozenset([f.casefold() for f in rule.fields])
        # What a rule needs depends only on its log source (hence guide), its EventIDs (in order), its
        # case-folded fields that a requirement of the guide depends on (when_fields), the fields no producer
        # writes and which producers serve its condition with which selections lost, which many
        # rules share: the first such rule is resolved, later ones share its Need/Option objects (in a list
        # of their own; no stage changes a Need or Option once resolved) and get the same per-rule
        # bookkeeping. Object-access events also depend on the object the rule names (ObjectType /
        # ObjectName values).
        parsed = self._producers.read_condition(rule)
        decision = decide(rule, guide, self._producers, parsed, rule_fields)
        objects = () if self._object_events.isdisjoint(rule.event_ids) else rule_objects(rule, self.kb.object_access)
        auditd = self._auditd_derived(rule, guide, parsed.node) if key in self._auditd_guides else ()
        # a when_fields requirement applies only to a field in what the producer serves (serving.served_fields)
        wanted = self._when_guides.get(key)
        served = served_fields(rule, guide, self._producers, parsed, decision, wanted, rule_fields, self._used) \
            if wanted is not None and not wanted.isdisjoint(rule_fields) else ()
        # the rule's fields count through the decision (its verdicts, and the fields no producer writes, which
        # its notes name), what producers serve and the fields the guide's requirements depend on
        fields_read = self._fields_read.get(key)
        memo_key = (key, rule.event_ids, rule_fields & fields_read if fields_read is not None else None,
                    decision.alternatives, decision.unsatisfiable_fields, objects, auditd, served)
        memo = self._rule_memo.get(memo_key)
        if memo is None:
            self._unmapped_calls = []
            self._objects = dict(objects)
            self._auditd = dict(auditd)
            res = self._resolve_rule(rule, guide, rule_fields, decision, served)
            self._resolved_needs.append(res.needs)
            memo = self._rule_memo[memo_key] = (
                tuple(res.needs), tuple(res.notes), tuple(res.always_logged_event_ids), tuple(self._unmapped_calls),
                tuple(res.unsatisfiable_fields), tuple(res.requirement_ids))
            self._unmapped_calls = None
        else:
            needs, notes, always_logged, unmapped, unsatisfiable, _ = memo
            res = RuleResolution(rule=rule, guide=guide, needs=list(needs), notes=list(notes),
                                 always_logged_event_ids=list(always_logged),
                                 unsatisfiable_fields=list(unsatisfiable))
            for call in unmapped:
                self._unmapped(rule, *call, res)
        res.condition_problems = list(parsed.problems)
        res.notes.extend(parsed.notes)
        ref = rule.ref
        requirements = self.result.requirements
        for rid in memo[5]:
            requirements[rid].rules[ref] = None
        res.__dict__["_requirement_ids"] = memo[5]
        return res

    def _resolve_rule(self, rule: Rule, guide: Guide, rule_fields: frozenset[str],
                      decision: Decision, served: tuple[frozenset[str], ...] = ()) -> RuleResolution:
        res = RuleResolution(rule=rule, guide=guide)
        event_ids = set(rule.event_ids)

        def applies(spec: RequirementSpec, fields: frozenset[str] = rule_fields) -> bool:
            if spec.when_fields is not None and not (self._fold(spec, spec.when_fields) & fields):
                return False
            if spec.when_event_ids is not None and not (spec.when_event_ids & event_ids):
                return False
            return True

        options: list[Option] = []
        audit_events = False
        res.notes.extend(decision.notes)
        res.unsatisfiable_fields = list(decision.unsatisfiable_fields)
        spec_index = 0
        for position, (alt, verdict) in enumerate(zip(guide.enablement, decision.alternatives)):
            first, spec_index = spec_index, spec_index + len(alt.requires)
            if not verdict.serves:
                continue
            fields = served[position] if served else rule_fields   # what this producer serves of the rule
            req_ids: list[str] = []
            derived: list[tuple[str, tuple]] = [("", ())]   # audit rules derived from the rule: one option each
            for index, spec in enumerate(alt.requires, first):
                if spec.kind == "audit_events":
                    audit_events = True
                    continue
                if index in self._auditd:
                    derived = [(f"{label} {more}".strip(), items + extra) for label, items in derived
                               for more, extra in self._auditd[index]]
                    continue
                if applies(spec, fields):
                    req_ids.extend(self._spec_req_ids(spec, guide))
            for n, (label, items) in enumerate(derived):
                ids = req_ids + [self._auditd_req(item).id for item in items]
                options.append(Option(f"{alt.name}: {label}" if label else alt.name, alt.primary and n == 0,
                                      tuple(dict.fromkeys(ids)), alt.notes, lost=verdict.lost,
                                      filters_not_applied=verdict.filters_not_applied, narrowed=verdict.narrowed))
        if not any(o.primary for o in options) and options:
            options[0].primary = True
        if any(o.requirements for o in options):
            # an option without requirements (a source that is on by default) meets the need by itself
            res.needs.append(Need(label=guide.title, options=options))
        elif not options:
            res.notes.append(f"no producer of guide {guide.path} writes the fields this rule's condition needs")
        if audit_events:
            self._security_events(rule, res)
        else:
            self._listed_events(rule, guide, res)
        for event_id in sorted(event_ids):
            event = guide.events.get(event_id)
            if event is None or not event.requires:
                continue
            ids = tuple(dict.fromkeys(rid for spec in event.requires if applies(spec)
                                      for rid in self._spec_req_ids(spec, guide)))
            if ids:
                res.needs.append(Need(f"EventID {event_id}", [Option(f"EventID {event_id}", True, ids)], event_id))
        return res

    def _sacl(self, kind_id: str, outcome: str) -> Requirement:
        kind = self.kb.object_access.sacl_kinds[kind_id]
        return self._add(Requirement(
            id=f"sacl:{kind.id}:{outcome}", kind="sacl", name=f"{kind.name} ({outcome})", success=outcome == "success",
            failure=outcome == "failure", reference=kind.reference, how=kind.decide, sacl=kind.id))

    def _role(self, roles: tuple[str, ...]) -> Requirement:
        from .roles import ROLE_NAMES

        names = " or a ".join(ROLE_NAMES[r] for r in roles)
        return self._add(Requirement(id="role:" + "+".join(roles), kind="machine_role",
                                     name=f"the machine is a {names}"))

    def _producer_template(self, sub: AuditSubcategory, event: AuditEvent, primary: bool, sacl: str | None,
                           notes: str | None, roles: tuple[str, ...] = ()
                           ) -> tuple[str, bool, tuple[str, ...], str | None, str | None]:
        """One option: the subcategory for the event's outcomes, the subcategories it also needs ("all of"),
        the SACL on the objects for the same outcomes, and the machine roles it writes the event on."""
        outcomes = [o for o in ("success", "failure") if o in event.outcomes]
        ids = [self._audit(sub, outcome).id for outcome in outcomes]
        names = [sub.name]
        for spec in event.also_requires:
            other = self.kb.subcategories[spec.value]
            names.append(other.name)
            ids += [self._audit(other, o).id for o, wanted in (("success", spec.success), ("failure", spec.failure))
                    if wanted]
        if sacl is not None:
            ids += [self._sacl(sacl, outcome).id for outcome in outcomes]
        elif sub.requires_sacl and notes is None:
            notes = "needs SACLs on the objects to audit"
        if roles:
            ids.append(self._role(roles).id)
        return " + ".join(names), primary, tuple(dict.fromkeys(ids)), notes, event.basis if event.inferred else None

    def _event_templates(self, event_id: int, producers: list) -> tuple[tuple, str | None]:
        """The options of an EventID (memoized per EventID and object hint) and a note."""
        hint = self._objects.get(event_id) if event_id in self.kb.object_access.events else None
        key = (event_id, hint)
        memo = self._object_options.get(key)
        if memo is not None:
            return memo
        note = None
        if event_id in self.kb.object_access.events:
            choices, note = producer_options(self.kb, event_id, hint)
            primary = next((c for c in choices if c.event.primary), choices[0]) if choices else None
            choices.sort(key=lambda c: c is not primary)   # the primary option first, then data order
            templates = tuple(self._producer_template(c.sub, c.event, c is primary, c.sacl, c.notes, c.roles)
                              for c in choices)
        else:
            templates = tuple(self._producer_template(sub, event, event.primary or len(producers) == 1,
                                                      sacl_of(self.kb, sub), None) for sub, event in producers)
        memo = self._object_options[key] = (templates, note)
        return memo

    def _security_events(self, rule: Rule, res: RuleResolution) -> None:
        kb = self.kb
        if not rule.event_ids:
            res.notes.append("rule names no EventID: which audit subcategories it needs cannot be told")
        named = set(rule.event_ids)
        for event_id in rule.event_ids:
            producers = kb.producers.get(event_id)
            if producers:
                templates, note = self._event_templates(event_id, producers)
                if note:
                    res.notes.append(note)
                name = producers[0][1].name
                label = f"EventID {event_id}" + (f" ({name})" if name else "")
                res.needs.append(Need(label, [Option(*t) for t in templates], event_id))
            elif event_id in kb.always_logged:
                res.always_logged_event_ids.append(event_id)
            elif event_id in kb.legacy_events:
                legacy = kb.legacy_events[event_id]
                replaced = ", ".join(str(i) for i in legacy.replaced_by) or "none"
                if named & set(legacy.replaced_by):
                    # the rule also names the modern event: the old ID only matters on Windows XP / 2003
                    res.notes.append(f"EventID {event_id} is a pre-Vista ID (Windows XP / Server 2003); the rule "
                                     f"also names its replacement {replaced}, which is checked instead")
                else:
                    self._unmapped(rule, event_id,
                                   f"pre-Vista event ID, no modern producer (replaced by {replaced})",
                                   legacy.replaced_by, res)
            else:
                self._unmapped(rule, event_id, "no known audit subcategory produces it", (), res)

    def _listed_events(self, rule: Rule, guide: Guide, res: RuleResolution) -> None:
        if not guide.events:
            return
        for event_id in rule.event_ids:
            if event_id not in guide.events:
                self._unmapped(rule, event_id, f"not listed in guide {guide.path}", (), res)

    def _unmapped(self, rule: Rule, event_id: int, reason: str, replaced_by: tuple[int, ...],
                  res: RuleResolution) -> None:
        if self._unmapped_calls is not None:
            self._unmapped_calls.append((event_id, reason, replaced_by))
        res.unmapped_event_ids.append(event_id)
        key = (event_id, rule.logsource.key)
        entry = self.result.unmapped_events.get(key)
        if entry is None:
            entry = self.result.unmapped_events[key] = UnmappedEvent(event_id, rule.logsource, reason,
                                                                     replaced_by=replaced_by)
        entry.rules.append(rule)

    def _link_alternatives(self) -> None:
        reqs = self.result.requirements
        seen: set[tuple[tuple[str, ...], ...]] = set()  # a need with the same options adds nothing new
        # every rule's needs are those of the rule resolved for its memo entry, in the order of those rules
        for needs in self._resolved_needs:
            for need in needs:
                if len(need.options) < 2:
                    continue
                signature = tuple(option.requirements for option in need.options)
                if signature in seen:
                    continue
                seen.add(signature)
                for option in need.options:
                    others = [rid for other in need.options if other is not option for rid in other.requirements]
                    for rid in option.requirements:
                        for other_id in others:
                            if other_id != rid:
                                reqs[rid].alternatives[other_id] = None


def resolve(rules: Iterable[Rule], kb: Knowledge) -> Resolution:
    return Resolver(kb).resolve(rules)
