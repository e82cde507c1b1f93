"""Demo stages from the evaluation, reporting and chat areas, run after generation."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slam.demo import Stage

STAGES: list[Stage] = []
