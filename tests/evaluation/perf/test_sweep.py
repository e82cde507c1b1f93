"""Load sweeps against real local llama.cpp servers through the OpenAI backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.config import SlamConfig, parse_config
from core.errors import SlamError
from evaluation.charts import chart_function
from evaluation.charts._style import has_data
from evaluation.perf.latency_stats import SLO
from evaluation.perf.sweep import parse_sweep_run_id, run_sweep
from evaluation.results.service import Results as ReportData
from slam.cli import main
from storage.models import Probe
from tests.support.llama_server import LlamaServer, running


@pytest.fixture(scope="module")
def servers(
    gguf_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[LlamaServer]]:
    """Two replicas of the packaged Gemma behind llama_cpp.server on 127.0.0.1."""
    # By default a new request interrupts the one streaming: queue them instead, as a server
    # under load test must.
    extra = ("--interrupt_requests", "False")
    with running(
        gguf_path, tmp_path_factory.mktemp("llama_servers"), 2, n_threads=1, extra=extra
    ) as started:
        yield started


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def config(host: str) -> SlamConfig:
    return parse_config(
        {
            "experiment": {"max_tokens": 6, "temperature": 0.0, "seed": 1},
            "models": [
                {"name": "gemma-srv", "backend": "openai", "model": "gemma3-270m", "host": host,
                 "max_retries": 0, "hardware": "g4dn.xlarge"},
            ],
        }
    )  # fmt: skip


def sweep_rows(engine: Engine) -> list[Probe]:
    with Session(engine) as s:
        q = select(Probe).where(Probe.phase == "sweep").order_by(Probe.id)  # type: ignore[arg-type]
        return list(s.exec(q).all())


async def test_concurrency_sweep_records_levels(
    engine: Engine, servers: list[LlamaServer], tmp_path: Path
) -> None:
    cfg = config(servers[0].url)
    slo = SLO(ttft_s=60.0, e2e_s=120.0)  # generous: this checks bookkeeping, not speed
    res = await run_sweep(
        engine, cfg, "gemma-srv", concurrencies=[2, 1], requests_per_level=3, slo=slo,
        progress=False,
    )  # fmt: skip
    assert [lv.label for lv in res.levels] == ["c=1", "c=2"]
    for lv in res.levels:
        s = lv.summary
        assert (s.n, s.n_ok) == (3, 3)
        assert s.requests_per_s > 0 and s.duration_s > 0
        assert s.latency[50] is not None and s.ttft[50] is not None
        assert 0 < s.ttft[50] <= s.latency[50]
        assert s.goodput_fraction == 1.0
    assert res.frontier and set(res.frontier) <= {0, 1}
    table = res.table()
    assert "c=2" in table and "Pareto frontier" in table and "TTFT ≤ 60000 ms" in table
    rows = sweep_rows(engine)
    assert len(rows) == 6 and all(r.ok for r in rows)
    assert sorted(r.concurrency for r in rows) == [1, 1, 1, 2, 2, 2]
    parsed = {parse_sweep_run_id(r.run_id) for r in rows}
    assert {(p[1], p[2], p[3]) for p in parsed if p} == {(1, "c", 1.0), (1, "c", 2.0)}
    assert len({p[0] for p in parsed if p}) == 1  # one sweep, two levels
    # The report reads the same sweep back from the database.
    data = ReportData(engine, cfg)
    [series] = data.sweeps
    assert series.model == "gemma-srv" and series.replicas == 1
    assert [lv.label for lv in series.levels] == ["c=1", "c=2"]
    assert series.levels[1].summary.n_ok == 3
    # llama-cpp-python's server streams no token counts: the chart falls back to requests/s.
    assert series.levels[0].summary.mean_output_tokens is None
    assert "n/a" in table
    png = chart_function("sweep")(data, tmp_path / "sweep.png")
    assert has_data(png)


async def test_two_replicas_share_the_load(engine: Engine, servers: list[LlamaServer]) -> None:
    before = [s.requests_served() for s in servers]
    cfg = config(servers[0].url)
    res = await run_sweep(
        engine, cfg, "gemma-srv", hosts=[s.url for s in servers], concurrencies=[2],
        requests_per_level=4, progress=False,
    )  # fmt: skip
    assert res.hosts == [s.url for s in servers]
    assert res.levels[0].summary.n_ok == 4
    after = [s.requests_served() for s in servers]
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 2]  # round-robin
    assert all(parse_sweep_run_id(r.run_id)[1] == 2 for r in sweep_rows(engine))  # type: ignore[index]


async def test_rate_mode_runs_sync_peak_then_fixed_rates(
    engine: Engine, servers: list[LlamaServer]
) -> None:
    cfg = config(servers[0].url)
    res = await run_sweep(
        engine, cfg, "gemma-srv", mode="rate", concurrencies=[2], rates=[50.0],
        requests_per_level=2, progress=False,
    )  # fmt: skip
    assert [lv.label for lv in res.levels] == ["c=1", "c=2", "50/s"]
    rate_level = res.levels[2]
    assert rate_level.rate == 50.0 and rate_level.summary.n_ok == 2
    # Arrivals every 20 ms outpace a CPU model, so both requests were in flight together.
    assert rate_level.concurrency == 2
    kinds = {parse_sweep_run_id(r.run_id)[2] for r in sweep_rows(engine)}  # type: ignore[index]
    assert kinds == {"c", "r"}


async def test_sweep_argument_errors(engine: Engine) -> None:
    cfg = config("http://127.0.0.1:9/v1")
    with pytest.raises(SlamError, match="unknown model 'x'"):
        await run_sweep(engine, cfg, "x", progress=False)
    with pytest.raises(SlamError, match="concurrency levels must be integers ≥ 1"):
        await run_sweep(engine, cfg, "gemma-srv", concurrencies=[0, 2], progress=False)
    with pytest.raises(SlamError, match="rates must be > 0"):
        await run_sweep(engine, cfg, "gemma-srv", mode="rate", rates=[-1.0], progress=False)
    assert sweep_rows(engine) == []


def test_slam_sweep_command(
    servers: list[LlamaServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "slam.toml"
    toml.write_text(
        f'[experiment]\nmax_tokens = 4\n\n[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n\n'
        f'[[models]]\nname = "srv"\nbackend = "openai"\nmodel = "gemma3-270m"\n'
        f'host = "{servers[0].url}"\nmax_retries = 0\n',
        encoding="utf-8",
    )
    args = ["sweep", "-c", str(toml), "-m", "srv", "--concurrency", "1,2", "--requests", "2", "-q"]
    code = main(args)
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "srv × 1 endpoint(s)" in out.out and "c=2" in out.out and "2/2" in out.out
    code = main(["sweep", "-c", str(toml), "-m", "srv", "--concurrency", "1,x"])
    err = capsys.readouterr().err
    assert code == 2 and "--concurrency: expected comma-separated numbers like '1,2,4'" in err
    code = main(["sweep", "-c", str(toml), "-m", "srv", "--concurrency", "1.5"])
    assert code == 2 and "whole numbers ≥ 1" in capsys.readouterr().err
