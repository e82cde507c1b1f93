"""Over-saturation: a level whose server cannot keep up stops early (as GuideLLM's sweep does).

A server past its capacity queues what it cannot serve: requests already sent keep piling up
(the in-flight count seen as each request starts rises) and each one waits longer (latency
rises). Either alone is normal (latency varies; a burst fills the queue for a moment); both
rising together across the level is over-saturation, and measuring on only wastes time and
makes the level's numbers those of a queue, not of the model.

The rule, on the requests completed so far in start order (at least `min_requests`): split
them into thirds; the level is over-saturated when the last third's median latency is at
least `ratio` × the first third's, and its median in-flight count is at least `ratio` × the
first third's and `min_queue_growth` requests more. A closed-loop level (fixed concurrency)
never trips it: its in-flight count cannot grow.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class SaturationDetector:
    ratio: float = 1.5
    min_requests: int = 9
    min_queue_growth: int = 2
    _seen: list[tuple[float, int, float]] = field(default_factory=list)  # start, queue, latency

    def observe(self, start_s: float, in_flight: int, latency_s: float | None) -> None:
        """One completed request: when it started, how many were in flight then, its latency
        (None for a failure, which counts as no latency information)."""
        if latency_s is not None:
            self._seen.append((start_s, in_flight, latency_s))

    def over_saturated(self) -> bool:
        if len(self._seen) < self.min_requests:
            return False
        seen = sorted(self._seen)
        third = len(seen) // 3
        first, last = seen[:third], seen[-third:]
        lat0 = statistics.median(s[2] for s in first)
        lat1 = statistics.median(s[2] for s in last)
        q0 = statistics.median(s[1] for s in first)
        q1 = statistics.median(s[1] for s in last)
        latency_rising = lat1 >= self.ratio * lat0
        queue_rising = q1 >= self.ratio * q0 and q1 - q0 >= self.min_queue_growth
        return latency_rising and queue_rising
