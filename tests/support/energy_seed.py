"""Sweeps over replicas × concurrency with their GPU energy, written as `slam sweep` stores
them (Probe rows with phase="sweep" and run ids `sweep-<id>-x<replicas>@c<N>`, one gpu_energy
row per level), for the Results and chart tests.

The profile is a small model on one T4 (g4dn): one server saturates near 4 concurrent requests;
a second replica adds throughput until the GPU is busy; power rises from ~30 W idle towards
70 W with utilization; every replica holds its own copy of the weights.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from core.config import ModelSpec
from storage.db import session_scope
from storage.models import GpuEnergy, Probe
from storage.repo import ensure_model

TOKENS = 40  # output tokens per answer


def level_figures(replicas: int, concurrency: int) -> tuple[float, float, float, float]:
    """(latency s, GPU utilization %, watts, memory MiB) of one level of the profile."""
    capacity = 4.0 * replicas**0.6  # concurrent requests served without queueing
    # replicas share the GPU's compute: each runs a little slower than a lone server
    latency = 0.8 * max(1.0, concurrency / capacity) * (1 + 0.05 * concurrency)
    latency *= 1 + 0.1 * (replicas - 1)
    util = min(98.0, 22.0 * concurrency / replicas**0.2)
    watts = 30.0 + 0.4 * util
    memory = 900.0 * replicas + 60.0 * concurrency
    return latency, util, watts, memory


def seed_energy_sweeps(
    engine: Engine,
    spec: ModelSpec,
    replicas: tuple[int, ...] = (1, 2),
    concurrencies: tuple[int, ...] = (1, 2, 4, 8),
    when: datetime | None = None,
) -> None:
    t0 = when or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with session_scope(engine) as s:
        mid = ensure_model(s, spec).id
        assert mid is not None
        for r in replicas:
            for c in concurrencies:
                run_id = f"sweep-{'ab' * 4}{r:02d}-x{r}@c{c}"
                latency, util, watts, memory = level_figures(r, c)
                n = 2 * c
                # c workers, two requests each, back to back: the level lasts 2 × latency
                for k in range(n):
                    start = t0 + timedelta(seconds=(k // c) * latency)
                    s.add(Probe(model_id=mid, run_id=run_id, phase="sweep", concurrency=c,
                                hour=start.hour, started_at=start, ok=True, latency_s=latency,
                                ttft_s=0.1 * latency, output_tokens=TOKENS, prompt_tokens=80,
                                tpot_s=0.9 * latency / (TOKENS - 1)))  # fmt: skip
                duration = 2 * latency
                joules = watts * duration
                s.add(GpuEnergy(model_id=mid, run_id=run_id, phase="sweep", source="dcgm",
                                method="counter", started_at=t0, duration_s=duration, gpus=1,
                                requests=n, output_tokens=n * TOKENS, joules=joules,
                                joules_per_output_token=joules / (n * TOKENS),
                                joules_per_request=joules / n, mean_watts=watts,
                                util_pct=util, memory_used_mib=memory))  # fmt: skip
