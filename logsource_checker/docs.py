"""Markdown guides and an mkdocs site: one page per log source, an index, the audit-policy table.

Pages are rendered from the guide YAML through templates/docs/. Rule titles and paths (from the
checked rule set) appear only as escaped Markdown text.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from . import __version__
from .knowledge import Guide, Knowledge
from .render import ls_label, rel_path
from .diff import LEVEL_ORDER
from .report import COVERAGE_STATES, CheckResult, step_label
from .rules import logsource_dict
from .templating import Trusted, render


_ls_dict = logsource_dict
FOLD_RULES = 15   # a guide page folds its rule list (in a <details>) beyond this many rules


def _detail(label: str, value: Any, kind: str = "text") -> dict[str, Any]:
    """One sub-bullet of a requirement: kind 'code' (a path, key or command), 'url' or 'text'."""
    return {"label": label, "value": "" if value is None else str(value), "kind": kind}


def _items(kb: Knowledge, guide: Guide, alt) -> list[dict[str, Any]]:
    items = []
    for spec in alt.requires:
        condition = []
        if spec.when_fields:
            condition.append("when the rule uses " + ", ".join(sorted(spec.when_fields)))
        if spec.when_event_ids:
            condition.append("for event " + ", ".join(map(str, sorted(spec.when_event_ids))))
        item: dict[str, Any] = {"condition": "; ".join(condition), "details": []}
        details = item["details"]
        if spec.kind == "audit":
            sub = kb.subcategories[spec.value]
            outcomes = " and ".join(o for o, on in (("success", spec.success), ("failure", spec.failure)) if on)
            item.update(kind="Audit policy", text=f"{sub.gpo_name} ({sub.guid}), {outcomes}")
            details.append(_detail("Group Policy", sub.gpo_path, "code"))
            flags = (" /success:enable" if spec.success else "") + (" /failure:enable" if spec.failure else "")
            details.append(_detail("Command", f'auditpol /set /subcategory:"{sub.guid}"{flags}', "code"))
        elif spec.kind == "audit_events":
            item.update(kind="Audit policy", text="the subcategory that produces each EventID the rule names "
                        "(see the advanced audit policy page)")
        elif spec.kind == "registry_policy":
            pol = kb.registry_policies[spec.value]
            item.update(kind="Group Policy", text=f"{pol.name}: {pol.state}")
            details.append(_detail("Path", pol.gpo_path, "code"))
            details.extend(_detail(name, value, "code") for name, value in pol.settings)
            details.extend(_detail("Registry", f"{r.key}\\{r.value} = {r.data} ({r.type})", "code")
                           for r in pol.registry)
            if pol.defer is not None and pol.defer.policy in kb.registry_policies:
                target = kb.registry_policies[pol.defer.policy]
                details.append(_detail("Or", f"check '{pol.defer.setting}' in this policy and enable {target.name} "
                                             f"({target.category}), which then applies"))
        elif spec.kind == "channel":
            channel = kb.channel(str(spec.value))
            assert channel is not None
            state = "on" if channel.enabled_by_default else "off"
            item.update(kind="Event log channel", text=f"{channel.name} ({state} by default)")
            if channel.gpo_path:
                details.append(_detail("Group Policy", channel.gpo_path, "code"))
            if not channel.enabled_by_default:
                size = f" /ms:{channel.recommended_max_size_mb * 1024 * 1024}" if channel.recommended_max_size_mb else ""
                details.append(_detail("Command", f'wevtutil sl "{channel.name}" /e:true{size}', "code"))
        elif spec.kind == "sysmon_event":
            event = kb.sysmon_events[spec.value]
            item.update(kind="Sysmon", text=f"event {event.id}, {event.name}"
                        + (f" (config element {event.element})" if event.element else " (always logged)"))
        elif spec.kind == "sysmon_linux_event":
            event = kb.sysmon_events[spec.value]
            linux = kb.sysmon_meta.get("linux") or {}
            item.update(kind="Sysmon for Linux", text=f"event {event.id}, {event.name} (config element {event.element})")
            details.append(_detail("Log", linux.get("log")))
            details.append(_detail("Reference", linux.get("reference"), "url"))
        elif spec.kind == "external":
            ext = spec.value
            item.update(kind="Outside Windows policy", text=str(ext.get("name")))
            details.append(_detail("How", ext.get("how")))
            details.append(_detail("Reference", ext.get("reference"), "url"))
        elif spec.kind == "sacl":
            sacl = kb.object_access.sacl_kinds[spec.value]
            outcomes = " and ".join(o for o, on in (("success", spec.success), ("failure", spec.failure)) if on)
            item.update(kind="SACL", text=f"{sacl.name}, {outcomes}: on {sacl.objects_unnamed}")
            if sacl.gpo_path:
                details.append(_detail("Global SACL (Group Policy)", sacl.gpo_path, "code"))
            details.append(_detail("Shown by", sacl.decide))
            details.append(_detail("Reference", sacl.reference, "url"))
        elif spec.kind == "auditd_rule":
            from .auditd_needs import syscall_items

            value = spec.value
            item.update(kind="Linux audit rules", text=(
                "syscall rules for " + ", ".join(value["syscalls"]) if value.get("syscalls") else
                "watches on the paths the rule names in " + ", ".join(value["watch_fields"])
                if value.get("watch_fields") else
                "the rules that produce the record types, syscalls, paths and keys the rule matches"))
            details.extend(_detail("Rule", f"-a always,exit -F arch={arch} -S {name} -k {kb.auditd.emit_key}", "code")
                           for _, arch, name in syscall_items(value.get("syscalls") or (), kb.auditd))
            details.append(_detail("Reference", kb.auditd.watch_perms_reference, "url"))
        items.append(item)
    return items


def _inferred_events(kb: Knowledge) -> list[dict[str, Any]]:
    """Security events whose subcategory or outcome no Microsoft page states (auditpol.yaml inferred: true)."""
    rows = []
    for sub in kb.subcategories.values():
        for ev in sub.events:
            if ev.inferred:
                rows.append({"id": ev.id, "name": ev.name or "", "subcategory": sub.name,
                             "outcomes": " and ".join(sorted(ev.outcomes)), "basis": ev.basis or ""})
    return sorted(rows, key=lambda r: (r["id"], r["subcategory"]))


def _page_path(guide: Guide) -> str:
    rel = guide.path.removeprefix("guides/")
    return "sources/" + rel.rsplit(".", 1)[0] + ".md"


_TECHNIQUE = re.compile(r"t\d{4}(?:\.\d{3})?")
_TACTIC = re.compile(r"[a-z]+(?:[-_][a-z]+)*")


def attack_tags(tags: Any) -> tuple[set[str], set[str]]:
    """The ATT&CK tactics (``attack.<name>``, ``_`` read as ``-`` as the Sigma tag list spells them today)
    and techniques (``attack.tNNNN[.NNN]``, upper case) among a rule's tags; groups (``attack.gNNNN``),
    software (``attack.sNNNN``) and other tags are neither."""
    tactics: set[str] = set()
    techniques: set[str] = set()
    for tag in tags or ():
        text = str(tag).strip().lower()
        if not text.startswith("attack."):
            continue
        name = text.removeprefix("attack.")
        if _TECHNIQUE.fullmatch(name):
            techniques.add(name.upper())
        elif _TACTIC.fullmatch(name):
            tactics.add(name.replace("_", "-"))
    return tactics, techniques


def _coverage_counts(resolutions: list[Any]) -> dict[str, int]:
    counts = dict.fromkeys(COVERAGE_STATES, 0)
    for res in resolutions:
        counts[res.coverage] = counts.get(res.coverage, 0) + 1
    return counts


def _tactic_pages(result: CheckResult, guide_links: dict[str, tuple[str, str]]) -> tuple[list[dict], dict]:
    """One page per tactic: its techniques, how many rules tag each, their coverage (with a policy) and the
    guide pages of their log sources. Also the overview's counts."""
    by_tactic: dict[str, dict[str, list[Any]]] = {}
    untagged = no_tactic = 0
    for res in result.resolution.rules:
        tactics, techniques = attack_tags(res.rule.tags)
        if not tactics:
            untagged += 1
            no_tactic += bool(techniques)
        for tactic in tactics:
            bucket = by_tactic.setdefault(tactic, {})
            for technique in techniques or {"(no technique tag)"}:
                bucket.setdefault(technique, []).append(res)
    pages = []
    for tactic in sorted(by_tactic):
        rows = []
        techniques_of = by_tactic[tactic]
        for technique in sorted(techniques_of, key=lambda name: (name.startswith("("), name)):
            resolutions = techniques_of[technique]
            links = sorted({guide_links[res.guide.id] for res in resolutions if res.guide is not None},
                           key=lambda link_title: (link_title[1].lower(), link_title[0]))
            rows.append({"technique": technique, "rules": len(resolutions),
                         "coverage": _coverage_counts(resolutions),
                         "sources": [{"title": title, "link": Trusted("../" + link)} for link, title in links],
                         "no_guide": sum(1 for res in resolutions if res.guide is None)})
        rules = {id(res) for resolutions in by_tactic[tactic].values() for res in resolutions}
        pages.append({"tactic": tactic, "link": f"attack/{tactic}.md", "rows": rows, "rules": len(rules),
                      "nav_title": Trusted(json.dumps("attack." + tactic))})
    return pages, {"untagged": untagged, "technique_only": no_tactic}


