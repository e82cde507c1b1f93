"""Data-versioned results (evaluation.results.cache): what is served from the cache, what is redrawn
after new data, and that a cached report shows the same numbers as one computed from scratch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from core.config import SlamConfig
from evaluation.charts import CHART_NAMES, RATING_CHARTS
from evaluation.report import ReportResult, build_report
from evaluation.results.cache import ResultCache
from storage.models import RatingPair, Vote
from tests.support.perf_seed import seed

PROBE_CHARTS = {"latency", "tpot", "hourly_latency"}


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    seed(engine, n_models=5, n_votes=400, n_generations=80, days=1, probes_per_hour=2,
         score_fraction=0.3, seed_value=3)  # fmt: skip
    return engine


def _add(engine: Engine, kind: str, n: int, tag: str) -> None:
    """n new votes on stored pairs by stored raters (pairwise, or 0–10 scores of side A)."""
    with engine.begin() as conn:
        pairs = list(conn.execute(select(RatingPair.id).order_by(RatingPair.id)).scalars())  # type: ignore[arg-type]
        raters = list(conn.execute(select(Vote.rater_id).distinct()).scalars())  # type: ignore[call-overload]
        rows = []
        for i in range(n):
            row = {"pair_id": pairs[i % len(pairs)], "rater_id": raters[(7 * i) % len(raters)],
                   "kind": kind, "action": "add", "event_key": f"{tag}-{i}"}  # fmt: skip
            if kind == "pairwise":
                row |= {"choice": ("A", "B", "tie")[i % 3]}
            else:
                row |= {"target": "A", "score": float(i % 11)}
            rows.append(row)
        conn.execute(insert(Vote), rows)


def _numbers(res: ReportResult) -> tuple[object, ...]:
    """What a reader sees: the decision, the leaderboard and the summary line."""
    return (res.decision.text(), res.summary_text,
            [(r.model, r.quality, r.quality_lo, r.quality_hi, r.status, r.latency_p50_s,
              r.cost_per_1k_output) for r in res.leaderboard])  # fmt: skip


def test_unchanged_data_draws_nothing_and_new_votes_redraw_only_what_reads_them(
    seeded: Engine, tmp_path: Path
) -> None:
    cfg, cache = SlamConfig(), ResultCache()
    first = build_report(seeded, cfg, tmp_path / "1", cache=cache)
    assert set(first.drawn) == set(CHART_NAMES)
    again = build_report(seeded, cfg, tmp_path / "2", cache=cache)
    assert again.drawn == ()
    assert _numbers(again) == _numbers(first)
    for n in CHART_NAMES:  # served charts are written out, byte for byte
        assert (tmp_path / "2" / f"{n}.png").read_bytes() == first.charts[n].read_bytes()

    _add(seeded, "pairwise", 30, "pw")
    after = build_report(seeded, cfg, tmp_path / "3", cache=cache)
    assert after.drawn and set(after.drawn) <= RATING_CHARTS
    assert not PROBE_CHARTS & set(after.drawn)
    # human 0–10 scores did not change: that chart's content key still matches
    assert "human_scores" not in after.drawn
    fresh = build_report(seeded, cfg, tmp_path / "4", cache=None)
    assert _numbers(after) == _numbers(fresh)
    assert _numbers(after) != _numbers(first)  # the new votes are seen

    _add(seeded, "score", 12, "sc")
    scored = build_report(seeded, cfg, tmp_path / "5", cache=cache)
    assert "human_scores" in scored.drawn
    assert scored.charts["human_scores"].read_bytes() != first.charts["human_scores"].read_bytes()
    assert _numbers(scored) == _numbers(build_report(seeded, cfg, tmp_path / "6", cache=None))


def test_a_new_process_reads_the_disk_cache(seeded: Engine, tmp_path: Path) -> None:
    cfg = SlamConfig()
    first = build_report(seeded, cfg, tmp_path / "1", cache=ResultCache(disk_dir=tmp_path / "c"))
    # A new ResultCache on the same folder stands for the next `slam report` process.
    second = build_report(seeded, cfg, tmp_path / "2", cache=ResultCache(disk_dir=tmp_path / "c"))
    assert second.drawn == () and _numbers(second) == _numbers(first)
    # Another config (another margin) is another key: the decision's charts are redrawn.
    other = SlamConfig.model_validate({"evaluation": {"margin_elo": 120}})
    third = build_report(seeded, other, tmp_path / "3", cache=ResultCache(disk_dir=tmp_path / "c"))
    assert "bradley_terry" in third.drawn and "120" in third.decision.text() + str(
        third.decision.margin
    )
