"""Probe harness overhead: client-measured latency minus the server-reported total duration.

`slam probe`'s own code path (run_probes -> Ollama backend -> stored Probe rows) against a local
Ollama-API server that reports, like Ollama, how long it spent on each request
(total_duration). The difference is what the harness adds: HTTP, the ollama SDK, our backend
layer and timing. Target: p50 <= 5 ms. `--quick`: 60 probes, a few seconds.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import numpy as np
from sqlmodel import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import parse_config
from evaluation.perf.probes import run_probes
from storage.db import session_scope
from storage.migrate import open_database
from storage.models import Probe
from tests.support.fake_ollama import FakeOllama

MEASURE = 300
TARGET_MS = 5.0


def main(measure: int = MEASURE, warmup: int = 20) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeOllama(measure_total=True) as fake:
        cfg = parse_config(
            {
                "models": [
                    {"name": "fake-gemma", "backend": "ollama", "model": "gemma3:270m",
                     "host": fake.url, "reference": True},
                ],
                "database": {"url": f"sqlite:///{tmp}/bench.db"},
            }
        )  # fmt: skip
        engine = open_database(cfg.database.url)
        asyncio.run(run_probes(engine, cfg, warmup=warmup, measure=measure, progress=False))
        with session_scope(engine) as s:
            rows = s.exec(select(Probe).where(Probe.phase == "measure")).all()
        ok = [r for r in rows if r.ok and r.latency_s is not None and r.server_total_s]
        overhead = np.array([(r.latency_s or 0) - (r.server_total_s or 0) for r in ok]) * 1000
        server = np.array([r.server_total_s or 0 for r in ok]) * 1000
        print(f"{len(ok)}/{len(rows)} measured probes ok against a local Ollama-API server")
        print(f"server-reported total p50 {np.percentile(server, 50):.2f} ms")
        print(
            f"harness overhead (client latency - server total): p50 "
            f"{np.percentile(overhead, 50):.2f} ms, p95 {np.percentile(overhead, 95):.2f} ms"
            "  (target p50 <= 5 ms)"
        )
        engine.dispose()
    p50 = float(np.percentile(overhead, 50))
    print(f"summary: probe harness overhead p50 {p50:.2f} ms over {len(ok)} probes "
          f"(target ≤ {TARGET_MS:g} ms: {'OK' if p50 <= TARGET_MS else 'OVER'})")


if __name__ == "__main__":
    if "--quick" in sys.argv[1:]:  # a few seconds: 60 measured probes after 5 warm-ups
        main(measure=60, warmup=5)
    else:
        main()
