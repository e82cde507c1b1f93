"""Latency arithmetic: percentiles, per-token latency, goodput under SLOs, Pareto frontiers.

Pure functions over plain numbers so they are easy to test on constructed timings and cheap
to run over hundreds of thousands of stored probes (numpy, no per-row objects).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hosting.backends import tpot

__all__ = [
    "SLO",
    "LatencySummary",
    "RequestTiming",
    "goodput",
    "pareto_frontier",
    "percentile",
    "percentiles",
    "summarize",
    "tpot",
]

DEFAULT_QS = (50, 90, 95, 99)


def _clean(values: Iterable[float | None]) -> np.ndarray:
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    return arr[np.isfinite(arr)]


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0..100, linear interpolation) of the non-missing values."""
    arr = _clean(values)
    if arr.size == 0:
        return None
    return float(np.percentile(arr, q))


def percentiles(
    values: Iterable[float | None], qs: Sequence[float] = DEFAULT_QS
) -> dict[float, float | None]:
    """Several percentiles at once; every value is None when there is no data."""
    arr = _clean(values)
    if arr.size == 0:
        return {q: None for q in qs}
    return {q: float(v) for q, v in zip(qs, np.percentile(arr, list(qs)), strict=True)}


@dataclass(frozen=True)
class RequestTiming:
    """One request as the harness saw it (seconds; `start_s` relative to the run start)."""

    start_s: float
    latency_s: float | None
    ttft_s: float | None = None
    output_tokens: int | None = None
    prompt_tokens: int | None = None
    ok: bool = True

    @property
    def tpot_s(self) -> float | None:
        return tpot(self.latency_s, self.ttft_s, self.output_tokens)

    @property
    def end_s(self) -> float:
        return self.start_s + (self.latency_s or 0.0)


@dataclass(frozen=True)
class SLO:
    """Service-level objectives a request must meet to count towards goodput (None = no limit)."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None

    def met(self, t: RequestTiming) -> bool:
        """A failed request, or one missing a measurement its SLO needs, does not meet it."""
        if not t.ok or t.latency_s is None:
            return False
        if self.e2e_s is not None and t.latency_s > self.e2e_s:
            return False
        if self.ttft_s is not None and (t.ttft_s is None or t.ttft_s > self.ttft_s):
            return False
        if self.tpot_s is not None:
            # A one-token answer has no inter-token time: it cannot violate a TPOT SLO.
            per_token = t.tpot_s
            if per_token is not None and per_token > self.tpot_s:
                return False
        return True

    def describe(self) -> str:
        parts = []
        if self.ttft_s is not None:
            parts.append(f"TTFT ≤ {self.ttft_s * 1000:g} ms")
        if self.tpot_s is not None:
            parts.append(f"TPOT ≤ {self.tpot_s * 1000:g} ms")
        if self.e2e_s is not None:
            parts.append(f"e2e ≤ {self.e2e_s:g} s")
        return ", ".join(parts) or "no SLO"


def wall_time(timings: Sequence[RequestTiming]) -> float:
    """Seconds from the first request's start to the last request's end."""
    if not timings:
        return 0.0
    return max(t.end_s for t in timings) - min(t.start_s for t in timings)


def goodput(
    timings: Sequence[RequestTiming], slo: SLO, duration_s: float | None = None
) -> tuple[float, float]:
    """(requests per second meeting every SLO, fraction of requests meeting them)."""
    if not timings:
        return 0.0, 0.0
    good = sum(1 for t in timings if slo.met(t))
    duration = wall_time(timings) if duration_s is None else duration_s
    rate = good / duration if duration > 0 else 0.0
    return rate, good / len(timings)


@dataclass(frozen=True)
class LatencySummary:
    """Aggregate view of one batch of requests (one probe run, or one sweep level)."""

    n: int
    n_ok: int
    duration_s: float
    requests_per_s: float
    output_tokens_per_s: float
    latency: dict[float, float | None]
    ttft: dict[float, float | None]
    tpot: dict[float, float | None]
    mean_output_tokens: float | None
    goodput_rps: float
    goodput_fraction: float

    @property
    def availability(self) -> float:
        return self.n_ok / self.n if self.n else 0.0


def summarize(
    timings: Sequence[RequestTiming],
    slo: SLO | None = None,
    qs: Sequence[float] = DEFAULT_QS,
) -> LatencySummary:
    """Throughput, percentiles and goodput of one batch (throughput over its wall time)."""
    ok = [t for t in timings if t.ok and t.latency_s is not None]
    duration = wall_time(timings)
    out_tokens = sum(t.output_tokens or 0 for t in ok)
    toks = [t.output_tokens for t in ok if t.output_tokens is not None]
    g_rate, g_frac = goodput(timings, slo or SLO(), duration)
    return LatencySummary(
        n=len(timings),
        n_ok=len(ok),
        duration_s=duration,
        requests_per_s=len(ok) / duration if duration > 0 else 0.0,
        output_tokens_per_s=out_tokens / duration if duration > 0 else 0.0,
        latency=percentiles([t.latency_s for t in ok], qs),
        ttft=percentiles([t.ttft_s for t in ok], qs),
        tpot=percentiles([t.tpot_s for t in ok], qs),
        mean_output_tokens=float(np.mean(toks)) if toks else None,
        goodput_rps=g_rate,
        goodput_fraction=g_frac,
    )


def pareto_frontier(throughput: Sequence[float], latency: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both axes (more throughput, less latency),
    ordered by increasing throughput. NaN points are never on the frontier."""
    pts = [
        (float(x), float(y), i)
        for i, (x, y) in enumerate(zip(throughput, latency, strict=True))
        if not (math.isnan(float(x)) or math.isnan(float(y)))
    ]
    # Walk from the highest throughput down; a point joins when its latency beats all seen so far.
    pts.sort(key=lambda p: (-p[0], p[1]))
    frontier: list[int] = []
    best_latency = math.inf
    for _x, y, i in pts:
        if y < best_latency:
            frontier.append(i)
            best_latency = y
    return frontier[::-1]
