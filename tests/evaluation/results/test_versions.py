"""Model versions in the results: the ratings and the decision count only the current version's
votes, older versions are history with their own vote counts, and the change between the two
versions is a drift line with the Bradley–Terry bootstrap interval — pinned against a
hand-derived Bradley–Terry fit. On SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.config import SlamConfig, parse_config
from evaluation.results import Results, version_text
from storage.db import session_scope
from storage.models import Generation, ModelRecord, ModelVersion
from storage.repo import ensure_model_version
from tests.support.eval_seed import rater, seed_generations, seed_pair, vote

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
N = 40  # votes per version
WINS_OLD, WINS_NEW = 32, 8  # the candidate's wins over the reference, of N, per version


def cfg() -> SlamConfig:
    return parse_config({
        "models": [
            {"name": "ref", "backend": "llamacpp", "model": "builtin:gemma3-270m",
             "reference": True},
            {"name": "cand", "backend": "llamacpp", "model": "builtin:gemma3-270m"},
        ],
        "evaluation": {"bootstrap_rounds": 200, "margin_elo": 50},
    })  # fmt: skip


def add_version(engine: Engine, model: str, label: str, first_seen: datetime,
                gens: list[int]) -> int:  # fmt: skip
    with session_scope(engine) as s:
        mid = s.exec(select(ModelRecord.id).where(ModelRecord.name == model)).one()
        assert mid is not None
        vid = ensure_model_version(s, mid, label * 8, label, "{}")
        row = s.get(ModelVersion, vid)
        assert row is not None
        row.first_seen = first_seen
        s.add(row)
        for g in gens:
            gen = s.get(Generation, g)
            assert gen is not None
            gen.model_version_id = vid
            s.add(gen)
    return vid


def seed(engine: Engine, second_version: bool = True) -> None:
    """cand v1 beats ref 32–8; cand v2 (new answers to the same prompts) loses 8–32."""
    ids = seed_generations(engine, {"ref": ["r0", "r1"], "cand": ["c0", "c1"]}, reference="ref")
    add_version(engine, "cand", "aaaa", T0, [ids[("cand", 0)]])
    raters = [rater(engine, f"r{i}") for i in range(N)]
    old_pair = seed_pair(engine, ids[("cand", 0)], ids[("ref", 0)])
    for i, r in enumerate(raters):
        vote(engine, old_pair, r, "A" if i < WINS_OLD else "B")
    if not second_version:
        return
    with session_scope(engine) as s:
        g = s.get(Generation, ids[("cand", 1)])
        assert g is not None
    add_version(engine, "cand", "bbbb", T0 + timedelta(days=2), [ids[("cand", 1)]])
    new_pair = seed_pair(engine, ids[("ref", 1)], ids[("cand", 1)])
    for i, r in enumerate(raters):
        vote(engine, new_pair, r, "B" if i < WINS_NEW else "A")


def elo(wins: int, losses: int) -> float:
    """The Bradley–Terry gap of one pairing, by hand: 400·log10(wins / losses)."""
    return 400 * math.log10(wins / losses)


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_ratings_use_the_current_version_and_drift_is_measured(
    db: str, request: pytest.FixtureRequest
) -> None:
    engine = request.getfixturevalue("engine" if db == "sqlite" else "pg_engine")
    seed(engine)
    res = Results(engine, cfg())
    bt = res.ratings
    assert bt is not None
    cand = bt.ratings["cand"]
    # only version bbbb's 40 votes count: the rating is its 8–32, not the pooled 40–40
    assert cand.n_votes == N
    assert cand.rating - bt.ratings["ref"].rating == pytest.approx(elo(WINS_NEW, N - WINS_NEW),
                                                                   abs=3)  # fmt: skip
    history = res.version_history["cand"]
    assert [(v.label, v.votes) for v in history] == [("aaaa", N), ("bbbb", N)]
    assert res.warming_up() == {}  # 40 votes ≥ the default 20
    (drift,) = res.drift
    expected = elo(WINS_NEW, N - WINS_NEW) - elo(WINS_OLD, N - WINS_OLD)
    assert drift.change == pytest.approx(expected, abs=5)
    assert drift.lo < drift.change < drift.hi and drift.hi < -50
    assert drift.beyond_margin
    line = drift.line()
    assert line.startswith("cand: version bbbb (from 2026-12-03) is ")
    assert "Elo worse than aaaa (from 2026-12-01)" in line and "beyond the margin" in line
    (text,) = res.version_lines()
    assert text == ("cand: based on version bbbb from 2026-12-03 (40 votes); "
                    "history: aaaa from 2026-12-01 (40 votes)")  # fmt: skip


def test_one_version_counts_everything_and_reports_no_history(engine: Engine) -> None:
    seed(engine, second_version=False)
    res = Results(engine, cfg())
    assert res.ratings is not None and res.ratings.ratings["cand"].n_votes == N
    assert res.stale_pairs == frozenset() and res.version_history == {} and res.drift == []


def test_a_new_version_without_votes_is_warming_up(engine: Engine) -> None:
    seed(engine, second_version=False)
    with session_scope(engine) as s:
        new_gen = s.exec(select(Generation.id).where(Generation.text == "c1")).one()
    assert new_gen is not None
    add_version(engine, "cand", "cccc", T0 + timedelta(days=1), [new_gen])
    res = Results(engine, cfg())
    assert res.ratings is None or "cand" not in res.ratings.ratings  # old votes are history
    assert set(res.warming_up()) == {"cand"}
    (text,) = res.version_lines()
    assert "based on version cccc from 2026-12-02 (0 votes) — too few votes yet" in text
    assert res.drift == []  # nothing to compare the new version's quality with yet


def test_version_text_singular_and_warmup() -> None:
    from evaluation.results import VersionInfo

    v = [VersionInfo(1, "m", "x1", T0, 3), VersionInfo(2, "m", "x2", T0, 1)]
    assert version_text(v, 2) == ("m: based on version x2 from 2026-12-01 (1 vote) — too few "
                                  "votes yet (warming up: 2 needed); history: x1 from "
                                  "2026-12-01 (3 votes)")  # fmt: skip



def test_a_policy_that_cannot_tell_versions_apart_says_so(engine: Engine) -> None:
    seed(engine)
    c = cfg()
    c.evaluation.max_votes_per_rater = 100  # read from the log by model: versions pooled
    res = Results(engine, c)
    assert res.warming_up() == {} and res.drift == []
    (line,) = res.version_lines()
    assert line.startswith("cand: 2 versions; under this vote policy")
