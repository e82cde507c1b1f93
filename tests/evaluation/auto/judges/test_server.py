"""Judges end to end against the real local llama.cpp OpenAI-compatible server (`slam score`'s
own code path: config -> judge backend `openai` -> stored JudgeScore rows)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.config import parse_config
from evaluation.auto.judges.parsing import parse_answer
from evaluation.score import score
from storage.db import session_scope
from storage.models import JudgeScore
from tests.support.eval_seed import seed_generations
from tests.support.llama_server import running

REF = "Well done yesterday, Ana. Today, the report. Do not skip your walk. The week is yours."
CAND = "Ana, you finished a lot. Focus on the report today. Walk at lunch. Keep going."


@pytest.fixture(scope="module")
def server_url(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running(gguf_path, tmp_path_factory.mktemp("judge_server")) as (server,):
        yield server.url


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


async def test_judges_through_the_openai_backend_on_a_real_server(
    engine: Engine, server_url: str
) -> None:
    seed_generations(engine, {"ref": [REF], "cand": [CAND]}, reference="ref")
    cfg = parse_config(
        {
            "models": [
                {"name": "ref", "backend": "llamacpp", "model": "builtin:gemma3-270m",
                 "reference": True},
                {"name": "cand", "backend": "llamacpp", "model": "builtin:gemma3-270m"},
                {"name": "server-judge", "backend": "openai", "model": "gemma3-270m",
                 "host": server_url, "max_retries": 0},
            ],
            "judge": {"model": "server-judge"},
        }
    )  # fmt: skip
    methods = ["scorer", "comparer", "pairwise"]
    first = await score(engine, cfg, methods, [], progress=False, judge_max_tokens=24)
    assert first.judge == "server-judge" and first.judge_run is not None
    # The server takes the schema (as llama.cpp's json_object form, after refusing OpenAI's
    # json_schema form once): every answer is decoded under it and parses.
    assert not first.judge_run.free_text
    for method in methods:
        stats = first.judge_run.methods[method]
        assert stats.calls > 0, method
        assert stats.errors == 0, f"{method}: {stats.first_error}"
        assert stats.structured == stats.calls and stats.parse_failures == 0, method
    with session_scope(engine) as s:
        rows = s.exec(select(JudgeScore)).all()
    assert {r.method for r in rows} == set(methods)
    assert all(r.judge == "server-judge" and r.raw.strip() for r in rows)
    for r in rows:
        answer = json.loads(r.raw, strict=False)
        assert r.parse_ok and next(iter(answer)) == "reasoning", r.raw
        if r.method in ("scorer", "comparer"):
            parsed = parse_answer(r.raw, "score")
            assert parsed.ok and r.score == parsed.score == answer["score"]
        else:
            assert r.choice == answer["verdict"]
    # Re-running asks nothing: every answer comes from the stored judgements.
    second = await score(engine, cfg, methods, [], progress=False, judge_max_tokens=24)
    assert second.judge_run is not None
    assert sum(m.calls for m in second.judge_run.methods.values()) == 0
    with session_scope(engine) as s:
        assert len(s.exec(select(JudgeScore)).all()) == len(rows)
