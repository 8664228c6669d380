"""Mutation testing for logsource_checker: do the tests notice when the code's decisions change?

A developer command, not part of CI (a run takes tens of minutes)::

    .venv/bin/python tools/mutation.py diff resolve           # modules under logsource_checker/
    .venv/bin/python tools/mutation.py policy emit -j 2 --out /tmp/mutants.md
    .venv/bin/python tools/mutation.py diff --list            # the mutants only, no test run
    .venv/bin/python tools/mutation.py --named                # the nine mutations named in issue 15

Each mutant is one small change to one decision of a module: a comparison flipped (``<`` / ``<=`` /
``>``, ``==`` / ``!=``, ``is`` / ``is not``, ``in`` / ``not in``), ``and`` / ``or`` swapped, a ``not``
dropped, ``True`` / ``False`` swapped, an integer constant changed by one, ``min`` / ``max`` swapped,
an ``if`` condition replaced by ``False`` (the branch never taken) or a ``return`` of a boolean or
``None`` dropped... For every mutant the module's tests (MODULE_TESTS) run in a private copy of the
project (``pytest -x``; the working tree is never touched) and the mutant is *killed* when a test fails,
or *survives* when all pass. The report lists the survivors (file:line, the original and the mutated
line): each is either a missing test or code that makes no difference.

Set LOGSOURCE_CHECKER_SHARED to include the corpus tests (slower); without it they skip.
"""
from __future__ import annotations

import argparse
import ast
import copy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "logsource_checker"

# the tests that exercise each module (a module not listed runs the whole suite)
MODULE_TESTS = {
    # diff and resolve also decide roles' defaults, SACLs / object access, Sysmon include filters, Linux audit
    # rules and conditions: the tests of those features belong to their mutants too
    "diff": ["test_diff.py", "test_mutants.py", "test_emit.py", "test_resolve.py", "test_properties.py",
             "test_roles.py", "test_object_access.py", "test_sysmon_includes.py", "test_sysmon_defaults.py",
             "test_auditd.py", "test_corrections.py", "test_condition.py"],
    "resolve": ["test_resolve.py", "test_mutants.py", "test_diff.py", "test_emit.py", "test_properties.py",
                "test_auditd.py", "test_object_access.py", "test_condition.py", "test_corrections.py",
                "test_roles.py", "test_plans.py"],
    "ranking": ["test_diff.py", "test_mutants.py", "test_plans.py", "test_emit.py", "test_collectors.py",
                "test_plan_collection.py", "test_arrive.py", "test_fleet.py"],
    "resolution": ["test_resolve.py", "test_mutants.py", "test_diff.py", "test_plans.py"],
    "policy": ["test_policy.py", "test_policy_properties.py", "test_mutants.py", "test_gpresult_edges.py",
               "test_vocabulary.py", "test_hostile.py", "test_diff.py"],
    "emit": ["test_emit.py", "test_mutants.py", "test_escaping.py", "test_hostile.py"],
}

# The nine mutations named in issue 15, each a one-line change that tests/test_mutants.py must notice (docs/TESTING.md):
# (number, module under logsource_checker/, the line as written, the mutated line)
NAMED = [
    (1, "diff.py", "if not general_missing and res.event_ids_produced and missing_ids:",
     "if res.event_ids_produced and missing_ids:"),
    (2, "diff.py", "ok = all(str(v) == str(r.data) for v, r in zip(found, pol.registry))", "ok = True"),
    (3, "resolution.py", "return missing, not option.primary, index", "return not option.primary, missing, index"),
    (4, "resolve.py", "if spec.when_event_ids is not None and not (spec.when_event_ids & event_ids):", "if False:"),
    (5, "policy/gpresult.py", "if computer is None or len(computer) == 0:", "if computer is None:"),
    (6, "policy/gpresult.py", "if self.force is None or precedence < self.force[0]:",
     "if self.force is None or precedence > self.force[0]:"),
    (7, "policy/gpresult.py", "if explicit and elem_name is not None:", "if False:"),
    (8, "policy/__init__.py", "settings.offer_from(snap, (rank, index), path)",
     "settings.offer_from(snap, (rank, -index), path)"),
    (9, "emit.py", "result.snapshot.force_subcategory is not True)", "result.snapshot.force_subcategory is None)"),
]

