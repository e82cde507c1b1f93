"""Imports point down the layers and no module imports itself back through others.

Layers, bottom to top: core (errors, config, prompts) < storage < hosting < evaluation < bot
< slam (the CLI, the demo: the composition root). Every import counts, including the ones
inside functions (lazy imports still tie two modules together) and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["core", "storage", "hosting", "evaluation", "bot", "slam"]
RANK = {p: i for i, p in enumerate(LAYERS)}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in LAYERS:
        base = ROOT / pkg
        if not base.exists():
            continue
        for path in base.rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an import refers to (`a.b.c` may be the attribute c of module a.b)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")
                    up = up[: len(up) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [f"{base}.{a.name}" for a in node.names] or [base]
            for t in targets:
                dep = _resolve(t, modules)
                # A package's __init__ re-exporting its own modules is not a cycle.
                if dep and dep != mod and not mod.startswith(dep + "."):
                    graph[mod].add(dep)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_imports_point_down_the_layers() -> None:
    upward = sorted(
        f"{mod} -> {dep}"
        for mod, deps in import_graph().items()
        for dep in deps
        if RANK[dep.split(".")[0]] > RANK[mod.split(".")[0]]
    )
    assert upward == [], "imports that point up the layers:\n" + "\n".join(upward)


def test_no_module_import_cycles() -> None:
    cycles = _cycles(import_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checker_sees_lazy_and_relative_imports() -> None:
    graph = import_graph()
    # hosting.base imports its backends lazily by name, never the reverse; config's backend
    # check reads the kernel's registry, so these edges exist and point down.
    assert "core.errors" in graph["core.config"]
    assert any(dep.startswith("storage.") for dep in graph["evaluation.votes"])
