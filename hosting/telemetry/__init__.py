"""GPU telemetry where the model runs: one small interface (`TelemetrySource.read()` ->
`GpuSample`: cumulative energy, power, utilization and memory per GPU, in `sample`) and two
sources, NVML through pynvml on this machine (`nvml`) and NVIDIA's dcgm-exporter on the GPU
host (`dcgm`, its Prometheus text on port 9400). `choose` picks the source for a model;
`meter` reads before, during and after a batch of requests and turns the readings into the
energy of that batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from hosting.telemetry.choose import dcgm_url_for, telemetry_for
    from hosting.telemetry.dcgm import DcgmSource, parse_dcgm_metrics
    from hosting.telemetry.meter import GpuMeter
    from hosting.telemetry.nvml import NvmlSource
    from hosting.telemetry.sample import (
        EnergyWindow,
        GpuReading,
        GpuSample,
        TelemetrySource,
        energy_window,
    )

__getattr__ = lazy_exports(__name__, __file__)
