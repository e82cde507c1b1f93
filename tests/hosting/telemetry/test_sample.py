"""Energy between GPU readings, against hand-derived values: the counter, a reset, power
integration when the counter is missing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hosting.telemetry import GpuReading, GpuSample, energy_window


def sample(at: float, *gpus: GpuReading) -> GpuSample:
    return GpuSample(at=at, gpus=gpus, source="nvml")


def test_the_counter_gives_the_energy_and_the_mean_power() -> None:
    w = energy_window([
        sample(0.0, GpuReading(0, energy_j=1000.0, power_w=30, util_pct=10, memory_used_mib=500)),
        sample(2.0, GpuReading(0, energy_j=1100.0, power_w=70, util_pct=90, memory_used_mib=900)),
        sample(4.0, GpuReading(0, energy_j=1240.0, power_w=70, util_pct=80, memory_used_mib=700)),
    ])  # fmt: skip
    assert w is not None
    assert w.joules == pytest.approx(240.0) and w.method == "counter"
    assert w.mean_watts == pytest.approx(60.0) and w.duration_s == 4.0
    assert w.util_pct == pytest.approx(60.0) and w.memory_used_mib == 900
    assert w.per(120) == pytest.approx(2.0) and w.per(0) is None and w.resets == 0


def test_a_counter_reset_counts_from_zero() -> None:
    # 1000 -> 1100 (+100), reset to 30 (+30 since the reset), -> 80 (+50): 180 J
    w = energy_window([sample(t, GpuReading(0, energy_j=e)) for t, e in
                       [(0, 1000.0), (1, 1100.0), (2, 30.0), (3, 80.0)]])  # fmt: skip
    assert w is not None and w.joules == pytest.approx(180.0) and w.resets == 1


def test_without_a_counter_power_is_integrated() -> None:
    # trapezoids: (0..2) mean 50 W -> 100 J, (2..3) mean 70 W -> 70 J
    w = energy_window([sample(0, GpuReading(0, power_w=30)), sample(2, GpuReading(0, power_w=70)),
                       sample(3, GpuReading(0, power_w=70))])  # fmt: skip
    assert w is not None and w.joules == pytest.approx(170.0) and w.method == "power"


def test_gpus_add_up_and_nothing_to_go_on_is_unknown() -> None:
    two = energy_window([
        sample(0, GpuReading(0, energy_j=10.0, memory_used_mib=100), GpuReading(1, power_w=20)),
        sample(5, GpuReading(0, energy_j=60.0, memory_used_mib=300), GpuReading(1, power_w=40)),
    ])  # fmt: skip
    assert two is not None and two.gpus == 2 and two.joules == pytest.approx(50 + 150)
    assert two.method == "counter+power" and two.memory_used_mib == 300
    blind = energy_window([sample(0, GpuReading(0, util_pct=5)), sample(1, GpuReading(0))])
    assert blind is not None and blind.joules is None and blind.method == "none"
    assert blind.mean_watts is None and blind.per(10) is None
    assert energy_window([sample(0, GpuReading(0, energy_j=1.0))]) is None


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=30), st.floats(0, 1e9))
def test_a_counter_that_only_rises_gives_last_minus_first(steps: list[float], start: float) -> None:
    values = [start]
    for s in steps:
        values.append(values[-1] + s)
    w = energy_window([sample(i, GpuReading(0, energy_j=v)) for i, v in enumerate(values)])
    assert w is not None and w.resets == 0
    assert w.joules == pytest.approx(values[-1] - values[0], rel=1e-9, abs=1e-6)
