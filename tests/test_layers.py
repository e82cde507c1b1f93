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
# Inside a layer, its wings (subpackages) and top-level modules, bottom to top: a unit imports
# only units at or below its own rank. docs/architecture.md says what each one is.
WINGS = {
    "core": ["errors", "lazy", "env", "secrets", "registry", "backends", "console", "paths",
             "templates", "inputs", "config", "options", "prompts", "features", "masking",
             "data"],
    "storage": ["models", "db", "repo", "migrate"],
    "hosting": ["backends", "telemetry", "versions", "quantize", "generate", "imports", "summary",
                "aws", "cli"],
    "evaluation": ["perf", "human", "auto", "results", "exchange", "charts",
                   "report", "digest", "score",
                   "cli"],
    "bot": ["events", "reactions", "identity", "services", "rating", "incidents", "commands",
            "dispatcher", "web", "ops", "platforms", "cli"],
    "slam": ["demo", "features", "commands", "cli"],
}


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


def _unit(mod: str) -> tuple[str, str] | None:
    """(layer, wing or top-level module) of a module, None for a layer's own __init__."""
    parts = mod.split(".")
    return (parts[0], parts[1]) if len(parts) > 1 else None


def test_every_wing_is_placed() -> None:
    units = {u for m in import_graph() if (u := _unit(m))} | {
        u for deps in import_graph().values() for d in deps if (u := _unit(d))
    }
    unplaced = sorted(f"{layer}.{w}" for layer, w in units if w not in WINGS[layer])
    assert unplaced == [], "wings missing from WINGS (say where they sit): " + ", ".join(unplaced)


def test_imports_point_down_the_wings() -> None:
    upward = []
    for mod, deps in import_graph().items():
        a = _unit(mod)
        for dep in deps:
            b = _unit(dep)
            if a is None or b is None or a[0] != b[0] or a[1] == b[1]:
                continue
            order = WINGS[a[0]]
            if a[1] in order and b[1] in order and order.index(b[1]) > order.index(a[1]):
                upward.append(f"{mod} -> {dep}")
    assert upward == [], "imports that point up the wings:\n" + "\n".join(sorted(upward))


def _wings() -> dict[str, Path]:
    """Every wing package (a subpackage of a layer) and its folder."""
    return {
        ".".join(init.parent.relative_to(ROOT).parts): init.parent
        for layer in LAYERS
        for init in (ROOT / layer).glob("*/__init__.py")
        if init.parent.name != "data" and "migrations" not in init.parts
    }


def _exports(wing: str) -> set[str]:
    """The names a wing's __init__ offers: its imports under TYPE_CHECKING (core.lazy: read
    at run time, imported on first use) and what it defines itself (evaluation.charts keeps its
    chart table there)."""
    from core.lazy import surface

    init = ROOT / Path(*wing.split(".")) / "__init__.py"
    out = set(surface(init))
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            out.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out |= {t.id for t in targets if isinstance(t, ast.Name)}
    return out


def test_outside_a_wing_only_its_surface_is_imported() -> None:
    """Code outside a wing imports what its __init__ exports (or a submodule as a namespace,
    `from bot.rating import rounds`), never from inside its modules."""
    wings = _wings()
    modules = _modules()
    reach_ins = []
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            for wing in wings:
                inside = mod == wing or mod.startswith(wing + ".")
                if inside:
                    continue
                if node.module.startswith(wing + "."):
                    reach_ins.append(f"{mod}: from {node.module} import …")
                elif node.module == wing:
                    bad = [a.name for a in node.names if a.name not in _exports(wing)
                           and f"{wing}.{a.name}" not in modules]  # fmt: skip
                    reach_ins += [f"{mod}: {wing}.{n} is not in its surface" for n in bad]
    assert reach_ins == [], "imports past a wing's surface:\n" + "\n".join(sorted(reach_ins))


def test_no_exported_name_is_also_a_submodule() -> None:
    """Python binds an imported submodule as an attribute of its package, so a surface name
    that is also a submodule's name means the module once it is imported, not the name."""
    clashes = []
    for wing, folder in _wings().items():
        subs = {p.stem for p in folder.glob("*.py")} | {
            p.name for p in folder.iterdir() if (p / "__init__.py").exists()
        }
        clashes += [f"{wing}.{n}" for n in sorted(_exports(wing) & subs)]
    assert clashes == [], "exported names that are also submodules: " + ", ".join(clashes)


def test_every_exported_name_resolves() -> None:
    import importlib

    missing = []
    for wing in _wings():
        package = importlib.import_module(wing)
        for name in sorted(_exports(wing)):
            if not hasattr(package, name):
                missing.append(f"{wing}.{name}")
    assert missing == []


def test_no_module_import_cycles() -> None:
    cycles = _cycles(import_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checker_sees_lazy_and_relative_imports() -> None:
    graph = import_graph()
    # hosting.backends.base imports its backends lazily by name, never the reverse; config's backend
    # check reads the kernel's registry, so these edges exist and point down.
    assert "core.errors" in graph["core.config"]
    assert any(dep.startswith("storage.") for dep in graph["evaluation.human.votes"])
