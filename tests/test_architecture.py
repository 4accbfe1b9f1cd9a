"""The package's shape: no import cycles, only the console entry point imports the CLI, small modules.

The import graph is read from the source with :mod:`ast` (every ``import``/``from`` statement,
also those inside functions), so a lazy import that closes a cycle counts as much as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The pipeline modules that module ``name`` imports (``from X import y`` counts ``X.y`` if it is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
        else:
            continue
        for t in targets:
            # ``import pipeline.a.b`` or ``pipeline.a.b.name``: the longest prefix that is a module
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_sees_lazy_and_package_imports():
    graph = import_graph()
    assert "pipeline.artifacts.cube" in graph["pipeline"]  # pipeline/__init__: from .artifacts.cube import open_cube
    assert "pipeline.cluster.standalone" in graph["pipeline.cli.main"]  # from ..cluster import standalone
    assert "pipeline.workflow.demo" in graph["pipeline.cli.main"]  # inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_only_the_cli_imports_the_cli():
    offenders = {m: sorted(t for t in targets if t == "pipeline.cli" or t.startswith("pipeline.cli."))
                 for m, targets in import_graph().items() if m != "pipeline.cli" and not m.startswith("pipeline.cli.")}
    assert not {m: t for m, t in offenders.items() if t}


def _long_modules() -> dict[str, int]:
    lengths = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    return {name: n for name, n in lengths.items() if n > MAX_LINES}


def test_no_module_over_600_lines():
    assert not _long_modules(), _long_modules()