_FLIP = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
         ast.GtE: ast.Gt, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
_BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr}


@dataclass
class Mutant:
    module: Path        # the file, relative to ROOT
    index: int          # the n-th mutation point of the file
    line: int
    description: str
    source: str         # the whole mutated module
    original_line: str
    status: str = "not run"


def _docstring_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
    return skip


def _annotation_nodes(tree: ast.AST) -> set[int]:
    """Nodes inside annotations: changing them changes no behaviour (``from __future__ import annotations``)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        notes = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            notes.append(node.returns)
            notes += [a.annotation for a in (*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs)]
        elif isinstance(node, ast.AnnAssign):
            notes.append(node.annotation)
        for note in notes:
            if note is not None:
                inside.update(id(n) for n in ast.walk(note))
    return inside


def _points(tree: ast.AST):
    """Every (node, description, apply) mutation point, in source order; apply(node) mutates in place."""
    skip = _docstring_nodes(tree) | _annotation_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                new = _FLIP.get(type(op))
                if new is not None:
                    yield node, f"{type(op).__name__} -> {new.__name__}", (
                        lambda n, i=i, new=new: n.ops.__setitem__(i, new()))
                if isinstance(op, ast.Lt):
                    yield node, "Lt -> Gt", lambda n, i=i: n.ops.__setitem__(i, ast.Gt())
                if isinstance(op, ast.Gt):
                    yield node, "Gt -> Lt", lambda n, i=i: n.ops.__setitem__(i, ast.Lt())
        elif isinstance(node, ast.BoolOp):
            other = ast.Or if isinstance(node.op, ast.And) else ast.And
            yield node, f"{type(node.op).__name__} -> {other.__name__}", lambda n, o=other: setattr(n, "op", o())
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "drop not", lambda n: (setattr(n, "op", ast.UAdd()), setattr(n, "operand", ast.Call(
                func=ast.Name("bool", ast.Load()), args=[n.operand], keywords=[])))
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOP:
            new = _BINOP[type(node.op)]
            yield node, f"{type(node.op).__name__} -> {new.__name__}", lambda n, new=new: setattr(n, "op", new())
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield node, f"{node.value} -> {not node.value}", lambda n: setattr(n, "value", not n.value)
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            yield node, f"{node.value} -> {node.value + 1}", lambda n: setattr(n, "value", n.value + 1)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
            other = "max" if node.func.id == "min" else "min"
            yield node, f"{node.func.id} -> {other}", lambda n, o=other: setattr(n.func, "id", o)
        elif isinstance(node, (ast.If, ast.While)) and not isinstance(node.test, ast.Constant):
            yield node, "condition -> False", lambda n: setattr(n, "test", ast.Constant(False))
        elif isinstance(node, ast.IfExp):
            yield node, "conditional -> else value", lambda n: setattr(n, "test", ast.Constant(False))


def mutants_of(path: Path) -> list[Mutant]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    count = sum(1 for _ in _points(ast.parse(text)))
    out = []
    for index in range(count):
        tree = ast.parse(text)
        node, description, apply = list(_points(tree))[index]
        apply(node)
        ast.fix_missing_locations(tree)
        line = getattr(node, "lineno", 0)
        try:
            source = ast.unparse(tree)
        except Exception:  # noqa: BLE001 - a mutation ast cannot print: skip it
            continue
        out.append(Mutant(path.relative_to(ROOT), index, line, description, source,
                          lines[line - 1].strip() if line else ""))
    seen: set[str] = set()
    unique = [m for m in out if not (m.source in seen or seen.add(m.source))]  # type: ignore[func-returns-value]
    return sorted(unique, key=lambda m: (m.line, m.index))


def named_mutants() -> list[Mutant]:
    """The mutations of ``NAMED`` as mutants (each line must occur exactly once in its module)."""
    out = []
    for number, module, line, mutated in NAMED:
        path = PACKAGE / module
        source = path.read_text(encoding="utf-8")
        if source.count(line) != 1:
            raise SystemExit(f"named mutation {number}: {line!r} occurs {source.count(line)} times in {module}")
        at = source[:source.index(line)].count("\n") + 1
        out.append(Mutant(path.relative_to(ROOT), number, at, f"named mutation {number}: {mutated}",
                          source.replace(line, mutated), line))
    return out


def _copy_project(into: Path) -> None:
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.pyc", ".pytest_cache", "site", "mutants")
    for name in ("logsource_checker", "tests", "guides", "mappings", "templates", "samples"):
        shutil.copytree(ROOT / name, into / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")


def _run_tests(workdir: Path, tests: list[str], timeout: float) -> str:
    env = dict(os.environ, PYTHONPATH=str(workdir), PYTHONDONTWRITEBYTECODE="1")
    args = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header",
            *[str(workdir / "tests" / t) for t in tests]]
    try:
        done = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout"   # an endless loop counts as noticed
    if done.returncode == 0:
        return "survived"
    if done.returncode == 1:
        return "killed"
    return f"error {done.returncode}"   # collection failed: the mutant broke an import


def _tests_for(module: Path) -> list[str]:
    key = module.parent.name if module.parent.name != "logsource_checker" else module.stem
    return MODULE_TESTS.get(key) or sorted(p.name for p in (ROOT / "tests").glob("test_*.py"))


def run(mutants: list[Mutant], jobs: int, progress) -> None:
    work = [Path(tempfile.mkdtemp(prefix="lsc-mutation-")) for _ in range(jobs)]
    try:
        for folder in work:
            _copy_project(folder)
        baseline = {}
        for module in dict.fromkeys(m.module for m in mutants):
            start = time.monotonic()
            status = _run_tests(work[0], _tests_for(module), timeout=600)
            if status != "survived":
                raise SystemExit(f"the tests for {module} fail without any mutant ({status}): fix them first")
            baseline[module] = time.monotonic() - start
        free = list(work)

        def one(mutant: Mutant) -> Mutant:
            folder = free.pop()
            target = folder / mutant.module
            original = target.read_text(encoding="utf-8")
            try:
                target.write_text(mutant.source, encoding="utf-8")
                mutant.status = _run_tests(folder, _tests_for(mutant.module),
                                           timeout=max(60.0, 5 * baseline[mutant.module]))
            finally:
                target.write_text(original, encoding="utf-8")
                free.append(folder)
            progress(mutant)
            return mutant

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, mutants))
    finally:
        for folder in work:
            shutil.rmtree(folder, ignore_errors=True)


def report(mutants: list[Mutant], seconds: float) -> str:
    lines = ["# Mutation run", "", f"{len(mutants)} mutants, {seconds / 60:.1f} minutes.", "",
             "| module | mutants | killed | survived | survival rate |", "|---|---|---|---|---|"]
    for module in dict.fromkeys(m.module for m in mutants):
        mine = [m for m in mutants if m.module == module]
        survived = sum(m.status == "survived" for m in mine)
        lines.append(f"| {module} | {len(mine)} | {len(mine) - survived} | {survived} | "
                     f"{100 * survived / max(1, len(mine)):.0f}% |")
    lines += ["", "## Survivors", ""]
    for m in mutants:
        if m.status == "survived":
            lines.append(f"- `{m.module}:{m.line}` {m.description}: `{m.original_line}`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="diff, resolve, emit, policy (a folder: all its modules), ...")
    parser.add_argument("--named", action="store_true", help="the nine mutations named in issue 15 (NAMED) only")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--out", help="write the Markdown report here too")
    args = parser.parse_args(argv)
    files: list[Path] = []
    for name in args.modules:
        target = PACKAGE / name
        files += sorted(target.glob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    mutants = named_mutants() if args.named else [m for f in files for m in mutants_of(f)]
    if not mutants:
        parser.error("give modules or --named")
    if args.list:
        for m in mutants:
            print(f"{m.module}:{m.line}: {m.description}: {m.original_line}")
        print(f"{len(mutants)} mutants")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))   # so the private copies are removed
    start = time.monotonic()
    done = [0]

    def progress(m: Mutant) -> None:
        done[0] += 1
        print(f"[{done[0]}/{len(mutants)}] {m.status:9} {m.module}:{m.line} {m.description}", flush=True)

    run(mutants, max(1, args.jobs), progress)
    text = report(mutants, time.monotonic() - start)
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
