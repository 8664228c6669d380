"""Reproducible gpresult-heavy fleets for benchmarks/fleet.py, made from the real policy samples.

Each distinct policy ("variant") is one of the two real XML samples in the corpus
(``gpresult_x_childdc_adlab_2023.xml``, a gpresult /x of a domain controller, and
``gpreport_nsa-shb_dod-win10-stig_computer.xml``, a GPO report with advanced audit settings), with seeded
changes to its settings: in the GPO report, the values of a random subset of its audit subcategory settings
(0-3) and the state (Enabled/Disabled) of some of its registry policies; in the gpresult, the numbers of some
of its security options. Every host gets its own copy, with the computer name inside the gpresult replaced by
the host's name and the time it was read (``ReadTime``) set per host, so no two files are the same bytes
(``--copies``: the hosts of one GPO-report variant share its bytes, as copies of one export would). Files
are written as the samples are: UTF-16 with a byte order mark.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

GPRESULT = "gpresult_x_childdc_adlab_2023.xml"
GPREPORT = "gpreport_nsa-shb_dod-win10-stig_computer.xml"
_AUDIT_VALUE = re.compile(r"(<q\d+:SettingValue>)(\d)(</q\d+:SettingValue>)")
_STATE = re.compile(r"(<q\d+:State>)(Enabled|Disabled)(</q\d+:State>)")
_NUMBER = re.compile(r"(<q\d+:SettingNumber>)(\d+)(</q\d+:SettingNumber>)")
_COMPUTER = "CHILDDC"
_READ_TIME = re.compile(r"<ReadTime>[^<]*</ReadTime>")


def _vary(text: str, pattern: re.Pattern[str], rng: random.Random, choices: list[str], share: float) -> str:
    def change(match: re.Match[str]) -> str:
        value = rng.choice(choices) if rng.random() < share else match.group(2)
        return match.group(1) + value + match.group(3)
    return pattern.sub(change, text)


def variants(samples: Path, count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` distinct (sample name, text) policies, alternating between the two samples."""
    rng = random.Random(seed)
    bases = {name: (samples / name).read_bytes().decode("utf-16") for name in (GPREPORT, GPRESULT)}
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(out) < count:
        name = (GPREPORT, GPRESULT)[len(out) % 2]
        text = bases[name]
        if name == GPREPORT:
            text = _vary(text, _AUDIT_VALUE, rng, ["0", "1", "2", "3"], 0.4)
            text = _vary(text, _STATE, rng, ["Enabled", "Disabled"], 0.2)
        else:
            text = _vary(text, _NUMBER, rng, ["0", "1", "2"], 0.4)
        if text not in seen:
            seen.add(text)
            out.append((name, text))
    return out


def make_fleet(folder: Path, samples: Path, hosts: int, groups: int, seed: int, copies: bool = False) -> int:
    """``hosts`` host folders, each with a gpresult.xml of one of ``groups`` variants (round robin); the bytes
    written. Every file differs (the computer name in a gpresult, the time it was read in both) unless
    ``copies``: then the hosts of a GPO-report variant get the same bytes, as copies of one export would be."""
    texts = variants(samples, groups, seed)
    written = 0
    for i in range(hosts):
        name, text = texts[i % groups]
        host = folder / f"host{i:05d}"
        host.mkdir(parents=True, exist_ok=True)
        if name == GPRESULT:
            text = text.replace(_COMPUTER, f"H{i:05d}")
        if name == GPRESULT or not copies:
            stamp = f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i // 24 % 60:02d}:{i % 60:02d}.{i:07d}Z"
            text = _READ_TIME.sub(f"<ReadTime>{stamp}</ReadTime>", text, count=1)
        data = b"\xff\xfe" + text.encode("utf-16-le") if not text.startswith("\ufeff") else text.encode("utf-16")
        (host / "gpresult.xml").write_bytes(data)
        written += len(data)
    return written
