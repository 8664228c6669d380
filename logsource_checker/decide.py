"""What the reports say about rules the inputs cannot decide, and about rules outside Windows policy.

Nothing here changes a verdict: it reads the statuses the diff gave and names, for each rule whose
coverage is ``unknown``, the input that would decide it (``--sysmon-config``, an elevated gpresult or
auditpol output, the channel's state on the machine, a SACL, collection outside Windows...), or that no
input can (the rule itself must change). Rules whose every requirement lies outside Windows policy
(``external``: a Linux audit daemon, a cloud audit log...) are counted per log source so that the reports
can say so in one line.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from .diff import need_status
from .resolve import Requirement, RuleResolution

#: Requirement kinds a Windows policy (or Sysmon on Windows) decides; any other kind is collected elsewhere.
WINDOWS_KINDS = ("audit_subcategory", "registry_policy", "event_channel", "sysmon_event", "sacl", "machine_role")
# requirement kinds of Linux rules that an input of this tool decides (--auditd-rules, a Sysmon for Linux config)
LINUX_KINDS = ("auditd_rule", "sysmon_linux_event")

# one short label per input (the terminal shows it in a column of its own), then what to give
NO_GUIDE = "a guide for the log source (none in the data: see Unmapped)"
NO_MAPPING = "a mapping for the rule's EventIDs (see Unmapped)"
OUTSIDE = "collection outside Windows policy (see below; --product windows leaves these out)"
WINDOWS_OTHER = ("a Windows feature the policy inputs do not show (AppLocker, App Control, attack surface reduction "
                 "rules, an ETW session...; -v names it)")
SYSMON = "--sysmon-config (the Sysmon configuration the machines run)"
AUDITD = "--auditd-rules (the Linux hosts' audit rules: 'auditctl -l' output or /etc/audit/rules.d files)"
SYSMON_LINUX = "--sysmon-config with the Sysmon for Linux configuration the Linux hosts run"
BLOCKING = "--sysmon-config with blocking configured on purpose (never recommended)"
CHANNEL = "the channel's state: a GPO enabling it in --gpresult, or 'wevtutil gl CHANNEL' on the machine"
ELEVATED = "a gpresult /x run elevated (computer results) or --auditpol"
AUDIT_LIVE = "--auditpol with 'auditpol /get /category:* /r' output (the live audit state)"
SACL = ("the object's SACL (a global SACL row in an audit.csv or 'auditpol /backup' given with --auditpol, "
        "or the object's own: Get-Acl -Audit)")
ROLE = "the machine's role: a gpresult /x of the machine, or --role client|server|dc"
OTHER = "an input showing this setting"
UNSATISFIABLE = "no input: the rule tests fields no producer writes (-v lists them; the rule must change)"
RULE_NOTES = "no input: what the rule names cannot be checked (its notes say why, -v)"


def _input_for(req: Requirement, windows: bool) -> str:
    """The input that would decide an ``unknown`` (or not_checked) requirement, from its kind and reason."""
    reason = (req.reason or "").casefold()
    kind = req.kind
    if kind == "sysmon_event":
        return BLOCKING if "blocking" in reason else SYSMON
    if kind == "event_channel":
        return CHANNEL
    if kind in ("audit_subcategory", "registry_policy"):
        if "elevation" in reason or "computer results" in reason:
            return ELEVATED
        return AUDIT_LIVE if kind == "audit_subcategory" else ELEVATED
    if kind == "sacl":
        return SACL
    if kind == "machine_role":
        return ROLE
    if kind == "auditd_rule":
        return AUDITD
    if kind == "sysmon_linux_event":
        return SYSMON_LINUX
    if kind not in WINDOWS_KINDS:
        return WINDOWS_OTHER if windows else OUTSIDE
    return OTHER


def deciding_inputs(res: RuleResolution, statuses: dict[str, str],
                    reqs: dict[str, Requirement]) -> list[str]:
    """For a rule whose coverage is ``unknown``: the inputs that would decide it (most rules need one). A
    need is undecided when no option is met and some option is unknown: each unknown requirement of its
    options names one input."""
    if res.coverage != "unknown":
        return []
    if res.guide is None:
        return [NO_GUIDE]
    if not res.needs:
        if res.unsatisfiable_fields:
            return [UNSATISFIABLE]
        return [NO_MAPPING] if res.unmapped_event_ids else [RULE_NOTES]
    found: dict[str, None] = {}
    windows = res.rule.logsource.key[0] == "windows"
    for need in res.needs:
        if need_status(need, statuses) != "unknown":
            continue
        for option in need.options:
            for rid in option.requirements:
                if statuses[rid] in ("unknown", "not_checked"):
                    found[_input_for(reqs[rid], windows)] = None
    if res.unmapped_event_ids:
        found[NO_MAPPING] = None
    return list(found) or [OTHER]


def outside_windows(res: RuleResolution, reqs: dict[str, Requirement]) -> bool:
    """Whether the rule is not a Windows rule, needs nothing of Windows policy and something no input of this
    tool decides (a log collected elsewhere: a service's log file, a cloud audit log). A Windows rule that needs a
    feature the inputs do not show (AppLocker, an ETW session) is not counted here: its hint says so; nor is a
    Linux rule whose every way is an audit rule or a Sysmon for Linux event (--auditd-rules, --sysmon-config
    decide it)."""
    if res.rule.logsource.key[0] == "windows":
        return False
    kinds = {reqs[rid].kind for need in res.needs for option in need.options for rid in option.requirements}
    return bool(kinds - set(LINUX_KINDS)) and not kinds & set(WINDOWS_KINDS)


def source_label(res: RuleResolution) -> str:
    """The log source's product, else its category or service: the name the one-line summary counts by."""
    product, category, service = res.rule.logsource.key
    return product or category or service or "(empty logsource)"


def outside_summary(rules: Iterable[RuleResolution], reqs: dict[str, Requirement]) -> dict[str, object]:
    counts = Counter(source_label(res) for res in rules if outside_windows(res, reqs))
    return {"rules": sum(counts.values()),
            "by_source": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}
