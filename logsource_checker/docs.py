"""Markdown guides and an mkdocs site: one page per log source, an index, the audit-policy table.

Pages are rendered from the guide YAML through templates/docs/. Rule titles and paths (from the
checked rule set) appear only as escaped Markdown text.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import __version__
from .knowledge import Guide, Knowledge
from .render import ls_label
from .report import CheckResult
from .templating import Trusted, render


def _ls_dict(key: tuple) -> dict[str, Any]:
    return {"product": key[0], "category": key[1], "service": key[2]}


def _items(kb: Knowledge, guide: Guide, alt) -> list[dict[str, Any]]:
    items = []
    for spec in alt.requires:
        condition = []
        if spec.when_fields:
            condition.append("when the rule uses " + ", ".join(sorted(spec.when_fields)))
        if spec.when_event_ids:
            condition.append("for event " + ", ".join(map(str, sorted(spec.when_event_ids))))
        item: dict[str, Any] = {"condition": "; ".join(condition), "details": [], "command": None}
        if spec.kind == "audit":
            sub = kb.subcategories[spec.value]
            outcomes = " and ".join(o for o, on in (("success", spec.success), ("failure", spec.failure)) if on)
            item.update(kind="Audit policy", text=f"{sub.gpo_name} ({sub.guid}), {outcomes}")
            item["details"] = [f"Group Policy: {sub.gpo_path}"]
            flags = (" /success:enable" if spec.success else "") + (" /failure:enable" if spec.failure else "")
            item["command"] = f'auditpol /set /subcategory:"{sub.guid}"{flags}'
        elif spec.kind == "audit_events":
            item.update(kind="Audit policy", text="the subcategory that produces each EventID the rule names "
                        "(see the advanced audit policy page)")
        elif spec.kind == "registry_policy":
            pol = kb.registry_policies[spec.value]
            item.update(kind="Group Policy", text=f"{pol.name}: {pol.state}")
            item["details"] = [f"Path: {pol.gpo_path}"] + [f"{name}: {value}" for name, value in pol.settings] + [
                f"Registry: {r.key}\\{r.value} = {r.data} ({r.type})" for r in pol.registry]
        elif spec.kind == "channel":
            channel = kb.channel(str(spec.value))
            assert channel is not None
            state = "on" if channel.enabled_by_default else "off"
            item.update(kind="Event log channel", text=f"{channel.name} ({state} by default)")
            if channel.gpo_path:
                item["details"].append(f"Group Policy: {channel.gpo_path}")
            if not channel.enabled_by_default:
                item["command"] = f'wevtutil sl "{channel.name}" /e:true'
        elif spec.kind == "sysmon_event":
            event = kb.sysmon_events[spec.value]
            item.update(kind="Sysmon", text=f"event {event.id}, {event.name}"
                        + (f" (config element {event.element})" if event.element else " (always logged)"))
        elif spec.kind == "external":
            ext = spec.value
            item.update(kind="Outside Windows policy", text=str(ext.get("name")))
            item["details"] = [str(ext.get("how")), f"Reference: {ext.get('reference')}"]
        items.append(item)
    return items


def _page_path(guide: Guide) -> str:
    rel = guide.path.removeprefix("guides/")
    return "sources/" + rel.rsplit(".", 1)[0] + ".md"


def write_docs(result: CheckResult, directory: Path) -> list[Path]:
    kb = result.knowledge
    docs_dir = directory / "docs"
    by_guide: dict[str, list[Any]] = {}
    for res in result.resolution.rules:
        if res.guide is not None:
            by_guide.setdefault(res.guide.id, []).append(res)
    written: list[Path] = []

    def write(rel: str, text: str) -> None:
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    pages = []
    for guide in sorted(kb.guides, key=lambda g: g.path):
        rules = sorted(by_guide.get(guide.id, []), key=lambda r: (r.rule.title or "", r.rule.path))
        link = _page_path(guide)
        alternatives = [{"name": alt.name, "primary": alt.primary, "fields": sorted(alt.fields) if alt.fields else None,
                         "notes": alt.notes, "items": _items(kb, guide, alt)} for alt in guide.enablement]
        labels = [ls_label(_ls_dict(k)) for k in guide.logsources]
        text = render("docs/guide.md.j2", "markdown", g=guide, labels=labels,
                      alternatives=alternatives, events=sorted(guide.events.values(), key=lambda e: e.id),
                      rules=[{"title": r.rule.title or r.rule.ref, "level": r.rule.level or "",
                              "coverage": r.coverage, "path": r.rule.path} for r in rules])
        write("docs/" + link, text)
        pages.append({"label": "; ".join(ls_label(_ls_dict(k)) for k in guide.logsources), "rules": len(rules),
                      "title": guide.title, "link": link, "nav_title": Trusted(json.dumps(guide.title))})
    pages.sort(key=lambda p: (-p["rules"], p["title"]))
    unmapped = [{"label": ls_label(_ls_dict(key)), "rules": len(rules)}
                for key, rules in sorted(result.resolution.unmapped_logsources.items(),
                                         key=lambda kv: tuple(x or "" for x in kv[0]))]
    write("docs/index.md", render("docs/index.md.j2", "markdown", pages=pages, unmapped=unmapped,
                                  rule_count=len(result.resolution.rules), version=Trusted(__version__)))
    categories = []
    for cat in kb.categories.values():
        subs = [s for s in kb.subcategories.values() if s.category == cat.name]
        categories.append({"name": cat.name, "legacy_policy": cat.legacy_policy, "subs": subs})
    write("docs/audit-policy.md", render("docs/audit-policy.md.j2", "markdown", categories=categories,
                                         subcategories=list(kb.subcategories.values())))
    write("mkdocs.yml", render("docs/mkdocs.yml.j2", "text", pages=sorted(pages, key=lambda p: p["link"]),
                               site_name=Trusted(json.dumps("Log-source guides"))))
    return written


__all__ = ["write_docs"]
