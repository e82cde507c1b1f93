"""What GPU telemetry costs a probe: the harness overhead (client latency − server-reported
total) of `slam probe` against a local Ollama-API server, without telemetry and with
dcgm-exporter's page (a local replay) read every 50 ms during the measure phase, plus the time
of one dcgm-exporter read (HTTP + Prometheus text parse). Target: telemetry adds ≤ 1 ms p50
per probe.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlmodel import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import parse_config
from evaluation.perf.probes import run_probes
from hosting.telemetry import DcgmSource
from storage.db import session_scope
from storage.migrate import open_database
from storage.models import GpuEnergy, Probe
from tests.support.fake_dcgm import FakeDcgm, FakeGpu
from tests.support.fake_ollama import FakeOllama

MEASURE = 300


def overhead_ms(tmp: str, name: str, ollama: str, telemetry: dict[str, object],
                measure: int = MEASURE) -> np.ndarray:
    cfg = parse_config({
        "models": [{"name": "fake-gemma", "backend": "ollama", "model": "gemma3:270m",
                    "host": ollama, "reference": True, "hardware": "g4dn.xlarge"}],
        "database": {"url": f"sqlite:///{tmp}/{name}.db"},
        "telemetry": telemetry,
    })  # fmt: skip
    engine = open_database(cfg.database.url)
    asyncio.run(run_probes(engine, cfg, warmup=20, measure=measure, progress=False))
    with session_scope(engine) as s:
        rows = s.exec(select(Probe).where(Probe.phase == "measure")).all()
        energy = s.exec(select(GpuEnergy)).all()
    engine.dispose()
    ok = [r for r in rows if r.ok and r.latency_s is not None and r.server_total_s]
    expected = 0 if telemetry.get("source") == "off" else 1
    assert len(energy) == expected, f"{name}: {len(energy)} gpu_energy rows"
    return np.array([(r.latency_s or 0) - (r.server_total_s or 0) for r in ok]) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="60 probes a side, 50 reads (seconds)")
    args = ap.parse_args()
    measure, reads = (60, 50) if args.quick else (MEASURE, 200)
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeOllama(measure_total=True) as fake,
        FakeDcgm(gpus=[FakeGpu(watts=65.0)]) as dcgm,
    ):
        src = DcgmSource(dcgm.url)
        t0 = time.perf_counter()
        for _ in range(reads):
            assert src.read() is not None
        read_ms = (time.perf_counter() - t0) / reads * 1000
        src.close()
        off = overhead_ms(tmp, "off", fake.url, {"source": "off"}, measure)
        on = overhead_ms(tmp, "dcgm", fake.url, measure=measure, telemetry=
                         {"source": "dcgm", "dcgm_url": dcgm.url, "interval_s": 0.05})
    p_off, p_on = float(np.percentile(off, 50)), float(np.percentile(on, 50))
    print(f"one dcgm-exporter read (HTTP + parse of a 1-GPU page): {read_ms:.2f} ms")
    print(
        f"harness overhead p50 without telemetry {p_off:.2f} ms, with dcgm every 50 ms "
        f"{p_on:.2f} ms (p95 {np.percentile(off, 95):.2f} / {np.percentile(on, 95):.2f} ms)"
    )
    verdict = "OK" if p_on - p_off <= 1.0 else "OVER"
    print(
        f"summary: {verdict}: telemetry adds {p_on - p_off:+.2f} ms p50 per probe (target ≤ 1 ms); "
        f"ratio {p_on / p_off if p_off > 0 else float('nan'):.2f}; one read {read_ms:.2f} ms"
    )


if __name__ == "__main__":
    main()
