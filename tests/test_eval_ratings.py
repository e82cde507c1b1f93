"""Bradley–Terry, win rates, bootstrap CIs and vote loading over the immutable vote log."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from evaluation.ratings import (
    SCALE,
    Outcome,
    bradley_terry,
    load_pairwise_outcomes,
    win_rate_matrix,
)
from storage.db import session_scope
from tests.eval_seed import rater, seed_generations, seed_pair, seed_round, vote

TRUE = {"ref": 1000.0, "m1": 1150.0, "m2": 1060.0, "m3": 930.0, "m4": 820.0, "m5": 700.0}


def synthetic(n: int, seed: int, truth: dict[str, float] = TRUE) -> list[Outcome]:
    """Votes drawn from a known Bradley–Terry model (Elo scale), uniform over model pairs."""
    rng = np.random.default_rng(seed)
    models = sorted(truth)
    i = rng.integers(0, len(models), n)
    j = (i + rng.integers(1, len(models), n)) % len(models)
    diff = np.array([truth[models[a]] - truth[models[b]] for a, b in zip(i, j, strict=True)])
    a_wins = rng.random(n) < 1 / (1 + 10 ** (-diff / 400))
    return [
        Outcome(models[a], models[b], "A" if w else "B")
        for a, b, w in zip(i, j, a_wins, strict=True)
    ]


def test_bt_recovers_known_strengths() -> None:
    res = bradley_terry(synthetic(30_000, seed=1), reference="ref", n_boot=100)
    assert res.warnings == []
    assert [r.model for r in res.ranked()] == sorted(TRUE, key=lambda m: -TRUE[m])
    assert res.ratings["ref"].rating == pytest.approx(1000.0)
    for m, true in TRUE.items():
        assert res.ratings[m].rating == pytest.approx(true, abs=20), m
        assert res.ratings[m].lo <= res.ratings[m].rating <= res.ratings[m].hi
    assert res.ratings["m1"].rank == 1 and res.ratings["m5"].rank == 6
    assert sum(r.n_votes for r in res.ratings.values()) == 2 * 30_000


def test_bt_bootstrap_ci_coverage_near_nominal() -> None:
    covered = total = 0
    for rep in range(30):
        res = bradley_terry(synthetic(800, seed=100 + rep), reference="ref", n_boot=200, seed=rep)
        for m, true in TRUE.items():
            if m == "ref":
                continue  # anchored: its interval is a point by construction
            total += 1
            covered += res.ratings[m].lo <= true <= res.ratings[m].hi
    rate = covered / total
    assert 0.85 <= rate <= 0.995, rate


def test_ties_count_as_half_wins_and_both_bad_policy() -> None:
    split = [Outcome("x", "y", "A"), Outcome("x", "y", "B")] * 5
    ties = [Outcome("x", "y", "tie")] * 10
    a = bradley_terry(split, n_boot=0)
    b = bradley_terry(ties, n_boot=0)
    assert a.ratings["x"].rating == pytest.approx(b.ratings["x"].rating)
    assert a.ratings["x"].rating == pytest.approx(1000.0)
    # 3 wins + 2 ties vs 1 win: x scores 4 of 6
    mixed = (
        [Outcome("x", "y", "A")] * 3
        + [Outcome("y", "x", "both_bad")] * 2
        + [Outcome("y", "x", "A")]
    )
    as_tie = bradley_terry(mixed, n_boot=0)
    gap = as_tie.ratings["x"].rating - as_tie.ratings["y"].rating
    assert gap == pytest.approx(SCALE * math.log(4 / 2), abs=2)
    excl = bradley_terry(mixed, n_boot=0, both_bad="exclude")
    gap2 = excl.ratings["x"].rating - excl.ratings["y"].rating
    assert gap2 == pytest.approx(SCALE * math.log(3 / 1), abs=3)
    assert excl.n_outcomes == 4


def test_bt_disconnected_graph_and_missing_reference_are_explained() -> None:
    votes = [Outcome("a", "b", "A"), Outcome("b", "a", "A")] * 3 + [
        Outcome("c", "d", "A"),
        Outcome("d", "c", "B"),
    ]
    res = bradley_terry(votes, reference="a", n_boot=20)
    assert set(res.ratings) == {"a", "b"}
    assert set(res.unrated) == {"c", "d"}
    assert any("disconnected" in w and "c, d" in w for w in res.warnings)
    assert any("c never lost" in w for w in res.warnings) is False  # c is unrated, no bound talk
    res2 = bradley_terry(votes, reference="zzz", n_boot=0)
    assert any("reference model 'zzz' has no pairwise votes" in w for w in res2.warnings)
    empty = bradley_terry([], reference="a")
    assert empty.ratings == {} and "no pairwise votes" in empty.warnings[0]


def test_bt_one_sided_model_gets_finite_bound_and_warning() -> None:
    votes = [Outcome("champ", "b", "A")] * 5 + [Outcome("b", "c", "A"), Outcome("c", "b", "A")]
    res = bradley_terry(votes, reference="b", n_boot=50)
    champ = res.ratings["champ"]
    assert math.isfinite(champ.rating) and champ.rating > 1200
    assert any("champ never lost" in w for w in res.warnings)


def test_rank_ranges_from_cis() -> None:
    res = bradley_terry(synthetic(400, seed=3), reference="ref", n_boot=200)
    for r in res.ratings.values():
        assert 1 <= r.rank_lo <= r.rank <= r.rank_hi <= len(TRUE)
    big = bradley_terry(synthetic(50_000, seed=4), reference="ref", n_boot=100)
    # with plenty of votes every gap here is resolved: ranges collapse to the rank
    assert all(r.rank_lo == r.rank == r.rank_hi for r in big.ratings.values())


def test_win_rate_matrix() -> None:
    votes = [Outcome("a", "b", "A")] * 3 + [Outcome("b", "a", "A"), Outcome("a", "b", "tie")]
    models, m = win_rate_matrix([*votes, Outcome("c", "a", "both_bad")])
    assert models == ["a", "b", "c"]
    assert m[0, 1] == pytest.approx(3.5 / 5) and m[1, 0] == pytest.approx(1.5 / 5)
    assert m[0, 2] == pytest.approx(0.5)
    assert math.isnan(m[1, 2]) and math.isnan(m[0, 0])
    with pytest.raises(ValueError, match="unknown pairwise result"):
        win_rate_matrix([Outcome("a", "b", "C")])


def test_load_pairwise_outcomes_uses_latest_event_and_retractions(any_engine: Engine) -> None:
    engine = any_engine
    gens = seed_generations(engine, {"ref": ["r0"], "small": ["s0"]}, reference="ref")
    rnd = seed_round(engine)
    pair = seed_pair(engine, gens[("small", 0)], gens[("ref", 0)], rnd)
    alice, bob, carol = rater(engine, "alice"), rater(engine, "bob"), rater(engine, "carol")
    vote(engine, pair, alice, "A")
    vote(engine, pair, alice, "B")  # changed her mind: B counts
    vote(engine, pair, bob, "tie")
    vote(engine, pair, bob, action="remove")  # retracted
    vote(engine, pair, carol, "both_bad")
    vote(engine, pair, carol, kind="score", target="A", score=7)  # another kind: ignored
    with session_scope(engine) as s:
        outs = load_pairwise_outcomes(s)
    assert sorted(o.result for o in outs) == ["B", "both_bad"]
    assert all(o.model_a == "small" and o.model_b == "ref" for o in outs)


def test_load_pairwise_outcomes_completion_filter_and_cap(engine: Engine) -> None:
    gens = seed_generations(engine, {"ref": ["r0", "r1"], "small": ["s0", "s1"]}, reference="ref")
    rnd = seed_round(engine)
    p1 = seed_pair(engine, gens[("small", 0)], gens[("ref", 0)], rnd)
    p2 = seed_pair(engine, gens[("ref", 1)], gens[("small", 1)], rnd)
    done, quitter = rater(engine, "done"), rater(engine, "quitter")
    vote(engine, p1, done, "A")
    vote(engine, p2, done, "A")
    vote(engine, p1, quitter, "B")
    with session_scope(engine) as s:
        assert len(load_pairwise_outcomes(s)) == 3
        kept = load_pairwise_outcomes(s, require_completion=True)
        capped = load_pairwise_outcomes(s, max_votes_per_rater=1)
    assert sorted((o.model_a, o.result) for o in kept) == [("ref", "A"), ("small", "A")]
    assert len(capped) == 2


def test_empty_and_many_models() -> None:
    models, m = win_rate_matrix([])
    assert models == [] and m.shape == (0, 0)
    # 120 models in a ring plus random extra games: the batch is fitted in slices
    rng = np.random.default_rng(5)
    names = [f"m{i:03d}" for i in range(120)]
    votes = [Outcome(names[i], names[(i + 1) % 120], "A" if rng.random() < 0.6 else "B")
             for i in range(120) for _ in range(5)]  # fmt: skip
    res = bradley_terry(votes, reference="m000", n_boot=30)
    assert len(res.ratings) == 120 and res.ratings["m000"].rating == pytest.approx(1000.0)
    assert all(r.lo <= r.rating <= r.hi for r in res.ratings.values())
