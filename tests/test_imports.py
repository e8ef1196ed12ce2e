"""The package's shape: no import cycles, between modules or between first-level packages,
counting imports inside functions; at most four loose modules in builder/; an import inside a
function only where it buys start-up time, with a comment saying so.  Read from the AST."""

from __future__ import annotations

import ast
from pathlib import Path

BUILDER = Path(__file__).resolve().parents[1] / "builder"
LOOSE_ALLOWED = {"__init__", "__main__", "cli", "errors"}


def module_name(path: Path) -> str:
    rel = path.relative_to(BUILDER.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(BUILDER.rglob("*.py"))}


def resolve(name: str, imported: str | None) -> str | None:
    """The builder module an import names (``from pkg import mod`` names pkg.mod)."""
    if imported and f"{name}.{imported}" in MODULES:
        return f"{name}.{imported}"
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(path: Path) -> list[tuple[str, ast.stmt, bool]]:
    """(imported builder module, node, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    out: list[tuple[str, ast.stmt, bool]] = []

    def visit(node: ast.AST, in_function: bool, in_type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            func = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            checking = in_type_checking or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("builder") \
                    and not checking:
                for alias in child.names:
                    target = resolve(child.module, alias.name)
                    if target:
                        out.append((target, child, in_function))
            elif isinstance(child, ast.Import) and not checking:
                for alias in child.names:
                    if alias.name.startswith("builder"):
                        target = resolve(alias.name, None)
                        if target:
                            out.append((target, child, in_function))
            visit(child, func, checking)
    visit(tree, False, False)
    return out


def graph(level: int | None = None) -> dict[str, set[str]]:
    """module → modules it imports (``level`` 1: first-level packages under builder)."""
    def cut(name: str) -> str:
        return name if level is None else ".".join(name.split(".")[:level + 1])
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        for target, _, _ in imports(path):
            a, b = cut(name), cut(target)
            # a package's __init__ is part of the package, not an import of it
            if a != b and not (level is None and (b == a.rpartition(".")[0] and path.name != "__init__.py")):
                edges.setdefault(a, set()).add(b)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found


def test_no_cycles_between_modules():
    assert cycles(graph()) == []


def test_no_cycles_between_packages():
    assert cycles(graph(level=1)) == []


def test_at_most_four_loose_modules():
    loose = {p.stem for p in BUILDER.glob("*.py")}
    assert loose <= LOOSE_ALLOWED, f"loose modules in builder/: {sorted(loose - LOOSE_ALLOWED)}"


def test_imports_inside_functions_say_why():
    """A function-level import is for start-up time (a cached build, or a command that does not
    need the module, never imports it) and says so: ``start-up`` in a comment on its line or
    on the line just above its block of imports."""
    unexplained = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        for _, node, in_function in imports(path):
            if in_function and not _says_start_up(lines, node.lineno - 1):
                unexplained.append(f"{name}:{node.lineno}")
    assert unexplained == [], "function-level imports without a start-up comment: " + \
        ", ".join(sorted(set(unexplained)))


def _says_start_up(lines: list[str], at: int) -> bool:
    if "start-up" in lines[at]:
        return True
    above = at - 1
    while above >= 0 and (lines[above].strip().startswith(("from ", "import ")) or not lines[above].strip()):
        if "start-up" in lines[above]:
            return True
        above -= 1
    return above >= 0 and lines[above].strip().startswith("#") and "start-up" in lines[above]


def test_the_checks_see_a_cycle():
    """The checker itself: a two-module cycle and a three-package cycle are found."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"x": {"y"}, "y": {"z"}, "z": {"x"}}) == [["x", "y", "z"]]
