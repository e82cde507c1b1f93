"""RBO, Jaccard and meta-evaluation on hand-computed examples (Webber et al. 2010)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.auto.metaeval import jaccard_bottom_k, meta_evaluate, rank_models, rbo


def test_rbo_identical_and_disjoint() -> None:
    assert rbo(list("abcd"), list("abcd"), p=0.9) == pytest.approx(1.0)
    assert rbo(list("abc"), list("xyz"), p=0.9) == pytest.approx(0.0)


def test_rbo_hand_computed_even_lengths() -> None:
    # d=1: X=0; d=2: X=2 (A=1); d=3: X=2 (A=2/3). p=0.5:
    # RBO_ext = (2/3)·p³ + (1-p)/p·(0·p + 1·p² + (2/3)·p³) = 1/12 + 1/4 + 1/12 = 5/12
    assert rbo(["a", "b", "c"], ["b", "a", "d"], p=0.5) == pytest.approx(5 / 12)


def test_rbo_hand_computed_uneven_lengths() -> None:
    # S=[a,b] (s=2), L=[a,c,b] (l=3), p=0.5; X1=1, X2=1, X3=2 (S exhausted).
    # sum1 = 1·.5 + ½·.25 + ⅔·.125 = 17/24; sum2 = X_s·(3-2)/(2·3)·.125 = 1/48
    # tail = ((2-1)/3 + 1/2)·.125 = 5/48; total = 17/24 + 1/48 + 5/48 = 5/6
    assert rbo(["a", "b"], ["a", "c", "b"], p=0.5) == pytest.approx(5 / 6)
    assert rbo(["a", "c", "b"], ["a", "b"], p=0.5) == pytest.approx(5 / 6)  # symmetric


def test_rbo_is_top_weighted() -> None:
    base = list("abcdef")
    swap_top = list("bacdef")
    swap_bottom = list("abcdfe")
    assert rbo(base, swap_bottom, 0.9) > rbo(base, swap_top, 0.9)


def test_rbo_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="p must be in"):
        rbo(["a"], ["a"], p=1.0)
    with pytest.raises(ValueError, match="unique"):
        rbo(["a", "a"], ["a"], p=0.5)


def test_jaccard_bottom_k_hand_computed() -> None:
    human = ["m1", "m2", "m3", "m4", "m5"]  # best first: bottom-2 = {m5, m4}
    method = ["m2", "m1", "m5", "m3", "m4"]  # bottom-2 = {m4, m3}
    assert jaccard_bottom_k(human, method, 2) == pytest.approx(1 / 3)
    assert jaccard_bottom_k(human, method, 3) == 1.0  # {m5,m4,m3} both
    assert jaccard_bottom_k(human, ["m5", "m1", "m2", "m3", "m4"], 2) == pytest.approx(1 / 3)
    assert jaccard_bottom_k(human, human, 2) == 1.0
    # mappings rank by score, higher is better
    assert jaccard_bottom_k({"a": 3, "b": 2, "c": 1}, {"a": 1, "b": 2, "c": 3}, 1) == 0.0
    with pytest.raises(ValueError, match="k must be"):
        jaccard_bottom_k(human, method, 0)


def test_meta_evaluate_ranks_good_and_bad_methods() -> None:
    human = {f"m{i}": float(i) for i in range(8)}
    good = {m: v + 0.1 for m, v in human.items()}
    reverse = {m: -v for m, v in human.items()}
    partial = {"m0": 1.0}  # fewer than two shared models: skipped
    res = {
        a.method: a for a in meta_evaluate({"good": good, "rev": reverse, "x": partial}, human, k=3)
    }
    assert set(res) == {"good", "rev"}
    assert res["good"].jaccard == 1.0 and res["good"].rbo == pytest.approx(1.0)
    assert res["good"].spearman == pytest.approx(1.0) and res["good"].kendall == pytest.approx(1.0)
    assert res["rev"].jaccard == 0.0 and res["rev"].rbo == 0.0
    assert res["rev"].spearman == pytest.approx(-1.0)
    assert res["good"].n_models == 8


def test_meta_evaluate_constant_scores_give_nan_correlation() -> None:
    human = {"a": 1.0, "b": 2.0, "c": 3.0}
    res = meta_evaluate({"flat": {"a": 5.0, "b": 5.0, "c": 5.0}}, human, k=2)
    assert math.isnan(res[0].spearman)
    assert rank_models({"b": 1.0, "a": 1.0}) == ["a", "b"]


def test_correlations_match_scipy_with_ties() -> None:
    """The numpy Spearman/Kendall (no scipy.stats import in reports) equal scipy's τ-b."""
    from scipy import stats

    from evaluation.auto.metaeval import _correlations

    rng = np.random.default_rng(3)
    checked = 0
    for n in (2, 3, 7, 30):
        for t in range(60):
            a = rng.integers(0, 4, n).astype(float) if t % 2 else rng.normal(size=n)
            b = rng.integers(0, 3, n).astype(float) if t % 3 else rng.normal(size=n)
            if len(set(a)) < 2 or len(set(b)) < 2:
                continue
            rho, tau = _correlations(list(a), list(b))
            assert rho == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
            assert tau == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)
            checked += 1
    assert checked > 100
