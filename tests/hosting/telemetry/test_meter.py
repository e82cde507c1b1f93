"""The meter reads before and after a batch (and between, on its interval)."""

from __future__ import annotations

import pytest

from hosting.telemetry import GpuMeter, NvmlSource
from tests.support.fake_nvml import FakeDevice, FakeNvml


async def test_before_and_after_a_batch() -> None:
    fake = FakeNvml([FakeDevice(watts=80.0, util=60, used_mib=3000)])
    times = iter([0.0, 4.0])
    meter = GpuMeter(NvmlSource(module=fake, clock=lambda: next(times)), interval_s=0)
    async with meter:
        fake.advance(4.0)  # the batch ran 4 s at 80 W
    w = meter.window
    assert w is not None and len(meter.samples) == 2
    assert w.joules == pytest.approx(320.0) and w.mean_watts == pytest.approx(80.0)
    assert w.util_pct == 60 and w.memory_used_mib == 3000


async def test_no_source_measures_nothing() -> None:
    meter = GpuMeter(None)
    async with meter:
        pass
    assert meter.window is None and meter.samples == []
