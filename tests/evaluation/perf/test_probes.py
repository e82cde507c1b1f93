"""Latency probes: real embedded model, refused connections as availability data, crash safety,
and the `slam probe` command."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.backends import BACKENDS
from core.config import ModelSpec, SlamConfig, parse_config
from core.errors import SlamError
from evaluation.perf.probes import run_probes
from hosting.backends.base import Generation, GenerationRequest
from slam.cli import main
from storage.models import ModelRecord, Probe


def config(models: list[dict[str, object]], **experiment: object) -> SlamConfig:
    return parse_config(
        {
            "experiment": {"max_tokens": 6, "temperature": 0.0, "seed": 1, **experiment},
            "models": models,
            "schedule": {"timezone": "Asia/Kolkata"},  # UTC+5:30: the hour tag must follow it
        }
    )


GEMMA = {"name": "gemma", "backend": "llamacpp", "model": "builtin:gemma3-270m", "n_ctx": 512}


def probes(engine: Engine) -> list[Probe]:
    with Session(engine) as s:
        return list(s.exec(select(Probe).order_by(Probe.id)).all())  # type: ignore[arg-type]


async def test_embedded_model_probe_rows_and_summary(engine: Engine) -> None:
    cfg = config([GEMMA])
    [summary] = await run_probes(engine, cfg, warmup=1, measure=2, progress=False)
    rows = probes(engine)
    assert [r.phase for r in rows] == ["warmup", "measure", "measure"]
    assert len({r.run_id for r in rows}) == 1 and rows[0].run_id == summary.run_id
    tz = ZoneInfo("Asia/Kolkata")
    for r in rows:
        assert r.ok and r.error is None
        assert r.output_tokens and r.prompt_tokens and r.prompt_tokens > 50
        assert r.ttft_s is not None and r.latency_s is not None and r.latency_s >= r.ttft_s
        if r.output_tokens >= 2:
            assert r.tpot_s == pytest.approx((r.latency_s - r.ttft_s) / (r.output_tokens - 1))
        assert r.hour == r.started_at.astimezone(tz).hour
        assert r.concurrency == 1
    assert (summary.n, summary.n_ok, summary.availability) == (2, 2, 1.0)
    assert summary.latency_p50_s is not None and summary.output_tokens_per_s
    assert "gemma: 2/2 ok" in summary.line()
    with Session(engine) as s:
        rec = s.exec(select(ModelRecord).where(ModelRecord.name == "gemma")).one()
    assert rows[0].model_id == rec.id


async def test_refused_connection_is_stored_as_failure(engine: Engine, port: int) -> None:
    down = {
        "name": "down", "backend": "openai", "model": "x", "host": f"http://127.0.0.1:{port}/v1",
        "max_retries": 0, "hardware": "api",
    }  # fmt: skip
    cfg = config([down])
    [summary] = await run_probes(engine, cfg, warmup=0, measure=2, progress=False)
    rows = probes(engine)
    assert len(rows) == 2 and not any(r.ok for r in rows)
    assert all("refused the connection" in (r.error or "") for r in rows)
    assert summary.n_ok == 0 and summary.availability == 0.0
    assert "0/2 ok" in summary.line() and "refused" in summary.line()


async def test_missing_gguf_is_one_failed_probe_and_other_models_still_run(
    engine: Engine, tmp_path: Path
) -> None:
    broken: dict[str, object] = {
        "name": "broken",
        "backend": "llamacpp",
        "model": str(tmp_path / "nope.gguf"),
    }
    cfg = config([broken, GEMMA])
    s_broken, s_gemma = await run_probes(engine, cfg, warmup=0, measure=1, progress=False)
    assert s_broken.n_ok == 0 and "GGUF file not found" in s_broken.errors[0]
    assert s_gemma.n_ok == 1
    assert [(r.ok, r.phase) for r in probes(engine)] == [(False, "measure"), (True, "measure")]


class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing in the harness catches it."""


class CrashingBackend:
    """Answers twice, then the process 'dies'."""

    name = "ollama"
    calls = 0

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    async def generate(self, request: GenerationRequest) -> Generation:
        CrashingBackend.calls += 1
        if CrashingBackend.calls > 2:
            raise Crash
        return Generation(
            text="ok", backend="ollama", model=self.spec.name, prompt_tokens=10,
            output_tokens=3, ttft_s=0.1, latency_s=0.3,
        )  # fmt: skip

    async def aclose(self) -> None:
        return None


async def test_each_probe_is_committed_as_it_completes(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(BACKENDS._entries, "ollama", CrashingBackend)
    cfg = config([{"name": "o", "backend": "ollama", "model": "llama3"}])
    with pytest.raises(Crash):
        await run_probes(engine, cfg, warmup=1, measure=5, progress=False)
    rows = probes(engine)
    assert [r.phase for r in rows] == ["warmup", "measure"]
    assert rows[1].tpot_s == pytest.approx(0.1)  # (0.3 - 0.1) / (3 - 1)


async def test_bad_arguments_are_clear_errors(engine: Engine) -> None:
    cfg = config([GEMMA])
    with pytest.raises(SlamError, match="unknown model 'nope'; configured: \\['gemma'\\]"):
        await run_probes(engine, cfg, models=["nope"], progress=False)
    with pytest.raises(SlamError, match="measure ≥ 1"):
        await run_probes(engine, cfg, measure=0, progress=False)
    with pytest.raises(SlamError, match="no models configured"):
        await run_probes(engine, SlamConfig(), progress=False)
    assert probes(engine) == []


def test_slam_probe_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "slam.toml"
    toml.write_text(
        f'[experiment]\nmax_tokens = 4\n\n[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n\n'
        '[[models]]\nname = "gemma"\nbackend = "llamacpp"\nmodel = "builtin:gemma3-270m"\n'
        "n_ctx = 512\n",
        encoding="utf-8",
    )
    code = main(["probe", "-c", str(toml), "--warmup", "0", "--measure", "1", "-q"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "gemma: 1/1 ok, latency p50" in out.out
    code = main(["probe", "-c", str(toml), "-m", "other", "-q"])
    assert code == 2 and "unknown model 'other'" in capsys.readouterr().err
