"""A wing's public surface, imported on first use.

Each wing (a subpackage: `evaluation.human`, `bot.rating`, `hosting.backends`, …) names what
the rest of the code may use of it in its `__init__`, as imports under `if TYPE_CHECKING:`;
code outside the wing imports those names from the package (`from evaluation.human import
VotePolicy`), never from its modules. The type checker reads the imports; at run time
`lazy_exports` reads them from the `__init__`'s source and imports a name's module when the
name is first used, so importing a wing costs nothing (a platform's SDK, matplotlib or
llama.cpp load only when something of theirs is used) and no wing can form an import cycle
through its `__init__`:

    from typing import TYPE_CHECKING

    from core.lazy import lazy_exports

    if TYPE_CHECKING:
        from evaluation.human.votes import VotePolicy

    __getattr__ = lazy_exports(__name__, __file__)
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any


def surface(init_file: str | Path) -> dict[str, tuple[str, str]]:
    """The names a wing's `__init__` exports: name -> (module, name there), read from its
    `if TYPE_CHECKING:` imports."""
    tree = ast.parse(Path(init_file).read_text(encoding="utf-8"))
    out: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
                    for alias in stmt.names:
                        out[alias.asname or alias.name] = (stmt.module, alias.name)
    return out


def lazy_exports(package: str, init_file: str) -> Callable[[str], Any]:
    """A module `__getattr__` for a wing: `name` is read from the module that defines it,
    importing that module on first use. The value is read from the module every time, never
    copied into the package, so the module stays the one place it lives (a test that patches
    `bot.platforms.discord.run_discord` patches what `from bot.platforms import run_discord`
    gets)."""
    names: dict[str, tuple[str, str]] = {}

    def __getattr__(name: str) -> Any:
        if not names:
            names.update(surface(init_file))
        found = names.get(name)
        if found is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(found[0]), found[1])

    return __getattr__
