"""The structure limits of issue 14, kept true: module and function sizes, and an acyclic engine.

Sizes are counted as ``python3 /work/funclen.py`` does: a function runs from its ``def`` line to its
last line (``ast`` ``lineno``..``end_lineno``); a module's size is its number of newlines.
The import graph of the engine takes every ``import``/``from`` statement of every engine module,
including the lazy ones inside functions and those under ``if TYPE_CHECKING:`` (a cycle hidden from
the interpreter is still a cycle for the reader and the type checker).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CODE_ROOTS = ("engine", "sar_toolbox_plugin", "training")
MODULE_MAX_LINES = 600
MODULE_CAP_ROOTS = ("engine", "benchmarks", "training")
FUNCTION_MAX_LINES = 100
FUNCTION_SOFT_LINES = 80
MOST_OVER_SOFT = 4


def _python_files(root: str) -> Iterator[Path]:
    base = REPO_ROOT / root
    for path in sorted(base.rglob("*.py")):
        # sar_toolbox_plugin/engine is a link to engine/: counted once, as the engine
        if root == "sar_toolbox_plugin" and (base / "engine") in path.parents:
            continue
        yield path


def _functions() -> list[tuple[int, str]]:
    """(lines, "path:name") of every function and method in the code roots."""
    found = []
    for root in CODE_ROOTS:
        for path in _python_files(root):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    assert node.end_lineno is not None
                    lines = node.end_lineno - node.lineno + 1
                    found.append((lines, f"{path.relative_to(REPO_ROOT)}:{node.name}"))
    return sorted(found, reverse=True)


def test_the_measure_sees_the_code() -> None:
    functions = _functions()
    assert len(functions) > 300, "the walk missed the code roots"
    names = {name for _, name in functions}
    assert "engine/synthetic/scene.py:generate_scene_pair" in names
    assert not any(name.startswith("sar_toolbox_plugin/engine/") for name in names)


def test_no_module_over_600_lines() -> None:
    big = [(p.read_text(encoding="utf-8").count("\n"), str(p.relative_to(REPO_ROOT)))
           for root in MODULE_CAP_ROOTS for p in _python_files(root)]
    assert any(p.startswith("benchmarks/") for _, p in big) and any(p.startswith("training/") for _, p in big)
    over = sorted((n, p) for n, p in big if n > MODULE_MAX_LINES)
    assert not over, f"modules over {MODULE_MAX_LINES} lines (split them by what they do): {over}"


def test_no_function_over_100_lines() -> None:
    over = [f for f in _functions() if f[0] > FUNCTION_MAX_LINES]
    assert not over, f"functions over {FUNCTION_MAX_LINES} lines (split them into named stages): {over}"


def test_at_most_4_functions_over_80_lines() -> None:
    over = [f for f in _functions() if f[0] > FUNCTION_SOFT_LINES]
    assert len(over) <= MOST_OVER_SOFT, (
        f"{len(over)} functions over {FUNCTION_SOFT_LINES} lines (at most {MOST_OVER_SOFT}): {over}")


# ------------------------------------------------------------------ engine import graph
def _engine_modules() -> dict[str, Path]:
    """Dotted name -> file of every engine module (a package is its ``__init__``)."""
    modules = {}
    for path in _python_files("engine"):
        parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _all_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth: lazy ones and ``if TYPE_CHECKING:`` ones included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom,
             modules: dict[str, Path]) -> set[str]:
    """The engine modules one import statement loads (the deepest existing module of each name).

    ``from . import sub`` of a submodule is an edge to ``sub`` only: the package is its parent, always
    initialised first whatever the child imports, so that edge is no choice of the code."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            base = ".".join(package[: len(package) - (node.level - 1)])
            stem = f"{base}.{node.module}" if node.module else base
        else:
            stem = node.module or ""
        names = [f"{stem}.{alias.name}" for alias in node.names]
        if not all(name in modules for name in names):  # a name defined in the module (package) itself
            names.append(stem)
    found = set()
    for name in names:
        parts = name.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        if parts and parts[0] == "engine":
            found.add(".".join(parts))
    return found


def _engine_import_graph() -> dict[str, set[str]]:
    modules = _engine_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _all_imports(ast.parse(path.read_text(encoding="utf-8"))):
            edges |= _targets(name, is_package, node, modules)
        graph[name] = edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
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
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_the_import_graph_sees_type_checking_imports() -> None:
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n")
    edges = set()
    for node in _all_imports(tree):
        edges |= _targets("engine.a", False, node, {"engine.a": Path("a.py"), "engine.b": Path("b.py")})
    assert edges == {"engine.b"}
    modules = {"engine.p": Path("p/__init__.py"), "engine.p.q": Path("p/q.py"), "engine.p.r": Path("p/r.py")}
    sub, attr = ast.parse("from . import r\nfrom . import NAME\n").body
    assert isinstance(sub, ast.ImportFrom) and isinstance(attr, ast.ImportFrom)
    assert _targets("engine.p.q", False, sub, modules) == {"engine.p.r"}  # the package: no edge
    assert _targets("engine.p.q", False, attr, modules) == {"engine.p"}  # a name of the package: an edge


def test_the_import_graph_sees_lazy_and_relative_imports() -> None:
    graph = _engine_import_graph()
    assert "engine.errors" in graph["engine.run"]  # module level, relative
    assert "engine.preprocess" in graph["engine.synthetic.training"]  # two levels up
    lazy = {m for m, edges in graph.items() if "engine.raster_io" in edges}
    assert len(lazy) > 3
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_engine_has_no_import_cycle() -> None:
    cycles = _cycles(_engine_import_graph())
    assert not cycles, f"import cycles in the engine (lazy and TYPE_CHECKING imports count): {cycles}"
