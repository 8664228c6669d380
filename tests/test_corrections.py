"""Corrections from the data audit (issue 10): channel aliases, inferred event mappings, PowerShell 7 policies
that follow the Windows PowerShell policy, and provider names.

Expected values come from the public sources the data cites: pySigma's windows_logsource_mapping (the
aliases), PowerShell's PowerShellCoreExecutionPolicy.admx/.adml and Utils.cs (the deferral check box and
what it does), Microsoft's audit-subcategory pages (which events they list, with which outcome marker).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import shared_dir
from logsource_checker import knowledge
from logsource_checker.diff import PolicyDiff, need_status
from logsource_checker.policy import read_policy
from logsource_checker.policy.model import ChannelSetting, PolicySnapshot, RegistryValue
from logsource_checker.resolve import resolve
from logsource_checker.rules import load_file

ROOT = Path(__file__).resolve().parent.parent
KB = knowledge.load(str(ROOT))


def _rules(tmp_path, name, logsource, detection):
    body = "\n".join(f"        {line}" for line in detection.splitlines())
    path = tmp_path / f"{name}.yml"
    path.write_text(f"title: {name}\nid: {name}\nlevel: high\nlogsource:\n    {logsource}\n"
                    f"detection:\n    selection:\n{body}\n    condition: selection\n", encoding="utf-8")
    loaded = load_file(str(path))
    assert not loaded.errors, loaded.errors
    return loaded.rules


# ------------------------------------------------------------------ channel aliases

# (spelling as pySigma or a policy writes it, the Windows channel name in our data)
ALIASES = [
    ("Microsoft-Windows-Security-Mitigations/Kernel Mode", "Microsoft-Windows-Security-Mitigations/KernelMode"),
    ("Microsoft-Windows-Security-Mitigations/User Mode", "Microsoft-Windows-Security-Mitigations/UserMode"),
    ("Microsoft-Windows-DNS Client Events/Operational", "Microsoft-Windows-DNS-Client/Operational"),
    ("Microsoft-Windows-DNS-Server/Analytical", "Microsoft-Windows-DNSServer/Analytical"),
    ("microsoft-windows-security-mitigations/kernel mode", "Microsoft-Windows-Security-Mitigations/KernelMode"),
    ("  Microsoft-Windows-DNS Client Events/Operational ", "Microsoft-Windows-DNS-Client/Operational"),
    ("MICROSOFT-WINDOWS-DNSSERVER/ANALYTICAL", "Microsoft-Windows-DNSServer/Analytical"),
]


@pytest.mark.parametrize("spelling, windows_name", ALIASES)
def test_alias_resolves_to_windows_name(spelling, windows_name):
    channel = KB.channel(spelling)
    assert channel is not None and channel.name == windows_name
    assert KB.channel_key(spelling) == KB.channel_key(windows_name) == windows_name.casefold()


def test_every_pysigma_spelling_of_a_known_channel_resolves():
    """Every channel pySigma maps a Windows service to, if our data has that channel at all (under any
    spelling), resolves through Knowledge.channel."""
    base = shared_dir()
    shared = base / "reference" / "pysigma-mappings.json" if base else None
    if shared is None or not shared.is_file():
        pytest.skip("../shared/reference/pysigma-mappings.json is not present")
    mapping = json.loads(shared.read_text(encoding="utf-8"))["windows_service_to_channel"]["mapping"]
    names = [n for value in mapping.values() for n in ([value] if isinstance(value, str) else value)]
    known_services = {key[2] for key in KB.by_logsource if key[0] == "windows" and key[2]}
    unresolved = [n for service, value in mapping.items() if service in known_services
                  for n in ([value] if isinstance(value, str) else value) if KB.channel(n) is None]
    assert len(names) > 40
    assert unresolved == []


def test_unknown_channel_is_not_an_alias():
    assert KB.channel("Microsoft-Windows-Security-Mitigations/Kernel") is None
    assert KB.channel_key("Some/Other Channel") == "some/other channel"


# (channel setting name in the policy, guide service whose channel is off by default, expected status)
CHANNEL_POLICY = [
    ("Microsoft-Windows-DNS Client Events/Operational", True, "met"),     # alias in the policy
    ("Microsoft-Windows-DNS-Client/Operational", True, "met"),           # Windows name
    ("microsoft-windows-dns client events/operational", False, "missing"),
    ("Microsoft-Windows-DNS-Server/Analytical", True, None),             # another channel: still unknown
]


@pytest.mark.parametrize("setting_name, enabled, expected", CHANNEL_POLICY)
def test_channel_policy_named_by_alias(tmp_path, setting_name, enabled, expected):
    rules = _rules(tmp_path, "dns", "product: windows\n    service: dns-client", "EventID: 3008")
    resolution = resolve(rules, KB)
    snap = PolicySnapshot(channels=[ChannelSetting(name=setting_name, enabled=enabled, source="test.xml")])
    PolicyDiff(KB, snap).apply(resolution)
    req = resolution.requirements["channel:Microsoft-Windows-DNS-Client/Operational"]
    assert req.status == (expected or "unknown")


@pytest.mark.parametrize("values, resolved", [
    (["Microsoft-Windows-Security-Mitigations/Kernel Mode", "Microsoft-Windows-Security-Mitigations/User Mode"],
     ["Microsoft-Windows-Security-Mitigations/KernelMode", "Microsoft-Windows-Security-Mitigations/UserMode"]),
    (["microsoft-windows-dns client events/operational", "Microsoft-Windows-DNS-Client/Operational"],
     ["Microsoft-Windows-DNS-Client/Operational"]),
    (["Not-A-Known/Channel"], ["Not-A-Known/Channel"]),
])
def test_rule_channel_values_resolved_in_json(tmp_path, cli, values, resolved):
    listed = "\n".join(f"            - '{v}'" for v in values)
    rule = tmp_path / "r.yml"
    rule.write_text("title: c\nid: c\nlevel: low\nlogsource:\n    product: windows\n    service: security-mitigations\n"
                    f"detection:\n    selection:\n        Channel:\n{listed}\n    condition: selection\n",
                    encoding="utf-8")
    report = cli(rule, "--format", "json", "--no-cache").json()
    entry = report["rules"][0]
    assert entry["channels_resolved"] == resolved
    assert sorted(entry["channels"]) == sorted(values)


# ------------------------------------------------------------------ inferred mappings

# (EventID, subcategory, inferred?) — the inferred ones are those no Microsoft page states
INFERRED = [
    (5379, "User Account Management", True),
    (4825, "Other Logon/Logoff Events", True),
    (4899, "Certification Services", True),
    (4900, "Certification Services", True),
    (4868, "Certification Services", True),
    (4888, "Certification Services", True),
    (4624, "Logon", False),
    (4720, "User Account Management", False),
    (4688, "Process Creation", False),
]


@pytest.mark.parametrize("event_id, subcategory, inferred", INFERRED)
def test_inferred_flag_loaded(event_id, subcategory, inferred):
    pairs = [(sub, ev) for sub, ev in KB.producers[event_id] if sub.name == subcategory]
    assert len(pairs) == 1
    event = pairs[0][1]
    assert event.inferred is inferred
    assert bool(event.basis) is inferred


@pytest.mark.parametrize("event_id, subcategory, inferred", INFERRED)
def test_inferred_mark_reaches_json(tmp_path, cli, event_id, subcategory, inferred):
    rule = tmp_path / "r.yml"
    rule.write_text(f"title: t\nid: t\nlevel: low\nlogsource:\n    product: windows\n    service: security\n"
                    f"detection:\n    selection:\n        EventID: {event_id}\n    condition: selection\n",
                    encoding="utf-8")
    report = cli(rule, "--format", "json", "--verbose", "--no-cache").json()
    entry = report["rules"][0]
    assert entry["event_ids_inferred"] == ([event_id] if inferred else [])
    (need,) = [n for n in entry["needs"] if n["event_id"] == event_id]
    assert need["inferred"] is inferred
    (option,) = [o for o in need["options"] if o["name"] == subcategory]
    assert option["inferred"] is inferred and bool(option["basis"]) is inferred
    for fmt in ("text", "terminal"):
        text = cli(rule, "--format", fmt, "--verbose", "--no-cache").stdout
        assert ("(inferred: " in " ".join(text.split())) is inferred, fmt


def test_inferred_marks_in_markdown_pages(tmp_path, cli):
    rule = tmp_path / "r.yml"
    rule.write_text("title: t\nid: t\nlevel: low\nlogsource:\n    product: windows\n    service: security\n"
                    "detection:\n    selection:\n        EventID: 4825\n    condition: selection\n", encoding="utf-8")
    cli(rule, "--docs", tmp_path / "site", "--no-cache")
    audit_page = (tmp_path / "site" / "docs" / "audit-policy.md").read_text(encoding="utf-8")
    assert "4825\\*" in audit_page and "4624\\*" not in audit_page
    security_page = (tmp_path / "site" / "docs" / "sources" / "windows" / "core" / "security.md").read_text(
        encoding="utf-8")
    section = security_page.split("## Inferred mappings", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    expected = sorted({ev.id for sub in KB.subcategories.values() for ev in sub.events if ev.inferred})
    assert sorted(int(r) for r in rows[1:]) == expected and "4825" in rows


# ------------------------------------------------------------------ PowerShell 7 following Windows PowerShell

_GPO_HEAD = ('<?xml version="1.0" encoding="utf-16"?>\r\n'
             '<GPO xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
             'xmlns="http://www.microsoft.com/GroupPolicy/Settings">\r\n'
             '  <Name>PowerShell logging</Name>\r\n  <Computer>\r\n    <VersionDirectory>3</VersionDirectory>\r\n'
             '    <VersionSysvol>3</VersionSysvol>\r\n    <Enabled>true</Enabled>\r\n    <ExtensionData>\r\n'
             '      <Extension xmlns:q3="http://www.microsoft.com/GroupPolicy/Settings/Registry" '
             'xsi:type="q3:RegistrySettings">\r\n')
_GPO_TAIL = ('      </Extension>\r\n      <Name>Registry</Name>\r\n    </ExtensionData>\r\n  </Computer>\r\n'
             '  <User>\r\n    <Enabled>true</Enabled>\r\n  </User>\r\n</GPO>\r\n')


def _policy_xml(name: str, category: str, state: str, boxes: dict[str, str], modules: str | None = None) -> str:
    parts = [f"        <q3:Policy>\r\n          <q3:Name>{name}</q3:Name>\r\n          <q3:State>{state}</q3:State>\r\n"
             "          <q3:Explain>…</q3:Explain>\r\n"
             "          <q3:Supported>At least Microsoft Windows 7 or Windows Server 2008 family</q3:Supported>\r\n"
             f"          <q3:Category>{category}</q3:Category>\r\n"]
    for box, value in boxes.items():
        parts.append(f"          <q3:CheckBox>\r\n            <q3:Name>{box}</q3:Name>\r\n"
                     f"            <q3:State>{value}</q3:State>\r\n          </q3:CheckBox>\r\n")
    if modules is not None:
        parts.append("          <q3:ListBox>\r\n            <q3:Name>Module Names</q3:Name>\r\n"
                     "            <q3:State>Enabled</q3:State>\r\n            <q3:ExplicitValue>false</q3:ExplicitValue>\r\n"
                     "            <q3:Additive>false</q3:Additive>\r\n            <q3:Value>\r\n"
                     f"              <q3:Element>\r\n                <q3:Data>{modules}</q3:Data>\r\n"
                     "              </q3:Element>\r\n            </q3:Value>\r\n          </q3:ListBox>\r\n")
    parts.append("        </q3:Policy>\r\n")
    return "".join(parts)


SBL = "Turn on PowerShell Script Block Logging"
MOD = "Turn on Module Logging"
DEFER = "Use Windows PowerShell Policy setting."
INVOCATION = "Log script block invocation start / stop events:"
WINPS = "Windows Components/Windows PowerShell"
CORE = "PowerShell Core"

# (policies in the GPO report, requirement, expected status of that PowerShell 7 requirement)
PS7_CASES = [
    # PowerShell 7 set to follow Windows PowerShell, which logs: met
    ([(SBL, CORE, "Enabled", {DEFER: "Enabled", INVOCATION: "Disabled"}, None),
      (SBL, WINPS, "Enabled", {INVOCATION: "Disabled"}, None)], "pwsh_scriptblock_logging", "met"),
    # following Windows PowerShell, which has no policy: pwsh reads nothing, so missing
    ([(SBL, CORE, "Enabled", {DEFER: "Enabled", INVOCATION: "Disabled"}, None)], "pwsh_scriptblock_logging", "missing"),
    # following Windows PowerShell, whose policy is disabled: missing
    ([(SBL, CORE, "Enabled", {DEFER: "Enabled"}, None),
      (SBL, WINPS, "Disabled", {}, None)], "pwsh_scriptblock_logging", "missing"),
    # PowerShell 7's own policy, check box off: its own setting counts
    ([(SBL, CORE, "Enabled", {DEFER: "Disabled", INVOCATION: "Disabled"}, None)], "pwsh_scriptblock_logging", "met"),
    # only Windows PowerShell's policy: PowerShell 7 does not read it
    ([(SBL, WINPS, "Enabled", {}, None)], "pwsh_scriptblock_logging", "missing"),
    # module logging: follows Windows PowerShell, which logs all modules
    ([(MOD, CORE, "Enabled", {DEFER: "Enabled"}, None),
      (MOD, WINPS, "Enabled", {}, "*")], "pwsh_module_logging", "met"),
    # module logging: follows Windows PowerShell, which logs one module only
    ([(MOD, CORE, "Enabled", {DEFER: "Enabled"}, "*"),
      (MOD, WINPS, "Enabled", {}, "Microsoft.PowerShell.Utility")], "pwsh_module_logging", "missing"),
    # a disabled PowerShell 7 policy defers nothing, whatever its check box says
    ([(SBL, CORE, "Disabled", {DEFER: "Enabled"}, None),
      (SBL, WINPS, "Enabled", {}, None)], "pwsh_scriptblock_logging", "missing"),
    # check box name as written without the trailing period, other case
    ([(SBL, CORE, "Enabled", {"use windows powershell policy setting": "Enabled"}, None),
      (SBL, WINPS, "Enabled", {}, None)], "pwsh_scriptblock_logging", "met"),
]


@pytest.mark.parametrize("policies, policy_id, expected", PS7_CASES)
def test_pwsh_policy_following_windows_powershell(tmp_path, policies, policy_id, expected):
    body = _GPO_HEAD + "".join(_policy_xml(*p) for p in policies) + _GPO_TAIL
    path = tmp_path / "gpreport.xml"
    path.write_bytes(b"\xff\xfe" + body.encode("utf-16-le"))
    snap = read_policy(str(path), "gpresult")
    assert snap.inputs[0].format == "gpo_report"
    category, winps = (("ps_script", "ps_scriptblock_logging") if policy_id == "pwsh_scriptblock_logging"
                       else ("ps_module", "ps_module_logging"))
    rules = _rules(tmp_path, "ps", f"product: windows\n    category: {category}", "ScriptBlockText|contains: x")
    resolution = resolve(rules, KB)
    PolicyDiff(KB, snap).apply(resolution)
    req = resolution.requirements[f"registry:{policy_id}"]
    assert req.status == expected, req.reason
    if any(DEFER.rstrip(".").casefold() == box.rstrip(".").casefold() and value == "Enabled" and state == "Enabled"
           for _, category_, state, boxes, _ in policies if category_ == CORE for box, value in boxes.items()):
        assert "decides" in (req.reason or "")
    statuses = {rid: r.status for rid, r in resolution.requirements.items()}
    (need,) = resolution.rules[0].needs
    (ps7,) = [o for o in need.options if "PowerShell 7" in o.name]
    option_met = all(statuses[rid] == "met" for rid in ps7.requirements)
    assert option_met is (expected == "met")
    either = option_met or statuses[f"registry:{winps}"] == "met"
    assert need_status(need, statuses) == ("met" if either else "missing")


# (registry values a registry.pol / gpresult shows, expected status of pwsh_scriptblock_logging)
PS7_REGISTRY = [
    ({("PowerShellCore\\ScriptBlockLogging", "UseWindowsPowerShellPolicySetting"): "1",
      ("PowerShellCore\\ScriptBlockLogging", "EnableScriptBlockLogging"): "1",
      ("Windows\\PowerShell\\ScriptBlockLogging", "EnableScriptBlockLogging"): "1"}, "met"),
    ({("PowerShellCore\\ScriptBlockLogging", "UseWindowsPowerShellPolicySetting"): "1",
      ("PowerShellCore\\ScriptBlockLogging", "EnableScriptBlockLogging"): "1"}, "missing"),
    ({("PowerShellCore\\ScriptBlockLogging", "UseWindowsPowerShellPolicySetting"): "0",
      ("PowerShellCore\\ScriptBlockLogging", "EnableScriptBlockLogging"): "1"}, "met"),
    ({("Windows\\PowerShell\\ScriptBlockLogging", "EnableScriptBlockLogging"): "1"}, "missing"),
]


@pytest.mark.parametrize("values, expected", PS7_REGISTRY)
def test_pwsh_deferral_from_registry_values(values, expected):
    snap = PolicySnapshot(registry_values=[
        RegistryValue(f"HKLM\\Software\\Policies\\Microsoft\\{key}", name, data, "registry.pol")
        for (key, name), data in values.items()])
    status, reason = PolicyDiff(KB, snap)._registry_status(KB.registry_policies["pwsh_scriptblock_logging"])
    assert status == expected, reason


def test_deferral_data_matches_admx():
    """The check box label and registry value as PowerShell's ADMX/ADML define them."""
    for pid, target in (("pwsh_scriptblock_logging", "ps_scriptblock_logging"),
                        ("pwsh_module_logging", "ps_module_logging")):
        defer = KB.registry_policies[pid].defer
        assert defer is not None and defer.policy == target
        assert defer.setting == "Use Windows PowerShell Policy setting."
        assert defer.value == "Enabled"
        assert defer.registry.value == "UseWindowsPowerShellPolicySetting" and defer.registry.data == 1
        assert defer.registry.key == KB.registry_policies[pid].registry[0].key
    for pid in ("ps_scriptblock_logging", "ps_module_logging", "process_creation_include_cmdline"):
        assert KB.registry_policies[pid].defer is None


