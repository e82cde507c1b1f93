"""A fixed CPU-bound loop (pure Python) timed in the benchmark's own process: a figure divided
by it is in 'calibration units', which a busy or slower machine moves much less than seconds, so
a regression is not hidden by (or blamed on) the host. On the 2-core VM the targets were set on,
the loop took 0.077 s idle; a machine where it takes twice as long runs Python code about half
as fast."""

from __future__ import annotations

import time

CALIBRATION_N = 2_000_000  # iterations (~0.08-0.2 s on the shared 2-core VMs)
REFERENCE_S = 0.077  # the loop on the VM the targets were set on (idle, 2026-12-07)


def calibrate(n: int = CALIBRATION_N) -> float:
    """Seconds of the loop, the best of three."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        x = 0
        for i in range(n):
            x += i * i & 0xFF
        best = min(best, time.perf_counter() - t0)
    return best
