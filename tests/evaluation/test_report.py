"""The report: leaderboard, recommendation rule, self-contained HTML, Markdown, `slam report`."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from core.config import SlamConfig
from evaluation.charts import CHART_NAMES
from evaluation.report import build_report
from slam.cli import main
from tests.support.perf_seed import model_names, seed

NAMES = model_names(4)  # gpt-4 (reference, API), llama3-8b…, mistral-7b…, gemma2-9b…
REF, LLAMA, MISTRAL, GEMMA2 = NAMES


def scenario(engine: Engine, quality: list[float], hardware: list[str]) -> None:
    seed(
        engine, n_models=4, n_votes=6000, n_generations=200, days=2, quality=quality,
        hardware=hardware, speed=[0.03, 0.02, 0.02, 0.02], sweeps=False, score_fraction=0.1,
    )  # fmt: skip


def test_switches_to_the_cheapest_acceptable_model(engine: Engine, tmp_path: Path) -> None:
    # llama and gemma2 are as good as the reference; llama's host is cheaper. mistral is free
    # but clearly worse, so it is ruled out and must not win on price.
    scenario(engine, [1000, 1000, 600, 1010], ["api", "g4dn.xlarge", "local-cpu", "g4dn.2xlarge"])
    res = build_report(engine, SlamConfig(), tmp_path, only=["quality_vs_cost"])
    assert res.recommended_model == LLAMA and res.decision.kind == "switch"
    assert res.recommendation.startswith(f"Switch to {LLAMA}: it is at most ")
    assert f"Elo below {REF} at 95% confidence (margin 50 Elo" in res.recommendation
    assert f"every cheaper candidate ({MISTRAL}) is ruled out" in res.recommendation
    assert "cheaper than gpt-4" in res.recommendation and "/month vs $" in res.recommendation
    assert res.decision.status(MISTRAL) == "ruled_out"
    assert res.decision.status(GEMMA2) == "acceptable"
    rows = {r.model: r for r in res.leaderboard}
    assert set(rows) == set(NAMES)
    assert rows[REF].is_reference and rows[REF].quality == pytest.approx(1000)
    assert rows[MISTRAL].cost_label == "free (local CPU)"
    mistral_hi = rows[MISTRAL].quality_hi
    assert mistral_hi is not None and mistral_hi < 1000
    llama, gemma2 = rows[LLAMA], rows[GEMMA2]
    assert llama.cost_per_1k_output is not None and gemma2.cost_per_1k_output is not None
    assert llama.cost_per_1k_output < gemma2.cost_per_1k_output
    assert llama.availability is not None and 0.9 < llama.availability <= 1.0
    assert llama.latency_p50_s is not None and llama.latency_p90_s is not None
    assert llama.latency_p90_s >= llama.latency_p50_s > 0
    # Best quality first.
    qualities = [r.quality for r in res.leaderboard]
    assert qualities == sorted(qualities, reverse=True)  # type: ignore[type-var]


def test_free_local_model_wins_when_good_enough(engine: Engine, tmp_path: Path) -> None:
    scenario(engine, [1000, 1000, 1005, 700], ["api", "g4dn.xlarge", "local-cpu", "g4dn.xlarge"])
    res = build_report(engine, SlamConfig(), tmp_path, only=["cost_per_1k"])
    assert res.recommended_model == MISTRAL
    assert "it is free (local CPU)" in res.recommendation
    assert "it is the cheapest candidate" in res.recommendation


def test_keeps_the_api_when_nothing_is_good_enough(engine: Engine, tmp_path: Path) -> None:
    scenario(engine, [1000, 700, 650, 600], ["api", "g4dn.xlarge", "local-cpu", "g4dn.xlarge"])
    res = build_report(engine, SlamConfig(), tmp_path, only=["bradley_terry"])
    assert res.recommended_model is None and res.decision.kind == "keep"
    assert res.recommendation.startswith(f"Keep {REF}: every candidate is more than 50 Elo")


def test_no_votes_means_no_recommendation_yet(engine: Engine, tmp_path: Path) -> None:
    res = build_report(engine, SlamConfig(), tmp_path, only=["latency"])
    assert res.recommended_model is None and res.decision.kind == "no_data"
    assert res.recommendation.startswith("No decision: no reference model is configured")
    assert res.leaderboard == []
    assert res.summary_text.endswith("No models with data yet.")


def test_html_is_self_contained_and_markdown_has_the_leaderboard(
    engine: Engine, tmp_path: Path
) -> None:
    scenario(engine, [1000, 1000, 600, 1010], ["api", "g4dn.xlarge", "local-cpu", "g4dn.2xlarge"])
    out = tmp_path / "report"
    res = build_report(engine, SlamConfig(), out)
    assert list(res.charts) == CHART_NAMES
    html = res.html_path.read_text(encoding="utf-8")
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(images) == len(CHART_NAMES)
    assert base64.b64decode(images[0])[:4] == b"\x89PNG"
    assert not re.search(r"src=['\"](?!data:)", html)  # nothing loaded from elsewhere
    assert "<h2>Decision</h2>" in html and LLAMA in html
    md = res.md_path.read_text(encoding="utf-8")
    assert "| # | model | decision | hardware | quality |" in md
    assert f"| **{REF} (ref)** |" in md
    for name in CHART_NAMES:
        assert f"![{name}]({name}.png)" in md
    assert "$0.03/1K input" in md and "prices as of 2024-03-01" in md
    # The chat reply: the decision first, then a short ranked leaderboard.
    lines = res.summary_text.splitlines()
    assert lines[0] == res.recommendation
    assert lines[2].startswith("Leaderboard") and lines[3].startswith("1. ")
    assert len(res.summary_text) < 1800


def test_slam_report_command(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario(engine, [1000, 1000, 600, 1010], ["api", "g4dn.xlarge", "local-cpu", "g4dn.2xlarge"])
    toml = tmp_path / "slam.toml"
    toml.write_text(f'[database]\nurl = "{engine.url}"\n', encoding="utf-8")
    out = tmp_path / "r"
    code = main(["report", "-c", str(toml), "--out", str(out), "--chart", "sweep"])
    text = capsys.readouterr().out
    assert code == 0
    assert "Leaderboard" in text and f"Switch to {LLAMA}" in text
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md", "sweep.png"]
    code = main(["report", "-c", str(toml), "--out", str(out), "--chart", "nope"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown chart 'nope'; expected one of: bradley_terry" in err
    assert main(["report", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in CHART_NAMES)


@pytest.mark.parametrize("command", ["probe", "sweep", "report"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_prefetched_ratings_match_loading_them_in_place(engine: Engine, tmp_path: Path) -> None:
    """The background Bradley–Terry load gives the same ratings as loading on first use, and
    a dataset asked for by two threads at once is computed once."""
    import threading

    from evaluation.results.datasets import cached
    from evaluation.results.service import Results as ReportData
    from storage.db import make_engine

    scenario(engine, [1000, 1000, 600, 1010], ["api", "g4dn.xlarge", "local-cpu", "g4dn.2xlarge"])
    plain = ReportData(engine, SlamConfig())
    fetched = ReportData(engine, SlamConfig())
    loader = fetched.prefetch("ratings")
    assert loader is not None  # a file database: the thread runs
    loader.join()
    assert "ratings" in fetched.__dict__
    assert fetched.ratings is not None and plain.ratings is not None
    assert fetched.ratings.ratings == plain.ratings.ratings
    in_memory = ReportData(make_engine("sqlite://"), SlamConfig())
    assert in_memory.prefetch("bt") is None  # threads would each see an empty database

    entered, release, calls = threading.Event(), threading.Event(), []

    class Slow(ReportData):
        @cached
        def slow(self) -> object:
            calls.append(threading.current_thread().name)
            entered.set()
            release.wait(timeout=30)
            return object()

    data = Slow(engine, SlamConfig())
    first = data.prefetch("slow")
    assert first is not None and entered.wait(timeout=30)
    seen: list[object] = []
    second = threading.Thread(target=lambda: seen.append(data.slow))
    second.start()
    release.set()
    first.join()
    second.join()
    assert calls == ["report-prefetch"] and seen == [data.slow]


def test_model_versions_and_drift_in_the_report(engine: Engine, tmp_path: Path) -> None:
    from tests.evaluation.results.test_versions import cfg as versions_cfg
    from tests.evaluation.results.test_versions import seed as seed_versions

    seed_versions(engine)
    res = build_report(engine, versions_cfg(), tmp_path / "r", only=["bradley_terry"])
    md = res.md_path.read_text(encoding="utf-8")
    assert ("## Model versions\n\n- cand: based on version bbbb from 2026-12-03 (40 votes); "
            "history: aaaa from 2026-12-01 (40 votes)\n- cand: version bbbb") in md
    html = res.html_path.read_text(encoding="utf-8")
    assert "<h2>Model versions</h2><ul><li>cand: based on version bbbb" in html
    assert "beyond the margin" in md and "beyond the margin" in html


def test_a_report_without_versions_has_no_versions_section(engine: Engine, tmp_path: Path) -> None:
    res = build_report(engine, SlamConfig(), tmp_path / "r", only=["latency"])
    assert "Model versions" not in res.md_path.read_text(encoding="utf-8")
