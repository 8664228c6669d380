"""The code's shape (issue 15, "One place per job"): no module over 500 lines, no function over 80 lines,
no import cycle between the package's modules at import time.

Read from the source with ``ast`` (nothing is imported), so a new long function or a new cycle fails here
with its name, whoever adds it.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "logsource_checker"
NAME = PACKAGE.name
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
# functions being split on another branch (helper `speed`); remove each entry when its split lands
LONG_FUNCTIONS_ALLOWED: set[str] = set()   # none left: cli.main and report._build were split


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its ``__init__``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def long_functions(source: str, limit: int) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function or method longer than ``limit`` lines (decorators excluded)."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    lines = child.end_lineno - child.lineno + 1
                    if lines > limit:
                        found.append((name, lines))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level_imports(tree: ast.Module):
    """Import statements run when the module is imported: module level, inside top-level ``if``/``try``
    blocks (not under ``if TYPE_CHECKING``), never inside functions or classes."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                stack.extend(node.body)
            stack.extend(node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                stack.extend(handler.body)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package modules its import runs (a submodule's import also runs its parent packages,
    except the importer's own ancestors, which are being imported already)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        base = module.split(".") if is_package else module.split(".")[:-1]
        targets: set[str] = set()
        for node in _top_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                if node.level:
                    anchor = base[:len(base) - node.level + 1]
                    source = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                names = [source] + [f"{source}.{alias.name}" for alias in node.names]
            for name in names:
                if name in modules:
                    targets.add(name)
        ancestors = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        for target in list(targets):
            parts = target.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent in modules:
                    targets.add(parent)
        graph[module] = targets - ancestors - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_no_module_over_the_limit():
    too_long = {_rel(p): n for p in _modules().values()
                if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert too_long == {}


def test_no_function_over_the_limit():
    found = {f"{_rel(p)}::{name}": lines for p in _modules().values()
             for name, lines in long_functions(p.read_text(encoding="utf-8"), MAX_FUNCTION_LINES)}
    assert {k: v for k, v in found.items() if k not in LONG_FUNCTIONS_ALLOWED} == {}


def test_allowed_long_functions_still_exist():
    """An entry of the allowance whose function was split or renamed must leave the allowance."""
    found = {f"{_rel(p)}::{name}" for p in _modules().values()
             for name, _ in long_functions(p.read_text(encoding="utf-8"), MAX_FUNCTION_LINES)}
    assert LONG_FUNCTIONS_ALLOWED - found == set()


def test_no_import_cycle():
    assert cycles(import_graph(_modules())) == []


# the checks themselves, on small sources, so that they can fail
@pytest.mark.parametrize("source, expected", [
    ("def f():\n" + "    x = 1\n" * 80, [("f", 81)]),
    ("def f():\n" + "    x = 1\n" * 79, []),
    ("class C:\n    def m(self):\n" + "        x = 1\n" * 85, [("C.m", 86)]),
    ("def outer():\n    def inner():\n" + "        x = 1\n" * 81 + "    return inner\n",
     [("outer", 84), ("outer.inner", 82)]),
    ("if True:\n    async def g():\n" + "        await x\n" * 90, [("g", 91)]),
])
def test_long_functions_are_found(source, expected):
    assert sorted(long_functions(source, MAX_FUNCTION_LINES)) == expected


def _package(tmp_path, files: dict[str, str]) -> dict[str, Path]:
    out = {}
    for rel, text in files.items():
        path = tmp_path / NAME / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        parts = [NAME] + rel[:-3].split("/")
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


@pytest.mark.parametrize("files, expected", [
    ({"__init__.py": "", "a.py": "from .b import x\n", "b.py": "from . import a\n"}, [["a", "b"]]),
    ({"__init__.py": "", "a.py": "from .b import x\n", "b.py": "def f():\n    from .a import y\n"}, []),
    # `from . import x` inside a package names the package being imported already: not a cycle
    ({"__init__.py": "", "p/__init__.py": "from . import m\n", "p/m.py": "from . import n\n", "p/n.py": ""}, []),
    ({"__init__.py": "", "a.py": "import logsource_checker.b\n", "b.py": "from .c import z\n",
      "c.py": "try:\n    from .a import q\nexcept ImportError:\n    pass\n"}, [["a", "b", "c"]]),
    ({"__init__.py": "", "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import x\n",
      "b.py": "from .a import y\n"}, []),
    # a package importing its submodules, a submodule importing a sibling: no cycle
    ({"__init__.py": "", "p/__init__.py": "from .m import x\nfrom .n import y\n", "p/m.py": "from .n import y\n",
      "p/n.py": ""}, []),
    # a submodule of another package runs that package's __init__, which imports back
    ({"__init__.py": "", "a.py": "from .p.m import x\n", "p/__init__.py": "from ..a import f\n", "p/m.py": ""},
     [["a", "p"]]),
])
def test_import_cycles_are_found(tmp_path, files, expected):
    modules = _package(tmp_path, files)
    found = [[name[len(NAME) + 1:] for name in component] for component in cycles(import_graph(modules))]
    assert found == expected


def test_the_named_mutations_still_apply(monkeypatch):
    """tools/mutation.py --named applies the nine mutations of issue 15 to the lines they change; when a
    refactoring moves such a line, the table must follow it (and tests/test_mutants.py must still kill it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mutation", PACKAGE.parent / "tools" / "mutation.py")
    mutation = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "mutation", mutation)   # its dataclasses look their module up there
    spec.loader.exec_module(mutation)
    named = mutation.named_mutants()
    assert [m.index for m in named] == list(range(1, 10))
    assert all(m.source != (PACKAGE.parent / m.module).read_text(encoding="utf-8") for m in named)
