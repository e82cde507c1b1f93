"""GPU readings from NVML (pynvml, the `nvidia-ml-py` package) on the machine running the bot:
for the embedded llama.cpp or an Ollama on this machine.

`nvmlDeviceGetTotalEnergyConsumption` is the energy since the driver loaded in mJ (Volta and
newer; older GPUs raise NotSupported and are integrated from power), `nvmlDeviceGetPowerUsage`
is mW, `nvmlDeviceGetUtilizationRates(...).gpu` is % and `nvmlDeviceGetMemoryInfo(...).used`
is bytes. pynvml is imported on first use (a test hands in a module with the same functions).
Nothing here raises: a machine without the library, the driver or a GPU reads as None.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from hosting.telemetry.sample import GpuReading, GpuSample

log = logging.getLogger(__name__)
MIB = 1024 * 1024


class NvmlSource:
    """Reads every GPU NVML sees. `module` is pynvml, or an object with its functions."""

    name = "nvml"

    def __init__(self, module: Any = None, clock: Callable[[], float] = time.monotonic):
        self._module = module
        self._clock = clock
        self._ready: bool | None = None  # None: not initialised yet
        self.problem: str | None = None
        self._handles: list[Any] = []

    def _nvml(self) -> Any:
        if self._module is None:
            import pynvml

            self._module = pynvml
        return self._module

    def _init(self) -> bool:
        if self._ready is not None:
            return self._ready
        try:
            nvml = self._nvml()
            nvml.nvmlInit()
            count = int(nvml.nvmlDeviceGetCount())
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._ready = count > 0
            if not count:
                self.problem = "NVML found no GPU"
        except Exception as exc:  # no library, no driver, no device: no telemetry
            self._ready = False
            self.problem = f"NVML is not available ({type(exc).__name__}: {exc})"
        return self._ready

    def _field(self, fn: str, handle: Any) -> Any:
        try:
            return getattr(self._nvml(), fn)(handle)
        except Exception:  # NotSupported on this GPU, or a transient error: the field is None
            return None

    def read(self) -> GpuSample | None:
        if not self._init():
            return None
        gpus = []
        for i, h in enumerate(self._handles):
            energy = self._field("nvmlDeviceGetTotalEnergyConsumption", h)
            power = self._field("nvmlDeviceGetPowerUsage", h)
            util = self._field("nvmlDeviceGetUtilizationRates", h)
            memory = self._field("nvmlDeviceGetMemoryInfo", h)
            name = self._field("nvmlDeviceGetName", h)
            gpus.append(
                GpuReading(
                    index=i,
                    energy_j=float(energy) / 1000 if energy is not None else None,
                    power_w=float(power) / 1000 if power is not None else None,
                    util_pct=float(util.gpu) if util is not None else None,
                    memory_used_mib=float(memory.used) / MIB if memory is not None else None,
                    name=name.decode() if isinstance(name, bytes) else name,
                )
            )
        return GpuSample(at=self._clock(), gpus=tuple(gpus), source=self.name)

    def describe(self) -> str:
        return "NVML on this machine"

    def close(self) -> None:
        if self._ready:
            try:
                self._nvml().nvmlShutdown()
            except Exception:
                log.debug("nvmlShutdown failed", exc_info=True)
        self._ready = None
