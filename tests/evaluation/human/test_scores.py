"""Absolute 0–10 human scores: effective votes per model, means, medians and bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from evaluation.human.scores import load_absolute_scores, score_summary
from storage.db import session_scope
from tests.support.eval_seed import rater, seed_generations, seed_pair, seed_round, vote


def test_load_absolute_scores_latest_per_side_and_removal(any_engine: Engine) -> None:
    engine = any_engine
    gens = seed_generations(engine, {"ref": ["r"], "small": ["s"]}, reference="ref")
    pair = seed_pair(engine, gens[("small", 0)], gens[("ref", 0)], seed_round(engine))
    ann, bo = rater(engine, "ann"), rater(engine, "bo")
    vote(engine, pair, ann, kind="score", target="A", score=3)
    vote(engine, pair, ann, kind="score", target="A", score=6)  # latest wins
    vote(engine, pair, ann, kind="score", target="B", score=9)  # the other side: separate
    vote(engine, pair, bo, kind="score", target="B", score=7)
    vote(engine, pair, bo, kind="score", target="B", action="remove")  # retracted
    vote(engine, pair, bo, "A")  # a pairwise vote is not a score
    with session_scope(engine) as s:
        scores = load_absolute_scores(s)
    assert scores == {"small": [6.0], "ref": [9.0]}


def test_score_summary_statistics_and_ci_coverage() -> None:
    s = score_summary({"m": [1, 2, 3, 4, 10], "one": [7], "none": []}, n_boot=500)
    m = s["m"]
    assert m.n == 5 and m.mean == pytest.approx(4.0) and m.median == 3.0
    assert m.lo < m.mean < m.hi and m.values == [1.0, 2.0, 3.0, 4.0, 10.0]
    assert m.histogram()[10] == 1 and sum(m.histogram()) == 5
    assert s["one"].lo == s["one"].hi == 7.0 and "none" not in s
    # the 95% percentile-bootstrap CI of a mean covers the true mean most of the time
    rng = np.random.default_rng(7)
    covered = 0
    for rep in range(100):
        values = rng.integers(0, 11, size=60).astype(float)  # true mean 5
        r = score_summary({"x": values.tolist()}, n_boot=300, seed=rep)["x"]
        covered += r.lo <= 5.0 <= r.hi
    assert 85 <= covered <= 100
