"""NVML through pynvml's interface: a replay (tests/support/fake_nvml) where no GPU exists,
the real pynvml on this machine (no GPU: None, never an exception), and a real GPU where one
is present."""

from __future__ import annotations

import sys

import pynvml
import pytest

from hosting.telemetry import NvmlSource, energy_window
from tests.support.fake_nvml import FakeDevice, FakeNvml


def _has_gpu() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    try:
        return int(pynvml.nvmlDeviceGetCount()) > 0
    finally:
        pynvml.nvmlShutdown()


def test_units_are_converted_from_nvml() -> None:
    fake = FakeNvml([FakeDevice(watts=65.5, util=77, used_mib=2048, energy_mj=4_000_500)])
    clock = iter([1.0, 3.0])
    src = NvmlSource(module=fake, clock=lambda: next(clock))
    s = src.read()
    assert s is not None and s.source == "nvml" and s.at == 1.0
    g = s.gpus[0]
    assert (g.energy_j, g.power_w, g.util_pct, g.memory_used_mib, g.name) == (
        pytest.approx(4000.5),
        65.5,
        77.0,
        2048.0,
        "Tesla T4",
    )
    fake.advance(2.0)
    s2 = src.read()
    assert s2 is not None
    w = energy_window([s, s2])
    assert w is not None and w.joules == pytest.approx(131.0) and w.method == "counter"
    src.close()
    assert fake.calls == ["nvmlInit", "nvmlShutdown"]


def test_a_gpu_without_the_energy_counter_reads_power_only() -> None:
    fake = FakeNvml([FakeDevice(energy_supported=False, watts=40)])
    s = NvmlSource(module=fake).read()
    assert s is not None and s.gpus[0].energy_j is None and s.gpus[0].power_w == 40


def test_no_driver_or_no_gpu_reads_none_with_the_reason() -> None:
    src = NvmlSource(module=FakeNvml(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED))
    assert src.read() is None and "Driver Not Loaded" in (src.problem or "")
    empty = NvmlSource(module=FakeNvml(devices=[]))
    assert empty.read() is None and empty.problem == "NVML found no GPU"


def test_the_lazy_import_reads_the_module_in_sys_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml([FakeDevice(), FakeDevice(name="Tesla T4 #2")])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    s = NvmlSource().read()
    assert s is not None and [g.name for g in s.gpus] == ["Tesla T4", "Tesla T4 #2"]


@pytest.mark.skipif(_has_gpu(), reason="this machine has an NVIDIA GPU")
def test_the_real_pynvml_without_a_gpu_reads_none() -> None:
    src = NvmlSource()
    assert src.read() is None and "NVML" in (src.problem or "")


@pytest.mark.skipif(not _has_gpu(), reason="needs an NVIDIA GPU and driver (none on this machine)")
def test_a_real_gpu_reads_energy_power_and_memory() -> None:
    src = NvmlSource()
    s = src.read()
    assert s is not None and s.gpus
    g = s.gpus[0]
    assert g.power_w is not None and g.power_w > 0
    assert g.memory_used_mib is not None and g.memory_used_mib >= 0
    assert g.energy_j is None or g.energy_j > 0
    src.close()
