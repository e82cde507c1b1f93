"""The best measured configuration, energy per token and electricity on Results, from sweep
levels and gpu_energy rows written by hand (their figures derived by hand below)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from core.config import SlamConfig, parse_config
from evaluation.results import Results, cells, energy_text, summary_text
from storage.db import session_scope
from storage.models import GpuEnergy, Probe
from storage.repo import ensure_model

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def config(**pricing: object) -> SlamConfig:
    return parse_config({
        "models": [{"name": "gemma", "backend": "ollama", "model": "gemma3:270m",
                    "hardware": "g4dn.xlarge"}],
        "pricing": {"utilization": 0.8, **pricing},
    })  # fmt: skip


def level(engine: Engine, mid: int, run_id: str, starts: list[float], latency: float,
          tokens: int, joules: float | None = None) -> None:  # fmt: skip
    with session_scope(engine) as s:
        for start in starts:
            s.add(Probe(model_id=mid, run_id=run_id, phase="sweep", concurrency=len(starts),
                        hour=0, started_at=T0 + timedelta(seconds=start), ok=True,
                        latency_s=latency, ttft_s=0.1, output_tokens=tokens, prompt_tokens=5,
                        tpot_s=(latency - 0.1) / (tokens - 1)))  # fmt: skip
        if joules is not None:
            n_tokens = tokens * len(starts)
            s.add(GpuEnergy(model_id=mid, run_id=run_id, phase="sweep", source="dcgm",
                            method="counter", started_at=T0, duration_s=1.0, requests=len(starts),
                            output_tokens=n_tokens, joules=joules,
                            joules_per_output_token=joules / n_tokens,
                            joules_per_request=joules / len(starts), mean_watts=joules,
                            util_pct=90.0, memory_used_mib=2000.0))  # fmt: skip


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    cfg = config()
    with session_scope(engine) as s:
        mid = ensure_model(s, cfg.models[0]).id
    assert mid is not None
    # x1 @ c=1: 4 requests one after another, 1 s and 10 tokens each: 4 s, 10 tok/s
    level(engine, mid, "sweep-aaaa-x1@c1", [0, 1, 2, 3], 1.0, 10)
    # x2 @ c=4: 4 requests together, 1 s each: 1 s, 40 tok/s, every SLO met; 80 J -> 2 J/token
    level(engine, mid, "sweep-bbbb-x2@c4", [0, 0, 0, 0], 1.0, 10, joules=80.0)
    # x2 @ c=8: 4 × 800 tokens in 40 s (80 tok/s) but over the 30 s end-to-end SLO
    level(engine, mid, "sweep-bbbb-x2@c8", [0, 0, 0, 0], 40.0, 800, joules=1000.0)
    return engine


def test_the_best_configuration_meets_the_slo(seeded: Engine) -> None:
    data = Results(seeded, config(), cache=None)
    best = data.best_configs["gemma"]
    assert (best.replicas, best.level.label, best.meets_slo) == (2, "c=4", True)
    assert data.throughput["gemma"] == (pytest.approx(40.0), "sweep best (x2, c=4)")
    energy = data.energy["gemma"]
    assert energy.j_per_1k_output == pytest.approx(2000.0) and energy.util_pct == 90.0
    [x1, x2] = data.sweeps
    assert x2.levels[0].energy is not None and x2.levels[0].energy.mean_watts == 80.0
    assert x1.levels[0].energy is None


def test_electricity_is_added_to_the_hardware_cost(seeded: Engine) -> None:
    plain = Results(seeded, config(), cache=None).costs["gemma"]
    # 0.526 $/h ÷ (40 tok/s × 3600 × 0.8) × 1000
    hardware = 0.526 / (40 * 3600 * 0.8) * 1000
    assert plain.cost_per_1k_output == pytest.approx(hardware)
    assert plain.j_per_1k_output == pytest.approx(2000.0) and plain.electricity_per_1k is None
    powered = Results(seeded, config(electricity_per_kwh=0.10, pue=1.2), cache=None)
    cost = powered.costs["gemma"]
    # 2 J/token × 1000 × 1.2 ÷ 3.6e6 J/kWh × 0.10 $/kWh
    assert cost.electricity_per_1k == pytest.approx(2 * 1000 * 1.2 / 3.6e6 * 0.10)
    assert cost.cost_per_1k_output == pytest.approx(hardware + 2 * 1000 * 1.2 / 3.6e6 * 0.10)


def test_the_leaderboard_shows_joules_per_1k_tokens(seeded: Engine) -> None:
    data = Results(seeded, config(), cache=None)
    [row] = data.leaderboard
    assert row.j_per_1k_output == pytest.approx(2000.0)
    assert cells(1, row)[-1] == "2,000 J"
    assert "2,000 J per 1K tokens" in summary_text(data.leaderboard, data.decision)
    assert energy_text(None) == "n/a" and energy_text(12_345.0) == "12.3 kJ"


def test_probe_batches_give_the_energy_without_a_sweep(engine: Engine) -> None:
    cfg = config()
    with session_scope(engine) as s:
        mid = ensure_model(s, cfg.models[0]).id
        assert mid is not None
        for joules, tokens in ((300.0, 100), (100.0, 100)):
            s.add(GpuEnergy(model_id=mid, run_id="probe-x", phase="measure", source="nvml",
                            method="counter", started_at=T0, duration_s=10.0, requests=10,
                            output_tokens=tokens, joules=joules))  # fmt: skip
    e = Results(engine, cfg, cache=None).energy["gemma"]
    # (300 + 100) J over 200 tokens; 400 J over 20 s
    assert e.j_per_output_token == pytest.approx(2.0) and e.mean_watts == pytest.approx(20.0)
    assert e.source == "probes (single stream)"
