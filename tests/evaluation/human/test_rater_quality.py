"""Rules 8 and 9 of evaluation.human.votes: gold pairs never count; raters who fail gold pairs or
agree with the consensus no better than chance are flagged, left out, and counted again when
that changes — on SQLite and PostgreSQL, in the SQL, the tally and the results service."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import minimize
from sqlalchemy.engine import Engine

from core.config import parse_config
from evaluation.human.ratings import PRIOR_SD
from evaluation.human.tally import VoteTally
from evaluation.human.votes import (
    CHANCE_INFO,
    VotePolicy,
    assess_raters,
    chance_rule,
    chance_scores,
    effective_votes,
    gold_rule,
    pairwise_results,
    rater_quality,
)
from evaluation.results.service import Results
from storage.db import session_scope
from storage.models import RatingPair
from tests.support.eval_seed import rater, seed_generations, seed_round, vote


def test_gold_rule_boundaries() -> None:
    n = np.array([1, 2, 3, 4, 5, 6, 10])
    bad = np.array([1, 2, 2, 2, 2, 3, 4])
    assert gold_rule(n, bad).tolist() == [False, True, True, True, False, True, False]


def test_chance_score_against_an_independent_leave_one_out_fit() -> None:
    """z for one rater: the consensus fitted by scipy on everyone else's rows, then the sum
    by hand."""
    ij = np.array([[0, 1], [0, 1], [1, 2], [1, 2], [0, 2], [0, 2], [0, 1]])
    pts = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.5])
    own = np.array([[3, 5, 2, 6, 1, 4, 2], [9, 1, 8, 2, 9, 1, 0]], dtype=float)
    total = own.sum(axis=0) + np.array([20, 4, 15, 5, 25, 2, 3])
    z, v = chance_scores(ij, pts, own, total, 3)
    for r in range(2):
        others = total - own[r]

        def nlp(x: np.ndarray, w: np.ndarray = others) -> float:
            d = x[ij[:, 0]] - x[ij[:, 1]]
            return float(-np.sum(w * (pts * d - np.logaddexp(0, d))) + np.sum(x**2) / 200)

        x = minimize(nlp, np.zeros(3), method="BFGS", tol=1e-12).x
        t = vv = 0.0
        for (i, j), p_i, n in zip(ij, pts, own[r], strict=True):
            if p_i == 0.5:
                continue
            w = 2 / (1 + math.exp(x[j] - x[i])) - 1
            t += n * w * (1 if p_i == 1 else -1)
            vv += n * w * w
        assert z[r] == pytest.approx(t / math.sqrt(vv), rel=1e-5)
        assert v[r] == pytest.approx(vv, rel=1e-5)
    assert z[0] < 0 < z[1]  # rater 0 votes against the consensus, rater 1 with it
    assert PRIOR_SD == 10  # the 1/200 above is the prior N(0, 10²)


def test_a_random_clicker_is_flagged_careful_raters_are_not() -> None:
    rng = np.random.default_rng(7)
    truth = {"m0": 0.0, "m1": -0.8, "m2": -1.6, "m3": 0.4}
    names = sorted(truth)
    tallies: dict[tuple[int, str, str, str], int] = {}
    for rid in range(12):
        for _ in range(150):
            a, b = rng.choice(names, 2, replace=False)
            p = 1 / (1 + math.exp(truth[b] - truth[a]))
            if rid == 11:  # the clicker
                choice = "A" if rng.random() < 0.5 else "B"
            else:
                choice = "A" if rng.random() < p else "B"
            key = (rid, str(a), str(b), choice)
            tallies[key] = tallies.get(key, 0) + 1
    rows = [(r, a, b, c, n) for (r, a, b, c), n in tallies.items()]
    q = assess_raters(rows, gold=[])
    assert q.flagged == frozenset({11})
    assert q.by_rule["chance"] == (1, 150) and q.by_rule["gold"] == (0, 0)
    # Too little information: nobody is judged.
    few = [(r, a, b, c, n) for r, a, b, c, n in rows if n and r == 11][:3]
    assert assess_raters(few, gold=[]).flagged == frozenset()
    assert not chance_rule(np.array([0.0]), np.array([CHANCE_INFO - 1]))[0]


def _db(engine: Engine) -> dict[str, int]:
    gens = seed_generations(engine, {"ref": [f"Good morning {u}, here is your plan for the day "
                                             f"and a word of encouragement." for u in "ABCD"],
                                     "cand": ["x y z"] * 4}, reference="ref")  # fmt: skip
    rnd = seed_round(engine)
    with session_scope(engine) as s:
        model = [RatingPair(round_id=rnd, generation_a_id=gens[("ref", i)],
                            generation_b_id=gens[("cand", i)]) for i in range(4)]  # fmt: skip
        gold = [RatingPair(round_id=rnd, generation_a_id=gens[("ref", i)],
                           generation_b_id=gens[("ref", (i + 1) % 4)], kind="gold",
                           gold_answer="A", decoy="other_user") for i in range(4)]  # fmt: skip
        s.add_all(model + gold)
        s.flush()
        ids = {f"model{i}": p.id for i, p in enumerate(model)}
        ids |= {f"gold{i}": p.id for i, p in enumerate(gold)}
    return ids  # type: ignore[return-value]


def _policy(**kw: object) -> VotePolicy:
    return replace(VotePolicy(), **kw)  # type: ignore[arg-type]


def test_gold_votes_never_count_and_a_failing_rater_is_left_out_reversibly(
    any_engine: Engine,
) -> None:
    ids = _db(any_engine)
    good, bad = rater(any_engine, "careful"), rater(any_engine, "clicker")
    for i in range(4):
        vote(any_engine, ids[f"model{i}"], good, "A")
        vote(any_engine, ids[f"model{i}"], bad, "B")
    vote(any_engine, ids["gold0"], good, "A")
    vote(any_engine, ids["gold0"], bad, "B")  # failed
    vote(any_engine, ids["gold1"], bad, "tie")  # a tie on a gold pair is a failure too
    plain = [("ref", "cand", "A", 4), ("ref", "cand", "B", 4)]
    with session_scope(any_engine) as s:
        # Rule 8: the gold votes are nowhere in the counts.
        assert pairwise_results(s) == plain
        assert {v.pair_id for v in effective_votes(s)} == {ids[f"model{i}"] for i in range(4)}
        assert VoteTally.build(s).pairwise_counts() == plain
        # Rule 9: the clicker failed 2 of 2 gold pairs.
        on = _policy(rater_quality=True)
        q = rater_quality(s, on)
        assert q.flagged == frozenset({bad}) and q.by_rule["gold"] == (1, 4)
        assert q.gold_votes == 3 and q.gold_failed == 2
        assert pairwise_results(s, on) == [("ref", "cand", "A", 4)]
        assert {v.rater_id for v in effective_votes(s, "pairwise", on)} == {good}
        tally = VoteTally.build(s)
        tq = assess_raters(tally.rater_tallies(), tally.gold_votes())
        assert tq.flagged == q.flagged
        assert tally.pairwise_counts(tq.flagged) == pairwise_results(s, on)
        # The completion filter's path applies rule 9 the same way.
        both = _policy(rater_quality=True, max_votes_per_rater=10)
        assert pairwise_results(s, both) == [("ref", "cand", "A", 4)]
        text = "\n".join(q.lines())
        assert "1 rater(s), 4 vote(s)" in text and "hash" not in text
    # The results service, as configured: excluded; with 'report' every vote counts.
    cfg = parse_config({"models": [
        {"name": "ref", "backend": "llamacpp", "model": "builtin:gemma3-270m", "reference": True},
        {"name": "cand", "backend": "llamacpp", "model": "builtin:gemma3-270m"}],
        "evaluation": {"bootstrap_rounds": 50}})  # fmt: skip
    res = Results(any_engine, cfg)
    assert res.pairwise_counts == [("ref", "cand", "A", 4)]
    assert res.rater_quality.by_rule["gold"] == (1, 4)
    report = cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(
        update={"rater_quality": "report"})})  # fmt: skip
    assert Results(any_engine, report).pairwise_counts == plain
    # Reversible: the clicker now answers three gold pairs right (2 of 5 failed) -> counted.
    for k in (1, 2, 3):
        vote(any_engine, ids[f"gold{k}"], bad, "A")
    with session_scope(any_engine) as s:
        assert rater_quality(s, _policy(rater_quality=True)).flagged == frozenset()
        assert pairwise_results(s, _policy(rater_quality=True)) == plain
    assert Results(any_engine, cfg).pairwise_counts == plain
