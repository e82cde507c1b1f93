"""The evaluation commands: `slam score` (`score`), `slam probe`, `slam sweep` and `slam report`
(`perf`). Heavy modules are imported inside the commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from evaluation.cli.score import render

# The wing's public surface: name -> the module that defines it (imported on first use).
EXPORTS = {
    "render": "score",
}
__getattr__ = lazy_exports(__name__, EXPORTS)
__all__ = [
    "render",
]