def _landing(result: CheckResult) -> dict[str, Any]:
    """The landing page's figures: rules per level (with a policy, their coverage) and the recommended plan."""
    levels: dict[str, list[Any]] = {}
    for res in result.resolution.rules:
        levels.setdefault(res.rule.level or "unknown", []).append(res)
    by_level = [{"level": lvl, "rules": len(levels[lvl]), "coverage": _coverage_counts(levels[lvl]),
                 "no_guide": sum(1 for res in levels[lvl] if res.guide is None)}
                for lvl in (*LEVEL_ORDER, "unknown") if lvl in levels]
    by_level += [{"level": lvl, "rules": len(rs), "coverage": _coverage_counts(rs),
                  "no_guide": sum(1 for res in rs if res.guide is None)}
                 for lvl, rs in sorted(levels.items()) if lvl not in (*LEVEL_ORDER, "unknown")]
    reqs = result.resolution.requirements
    plan = next((p for p in result.plans if p.chosen), None)
    steps = held = []
    if plan is not None:
        steps = [{**step_label(step, reqs, result.knowledge), "volume": step.volume,
                  "unblinds": len(step.unblinds), "needed_by": len(step.needed_by)} for step in plan.steps]
        held = [{**step_label(step, reqs, result.knowledge), "volume": step.volume} for step in plan.held_back]
    return {"by_level": by_level, "plan": plan, "steps": steps, "held": held,
            "others": [p for p in result.plans if not p.chosen]}


