"""``--fail-on``: one decision for a single run (cli.verdict) and a fleet (fleet_report.verdict).

Each caller counts from its own report what the decision needs; this says the exit status and why:
``never`` -> 0 (the problems are listed); a problem reading the input -> 1; no policy compared -> 0;
``critical`` -> 1 when a high or critical rule is blind or partial; ``missing`` -> 1 when a recommended change
is missing; else 0.
"""
from __future__ import annotations

from typing import Sequence

# how the reasons name where: a single run says nothing more, a fleet "on some host" / "on any host"
SINGLE = ("", "")
FLEET = (" on some host", " on any host")


def decide(fail_on: str, problems: Sequence[str], *, checked: bool, weak: int, missing: int,
           scope: tuple[str, str] = SINGLE, unchecked: str = "") -> tuple[int, str]:
    """(exit status, why). ``problems``: what could not be read or understood, each already counted
    ("3 rule file errors"); ``checked``: a policy was compared; ``weak``: high/critical rules blind or partial;
    ``missing``: recommended changes missing; ``unchecked``: the reason given when nothing was compared."""
    some, anywhere = scope
    if fail_on == "never":
        listed = f"; listed: {', '.join(problems)}" if problems else ""
        return 0, f"the run completed (--fail-on never){listed}"
    if problems:
        return 1, ", ".join(problems)
    if not checked:
        return 0, unchecked
    if fail_on == "critical":
        if weak:
            return 1, f"{weak} high or critical rules are blind or partial{some} (--fail-on critical)"
        return 0, f"no high or critical rule is blind or partial{anywhere} (--fail-on critical)"
    if missing:
        return 1, f"{missing} recommended changes are missing{some} (--fail-on missing)"
    return 0, f"nothing required is missing{anywhere}"
