"""Energy of a probe batch or a sweep level: the telemetry's window (hosting.telemetry) as a
`gpu_energy` row, and the per-level figures the sweep table, the charts and the cost read.

Joules per output token are the batch's GPU energy over the output tokens it produced (as
vLLM's benchmarks report them from NVML's energy counter); joules per request are over the
requests answered. Idle power is included: a GPU serving one request at a time spends most of
its energy idling, which is exactly what replication and concurrency can win back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from storage.models import GpuEnergy

if TYPE_CHECKING:
    from hosting.telemetry import EnergyWindow


@dataclass(frozen=True)
class LevelEnergy:
    """What the GPU did during one batch of requests."""

    joules: float | None
    j_per_output_token: float | None
    j_per_request: float | None
    mean_watts: float | None
    util_pct: float | None
    memory_used_mib: float | None
    source: str = ""

    @property
    def j_per_1k_output(self) -> float | None:
        return None if self.j_per_output_token is None else self.j_per_output_token * 1000

    @property
    def tokens_per_joule(self) -> float | None:
        j = self.j_per_output_token
        return None if not j else 1 / j


def energy_row(
    model_id: int,
    run_id: str,
    phase: str,
    started: datetime,
    window: EnergyWindow,
    requests: int,
    output_tokens: int | None,
) -> GpuEnergy:
    """The `gpu_energy` row of one batch (`requests`: answered; `output_tokens`: their sum)."""
    return GpuEnergy(
        model_id=model_id,
        run_id=run_id,
        phase=phase,
        source=window.source,
        method=window.method,
        started_at=started,
        duration_s=window.duration_s,
        gpus=window.gpus,
        requests=requests,
        output_tokens=output_tokens,
        joules=window.joules,
        joules_per_output_token=window.per(output_tokens),
        joules_per_request=window.per(requests),
        mean_watts=window.mean_watts,
        util_pct=window.util_pct,
        memory_used_mib=window.memory_used_mib,
        counter_resets=window.resets,
    )


def level_energy(row: GpuEnergy) -> LevelEnergy:
    return LevelEnergy(
        joules=row.joules,
        j_per_output_token=row.joules_per_output_token,
        j_per_request=row.joules_per_request,
        mean_watts=row.mean_watts,
        util_pct=row.util_pct,
        memory_used_mib=row.memory_used_mib,
        source=row.source,
    )


def electricity_cost_per_1k(
    j_per_output_token: float | None, usd_per_kwh: float | None, pue: float = 1.0
) -> float | None:
    """$ of electricity per 1K output tokens: J/token × 1000 × PUE ÷ 3.6e6 J/kWh × $/kWh."""
    if j_per_output_token is None or usd_per_kwh is None:
        return None
    return j_per_output_token * 1000 * pue / 3.6e6 * usd_per_kwh
