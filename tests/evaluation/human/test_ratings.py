"""Bradley–Terry, win rates, bootstrap CIs and vote loading over the immutable vote log."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from evaluation.human.ratings import (
    PRIOR_SD,
    RIDGE,
    SCALE,
    Outcome,
    bradley_terry,
    outcome_counts,
    win_graph_groups,
    win_rate_matrix,
)
from evaluation.human.votes import VotePolicy, pairwise_results
from storage.db import session_scope
from tests.support.eval_seed import rater, seed_generations, seed_pair, seed_round, vote

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
    assert any("champ never lost to b, c" in w for w in res.warnings)
    # Its rating is only a lower bound that the prior sets; the others are bounded by votes.
    assert champ.bound == "lower"
    assert res.ratings["b"].bound is None and res.ratings["c"].bound is None
    assert res.groups == [["champ"], ["b", "c"]]
    d = res.diff("champ")
    assert d is not None and d.prior_set


def test_a_group_always_beating_another_is_flagged_both_ways() -> None:
    """{a, b} (who trade wins) always beat {c, d} (who trade wins): the win graph has two
    strongly connected groups; with the reference in the top group the bottom group's
    ratings are upper bounds, and from the bottom group's view the top's are lower bounds."""
    top = [Outcome("a", "b", "A"), Outcome("b", "a", "A")] * 4
    bottom = [Outcome("c", "d", "A"), Outcome("d", "c", "A")] * 4
    cross = [Outcome("a", "c", "A"), Outcome("d", "b", "B"), Outcome("b", "c", "tie")] * 3
    # a tie gives c points against b: c -> b, so c joins... no: ties make an edge both ways.
    res = bradley_terry(top + bottom + cross, reference="a", n_boot=40)
    assert res.groups == [["a", "b", "c", "d"]]  # the tie connects both ways: one group
    cross = [Outcome("a", "c", "A"), Outcome("d", "b", "B")] * 3
    res = bradley_terry(top + bottom + cross, reference="a", n_boot=40)
    assert res.groups == [["a", "b"], ["c", "d"]]
    assert {m: r.bound for m, r in res.ratings.items()} == {
        "a": None, "b": None, "c": "upper", "d": "upper"
    }
    assert any(w.startswith("a, b never lost to c, d") for w in res.warnings)
    low = bradley_terry(top + bottom + cross, reference="c", n_boot=0)
    assert {m: r.bound for m, r in low.ratings.items()} == {
        "a": "lower", "b": "lower", "c": None, "d": None
    }
    # Strongly connected data: no group warnings, no bounds.
    fine = bradley_terry(synthetic(2000, seed=9), reference="ref", n_boot=0)
    assert len(fine.groups) == 1 and all(r.bound is None for r in fine.ratings.values())


def test_win_graph_groups_match_a_reachability_reference() -> None:
    """On random win graphs the groups are the strongly connected components (i and j share
    a group exactly when each reaches the other; reachability by repeated boolean matrix
    products, not a graph search), each sorted, best first: every edge between groups
    points down the list, and `between` is exactly those edges."""
    rng = np.random.default_rng(5)
    for _ in range(300):
        n = int(rng.integers(1, 9))
        rows = int(rng.integers(0, 16)) if n > 1 else 0
        pairs = [tuple(sorted(rng.choice(n, 2, replace=False).tolist())) for _ in range(rows)]
        ij = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        pts = rng.choice([0.0, 0.5, 1.0], size=len(pairs))
        edge = np.zeros((n, n), dtype=bool)
        for (i, j), p in zip(pairs, pts.tolist(), strict=True):
            edge[i, j] |= p > 0
            edge[j, i] |= p < 1
        reach = edge | np.eye(n, dtype=bool)
        for _ in range(n):
            reach = reach | ((reach.astype(int) @ reach.astype(int)) > 0)
        same = reach & reach.T
        comps, between = win_graph_groups(n, ij, pts)
        assert sorted(v for c in comps for v in c) == list(range(n))
        where = {v: k for k, c in enumerate(comps) for v in c}
        for c in comps:
            assert c == sorted(c)
        for i in range(n):
            for j in range(n):
                assert (where[i] == where[j]) == bool(same[i, j])
        crossing = {(where[i], where[j]) for i, j in zip(*np.nonzero(edge), strict=True)}
        crossing = {(a, b) for a, b in crossing if a != b}
        assert between == crossing and all(a < b for a, b in between)


def _choix_pairs(outcomes: list[Outcome], models: list[str]) -> list[tuple[int, int]]:
    idx = {m: i for i, m in enumerate(models)}
    out = []
    for o in outcomes:
        a, b = idx[o.model_a], idx[o.model_b]
        out.append((a, b) if o.result == "A" else (b, a))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_fit_equals_choix_map_estimate(seed: int) -> None:
    """Independent reference: choix's MAP estimate under the same isotropic Gaussian prior,
    on strongly connected data and on data with an undefeated model. (choix penalizes
    alpha·‖θ‖², i.e. a prior variance of 1/(2·alpha), so alpha = RIDGE / 2.)"""
    import choix

    votes = synthetic(600, seed=seed)
    votes += [Outcome("champ", m, "A") for m in ("ref", "m3", "m5")] * 2  # never loses
    models = sorted({o.model_a for o in votes} | {o.model_b for o in votes})
    theirs = choix.opt_pairwise(len(models), _choix_pairs(votes, models), alpha=RIDGE / 2,
                                tol=1e-12)  # fmt: skip
    ours = bradley_terry(votes, reference="ref", n_boot=0)
    ref = models.index("ref")
    for i, m in enumerate(models):
        want = SCALE * (theirs[i] - theirs[ref]) + 1000.0
        assert ours.ratings[m].rating == pytest.approx(want, abs=0.01), m
    assert ours.ratings["champ"].bound == "lower"


def test_fit_with_ties_equals_an_independent_scipy_map() -> None:
    """Ties are half a win each way; checked against a direct minimization of the negative
    log-posterior with scipy (a different optimizer and a different formulation)."""
    from scipy.optimize import minimize

    votes = synthetic(300, seed=5) + [Outcome("m1", "m2", "tie")] * 20
    votes += [Outcome("m4", "ref", "both_bad")] * 7
    models = sorted({o.model_a for o in votes} | {o.model_b for o in votes})
    idx = {m: i for i, m in enumerate(models)}
    pts = {"A": 1.0, "B": 0.0, "tie": 0.5, "both_bad": 0.5}
    rows = [(idx[o.model_a], idx[o.model_b], pts[o.result]) for o in votes]

    def neg_log_post(r: np.ndarray) -> float:
        total = 0.0
        for i, j, p in rows:
            d = r[i] - r[j]
            total -= p * -np.logaddexp(0.0, -d) + (1 - p) * -np.logaddexp(0.0, d)
        return total + 0.5 * float(r @ r) / PRIOR_SD**2

    best = minimize(neg_log_post, np.zeros(len(models)), method="BFGS", options={"gtol": 1e-9})
    ours = bradley_terry(votes, reference="ref", n_boot=0)
    for m, i in idx.items():
        want = SCALE * (best.x[i] - best.x[idx["ref"]]) + 1000.0
        assert ours.ratings[m].rating == pytest.approx(want, abs=0.05), m


def test_intervals_do_not_depend_on_the_order_votes_were_stored() -> None:
    """The bootstrap is seeded from the data: the same votes in any order (or as counts)
    give identical ratings and intervals; different votes give a different seed."""
    votes = synthetic(60, seed=21)
    rng = np.random.default_rng(0)
    a = bradley_terry(votes, reference="ref", n_boot=300)
    for _ in range(5):
        shuffled = [votes[i] for i in rng.permutation(len(votes))]
        b = bradley_terry(shuffled, reference="ref", n_boot=300)
        assert b.ratings == a.ratings and b.seed == a.seed
    # Mirrored rows (B vs A with the result flipped) are the same comparison.
    mirrored = [Outcome(o.model_b, o.model_a, {"A": "B", "B": "A"}[o.result]) for o in votes]
    assert bradley_terry(mirrored, reference="ref", n_boot=300).ratings == a.ratings
    assert bradley_terry(outcome_counts(votes), reference="ref", n_boot=300).ratings == a.ratings
    other = bradley_terry(votes[:-1], reference="ref", n_boot=300)
    assert other.seed != a.seed


def test_the_documented_prior_is_the_prior_in_code() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "evaluation.md").read_text()
    assert f"N(0, {PRIOR_SD:g}²)" in doc
    assert pytest.approx(1 / PRIOR_SD**2) == RIDGE


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
        outs = pairwise_results(s)
    assert sorted((a, b, r, n) for a, b, r, n in outs) == [
        ("small", "ref", "B", 1), ("small", "ref", "both_bad", 1)
    ]


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
        assert sum(n for *_, n in pairwise_results(s)) == 3
        kept = pairwise_results(s, VotePolicy(require_completion=True))
        capped = pairwise_results(s, VotePolicy(max_votes_per_rater=1))
    assert sorted((a, r) for a, _, r, _ in kept) == [("ref", "A"), ("small", "A")]
    assert sum(n for *_, n in capped) == 2


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
