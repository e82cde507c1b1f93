"""Over-saturation: latency and queue both rising, on hand-made request series."""

from __future__ import annotations

from collections.abc import Sequence

from evaluation.perf import SaturationDetector
from hosting.backends import Generation


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


class OneSlotServer:
    """A backend in front of a server with one slot and a fixed service time: arrivals faster
    than it serves queue up (a stand-in for an over-saturated Ollama)."""

    def __init__(self, service_s: float) -> None:
        import asyncio

        self.service_s = service_s
        self.slot = asyncio.Lock()
        self.served = 0

    async def generate(self, request: object) -> Generation:
        import asyncio

        async with self.slot:
            await asyncio.sleep(self.service_s)  # the server's work on this request
            self.served += 1
        return Generation(text="ok", backend="fake", model="m", output_tokens=4)

    async def aclose(self) -> None:
        return None


async def test_an_open_loop_level_stops_when_the_server_falls_behind() -> None:
    from core.config import ModelSpec
    from evaluation.perf.sweep import _Driver, _open_loop
    from hosting.backends import GenerationRequest

    server = OneSlotServer(service_s=0.005)  # serves 200/s
    spec = ModelSpec(name="m", backend="ollama", model="m")
    driver = _Driver([server], spec, GenerationRequest(prompt="hi"), SaturationDetector())  # type: ignore[list-item]
    results = await _open_loop(driver, rate=1000.0, n_requests=300, tick=lambda: None)
    assert driver.stopped  # 1000/s offered to a 200/s server: latency and queue both rise
    assert 9 <= len(results) < 300 and server.served == len(results)
    queue = [t.latency_s for _, t, _ in results]
    assert queue[-1] is not None and queue[0] is not None and queue[-1] > queue[0]


async def test_a_server_that_keeps_up_runs_the_whole_level() -> None:
    from core.config import ModelSpec
    from evaluation.perf.sweep import _Driver, _open_loop
    from hosting.backends import GenerationRequest

    server = OneSlotServer(service_s=0.001)  # serves 1000/s; offered 100/s
    spec = ModelSpec(name="m", backend="ollama", model="m")
    driver = _Driver([server], spec, GenerationRequest(prompt="hi"), SaturationDetector())  # type: ignore[list-item]
    results = await _open_loop(driver, rate=100.0, n_requests=20, tick=lambda: None)
    assert not driver.stopped and len(results) == 20
