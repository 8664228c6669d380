"""Policy inputs: what a Windows machine's policy really switches on.

``read_policy(path, kind)`` reads one input into a ``PolicySnapshot``; the format is recognised from
the content (``kind`` is the command-line option it came through: "gpresult", "auditpol" or "sysmon"):

- ``gpresult``: gpresult /x RSoP XML, a GPO report XML; also GptTmpl.inf, registry.pol and audit CSVs
- ``auditpol``: audit.csv / ``auditpol /backup`` / ``auditpol /get /category:* /r``; also GptTmpl.inf
- ``sysmon``: a Sysmon configuration XML (needs ``sysmon_events`` from the knowledge data)
- ``auditd``: Linux audit rules (``auditctl -l`` output or rules files; ``read_auditd`` reads several in order,
  as ``augenrules`` concatenates them)

``merge(snapshots)`` folds them into one effective snapshot. Precedence: the live state
(``auditpol /get /r``) over a gpresult RSoP over a single GPO (GPO report, audit.csv, GptTmpl.inf,
registry.pol); within one rank, the later input wins. Every disagreement is recorded in ``conflicts``.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Sequence

from .model import (AuditSetting, ChannelSetting, PolicyInput, PolicyInputError, PolicySnapshot, PolicyVocabulary,
                    RegistryPolicySetting, RegistryValue, SysmonConfig, norm_category, norm_registry_key)
from .xmlsafe import looks_like_xml, read_limited

__all__ = ["read_policy", "read_auditd", "merge", "PolicySnapshot", "PolicyInputError", "RANK", "AuditSetting",
           "ChannelSetting", "PolicyInput", "PolicyVocabulary", "RegistryPolicySetting", "RegistryValue",
           "SysmonConfig"]

# how much an input format says about the machine's effective state
RANK = {"auditpol_r": 3, "gpresult": 2, "gpo_report": 1, "audit_csv": 1, "gpttmpl": 1, "registry_pol": 1,
        "sysmon_config": 1, "auditd_rules": 1}
RANK_WHY = {3: "live audit state (auditpol /get /r) outranks policy files",
            2: "gpresult RSoP (what the machine applied) outranks a single GPO",
            1: "a single GPO"}


def read_policy(path: str, kind: str, sysmon_events: Iterable[Any] | None = None,
                vocabulary: PolicyVocabulary | None = None) -> PolicySnapshot:
    """Read one policy input; raise ``PolicyInputError(path, one-line reason)`` when it cannot be used.
    ``vocabulary`` (option names, setting labels) comes from the guide data; without it the installed
    data is loaded."""
    path = str(path)
    if kind == "auditd":
        return read_auditd([path])
    if vocabulary is None and kind != "sysmon":
        vocabulary = _installed_vocabulary()
    data = read_limited(path)
    if kind == "sysmon":
        from .sysmon_config import read_sysmon_config

        if not looks_like_xml(data):
            raise PolicyInputError(path, "not a Sysmon configuration XML (the file does not start with '<')")
        return read_sysmon_config(path, data, sysmon_events)
    if kind not in ("gpresult", "auditpol"):
        raise ValueError(f"unknown policy input kind {kind!r}")
    from .registry_pol import is_registry_pol, read_registry_pol

    if is_registry_pol(data):
        return read_registry_pol(path, data)
    if looks_like_xml(data):
        from .gpresult import read_gpresult

        return read_gpresult(path, data, vocabulary)
    if not data.strip(b"\x00 \t\r\n\xef\xbb\xbf\xff\xfe"):
        raise PolicyInputError(path, "empty file")
    from .auditpol import decode_text, is_audit_csv, read_auditpol
    from .gpttmpl import is_gpttmpl, read_gpttmpl

    text = decode_text(path, data)
    if is_audit_csv(text):
        return read_auditpol(path, data, vocabulary)
    if is_gpttmpl(text):
        return read_gpttmpl(path, data, vocabulary)
    if kind == "gpresult":
        raise PolicyInputError(path, "not a gpresult /x or GPO report XML (nor a GptTmpl.inf, registry.pol or "
                                     "audit CSV): the file does not start with '<'")
    raise PolicyInputError(path, "not an audit.csv or 'auditpol /get /category:* /r' CSV (no 'Machine Name,"
                                 "Policy Target,Subcategory,Subcategory GUID,...' header), nor a GptTmpl.inf")





def read_auditd(paths: Sequence[str]) -> PolicySnapshot:
    """Linux audit rules from several inputs, read as one rule list in the order given."""
    from .auditd import read_auditd_rules

    texts = []
    for path in map(str, paths):
        data = read_limited(path)
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        if not data.strip():
            raise PolicyInputError(path, "empty file")
        if b"\x00" in data:
            raise PolicyInputError(path, "not a text file (NUL bytes): expected audit rules or 'auditctl -l' output")
        texts.append(data.decode("utf-8", errors="replace"))
    return read_auditd_rules([str(p) for p in paths], texts)


def _installed_vocabulary() -> PolicyVocabulary:
    from ..knowledge import load

    return load().policy_vocabulary()


def _input_rank(snap: PolicySnapshot) -> tuple[int, str, str]:
    inp = snap.inputs[0] if snap.inputs else PolicyInput(path="?", format="?")
    return RANK.get(inp.format, 1), inp.path, inp.format


def _why(win_rank: int, lose_rank: int) -> str:
    if win_rank > lose_rank:
        return RANK_WHY[win_rank]
    return "same rank, the later input on the command line wins"


class _Picker:
    """Per-setting winner across inputs, recording each disagreement in one line."""

    def __init__(self, conflicts: list[str]) -> None:
        self.best: dict[Any, tuple[tuple[int, int], Any, str]] = {}
        self.conflicts = conflicts

    def offer(self, key: Any, order: tuple[int, int], item: Any, source: str, label: str,
              show: Any, same: Any) -> None:
        have = self.best.get(key)
        if have is None:
            self.best[key] = (order, item, source)
            return
        old_order, old_item, old_source = have
        winner_new = order >= old_order
        if not same(old_item, item):
            new, old = (item, source, order[0]), (old_item, old_source, old_order[0])
            (win_item, win_src, win_rank), (lose_item, lose_src, lose_rank) = (new, old) if winner_new else (old, new)
            self.conflicts.append(
                f"{label}: {lose_src} sets {show(lose_item)}, {win_src} sets {show(win_item)}; "
                f"{win_src} wins ({_why(win_rank, lose_rank)})")
        if winner_new:
            self.best[key] = (order, item, source)

    def items(self) -> list[Any]:
        return [item for _, item, _ in self.best.values()]


def _policy_shown(p: RegistryPolicySetting) -> str:
    return p.state + ("" if not p.settings else " [" + "; ".join(f"{n}={v}" for n, v in p.settings) + "]")


def _policy_same(a: RegistryPolicySetting, b: RegistryPolicySetting) -> bool:
    return (a.state.casefold() == b.state.casefold()
            and {(n.casefold(), v) for n, v in a.settings} == {(n.casefold(), v) for n, v in b.settings})


def _channel_shown(c: ChannelSetting) -> str:
    parts = (None if c.enabled is None else ("enabled" if c.enabled else "disabled"),
             None if c.max_size_kb is None else f"max size {c.max_size_kb} KB")
    return ", ".join(x for x in parts if x) or "nothing"


class _Settings:
    """One picker per kind of setting; ``offer_from`` offers every setting of one input."""

    def __init__(self, conflicts: list[str], vocabulary: PolicyVocabulary | None) -> None:
        self.audit, self.legacy, self.policies = _Picker(conflicts), _Picker(conflicts), _Picker(conflicts)
        self.values, self.channels, self.force = _Picker(conflicts), _Picker(conflicts), _Picker(conflicts)
        self.vocabulary = vocabulary

    def offer_from(self, snap: PolicySnapshot, order: tuple[int, int], path: str) -> None:
        for guid, setting in snap.audit.items():
            self.audit.offer(guid.upper(), order, setting, setting.source or path, f"audit {guid.upper()}",
                             AuditSetting.describe, lambda a, b: a.value == b.value)
        for key, setting in snap.legacy_audit.items():
            self.legacy.offer(key.casefold(), order, (key, setting), setting.source or path, f"legacy audit {key}",
                              lambda ks: ks[1].describe(), lambda a, b: a[1].value == b[1].value)
        for pol in snap.registry_policies:
            self.policies.offer((pol.name.strip().casefold(), norm_category(pol.category)), order, pol,
                                pol.source or path, f"policy '{pol.name}' ({pol.category})", _policy_shown,
                                _policy_same)
        for rv in snap.registry_values:
            self.values.offer((norm_registry_key(rv.key), rv.value.casefold()), order, rv, rv.source or path,
                              f"registry value {rv.key}\\{rv.value}", lambda r: repr(str(r.data)),
                              lambda a, b: str(a.data) == str(b.data))
        for ch in snap.channels:
            self.channels.offer(ch.name.casefold(), order, ch, ch.source or path, f"event log {ch.name}",
                                _channel_shown, lambda a, b: (a.enabled, a.max_size_kb) == (b.enabled, b.max_size_kb))
        if snap.force_subcategory is not None:
            vocabulary = self.vocabulary = self.vocabulary or _installed_vocabulary()
            self.force.offer("force", order, snap.force_subcategory, snap.force_subcategory_source or path,
                             "'force audit policy subcategory settings'" + (
                                 f" ({vocabulary.force_value})" if vocabulary and vocabulary.force_value else ""),
                             lambda v: "enabled" if v else "disabled", lambda a, b: a == b)

    def store(self, out: PolicySnapshot) -> None:
        out.audit = dict(sorted(((guid, s) for guid, s in ((k, v[1]) for k, v in self.audit.best.items())),
                                key=lambda kv: kv[0]))
        out.legacy_audit = {key: setting for key, setting in self.legacy.items()}
        out.registry_policies = self.policies.items()
        out.registry_values = self.values.items()
        out.channels = self.channels.items()
        if "force" in self.force.best:
            _, value, source = self.force.best["force"]
            out.force_subcategory, out.force_subcategory_source = value, source


def _merge_other(out: PolicySnapshot, snap: PolicySnapshot, conflicts: list[str]) -> None:
    """What is not one setting per key: role evidence, SACLs, audit options, Sysmon and auditd."""
    for kind, shown in snap.role_evidence.items():
        have = out.role_evidence.setdefault(kind, [])
        have.extend(v for v in shown if v not in have)
    out.global_sacls.update(snap.global_sacls)     # later input wins, as for other settings of one rank
    out.audit_options.update(snap.audit_options)
    for section, entries in snap.object_sacls.items():
        out.object_sacls.setdefault(section, []).extend(entries)
    if snap.sysmon is not None:
        if out.sysmon is not None:
            conflicts.append(f"Sysmon configuration: {out.sysmon.source} and {snap.sysmon.source} both given; "
                             f"{snap.sysmon.source} wins (the later input)")
        out.sysmon = snap.sysmon
    if snap.auditd is not None:   # audit rules: one list in input order (read_auditd reads them together)
        if out.auditd is None:
            out.auditd = replace(snap.auditd, sources=list(snap.auditd.sources), rules=list(snap.auditd.rules),
                                 notes=list(snap.auditd.notes))
        else:
            out.auditd.rules.extend(snap.auditd.rules)
            out.auditd.sources.extend(snap.auditd.sources)
            if snap.auditd.enabled is not None:
                out.auditd.enabled, out.auditd.enabled_source = snap.auditd.enabled, snap.auditd.enabled_source


def merge(snapshots: Sequence[PolicySnapshot], vocabulary: PolicyVocabulary | None = None) -> PolicySnapshot:
    """One effective snapshot from several inputs (in command-line order)."""
    out = PolicySnapshot()
    if not snapshots:
        return out
    if len(snapshots) == 1:
        return snapshots[0]
    conflicts: list[str] = []
    settings = _Settings(conflicts, vocabulary)
    live_inputs: list[str] = []
    for index, snap in enumerate(snapshots):
        rank, path, fmt = _input_rank(snap)
        out.inputs.extend(snap.inputs)
        out.warnings.extend(w for w in snap.warnings if w not in out.warnings)
        out.conflicts.extend(snap.conflicts)
        if fmt == "gpresult" and not snap.has_computer_results:
            out.has_computer_results = False
        if fmt == "auditpol_r":
            live_inputs.append(path)
        settings.offer_from(snap, (rank, index), path)
        _merge_other(out, snap, conflicts)
    settings.store(out)
    if live_inputs and out.legacy_audit:
        # auditpol /get shows the subcategory state in effect, legacy category policy already applied
        dropped = ", ".join(sorted(out.legacy_audit))
        out.warnings.append(f"legacy category audit settings ({dropped}) are not applied on top of the live state "
                            f"read from {', '.join(live_inputs)}: that output already shows their effect")
        out.legacy_audit = {}
    out.conflicts.extend(conflicts)
    return out
