"""--emit with --collector: what each collector configuration must add, in its own syntax.

Only events that are needed and do not arrive are written: those of requirements the machine already
produces (status met / not_collected) or that the chosen plan switches on. A channel the file does not
read gets a new stanza (Winlogbeat entry, Splunk stanza, WEF ``<Select>``, Wazuh ``<localfile>``);
a channel the file reads but filters gets a comment naming the stanza and why the event is dropped
(the user's own stanza is never rewritten; for WEF an extra ``<Select>`` adds the IDs). Events whose
verdict is unknown are listed, never guessed at. Each addition names the rules it would unblind
(blind or partial rules whose events it forwards). NXLog, Fluent Bit and OpenTelemetry get a plain list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .collectors.xpath import Event
from .knowledge import SAFE_CHANNEL_RE
from .templating import Trusted, render

_TEMPLATES = {"winlogbeat": ("winlogbeat.yml", "script"), "splunk": ("inputs.conf", "script"),
              "wef": ("subscription-query.xml", "xml"), "wazuh": ("ossec-localfile.xml", "xml"),
              "telegraf": ("telegraf.conf", "script")}


@dataclass
class Addition:
    channel: Trusted
    ids: list[int] = field(default_factory=list)          # EventIDs to add; empty with whole: every event
    whole: bool = False                                    # the rule needs the channel's events (no EventID)
    rules: dict[str, None] = field(default_factory=dict)   # rules it would unblind
    needed: int = 0                                        # rules that need these events
    existing: list[tuple[str, str]] = field(default_factory=list)   # (stanza, why it drops the events)

    @property
    def id_text(self) -> Trusted:
        return Trusted(_ranges(self.ids))

    @property
    def xpath(self) -> Trusted:
        if self.whole or not self.ids:
            return Trusted("*")
        return Trusted("*[System[(" + " or ".join(f"EventID={i}" for i in self.ids) + ")]]")


def _ranges(ids: list[int]) -> str:
    out: list[str] = []
    for eid in sorted(set(ids)):
        if out and "-" not in out[-1] and int(out[-1]) == eid - 1:
            out[-1] = f"{out[-1]}-{eid}"
        elif out and "-" in out[-1] and int(out[-1].split("-")[1]) == eid - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{eid}"
        else:
            out.append(str(eid))
    return ",".join(out)


def _wanted(result: Any, hops: dict[str, int] | None = None) -> tuple[dict[str, dict], dict[str, dict[str, None]]]:
    """Per channel {EventID or None: {rules it would unblind}} for needed events that do not arrive, and
    per channel the events whose verdict is unknown (with why). Needed: the requirement is produced
    (met / not_collected) or the chosen plan switches it on."""
    from .plans import chosen_plan

    check, reqs = result.collection, result.resolution.requirements
    plan = chosen_plan(result.plans)
    planned = {rid for step in plan.steps for rid in step.requirements} if plan is not None else set()
    blind = {res.rule.ref for res in result.resolution.rules if res.collection_reason == "not_collected"}
    wanted: dict[str, dict] = {}
    unknown: dict[str, dict[str, None]] = {}
    for rid, events in check.per_req.items():
        req = reqs[rid]
        if req.status not in ("met", "not_collected") and rid not in planned:
            continue
        for event, verdict in events.values():
            known = result.knowledge.channel(event.channel)
            channel = known.name if known is not None else event.channel
            if verdict.collected is None:
                unknown.setdefault(channel, {})[f"EventID {event.event_id or 'any'}: {verdict.reason}"] = None
            elif verdict.collected is False:
                if verdict.hop is not None and hops is not None:   # a WEF chain: which file must change
                    channel = verdict.via if verdict.hop == 2 and verdict.via else channel
                    hops[channel] = verdict.hop
                rules = wanted.setdefault(channel, {}).setdefault(event.event_id, {})
                rules.update(dict.fromkeys(req.rules, False))
                rules.update(dict.fromkeys((r for r in req.rules if r in blind), True))
    return wanted, unknown


def collector_additions(result: Any) -> dict[str, str]:
    """File name -> text: one addition file per --collector file (empty dict without collectors)."""
    if not result.collectors or result.collection is None:
        return {}
    hops: dict[str, int] = {}
    wanted, unknown = _wanted(result, hops)
    files: dict[str, str] = {}
    for number, config in enumerate(result.collectors, 1):
        additions, unsafe = [], []
        for channel, ids in sorted(wanted.items()):
            # a WEF chain: what the subscription does not select goes into the subscription (hop 1); the log
            # on the collector host that no forwarder reads goes into the forwarders (hop 2)
            if hops.get(channel) == (2 if config.format == "wef" else 1):
                continue
            if not SAFE_CHANNEL_RE.match(channel):
                unsafe.append(channel)
                continue
            add = Addition(Trusted(channel), whole=None in ids,
                           ids=sorted(i for i in ids if i is not None))
            needed: set[str] = set()
            for rules in ids.values():
                needed.update(rules)
                add.rules.update(dict.fromkeys(r for r, unblinds in rules.items() if unblinds))
            add.needed = len(needed)
            for item in config.inputs:
                if result.knowledge.channel_key(item.channel) == result.knowledge.channel_key(channel):
                    sample = add.ids[0] if add.ids else None
                    add.existing.append((item.stanza, item.test(Event(channel, sample))[1]))
            additions.append(add)
        template, flavour = _TEMPLATES.get(config.format, ("other.txt", "text"))
        text = render(f"emit/collectors/{template}.j2", flavour, additions=additions, source=config.path,
                      format=config.format, unknown=unknown, unsafe=unsafe)
        files[f"collectors/{number}-{config.format}-{template}"] = text
    return files
