"""A replay of NVML through pynvml's interface, for machines without a GPU: an object with
the functions `hosting.telemetry.nvml` calls, the same names, units and errors as pynvml
(energy in mJ, power in mW, memory in bytes, utilization structs with `.gpu`; failures raise
pynvml's own `NVMLError` with its NVML error codes). Tests put it in `sys.modules['pynvml']`,
where the source imports pynvml lazily.

Its clock is the test's: `advance(seconds)` adds watts × seconds to every energy counter; a
`live` fake also counts real time (monotonic), as a GPU drawing a steady `watts` would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

MIB = 1024 * 1024


@dataclass
class FakeDevice:
    name: str = "Tesla T4"
    watts: float = 70.0
    util: int = 0
    used_mib: float = 600.0
    total_mib: float = 15360.0
    energy_mj: int = 987_654_321
    energy_supported: bool = True  # pre-Volta GPUs: NVML_ERROR_NOT_SUPPORTED


@dataclass
class FakeNvml:
    devices: list[FakeDevice] = field(default_factory=lambda: [FakeDevice()])
    init_error: int | None = None  # e.g. pynvml.NVML_ERROR_DRIVER_NOT_LOADED
    calls: list[str] = field(default_factory=list)
    initialised: bool = False
    live: bool = False
    t0: float = field(default_factory=time.monotonic)

    # pynvml's error type and codes, so callers catch what they would catch from the real one
    NVMLError = pynvml.NVMLError
    NVML_ERROR_NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED

    def advance(self, seconds: float) -> None:
        for d in self.devices:
            d.energy_mj += int(d.watts * seconds * 1000)

    def _device(self, handle: Any) -> FakeDevice:
        if not self.initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        return self.devices[int(handle.index)]

    # -- the pynvml functions --------------------------------------------------------------
    def nvmlInit(self) -> None:
        self.calls.append("nvmlInit")
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.calls.append("nvmlShutdown")
        self.initialised = False

    def nvmlDeviceGetCount(self) -> int:
        if not self.initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        if not 0 <= index < len(self.devices):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return SimpleNamespace(index=index)

    def nvmlDeviceGetName(self, handle: Any) -> str:
        return self._device(handle).name

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        d = self._device(handle)
        if not d.energy_supported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if self.live:
            return d.energy_mj + int(d.watts * (time.monotonic() - self.t0) * 1000)
        return d.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        return int(self._device(handle).watts * 1000)

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        return SimpleNamespace(gpu=self._device(handle).util, memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any:
        d = self._device(handle)
        return SimpleNamespace(
            total=int(d.total_mib * MIB), used=int(d.used_mib * MIB),
            free=int((d.total_mib - d.used_mib) * MIB),
        )  # fmt: skip
