"""Over-saturation: latency and queue both rising, on hand-made request series."""

from __future__ import annotations

from collections.abc import Sequence

from evaluation.perf import SaturationDetector


def feed(d: SaturationDetector, rows: Sequence[tuple[float, int, float | None]]) -> bool:
    for start, queue, latency in rows:
        d.observe(start, queue, latency)
    return d.over_saturated()


def test_latency_and_queue_rising_together_is_over_saturation() -> None:
    # A queue growing 1 -> 9 and latency 1 s -> 5 s: arrivals outpace the server.
    rows = [(i * 0.1, 1 + i, 1.0 + i * 0.5) for i in range(9)]
    assert feed(SaturationDetector(), rows)


def test_either_alone_is_not() -> None:
    latency_only = [(i * 0.1, 2, 1.0 + i) for i in range(12)]  # closed loop: queue fixed
    assert not feed(SaturationDetector(), latency_only)
    queue_only = [(i * 0.1, 1 + i, 1.0) for i in range(12)]  # a burst the server absorbs
    assert not feed(SaturationDetector(), queue_only)


def test_too_few_requests_or_failures_decide_nothing() -> None:
    rows = [(i * 0.1, 1 + 3 * i, 1.0 + i) for i in range(8)]
    assert not feed(SaturationDetector(), rows)  # 8 < min_requests
    d = SaturationDetector()
    assert not feed(d, [(i * 0.1, 1 + 3 * i, None) for i in range(20)])  # failures: no latency


def test_the_thirds_are_taken_in_start_order() -> None:
    # The same requests completed out of order: the rule reads them by start time.
    rows = [(i * 0.1, 1 + i, 1.0 + i * 0.5) for i in range(9)][::-1]
    assert feed(SaturationDetector(), rows)
