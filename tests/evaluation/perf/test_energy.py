"""Energy per token in probes and sweeps: a fake Ollama (tests/support/fake_ollama) serving,
NVML replayed through pynvml's interface (tests/support/fake_nvml) or dcgm-exporter's page
(tests/support/fake_dcgm), stored as gpu_energy rows linked to the probe batch / sweep level."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.config import SlamConfig, parse_config
from evaluation.perf import SLO, electricity_cost_per_1k, parse_sweep_run_id, run_probes, run_sweep
from storage.models import GpuEnergy, Probe
from tests.support.fake_dcgm import FakeDcgm, FakeGpu
from tests.support.fake_nvml import FakeDevice, FakeNvml
from tests.support.fake_ollama import FakeOllama


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


def config(host: str, **telemetry: object) -> SlamConfig:
    return parse_config({
        "experiment": {"max_tokens": 8},
        "models": [{"name": "gemma", "backend": "ollama", "model": "gemma3:270m", "host": host,
                    "hardware": "g4dn.xlarge", "max_retries": 0}],
        "telemetry": {"interval_s": 0, **telemetry},
    })  # fmt: skip


def energy_rows(engine: Engine) -> list[GpuEnergy]:
    with Session(engine) as s:
        return list(s.exec(select(GpuEnergy).order_by(GpuEnergy.id)).all())  # type: ignore[arg-type]


async def test_a_probe_batch_stores_its_energy(
    engine: Engine, ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    nvml = FakeNvml([FakeDevice(watts=70.0, util=35, used_mib=1200)], live=True)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    [summary] = await run_probes(engine, config(ollama.url), warmup=1, measure=3, progress=False)
    [row] = energy_rows(engine)
    assert row.run_id == summary.run_id and row.phase == "measure" and row.source == "nvml"
    assert row.method == "counter" and row.requests == 3
    assert row.output_tokens == 3 * 7  # the fake's eval_count per answer
    assert row.joules is not None and row.joules > 0
    assert row.mean_watts == pytest.approx(70.0, rel=0.2)
    assert row.joules_per_output_token == pytest.approx(row.joules / 21)
    assert row.joules_per_request == pytest.approx(row.joules / 3)
    assert row.util_pct == 35 and row.memory_used_mib == 1200
    assert "J per 1K output tokens" in summary.line()
    with Session(engine) as s:
        probes = s.exec(select(Probe).where(Probe.run_id == row.run_id)).all()
    assert len(probes) == 4 and row.model_id == probes[0].model_id


async def test_no_gpu_stores_no_energy_and_the_probes_still_run(
    engine: Engine, ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pynvml

    monkeypatch.setitem(
        sys.modules, "pynvml", FakeNvml(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    )
    [summary] = await run_probes(engine, config(ollama.url), warmup=0, measure=2, progress=False)
    assert summary.n_ok == 2 and summary.j_per_output_token is None
    assert energy_rows(engine) == [] and "J per 1K" not in summary.line()


async def test_a_sweep_over_replicas_records_energy_per_level(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOllama() as a, FakeOllama() as b, FakeDcgm(gpus=[FakeGpu(watts=60.0)]) as dcgm:
        cfg = config(a.url, source="dcgm", dcgm_url=dcgm.url)
        res = await run_sweep(
            engine, cfg, "gemma", hosts=[a.url, b.url], replicas=[1, 2], concurrencies=[1, 2],
            requests_per_level=4, progress=False, slo=SLO(e2e_s=60.0), slo_search=True,
        )  # fmt: skip
        served = [sum(1 for r in f.requests if r[1] == "/api/chat") for f in (a, b)]
    assert [(lv.replicas, lv.label) for lv in res.levels] == [
        (1, "c=1"), (1, "c=2"), (2, "c=1"), (2, "c=2")]  # fmt: skip
    assert served == [4 + 4 + 2 + 2, 2 + 2]  # x1 uses the first endpoint; x2 round-robin
    rows = energy_rows(engine)
    assert len(rows) == 4 and {r.source for r in rows} == {"dcgm"}
    assert {parse_sweep_run_id(r.run_id)[1:] for r in rows} == {  # type: ignore[index]
        (1, "c", 1.0), (1, "c", 2.0), (2, "c", 1.0), (2, "c", 2.0)}  # fmt: skip
    # The fake's counter only moves with its clock: the energy is what it was told (0 J).
    assert all(r.joules == 0 and r.requests == 4 for r in rows)
    assert all(lv.energy is not None and lv.energy.j_per_output_token == 0 for lv in res.levels)
    # Every level met the SLO: the search has nothing above to bisect towards.
    assert {k: (v.best, v.bounded) for k, v in res.search.items()} == {
        1: (2.0, False), 2: (2.0, False)}  # fmt: skip
    table = res.table()
    assert "x2 c=2" in table and "J/1K tok" in table and "may go higher" in table


async def test_the_slo_search_bisects_between_the_levels(
    engine: Engine, ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(devices=[]))
    cfg = config(ollama.url)
    # An SLO nothing can meet: the bracket has no passing level, nothing is bisected.
    res = await run_sweep(engine, cfg, "gemma", concurrencies=[1, 4], requests_per_level=2,
                          progress=False, slo=SLO(e2e_s=1e-9), slo_search=True)  # fmt: skip
    assert res.search[1].best is None and len(res.levels) == 2
    assert all(lv.energy is None for lv in res.levels)


def test_electricity_per_1k_tokens_by_hand() -> None:
    # 2 J/token × 1000 tokens × PUE 1.5 = 3000 J = 1/1200 kWh; at $0.12/kWh: $0.0001
    assert electricity_cost_per_1k(2.0, 0.12, 1.5) == pytest.approx(0.0001)
    assert (
        electricity_cost_per_1k(None, 0.12) is None and electricity_cost_per_1k(2.0, None) is None
    )
