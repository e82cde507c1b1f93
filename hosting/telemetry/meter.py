"""Read a GPU before, during and after a batch of requests: the batch's energy.

    meter = GpuMeter(source, interval_s=1.0)
    async with meter:
        ...  # the requests
    window = meter.window  # EnergyWindow, or None without two readings

Readings run in a worker thread (NVML calls and HTTP reads block), every `interval_s` while
the batch runs (0: only before and after), so utilization and memory are seen under load and a
counter reset mid-batch is caught between two readings. A `GpuMeter(None)` measures nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from hosting.telemetry.sample import EnergyWindow, GpuSample, TelemetrySource, energy_window


class GpuMeter:
    def __init__(self, source: TelemetrySource | None, interval_s: float = 1.0):
        self.source = source
        self.interval_s = interval_s
        self.samples: list[GpuSample] = []
        self.window: EnergyWindow | None = None
        self._task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        assert self.source is not None
        sample = await asyncio.to_thread(self.source.read)
        if sample is not None:
            self.samples.append(sample)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self._read()

    async def __aenter__(self) -> GpuMeter:
        self.samples, self.window = [], None
        if self.source is None:
            return self
        await self._read()
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.source is None:
            return
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._read()
        self.window = energy_window(self.samples)
