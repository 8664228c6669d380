"""``--fleet DIR --emit OUT``: the changes per policy group, and ``collect.ps1`` to gather a host's inputs.

Each group gets ``OUT/policy-<fingerprint>/`` (the fingerprint names the effective policy and role, so the
folder keeps its name from run to run while the policy stays the same) with exactly the files a single run's
``--emit`` writes for the group's first host (``emit.emit_files`` on a ``CheckResult`` made from the group's
snapshot, while it is assessed), then ``hosts.txt`` (one host name a line) and ``README.md`` once every host is
read. ``OUT/README.md`` lists the groups and ``OUT/collect.ps1`` is the gathering script. Every folder is
written through ``writer.write_tree`` (all or nothing per folder, never over a file the tool did not write
unless ``--force``). A folder of a group that no longer exists is left as it is (not listed in README.md).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

COLLECT = "collect.ps1"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def folder_name(fingerprint: str) -> str:
    return f"policy-{fingerprint}"


class GroupEmitter:
    """The ``on_group`` hook of ``fleet.run``: writes a group's changes while its snapshot is in memory."""

    def __init__(self, base: Any, directory: Path, guard: Any, loaded_box: list) -> None:
        self.base, self.directory, self.guard = base, directory, guard
        self.loaded_box = loaded_box          # the guard's rule files come from the loaded rules
        self.folders: dict[str, Path] = {}    # group id -> folder written

    def _write(self, folder: Path, files: dict) -> None:
        from .writer import WriteRefused, write_tree

        try:
            write_tree(folder, files, self.guard)
        except OSError as exc:
            raise WriteRefused(f"{exc.filename or folder}: cannot write: {exc.strerror or exc}") from exc

    def __call__(self, group: Any, resolution: Any, kb: Any, loaded: Any, filtered_out: int) -> None:
        from .emit import emit_files
        from .plans import compute_plans
        from .report import CheckResult, build

        if not self.loaded_box:
            self.loaded_box.append(loaded)
        base = self.base
        result = CheckResult(loaded=loaded, resolution=resolution, knowledge=kb, snapshot=group.snapshot,
                             audit=group.audit, ranked=group.ranked, filtered_out=filtered_out, role=group.role,
                             max_volume=base.max_volume, hold_unknown_volume=base.hold_unknown_volume,
                             roots=list(base.paths), collectors=group.collectors, collection=group.collection)
        result.plans = compute_plans(result, base.plan, base.max_volume, base.hold_unknown_volume)
        files = emit_files(result, build(result, verbose=True))
        folder = self.directory / folder_name(group.fingerprint)
        self._write(folder, files)
        self.folders[group.id] = folder

    def finish(self, report: dict) -> int:
        """Each group's hosts.txt and README.md, then the top folder's README.md and collect.ps1; the number
        of group folders."""
        from . import __version__
        from .templating import Trusted, render

        groups = []
        for group in report["groups"]:
            folder = self.folders[group["id"]]
            hosts = "".join(_CONTROL.sub("?", name) + "\n" for name in group["hosts"])
            self._write(folder, {"hosts.txt": hosts, "README.md": render("fleet/group.md.j2", "markdown", g=group)})
            groups.append({**group, "folder": folder.name})
        self._write(self.directory, {
            "README.md": render("fleet/index.md.j2", "markdown", groups=groups, hosts=report["summary"]["hosts_read"]),
            COLLECT: render("fleet/collect.ps1.j2", "script", version=Trusted(__version__)).replace("\r\n", "\n")
            .replace("\n", "\r\n"),
        })
        return len(groups)