def _nav(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Guide pages as nested sections after their folders below ``guides/``: products (the top folders)
    ordered by how many guides they hold, most first (Windows); below that folders and pages by name."""
    tree: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for page in pages:
        parts = page["link"].removeprefix("sources/").split("/")
        product, folder = parts[0], "/".join(parts[1:-1])
        tree.setdefault(product, {}).setdefault(folder, []).append(page)
    order = sorted(tree, key=lambda prod: (-sum(len(v) for v in tree[prod].values()), prod))
    nav = []
    for product in order:
        folders = []
        for folder in sorted(tree[product]):
            entries = sorted(tree[product][folder], key=lambda p: p["title"].lower())
            folders.append({"title": Trusted(json.dumps(folder.replace("_", " ").replace("/", " / ").capitalize()))
                            if folder else None, "pages": entries})
        nav.append({"title": Trusted(json.dumps(product.replace("_", " ").capitalize())), "folders": folders})
    return nav


def write_docs(result: CheckResult, directory: Path, guard: Any = None) -> list[Path]:
    """Write the site's sources into ``directory`` through ``writer.write_tree`` (all or nothing, never
    over a file the tool did not write unless ``guard.force``); the paths written (a ``writer.Written``)."""
    from .writer import write_tree

    kb = result.knowledge
    checked = result.snapshot is not None
    by_guide: dict[str, list[Any]] = {}
    for res in result.resolution.rules:
        if res.guide is not None:
            by_guide.setdefault(res.guide.id, []).append(res)
    files: dict[str, str] = {}

    def write(rel: str, text: str) -> None:
        files[rel] = text

    pages = []
    inferred = _inferred_events(kb)
    for guide in sorted(kb.guides, key=lambda g: g.path):
        rules = sorted(by_guide.get(guide.id, []), key=lambda r: (r.rule.title or "", r.rule.path))
        link = _page_path(guide)
        alternatives = [{"name": alt.name, "primary": alt.primary, "fields": sorted(alt.fields) if alt.fields else None,
                         "notes": alt.notes, "items": _items(kb, guide, alt)} for alt in guide.enablement]
        labels = [ls_label(_ls_dict(k)) for k in guide.logsources]
        sources = [{"provider": s.get("provider"), "guid": s.get("guid"), "channel": s.get("channel")}
                   for s in guide.sources]
        text = render("docs/guide.md.j2", "markdown", g=guide, labels=labels, sources=sources, checked=checked,
                      alternatives=alternatives, events=sorted(guide.events.values(), key=lambda e: e.id),
                      inferred=inferred if any(spec.kind == "audit_events" for alt in guide.enablement
                                               for spec in alt.requires) else [], fold=FOLD_RULES,
                      rules=[{"title": r.rule.title or r.rule.ref, "level": r.rule.level or "",
                              "coverage": r.coverage, "path": rel_path(r.rule.path, result.roots)} for r in rules])
        write("docs/" + link, text)
        pages.append({"label": "; ".join(ls_label(_ls_dict(k)) for k in guide.logsources), "rules": len(rules),
                      "title": guide.title, "link": link, "nav_title": Trusted(json.dumps(guide.title)),
                      "guide": guide.id})
    guide_links = {p["guide"]: (p["link"], p["title"]) for p in pages}
    listed = sorted(pages, key=lambda p: (-p["rules"], p["title"]))
    unmapped = [{"label": ls_label(_ls_dict(key)), "rules": len(rules)}
                for key, rules in sorted(result.resolution.unmapped_logsources.items(),
                                         key=lambda kv: tuple(x or "" for x in kv[0]))]
    write("docs/log-sources.md", render("docs/log-sources.md.j2", "markdown", pages=listed, unmapped=unmapped))
    tactics, attack_counts = _tactic_pages(result, guide_links)
    for tactic in tactics:
        write("docs/" + tactic["link"], render("docs/tactic.md.j2", "markdown", t=tactic, checked=checked,
                                               states=COVERAGE_STATES[:-1]))
    write("docs/attack/index.md", render("docs/attack-index.md.j2", "markdown", tactics=tactics, checked=checked,
                                         rule_count=len(result.resolution.rules), **attack_counts))
    write("docs/index.md", render("docs/index.md.j2", "markdown", rule_count=len(result.resolution.rules),
                                  version=Trusted(__version__), checked=checked, states=COVERAGE_STATES[:-1],
                                  unmapped=sum(u["rules"] for u in unmapped), **_landing(result)))
    categories = []
    for cat in kb.categories.values():
        subs = [{"sub": s, "events": ", ".join(f"{ev.id}{'*' if ev.inferred else ''}" for ev in s.events)}
                for s in kb.subcategories.values() if s.category == cat.name]
        categories.append({"name": cat.name, "legacy_policy": cat.legacy_policy, "subs": subs})
    write("docs/audit-policy.md", render("docs/audit-policy.md.j2", "markdown", categories=categories,
                                         subcategories=list(kb.subcategories.values()), inferred=inferred))
    write("docs/extra.css", render("docs/extra.css.j2", "text"))
    write("mkdocs.yml", render("docs/mkdocs.yml.j2", "text", products=_nav(pages), tactics=tactics,
                               site_name=Trusted(json.dumps("Log-source guides"))))
    return write_tree(directory, files, guard)


__all__ = ["write_docs"]
