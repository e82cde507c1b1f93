"""A wing's public surface, imported on first use.

Each wing (a subpackage: `evaluation.human`, `bot.rating`, `hosting.backends`, …) names what
the rest of the code may use of it in its `__init__`; code outside the wing imports those
names from the package (`from evaluation.human import VotePolicy`), never from its modules.
The names are imported when first used, so importing a wing costs nothing (a platform's SDK,
matplotlib or llama.cpp load only when something of theirs is used) and no wing can form an
import cycle through its `__init__`:

    EXPORTS = {"VotePolicy": "votes", "bradley_terry": "ratings"}
    __getattr__ = lazy_exports(__name__, EXPORTS)
    __all__ = sorted(EXPORTS)

with the same names imported under `if TYPE_CHECKING:` for the type checker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that reads `name` from `package.<exports[name]>`, importing that
    module on first use. The value is read from the module every time, never copied into the
    package, so the module stays the one place it lives (a test that patches
    `bot.platforms.discord.run_discord` patches what `from bot.platforms import run_discord`
    gets)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module}"), name)

    return __getattr__
