"""The models' recent health: availability and p95 over each model's last N measure probes
(older probes, warm-ups and sweeps left out), against a hand count and numpy's percentile; on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from core.config import ModelSpec, parse_config
from evaluation.results import Results
from storage import repo
from storage.db import session_scope
from storage.models import Probe

T0 = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)


def test_last_n_probes_give_availability_and_p95(any_engine: Engine) -> None:
    cfg = parse_config({"models": [{"name": "m", "backend": "ollama", "model": "m"}],
                        "alerts": {"availability_probes": 5}})  # fmt: skip
    # oldest first: 4 old failures (outside the window), then 5 recent: 2 failures
    recent = [(True, 1.0), (False, None), (True, 3.0), (False, None), (True, 2.0)]
    with session_scope(any_engine) as s:
        mid = repo.ensure_model(s, ModelSpec(name="m", backend="ollama", model="m")).id
        assert mid is not None
        for i, (ok, lat) in enumerate([(False, None)] * 4 + recent):
            s.add(Probe(model_id=mid, run_id="r", phase="measure", hour=0, ok=ok,
                        latency_s=lat, started_at=T0 + timedelta(minutes=i)))  # fmt: skip
        s.add(Probe(model_id=mid, run_id="w", phase="warmup", hour=0, ok=False,
                    started_at=T0 + timedelta(hours=1)))  # fmt: skip
    h = Results(any_engine, cfg).recent_health["m"]
    assert (h.n, h.ok) == (5, 3) and h.availability == pytest.approx(0.6)
    assert h.p95_s == pytest.approx(float(np.percentile([1.0, 3.0, 2.0], 95)))
    # read as of an earlier time: only the probes stored before it
    early = Results(any_engine, cfg, as_of=T0 + timedelta(minutes=4)).recent_health["m"]
    assert (early.n, early.ok, early.p95_s) == (4, 0, None)
