"""One rich Console factory: readable tables when output is piped (CI logs, tests) too."""

from __future__ import annotations

from rich.console import Console


def make_console(stderr: bool = False) -> Console:
    """A Console; when not attached to a terminal use 120 columns instead of rich's 80."""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, width=120)
