"""Bisection for the highest load meeting the SLO, against a server whose capacity is known."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from evaluation.perf import bisect_slo
from evaluation.perf.slo_search import bracket


def capacity(limit: float, calls: list[float]) -> Callable[[float], Awaitable[bool]]:
    async def measure(load: float) -> bool:
        calls.append(load)
        return load <= limit

    return measure


def test_bracket_ignores_passes_above_a_failure() -> None:
    assert bracket([(1, True), (2, True), (4, False), (8, True)]) == (2, 4)
    assert bracket([(1, False), (2, False)]) == (None, 1)
    assert bracket([(1, True), (2, True)]) == (2, None)


async def test_integer_bisection_finds_the_capacity() -> None:
    calls: list[float] = []
    grid = [(c, c <= 11) for c in (1.0, 2.0, 4.0, 8.0, 16.0)]
    found = await bisect_slo(capacity(11, calls), grid, integer=True, max_steps=10)
    # bracket (8, 16): 12 fails, 10 passes, 11 passes -> 11, three new levels
    assert found.best == 11 and found.bounded and calls == [12.0, 10.0, 11.0]
    assert "11 concurrent" in found.describe("concurrent requests")


async def test_rate_bisection_stops_at_the_tolerance_and_the_step_limit() -> None:
    calls: list[float] = []
    found = await bisect_slo(capacity(3.3, calls), [(1.0, True), (5.0, False)], integer=False,
                             max_steps=3)  # fmt: skip
    assert calls == [3.0, 4.0, 3.5] and found.best == 3.0
    calls.clear()
    found = await bisect_slo(capacity(3.3, calls), [(1.0, True), (5.0, False)], integer=False,
                             max_steps=20, rel_tol=0.05)  # fmt: skip
    assert 3.1 < (found.best or 0) <= 3.3 and len(calls) < 20


async def test_nothing_to_bisect() -> None:
    calls: list[float] = []
    none = await bisect_slo(capacity(0.5, calls), [(1.0, False), (2.0, False)], integer=True)
    assert none.best is None and "no load tried" in none.describe("req/s")
    everything = await bisect_slo(capacity(99, calls), [(1.0, True), (2.0, True)], integer=True)
    assert everything.best == 2.0 and not everything.bounded and calls == []
    assert "may go higher" in everything.describe("concurrent requests")
