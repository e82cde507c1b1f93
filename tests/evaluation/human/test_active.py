"""evaluation.human.active: the Laplace posterior, what a vote is worth, which comparisons matter,
the stopping rule and the gold schedule — each against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import approx_fprime, minimize

from evaluation.human.active import (
    SETTLE_VOTES,
    Plan,
    choose,
    comparison_settled,
    comparison_weights,
    gold_due,
    gold_phase,
    laplace,
    normal_bt,
    pair_matrix,
    pair_utility,
    plan_batch,
    posterior,
    settled,
    stop_confidence,
    update_cov,
    votes_to_settle,
    z_value,
)
from evaluation.human.decision import Comparison, Decision
from evaluation.human.ratings import PRIOR_SD, bradley_terry

Counts = list[tuple[str, str, str, int]]


def _counts(rng: np.random.Generator, truth: list[float], n: int) -> Counts:
    models = [f"m{i}" for i in range(len(truth))]
    acc: dict[tuple[str, str, str], int] = {}
    for _ in range(n):
        i, j = rng.choice(len(truth), 2, replace=False)
        p = 1 / (1 + math.exp(truth[j] - truth[i]))
        u = rng.random()
        r = "tie" if u < 0.1 else "A" if u < 0.1 + 0.9 * p else "B"
        acc[(models[i], models[j], r)] = acc.get((models[i], models[j], r), 0) + 1
    return [(a, b, r, k) for (a, b, r), k in acc.items()]


def _log_post(r: np.ndarray, ij: np.ndarray, pts: np.ndarray, cnt: np.ndarray) -> float:
    d = r[ij[:, 0]] - r[ij[:, 1]]
    return float(np.sum(cnt * (pts * d - np.logaddexp(0, d))) - np.sum(r**2) / (2 * PRIOR_SD**2))


def test_laplace_is_the_map_and_the_inverse_hessian_of_the_log_posterior() -> None:
    from evaluation.human.active import tally_rows

    rng = np.random.default_rng(4)
    counts = _counts(rng, [0, -0.4, 0.3, -1.0], 400)
    models = ["m0", "m1", "m2", "m3"]
    ij, pts, cnt = tally_rows(counts, models)
    mean, cov = laplace(ij, pts, cnt, 4)
    # Independent: scipy's optimizer on the log posterior, and a finite-difference Hessian.
    best = minimize(lambda r: -_log_post(r, ij, pts, cnt), np.zeros(4), method="BFGS", tol=1e-10)
    assert np.allclose(mean[0], best.x, atol=1e-4)
    grad = lambda r: approx_fprime(r, lambda x: -_log_post(x, ij, pts, cnt), 1e-6)  # noqa: E731
    hess = np.array([approx_fprime(mean[0], lambda x, k=k: grad(x)[k], 1e-4) for k in range(4)])
    hess = (hess + hess.T) / 2
    # The curvature itself, and the covariance of the differences to m0 (what intervals use).
    # The overall level is set by the prior alone (curvature 1/PRIOR_SD² ≈ 0.01): inverting the
    # whole finite-difference Hessian would magnify its rounding along that direction.
    assert np.allclose(hess, np.linalg.inv(cov[0]), rtol=2e-2, atol=2e-3)
    contrast = np.array([[-1.0, 1, 0, 0], [-1, 0, 1, 0], [-1, 0, 0, 1]])
    assert np.allclose(contrast @ np.linalg.inv(hess) @ contrast.T,
                       contrast @ cov[0] @ contrast.T, rtol=2e-2, atol=1e-4)  # fmt: skip


def test_normal_intervals_match_the_bootstrap_with_enough_votes() -> None:
    rng = np.random.default_rng(1)
    counts = _counts(rng, [0, -0.3, -0.6, 0.1, -1.0, -0.2], 3000)
    models = [f"m{i}" for i in range(6)]
    bt = bradley_terry(counts, reference="m0", n_boot=1000)
    post = posterior(counts, models)
    nb = normal_bt(models, post.mean, post.cov, post.votes, "m0")
    for m in models[1:]:
        boot, norm = bt.diff(m), nb.diff(m)
        assert boot is not None and norm is not None
        assert norm.point == pytest.approx(boot.point, abs=0.01)
        width = boot.hi - boot.lo
        assert abs(norm.lo - boot.lo) < 0.1 * width and abs(norm.hi - boot.hi) < 0.1 * width


def test_a_votes_worth_is_the_variance_it_removes() -> None:
    """U(i, j) against brute force: add the information to the precision and invert."""
    rng = np.random.default_rng(2)
    counts = _counts(rng, [0, -0.2, -0.5, -0.9], 300)
    post = posterior(counts, ["m0", "m1", "m2", "m3"])
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    x = pair_matrix(pairs, 4)
    w = np.array([0.0, 0.7, 0.3, 0.0])  # comparisons m1 − m0 and m2 − m0
    util = pair_utility(post.mean, post.cov, w, 0, x, votes=3.0)[0]
    prec = np.linalg.inv(post.cov)
    for k, (i, j) in enumerate(pairs):
        p = 1 / (1 + math.exp(post.mean[j] - post.mean[i]))
        after = np.linalg.inv(prec + 3.0 * p * (1 - p) * np.outer(x[k], x[k]))
        want = 0.0
        for c, wc in ((1, 0.7), (2, 0.3)):
            u = np.eye(4)[c] - np.eye(4)[0]
            before = u @ post.cov @ u
            want += wc * (before - u @ after @ u) / before
        assert util[k] == pytest.approx(want, rel=1e-6)
        assert np.allclose(update_cov(post.cov, x[k], 3.0 * p * (1 - p))[0], after, atol=1e-9)
    # The direct comparison m1–m0 is worth more than a pair that touches neither.
    assert util[pairs.index((0, 1))] > util[pairs.index((2, 3))]


def _cmp(model: str, status: str, diff: float | None, lo: float | None, hi: float | None,
         n: int, cost: float | None) -> Comparison:  # fmt: skip
    return Comparison(model, status, diff, lo, hi, n, False, cost, "", None, "")  # type: ignore[arg-type]


def _decision(kind: str, comps: list[Comparison], model: str | None = None) -> Decision:
    return Decision(kind, model, "ref", "ref", 50.0, 0.95, "headline", comps)  # type: ignore[arg-type]


def test_the_comparison_that_decides_first_weighs_most() -> None:
    z = z_value(0.95)
    comps = [
        _cmp("cheap", "ruled_out", -300, -340, -260, 200, 0.001),  # settled: weight 0
        _cmp("near", "open", -40, -40 - 30 * z, -40 + 30 * z, 80, 0.002),
        _cmp("next", "open", 0, -25 * z, 25 * z, 80, 0.003),
        _cmp("dear", "open", 0, -100, 100, 10, 0.5),  # dearer than the reference
        _cmp("unpriced", "unrated", None, None, None, 0, None),
    ]
    w = comparison_weights(_decision("undecided", comps), reference_cost=0.1)
    p_near = 0.5 * (1 + math.erf((-40 + 50) / 30 / math.sqrt(2)))  # P(near ends acceptable)
    p_next = 0.5 * (1 + math.erf(50 / 25 / math.sqrt(2)))
    assert set(w) == {"near", "next", "unpriced"}
    assert w["near"] == pytest.approx(1.0)
    assert w["next"] == pytest.approx(1 - p_near, rel=1e-6)
    assert w["unpriced"] == pytest.approx((1 - p_near) * (1 - p_next), rel=1e-6)
    # A settled decision asks for nothing.
    done = [_cmp("cheap", "ruled_out", -300, -340, -260, 200, 0.001),
            _cmp("near", "acceptable", 0, -20, 20, 400, 0.002)]  # fmt: skip
    assert comparison_weights(_decision("switch", done, "near")) == {}


def test_the_stopping_rule_asks_for_more_than_one_lucky_look() -> None:
    z, zs = z_value(0.95), z_value(stop_confidence(0.95))
    assert stop_confidence(0.95) == pytest.approx(0.99)
    ruled = _cmp("a", "ruled_out", -300, -350, -250, 100, 0.001)
    # Acceptable at 95% (lo = −45 > −50) but not once widened to 99%: not settled yet.
    half = 30.0
    just = _cmp("b", "acceptable", -45 + half, -45, -45 + 2 * half, 200, 0.002)
    assert not comparison_settled(just, 50, 0.95)
    assert not settled(_decision("switch", [ruled, just], "b"))
    extra = (zs - z) * half / z
    solid = _cmp("b", "acceptable", -45 + extra + 1 + half, -45 + extra + 1,
                 -45 + extra + 1 + 2 * half, 200, 0.002)  # fmt: skip
    assert comparison_settled(solid, 50, 0.95)
    assert settled(_decision("switch", [ruled, solid], "b"))
    # Too few votes: a handful of lucky votes does not settle anything.
    lucky = _cmp("b", "acceptable", 300, 100, 500, SETTLE_VOTES - 1, 0.002)
    assert not settled(_decision("switch", [ruled, lucky], "b"))
    assert not settled(_decision("too_close", [ruled, just]))
    # About how many more votes: n·(h·zs/z / distance)² − n.
    open_c = _cmp("c", "open", -20, -60, 20, 100, 0.002)
    want = math.ceil(100 * (40 * zs / z / 30) ** 2 - 100)
    assert votes_to_settle(open_c, 50, 0.95) == want


def test_gold_pairs_come_at_the_rate_evenly_and_never_first() -> None:
    for rate in (0.1, 0.2, 0.25):
        for phase in np.linspace(0, 1 - rate - 1e-9, 7):
            k = np.arange(1, 201)
            due = gold_due(k, rate, phase)
            assert not due[0]
            assert due.sum() == pytest.approx(200 * rate, abs=1)
            gaps = np.diff(np.flatnonzero(due))
            assert gaps.min() >= math.floor(1 / rate) and gaps.max() <= math.ceil(1 / rate)
    assert gold_due(5, 0.0, 0.3) is False
    phases = [gold_phase(f"rater-{k}", 0.1) for k in range(200)]
    assert all(0 <= p < 0.9 for p in phases) and np.std(phases) > 0.2


def test_choose_takes_the_most_useful_pair_or_the_least_voted_when_exploring() -> None:
    util = np.array([[0.1, 0.5, 0.2], [0.0, 0.0, 0.0]])
    votes = np.array([[5.0, 9.0, 1.0], [3.0, 2.0, 7.0]])
    allowed = np.array([[True, True, True], [True, True, True]])
    jitter = np.zeros((2, 3))
    got = choose(util, votes, allowed, np.array([False, False]), jitter)
    assert got.tolist() == [1, 1]  # the best pair; nothing useful -> the least voted
    got = choose(util, votes, allowed, np.array([True, False]), jitter)
    assert got.tolist() == [2, 1]  # exploring -> the least voted
    allowed[0, 1] = False
    assert choose(util, votes, allowed, np.array([False, False]), jitter).tolist()[0] == 2
    assert choose(util, votes, np.zeros((2, 3), dtype=bool), np.array([False, False]),
                  jitter).tolist() == [-1, -1]  # fmt: skip


def test_a_round_batch_spreads_over_what_matters_and_keeps_exploring() -> None:
    rng = np.random.default_rng(3)
    models = ["ref", "c1", "c2", "c3"]
    truth = {"ref": 0.0, "c1": -0.1, "c2": -2.0, "c3": -0.05}
    counts = []
    for a in models:
        for b in models:
            if a < b:
                p = 1 / (1 + math.exp(truth[b] - truth[a]))
                wins = int(rng.binomial(40, p))
                counts += [(a, b, "A", wins), (a, b, "B", 40 - wins)]
    post = posterior(counts, sorted(models))
    pairs = [(m, n) for i, m in enumerate(sorted(models)) for n in sorted(models)[i + 1 :]]
    plan = Plan(sorted(models), "ref", pairs, np.zeros(len(pairs)), np.full(len(pairs), 40.0),
                {"c1": 1.0}, False, False, post)  # fmt: skip
    batch = plan_batch(plan, 10, explore=0.2, votes_per_pair=5, rng=rng)
    assert len(batch) == 10
    direct = sum(1 for p in batch if set(p) == {"c1", "ref"})
    assert direct >= 5  # most of the batch on the comparison that decides
    assert len(set(batch)) >= 3  # 2 exploration picks and more than one informative pair
    only = {("c2", "c3")}
    assert set(plan_batch(plan, 4, explore=0.0, rng=rng, allowed=only)) == only
