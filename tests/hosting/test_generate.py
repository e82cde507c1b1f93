"""Daily generation: stored with timings, resumable, bounded per host, errors kept as data."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import ClassVar

from sqlalchemy.engine import Engine
from sqlmodel import select

from core.config import SlamConfig, parse_config
from core.prompts import load_user_contexts
from hosting.backends import gguf_identity, resolve_model_path
from hosting.backends.base import Generation, GenerationRequest, register
from hosting.generate import generate
from storage.db import make_engine, session_scope
from storage.models import Generation as GenRow
from storage.models import ModelRecord, ModelVersion, Prompt
from tests.support.fake_ollama import DIGEST, FakeOllama

DAY = date(2026, 11, 21)


class CountingBackend:
    """Our own contract implemented in-process, to observe scheduling (not an SDK fake)."""

    name = "counting"
    active: ClassVar[dict[str, int]] = {}
    peak: ClassVar[dict[str, int]] = {}
    fail_models: ClassVar[set[str]] = set()

    def __init__(self, spec: object) -> None:
        self.spec = spec

    async def generate(self, request: GenerationRequest) -> Generation:
        host = self.spec.host or "default"  # type: ignore[attr-defined]
        name = self.spec.name  # type: ignore[attr-defined]
        self.active[host] = self.active.get(host, 0) + 1
        self.peak[host] = max(self.peak.get(host, 0), self.active[host])
        await asyncio.sleep(0)  # let other requests start if the semaphore allows
        await asyncio.sleep(0)
        self.active[host] -= 1
        if name in self.fail_models:
            return Generation(text="", backend="counting", model=name, error="boom")
        return Generation(
            text=f"{name}: {request.prompt[:20]}",
            backend="counting",
            model=name,
            prompt_tokens=10,
            output_tokens=5,
            ttft_s=0.1,
            latency_s=0.5,
        )

    async def aclose(self) -> None:
        return None


register("counting", CountingBackend)


def users_file(tmp_path: Path, n: int) -> str:
    p = tmp_path / "users.json"
    users = [u.model_dump() for u in load_user_contexts("builtin")[:n]]
    p.write_text(json.dumps(users), encoding="utf-8")
    return str(p)


def config(
    tmp_path: Path, models: list[dict[str, object]], n_users: int = 2, **exp: object
) -> SlamConfig:
    return parse_config(
        {
            "experiment": {"user_contexts": users_file(tmp_path, n_users), **exp},
            "models": models,
        }
    )


def rows(engine: Engine) -> list[GenRow]:
    with session_scope(engine) as s:
        return list(s.exec(select(GenRow)).all())


async def test_generates_and_stores_every_user_model_sample(engine: Engine, tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        [
            {"name": "a", "backend": "counting", "model": "x", "host": "h1", "concurrency": 3},
            {"name": "b", "backend": "counting", "model": "y", "host": "h2", "reference": True},
        ],
        n_users=4,
        samples_per_model=2,
    )
    res = await generate(engine, cfg, run_date=DAY, progress=False)
    assert (res.planned, res.done, res.errors, res.skipped) == (16, 16, 0, 0)
    stored = rows(engine)
    assert len(stored) == 16
    assert {(g.sample_index) for g in stored} == {0, 1}
    assert all(g.ttft_s == 0.1 and g.latency_s == 0.5 and g.output_tokens == 5 for g in stored)
    assert all(g.tpot_s == (0.5 - 0.1) / 4 for g in stored)
    # Bounded concurrency per host: h1 allows 3, h2 the default 1.
    assert CountingBackend.peak["h1"] == 3
    assert CountingBackend.peak["h2"] == 1
    with session_scope(engine) as s:
        assert len(s.exec(select(Prompt)).all()) == 4  # one prompt per user, shared by models
        names = {m.name: m.is_reference for m in s.exec(select(ModelRecord)).all()}
    assert names == {"a": False, "b": True}


async def test_rerun_resumes_and_retries_only_errors(engine: Engine, tmp_path: Path) -> None:
    models = [
        {"name": "ok", "backend": "counting", "model": "x"},
        {"name": "flaky", "backend": "counting", "model": "y"},
    ]
    cfg = config(tmp_path, models)
    CountingBackend.fail_models = {"flaky"}
    try:
        first = await generate(engine, cfg, run_date=DAY, progress=False)
    finally:
        CountingBackend.fail_models = set()
    assert (first.done, first.errors) == (4, 2)
    assert sorted(g.error or "" for g in rows(engine)) == ["", "", "boom", "boom"]
    second = await generate(engine, cfg, run_date=DAY, progress=False)
    assert (second.skipped, second.done, second.errors) == (2, 2, 0)
    stored = rows(engine)
    assert len(stored) == 4 and all(g.error is None for g in stored)
    third = await generate(engine, cfg, run_date=DAY, progress=False)
    assert (third.skipped, third.done) == (4, 0)


async def test_a_repulled_ollama_tag_answers_as_a_new_version(
    engine: Engine, tmp_path: Path
) -> None:
    with FakeOllama() as fake:
        cfg = config(tmp_path, [{"name": "g", "backend": "ollama", "model": "gemma3:270m",
                                 "host": fake.url}])  # fmt: skip
        await generate(engine, cfg, run_date=DAY, progress=False)
        again = await generate(engine, cfg, run_date=DAY, progress=False)
        assert again.skipped == 2
        fake.digests["gemma3:270m"] = "f" * 64
        await generate(engine, cfg, run_date=date(2026, 11, 22), progress=False)
    with session_scope(engine) as s:
        versions = {v.id: v for v in s.exec(select(ModelVersion)).all()}
    assert sorted(v.label for v in versions.values()) == [DIGEST[7:19], "f" * 12]
    by_day = {(g.run_date, versions[g.model_version_id or 0].label) for g in rows(engine)}
    assert by_day == {(DAY, DIGEST[7:19]), (date(2026, 11, 22), "f" * 12)}


async def test_real_embedded_model_on_postgres(pg_engine: Engine, tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        [{"name": "gemma", "backend": "llamacpp", "model": "builtin:gemma3-270m"}],
        n_users=1,
        max_tokens=8,
        seed=1,
    )
    res = await generate(pg_engine, cfg, run_date=DAY, progress=False)
    assert res.done == 1 and res.errors == 0
    (g,) = rows(pg_engine)
    assert g.text and g.backend == "llamacpp" and 1 <= (g.output_tokens or 0) <= 8
    assert g.ttft_s is not None and g.latency_s is not None and g.ttft_s <= g.latency_s
    with session_scope(pg_engine) as s:
        (version,) = s.exec(select(ModelVersion)).all()
    assert g.model_version_id == version.id
    assert version.identity == gguf_identity(resolve_model_path("builtin:gemma3-270m")).key


def test_killed_run_loses_nothing_committed(tmp_path: Path) -> None:
    """Kill -9 a real `slam generate` mid-run: committed rows survive, a rerun completes."""
    db = tmp_path / "slam.db"
    toml = tmp_path / "slam.toml"
    toml.write_text(
        f"""
[experiment]
user_contexts = "{users_file(tmp_path, 6)}"
max_tokens = 24
[[models]]
name = "gemma"
backend = "llamacpp"
model = "builtin:gemma3-270m"
[database]
url = "sqlite:///{db}"
""",
        encoding="utf-8",
    )
    cmd = [
        sys.executable,
        "-m",
        "slam.cli",
        "generate",
        "-c",
        str(toml),
        "--date",
        "2026-11-21",
        "-q",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    engine = make_engine(f"sqlite:///{db}")
    deadline = time.monotonic() + 120
    stored_before = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                stored_before = len(rows(engine))
            except Exception:
                stored_before = 0  # schema not created yet
        if stored_before >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "generation finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    after_kill = rows(engine)
    assert len(after_kill) >= stored_before >= 2
    assert all(g.text and g.error is None for g in after_kill)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(after_kill)} already stored" in done.stdout
    final = rows(engine)
    assert len(final) == 6
    assert len({(g.prompt_id, g.model_id, g.sample_index) for g in final}) == 6
    engine.dispose()
