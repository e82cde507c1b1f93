"""`slam demo`: the whole pipeline offline in a workspace (`run`), its stages after generation
(`stages`) and what they share (`context`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from slam.demo.run import run_demo

__getattr__ = lazy_exports(__name__, __file__)
