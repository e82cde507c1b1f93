"""`slam demo --quick` runs every stage for real, offline, and leaves evidence of each."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from sqlmodel import func, select

from slam.demo import run_demo
from storage.db import session_scope
from storage.models import Generation, JudgeScore, ModelRecord, Probe, SimilarityScore, Vote


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = run_demo(tmp_path / "ws", quick=True)
    out = capsys.readouterr().out
    assert ctx.engine is not None
    variants = sorted(p.name for p in (tmp_path / "ws" / "models").glob("*.gguf"))
    assert variants == ["gemma-3-270m-q2_k.gguf", "gemma-3-270m-q3_k_m.gguf"]

    def count(model: type) -> int:
        with session_scope(ctx.engine) as s:  # type: ignore[arg-type]
            return int(s.exec(select(func.count()).select_from(model)).one())

    with session_scope(ctx.engine) as s:
        models = {m.name: m.quantization for m in s.exec(select(ModelRecord)).all()}
        gens = s.exec(select(Generation)).all()
    assert models == {
        "gemma3-270m-q4_k_m": "Q4_K_M",
        "gemma3-270m-q3_k_m": "Q3_K_M",
        "gemma3-270m-q2_k": "Q2_K",
    }
    assert len(gens) == 3 * 2  # three variants x two quick users
    assert all(g.error is None and g.text and g.ttft_s and g.latency_s for g in gens)
    assert count(JudgeScore) > 0  # stored, parse failures included
    assert count(SimilarityScore) >= 4 * 2 * 2  # 4 metrics x 2 candidates x 2 users
    assert count(Probe) == 3 * (1 + 2)  # warmup 1 + measure 2 per model
    assert count(Vote) > 0

    report = tmp_path / "ws" / "report"
    html = (report / "report.html").read_text()
    assert "<img" in html and "base64," in html
    pngs = list(report.glob("*.png"))
    assert len(pngs) >= 10
    for png in pngs:
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", head[16:24])
        assert width >= 600 and height >= 300
    assert "What ran here, offline" in out
    assert "scripted rater votes at random" in out


def test_demo_help_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    from slam.cli import main

    assert main(["demo", "--help"]) == 0
    assert "offline" in capsys.readouterr().out
