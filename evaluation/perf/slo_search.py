"""The highest load that meets the SLO (goodput), found by bisection as vLLM's SLA search does.

A load meets the SLO when at least `attainment` of its requests meet every objective (TTFT,
TPOT, end-to-end). The sweep's grid brackets the answer: the highest load tried that met it
and the lowest above it that did not. Between them, the load is halved until the bracket is
one concurrency step (or, for rates, `rel_tol` of the rate) or `max_steps` levels were run.
Met-ness is assumed monotone in load (more load never makes requests faster); a measured
exception is kept as measured, not smoothed over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SloSearch:
    """The outcome: `best` is the highest load found meeting the SLO (None: not even the
    lowest), `bounded` whether a higher load was seen failing it, `tried` every (load, met)."""

    best: float | None
    bounded: bool
    tried: list[tuple[float, bool]] = field(default_factory=list)

    def describe(self, unit: str) -> str:
        if self.best is None:
            return f"no load tried meets the SLO (lowest: {min(x for x, _ in self.tried):g} {unit})"
        tail = "" if self.bounded else " (the highest tried: it may go higher)"
        return f"highest load meeting the SLO: {self.best:g} {unit}{tail}"


def bracket(grid: Sequence[tuple[float, bool]]) -> tuple[float | None, float | None]:
    """(highest load that met the SLO below every failure, lowest failing load above it)."""
    lo: float | None = None
    hi: float | None = None
    for load, met in sorted(grid):
        if met and hi is None:
            lo = load
        elif not met and hi is None:
            hi = load
    return lo, hi


async def bisect_slo(
    measure: Callable[[float], Awaitable[bool]],
    grid: Sequence[tuple[float, bool]],
    *,
    integer: bool,
    max_steps: int = 6,
    rel_tol: float = 0.05,
) -> SloSearch:
    """Bisect between the grid's bracket with `measure(load) -> met`, run once per new load."""
    tried = list(grid)
    lo, hi = bracket(grid)
    if lo is None or hi is None:
        return SloSearch(best=lo, bounded=hi is not None, tried=tried)
    for _ in range(max_steps):
        if integer and hi - lo <= 1:
            break
        if not integer and (hi - lo) <= rel_tol * hi:
            break
        mid = float((lo + hi) // 2) if integer else round((lo + hi) / 2, 4)
        met = await measure(mid)
        tried.append((mid, met))
        if met:
            lo = mid
        else:
            hi = mid
    return SloSearch(best=lo, bounded=True, tried=tried)
