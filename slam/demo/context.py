"""What every demo stage reads and writes: the workspace, the console, the config and engine
once they exist, and notes for the end of the run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from sqlalchemy.engine import Engine

from core.config import SlamConfig


@dataclass
class DemoContext:
    workspace: Path
    quick: bool
    console: Console
    cfg: SlamConfig | None = None
    engine: Engine | None = None
    notes: list[str] = field(default_factory=list)


Stage = tuple[str, Callable[[DemoContext], None]]
