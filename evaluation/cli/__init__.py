"""The evaluation commands: `slam score` (`score`), `slam probe`, `slam sweep` and `slam report`
(`perf`), `slam export` and `slam import votes` (`exchange`). Heavy modules are imported
inside the commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from evaluation.cli.exchange import import_votes
    from evaluation.cli.score import render

__getattr__ = lazy_exports(__name__, __file__)
