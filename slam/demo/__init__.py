"""`slam demo`: the whole pipeline offline in a workspace (`run`), its stages after generation
(`stages`) and what they share (`context`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from slam.demo.run import run_demo

# The wing's public surface: name -> the module that defines it (imported on first use).
EXPORTS = {
    "run_demo": "run",
}
__getattr__ = lazy_exports(__name__, EXPORTS)
__all__ = [
    "run_demo",
]
