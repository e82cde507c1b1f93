"""evaluation.human.style: the covariate Bradley–Terry fit against scipy and scikit-learn, what it
recovers from votes that favour length, and the report's style section. (A judge's length bias
from stored verdicts: tests/evaluation/auto/test_judge_style.py.)"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression
from sqlalchemy.engine import Engine

from evaluation.human.ratings import RIDGE, SCALE, ModelRating, bradley_terry
from evaluation.human.style import (
    NEEDS_MORE_VOTES,
    StyleRating,
    fit_style,
    style_cell,
    style_control,
    style_diff,
    style_features,
    style_shown,
)
from tests.support.eval_seed import rater, seed_generations, seed_pair, seed_round, vote


def test_features_count_words_and_markdown() -> None:
    text = "# Plan\n\nYou **can** do it:\n- ship the __fix__\n* rest\n2. call Ada\nNo #tag here."
    # 15 words (\w+: "__fix__" is one), 1 header (not "#tag"), 3 list items, 2 bold spans.
    assert style_features(text).tolist() == [15, 1, 3, 2]
    d = style_diff(np.array([[10.0, 0, 2, 0]]), np.array([[30.0, 0, 0, 1]]))
    assert d.tolist() == [[-0.5, 0.0, 1.0, -1.0]]


def _data(rng: np.random.Generator, n: int = 600) -> tuple[np.ndarray, ...]:
    ia = rng.integers(0, 4, n)
    ib = (ia + rng.integers(1, 4, n)) % 4
    d = rng.normal(size=(n, 2))
    truth = np.array([0.0, -0.5, 0.3, -1.0])
    logit = truth[ia] - truth[ib] + d @ np.array([0.8, -0.2])
    u = rng.random(n)
    y = np.where(u < 0.1, 0.5, (u - 0.1) / 0.9 < 1 / (1 + np.exp(-logit))).astype(float)
    w = rng.integers(1, 4, n).astype(float)
    return ia, ib, d, y, w


def test_the_fit_is_the_penalized_logistic_regression() -> None:
    rng = np.random.default_rng(0)
    ia, ib, d, y, w = _data(rng)
    theta, cov = fit_style(ia, ib, d, y, w, 4)
    x = np.zeros((len(y), 6))
    x[np.arange(len(y)), ia] += 1
    x[np.arange(len(y)), ib] -= 1
    x[:, 4:] = d

    def nll(t: np.ndarray) -> float:
        z = x @ t
        return float(-np.sum(w * (y * z - np.logaddexp(0, z))) + RIDGE * np.sum(t**2) / 2)

    def jac(t: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-(x @ t)))
        return -(x.T @ (w * (y - p))) + RIDGE * t

    best = minimize(nll, np.zeros(6), jac=jac, method="BFGS", tol=1e-12)
    assert np.allclose(theta, best.x, atol=1e-5)
    # scikit-learn: ties as two half-weight rows, L2 with C = 1/RIDGE, no intercept.
    xx = np.vstack([x, x])
    yy = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    ww = np.concatenate([w * y, w * (1 - y)])
    lr = LogisticRegression(C=1 / RIDGE, fit_intercept=False, tol=1e-12, max_iter=10_000)
    lr.fit(xx[ww > 0], yy[ww > 0], sample_weight=ww[ww > 0])
    assert np.allclose(theta, lr.coef_[0], atol=1e-4)
    # The covariance is the inverse Hessian of that objective (finite differences of its
    # gradient; compared as precision, whose common-shift direction is only the prior's).
    eps = 1e-6
    hess = np.array([(jac(theta + e) - jac(theta - e)) / (2 * eps) for e in np.eye(6) * eps])
    assert np.allclose(np.linalg.inv(cov), (hess + hess.T) / 2, rtol=1e-5, atol=1e-6)


def _dense_fit(ia: np.ndarray, ib: np.ndarray, d: np.ndarray, y: np.ndarray, w: np.ndarray,
               n: int) -> tuple[np.ndarray, np.ndarray]:
    """The fit as it was written before rows were merged: Newton's method on the dense
    design matrix [e_a − e_b | d], one row per given row."""
    k = d.shape[1]
    x = np.zeros((len(y), n + k))
    x[np.arange(len(y)), ia] += 1.0
    x[np.arange(len(y)), ib] -= 1.0
    x[:, n:] = d
    theta = np.zeros(n + k)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(x @ theta)))
        grad = x.T @ (w * (y - p)) - RIDGE * theta
        hess = (x * (w * p * (1 - p))[:, None]).T @ x + RIDGE * np.eye(n + k)
        step = np.clip(np.linalg.solve(hess, grad), -4.0, 4.0)
        theta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    p = 1.0 / (1.0 + np.exp(-(x @ theta)))
    hess = (x * (w * p * (1 - p))[:, None]).T @ x + RIDGE * np.eye(n + k)
    return theta, np.linalg.inv(hess)


def test_the_fit_on_merged_rows_is_the_fit_on_every_vote() -> None:
    """Votes on one pair of responses share (a, b, d): the fit merges them (weights summed,
    points averaged) and solves without the dense design matrix. Same MAP and covariance as
    the dense fit with one row per vote (ties: half a point), to 1e-6."""
    rng = np.random.default_rng(7)
    n, n_pairs = 6, 300
    pa = rng.integers(0, n, n_pairs)
    pb = (pa + rng.integers(1, n, n_pairs)) % n
    pd = rng.normal(size=(n_pairs, 3))
    pd[:40, 1] = 0.0  # some features equal on both sides
    votes = rng.integers(0, n_pairs, 4000)  # many votes per pair
    truth = rng.normal(size=n)
    logit = truth[pa[votes]] - truth[pb[votes]] + pd[votes] @ np.array([0.7, -0.3, 0.2])
    u = rng.random(len(votes))
    y = np.where(u < 0.15, 0.5, rng.random(len(votes)) < 1 / (1 + np.exp(-logit))).astype(float)
    ones = np.ones(len(votes))
    theta, cov = fit_style(pa[votes], pb[votes], pd[votes], y, ones, n)
    ref_theta, ref_cov = _dense_fit(pa[votes], pb[votes], pd[votes], y, ones, n)
    assert np.allclose(theta, ref_theta, atol=1e-6, rtol=0)
    assert np.allclose(cov, ref_cov, atol=1e-6, rtol=1e-6)
    # Rows already counted per (pair, choice), as the results service passes them: the same.
    key = votes * 3 + (y * 2).astype(int)
    uniq, count = np.unique(key, return_counts=True)
    rows, pts = uniq // 3, (uniq % 3) / 2
    theta2, cov2 = fit_style(pa[rows], pb[rows], pd[rows], pts, count.astype(float), n)
    assert np.allclose(theta2, ref_theta, atol=1e-6, rtol=0)
    assert np.allclose(cov2, ref_cov, atol=1e-6, rtol=1e-6)
    # Unmerged rows with unequal weights (the scipy/scikit-learn data): the dense fit too.
    ia, ib, d, yy, w = _data(rng)
    t3, c3 = fit_style(ia, ib, d, yy, w, 4)
    r3, rc3 = _dense_fit(ia, ib, d, yy, w, 4)
    assert np.allclose(t3, r3, atol=1e-9) and np.allclose(c3, rc3, atol=1e-9)


def test_style_control_takes_the_length_advantage_out_of_the_ratings() -> None:
    """A verbose model wins votes for its length; raw Bradley–Terry rates it up, the
    style-controlled fit puts it back near its true strength and finds the length effect."""
    rng = np.random.default_rng(1)
    truth = {"ref": 0.0, "verbose": -0.4, "terse": -0.4, "mid": -0.2}
    words = {"ref": 80, "verbose": 160, "terse": 40, "mid": 80}
    texts: dict[int, str] = {}
    rows = []
    gid = 0
    beta = 1.2  # per unit of (a − b)/(a + b)
    for _ in range(4000):
        a, b = rng.choice(list(truth), 2, replace=False)
        la, lb = (int(words[m] * rng.uniform(0.4, 1.6)) for m in (a, b))
        texts[gid], texts[gid + 1] = "w " * la, "w " * lb
        logit = truth[a] - truth[b] + beta * (la - lb) / (la + lb)
        choice = "A" if rng.random() < 1 / (1 + math.exp(-logit)) else "B"
        rows.append((str(a), str(b), gid, gid + 1, choice, 1.0))
        gid += 2
    res = style_control(rows, texts, "ref")
    raw = bradley_terry([(a, b, c, 1) for a, b, _, _, c, _ in rows], reference="ref", n_boot=0)
    true_elo = {m: 1000 + SCALE * v for m, v in truth.items()}
    style_err = abs(res.ratings["verbose"].rating - true_elo["verbose"])
    raw_err = abs(raw.ratings["verbose"].rating - true_elo["verbose"])
    assert raw_err > 40 and style_err < raw_err / 2
    c = res.coefficients["words"]
    assert c.lo < SCALE * beta * c.scale < c.hi and c.lo > 0
    assert "headers" not in res.coefficients and res.notes  # no markdown: left out, said so
    lo, hi = res.ratings["verbose"].lo, res.ratings["verbose"].hi
    assert lo < true_elo["verbose"] < hi


def test_the_report_shows_the_style_controlled_rating_and_rule_9s_counts(
    engine: Engine, tmp_path: Path
) -> None:
    from core.config import parse_config
    from evaluation.report import build_report
    from evaluation.results.service import Results

    texts = {"ref": [f"Good morning! {'Plan the day well. ' * (2 + i % 5)}" for i in range(8)],
             "cand": [f"Hi. {'Go! ' * (1 + i % 3)}" for i in range(8)]}  # fmt: skip
    gens = seed_generations(engine, texts, reference="ref")
    rnd = seed_round(engine)
    for i in range(8):
        pid = seed_pair(engine, gens[("ref", i)], gens[("cand", i)], rnd)
        for k in range(6):
            vote(engine, pid, rater(engine, f"v{i}-{k}"), "A" if k < 4 else "B")
    cfg = parse_config({"models": [
        {"name": "ref", "backend": "llamacpp", "model": "builtin:gemma3-270m", "reference": True},
        {"name": "cand", "backend": "llamacpp", "model": "builtin:gemma3-270m"}],
        "evaluation": {"bootstrap_rounds": 50}})  # fmt: skip
    res = Results(engine, cfg)
    style = res.style_ratings
    assert style is not None and set(style.ratings) == {"ref", "cand"}
    out = build_report(engine, cfg, tmp_path / "r", only=["bradley_terry"], results=res)
    md = out.md_path.read_text(encoding="utf-8")
    # every answer of ref is longer than every answer of cand: the fit cannot tell length
    # from model, so the column says so rather than printing a meaningless interval
    raw = res.ratings
    assert raw is not None
    cell = style_cell(style.ratings["cand"], raw.ratings["cand"])
    assert cell == NEEDS_MORE_VOTES
    assert "style-controlled" in md and f"| {cell} |" in md
    assert "## Rater quality and style control" in md
    assert "Rater quality: 48 rater(s), 48 counted pairwise vote(s)" in md
    assert "- crowd: " in md  # the crowd's own length bias


def _raw(lo: float, hi: float, bound: str | None = None) -> ModelRating:
    return ModelRating("m", (lo + hi) / 2, lo, hi, 1, 1, 1, 10, bound)  # type: ignore[arg-type]


def _style(lo: float, hi: float) -> StyleRating:
    return StyleRating("m", (lo + hi) / 2, lo, hi, 10)


def test_the_style_rule_by_hand() -> None:
    """Shown when the style interval is at most the raw width plus max(50% of it, 50 Elo)."""
    assert style_shown(_style(850, 1150), _raw(900, 1100))  # 300 <= 200 + 100
    assert not style_shown(_style(850, 1151), _raw(900, 1100))  # 301 > 300
    assert style_shown(_style(975, 1065), _raw(1000, 1040))  # 90 <= 40 + 50 (the floor)
    assert not style_shown(_style(975, 1066), _raw(1000, 1040))
    assert not style_shown(_style(990, 1010), _raw(900, 1100, "lower"))  # the prior's bound
    assert not style_shown(_style(990, 1010), None) and not style_shown(None, _raw(0, 1))
    assert style_cell(_style(850, 1150), _raw(900, 1100)) == "1000 [850, 1150]"
    assert style_cell(_style(-970, 1624), _raw(800, 1200)) == NEEDS_MORE_VOTES
    assert style_cell(None, _raw(900, 1100)) == ""


def _votes(n: int, seed: int) -> tuple[list[tuple[str, str, int, int, str, float]],
                                        dict[int, str]]:  # fmt: skip
    """n votes between three models whose answers vary in length by ±20% within each model
    (a fixed prompt template: each model's answers about as long as each other); votes favour
    length a little (beta 0.8 per unit of the normalized difference)."""
    rng = np.random.default_rng(seed)
    truth = {"ref": 0.0, "a": -0.3, "b": -0.1}
    words = {"ref": 80, "a": 120, "b": 60}
    texts: dict[int, str] = {}
    rows = []
    for gid in range(0, 2 * n, 2):
        a, b = (str(m) for m in rng.choice(list(truth), 2, replace=False))
        la, lb = (int(words[m] * rng.uniform(0.8, 1.2)) for m in (a, b))
        texts[gid], texts[gid + 1] = "w " * la, "w " * lb
        logit = truth[a] - truth[b] + 0.8 * (la - lb) / (la + lb)
        u = rng.random()
        choice = "tie" if u < 0.1 else ("A" if rng.random() < 1 / (1 + math.exp(-logit)) else "B")
        rows.append((a, b, gid, gid + 1, choice, 1.0))
    return rows, texts


def test_few_votes_need_more_votes_and_many_show_the_rating() -> None:
    """From 50 votes the style fit's intervals are far wider than the raw ones (length moves
    with the model, so the fit can hardly tell them apart): every candidate reads 'needs more
    votes'. From 5,000 they are within the tolerance: the ratings show. (Both widths shrink as
    1/√votes: the 50 Elo floor of the tolerance is what more votes reach.)"""
    for n, shown in ((50, False), (5000, True)):
        rows, texts = _votes(n, seed=n)
        style = style_control(rows, texts, "ref")
        raw = bradley_terry([(a, b, c, 1) for a, b, _, _, c, _ in rows], reference="ref",
                            n_boot=200, seed=1)  # fmt: skip
        for m in ("a", "b"):
            s, r = style.ratings[m], raw.ratings[m]
            assert style_shown(s, r) is shown, (n, m, s, r)
            cell = style_cell(s, r)
            assert cell == (f"{s.rating:.0f} [{s.lo:.0f}, {s.hi:.0f}]" if shown
                            else NEEDS_MORE_VOTES)  # fmt: skip
        if not shown:  # the widths behind the rule: style several times the raw one's
            s, r = style.ratings["a"], raw.ratings["a"]
            assert s.hi - s.lo > 1.5 * (r.hi - r.lo)


def test_rows_the_fit_cannot_use_are_left_out() -> None:
    """Same-model rows, zero counts, uncounted "both bad" votes (both_bad = "exclude") and rows
    whose responses have no features change nothing; a model only they name is not rated."""
    rng = np.random.default_rng(3)
    texts = {g: "w " * int(rng.integers(5, 60)) + "**b** " * int(rng.integers(0, 3))
             for g in range(200)}  # fmt: skip
    models = ["a", "b", "c"]
    clean = []
    for _ in range(600):
        i, j = rng.choice(3, 2, replace=False)
        ga, gb = (int(g) for g in rng.integers(0, 200, 2))
        clean.append((models[i], models[j], ga, gb, str(rng.choice(["A", "B", "tie"])),
                      float(rng.integers(1, 4))))  # fmt: skip
    junk = [("a", "a", 1, 2, "A", 3.0), ("a", "b", 1, 2, "B", 0.0),
            ("b", "c", 3, 4, "both_bad", 2.0), ("a", "c", 5, 999, "A", 1.0),
            ("zed", "a", 6, 998, "B", 2.0)]  # fmt: skip
    mixed = clean[:300] + junk + clean[300:]
    want = style_control(clean, texts, "a", both_bad="exclude")
    got = style_control(mixed, texts, "a", both_bad="exclude")
    assert set(got.ratings) == {"a", "b", "c"} and got.n_votes == want.n_votes
    for m in models:
        assert math.isclose(got.ratings[m].rating, want.ratings[m].rating, abs_tol=1e-9)
        assert math.isclose(got.ratings[m].lo, want.ratings[m].lo, abs_tol=1e-9)
    assert got.coefficients.keys() == want.coefficients.keys() == {"words", "bold"}