# ------------------------------------------------------------------ provider corrections

# (guide file, EventID, provider)
PROVIDERS = [
    ("guides/windows/services/ntlm.yaml", 8001, "Microsoft-Windows-NTLM"),
    ("guides/windows/services/ntlm.yaml", 8003, "Microsoft-Windows-NTLM"),
    ("guides/windows/services/ntlm.yaml", 8004, "Microsoft-Windows-Security-Netlogon"),
    ("guides/windows/services/ntlm.yaml", 8005, "Microsoft-Windows-Security-Netlogon"),
    ("guides/windows/services/ntlm.yaml", 8006, "Microsoft-Windows-Security-Netlogon"),
    ("guides/windows/services/lsa-server.yaml", 300, "LsaSrv"),
]


@pytest.mark.parametrize("path, event_id, provider", PROVIDERS)
def test_event_providers(path, event_id, provider):
    (guide,) = [g for g in KB.guides if g.path == path]
    assert guide.events[event_id].provider == provider
    assert provider in {s.get("provider") for s in guide.sources}


@pytest.mark.parametrize("event_id, policy", [(8003, "ntlm_audit_domain"), (8004, "ntlm_audit_domain"),
                                              (8005, "ntlm_audit_domain"), (8006, "ntlm_audit_domain"),
                                              (8002, "ntlm_audit_incoming"), (8001, "ntlm_audit_outgoing")])
def test_ntlm_events_need_their_audit_policy(tmp_path, event_id, policy):
    rules = _rules(tmp_path, "n", "product: windows\n    service: ntlm", f"EventID: {event_id}")
    resolution = resolve(rules, KB)
    assert resolution.rules[0].unmapped_event_ids == []
    assert f"registry:{policy}" in resolution.rules[0].requirement_ids


@pytest.mark.parametrize("page, follows", [("ps_script.md", "Turn on PowerShell Script Block Logging"),
                                           ("ps_module.md", "Turn on Module Logging"),
                                           ("process_creation.md", None)])
def test_guide_pages_show_the_deferral(tmp_path, cli, page, follows):
    cli(ROOT / "samples" / "rules", "--docs", tmp_path / "site", "--no-cache")
    text = (tmp_path / "site" / "docs" / "sources" / "windows" / "core" / page).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if "- Or: check 'Use Windows PowerShell Policy setting.'" in line]
    if follows is None:
        assert lines == []
    else:
        assert len(lines) == 1 and f"enable {follows} (Windows Components/Windows PowerShell)" in lines[0]
