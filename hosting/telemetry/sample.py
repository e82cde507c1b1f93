"""What a GPU reading is, and the energy between readings.

A `GpuSample` is one reading of every GPU at one moment: the cumulative energy counter (J
since the driver loaded), power (W), utilization (%) and memory used (MiB); any field a source
does not offer is None. `energy_window` turns a series of samples into the energy of the
interval they span, the way Prometheus' `increase()` reads a counter: a value lower than the
previous one is a counter reset (driver reload, exporter restart), and the new value counts
from zero. A GPU without an energy counter is integrated from its power readings instead
(trapezoids), and says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one moment; None for what the source could not read."""

    index: int
    energy_j: float | None = None  # cumulative since the driver loaded
    power_w: float | None = None
    util_pct: float | None = None
    memory_used_mib: float | None = None
    name: str | None = None


@dataclass(frozen=True)
class GpuSample:
    """Every GPU of a machine at `at` (a monotonic clock, seconds)."""

    at: float
    gpus: tuple[GpuReading, ...]
    source: str  # "nvml" | "dcgm"


class TelemetrySource(Protocol):
    """Where GPU readings come from. `read()` never raises: None means no reading now."""

    name: str

    def read(self) -> GpuSample | None: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class EnergyWindow:
    """What the GPUs did over one interval (a probe batch, a sweep level)."""

    source: str
    duration_s: float
    gpus: int
    joules: float | None
    method: str  # "counter" (the energy counter), "power" (integrated watts) or "none"
    mean_watts: float | None
    util_pct: float | None  # mean over the readings and GPUs
    memory_used_mib: float | None  # peak over the readings, summed over GPUs
    resets: int = 0  # counter resets seen (the energy across them is still counted)
    samples: int = 0

    def per(self, n: float | None) -> float | None:
        """Joules per unit (output token, request); None when either is unknown or n is 0."""
        if self.joules is None or not n:
            return None
        return self.joules / n


def _counter_increase(values: Sequence[float]) -> tuple[float, int]:
    """Sum of increases of a cumulative counter; a drop is a reset and counts from zero."""
    total, resets = 0.0, 0
    for prev, cur in itertools.pairwise(values):
        if cur >= prev:
            total += cur - prev
        else:
            total += cur
            resets += 1
    return total, resets


def _integrate(points: Sequence[tuple[float, float]]) -> float:
    """Trapezoid integral of (time, watts) points, in joules."""
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in itertools.pairwise(points))


def energy_window(samples: Sequence[GpuSample]) -> EnergyWindow | None:
    """The energy and averages over the samples' span; None without two samples."""
    ordered = sorted(samples, key=lambda s: s.at)
    if len(ordered) < 2:
        return None
    duration = ordered[-1].at - ordered[0].at
    indices = sorted({g.index for s in ordered for g in s.gpus})
    joules: float | None = 0.0
    methods, resets = set(), 0
    for idx in indices:
        readings = [(s.at, g) for s in ordered for g in s.gpus if g.index == idx]
        counters = [g.energy_j for _, g in readings if g.energy_j is not None]
        powers = [(t, g.power_w) for t, g in readings if g.power_w is not None]
        if len(counters) >= 2 and len(counters) == len(readings):
            gained, n_resets = _counter_increase(counters)
            resets += n_resets
            methods.add("counter")
        elif len(powers) >= 2:
            gained = _integrate(powers)
            methods.add("power")
        else:
            joules = None
            break
        assert joules is not None
        joules += gained
    utils = [g.util_pct for s in ordered for g in s.gpus if g.util_pct is not None]
    memory = [
        sum(g.memory_used_mib for g in s.gpus if g.memory_used_mib is not None)
        for s in ordered
        if any(g.memory_used_mib is not None for g in s.gpus)
    ]
    if joules is None:
        method = "none"
    else:
        method = "counter" if methods == {"counter"} else "power" if methods == {"power"} else (
            "counter+power")  # fmt: skip
    return EnergyWindow(
        source=ordered[0].source,
        duration_s=duration,
        gpus=len(indices),
        joules=joules,
        method=method,
        mean_watts=joules / duration if joules is not None and duration > 0 else None,
        util_pct=sum(utils) / len(utils) if utils else None,
        memory_used_mib=max(memory) if memory else None,
        resets=resets,
        samples=len(ordered),
    )
