"""JSON report (format documented in README, "JSON report")."""
from __future__ import annotations

import json
from typing import Any


def render(report: dict[str, Any], verbose: bool = False) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
