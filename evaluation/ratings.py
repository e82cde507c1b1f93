"""Pairwise human votes -> win rates and Bradley–Terry ratings with bootstrap CIs.

Ratings use the Elo-like scale of Chatbot Arena: rating = 400·log10(strength) + 1000, so a
400-point gap means 10:1 odds, and the reference model is anchored at 1000 when it has votes.
Ties count as half a win for each side. "Both bad" also counts as a tie by default: the rater
found the two equally unacceptable, which says they are indistinguishable, not that one is
better (Chatbot Arena treats its "tie (bothbad)" the same way); pass both_bad="exclude" to drop
those votes instead.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from sqlmodel import Session

from evaluation.votes import (
    cap_per_rater,
    completed_only,
    effective_votes,
    pairwise_results,
    round_pairs,
)

RESULTS = ("A", "B", "tie", "both_bad")
BothBad = Literal["tie", "exclude"]
SCALE = 400.0 / math.log(10.0)  # natural-log strength -> Elo points
INIT = 1000.0
# A weak ridge (a N(0, 10²) prior on natural-log strengths) keeps the fit finite when a model
# won or lost every comparison and fixes the free additive constant; it is negligible otherwise.
RIDGE = 0.005


@dataclass(frozen=True)
class Outcome:
    """One effective pairwise vote: A better, B better, tie, or both bad."""

    model_a: str
    model_b: str
    result: str


@dataclass(frozen=True)
class ModelRating:
    model: str
    rating: float
    lo: float
    hi: float
    rank: int
    rank_lo: int
    rank_hi: int
    n_votes: int


@dataclass
class BTResult:
    """Ratings of the models in the rated comparison graph, and why others were left out."""

    ratings: dict[str, ModelRating]
    reference: str | None
    n_outcomes: int
    n_boot: int
    warnings: list[str] = field(default_factory=list)
    unrated: dict[str, str] = field(default_factory=dict)

    def ranked(self) -> list[ModelRating]:
        return sorted(self.ratings.values(), key=lambda r: (-r.rating, r.model))


def load_pairwise_outcomes(
    session: Session,
    *,
    require_completion: bool = False,
    max_votes_per_rater: int | None = None,
) -> list[Outcome]:
    """Effective pairwise votes as outcomes between model names (see evaluation.votes)."""
    if not require_completion and max_votes_per_rater is None:
        # Fast path: counts per distinct result straight from SQL, one (immutable) Outcome
        # object per result repeated, in order of first appearance, which is all the tally
        # (and so the bootstrap) depends on.
        out: list[Outcome] = []
        for a, b, choice, n in pairwise_results(session):
            out += [Outcome(a, b, choice)] * n
        return out
    votes = effective_votes(session, "pairwise")
    if require_completion:
        votes = completed_only(votes, round_pairs(session))
    if max_votes_per_rater is not None:
        votes = cap_per_rater(votes, max_votes_per_rater)
    return [Outcome(v.model_a, v.model_b, v.choice or "") for v in votes]


def _points(result: str, both_bad: BothBad) -> float | None:
    """Points for model_a: 1 win, 0 loss, 0.5 tie; None when the vote is not counted."""
    if result == "A":
        return 1.0
    if result == "B":
        return 0.0
    if result == "tie" or (result == "both_bad" and both_bad == "tie"):
        return 0.5
    if result == "both_bad":
        return None
    raise ValueError(f"unknown pairwise result {result!r}; expected one of {RESULTS}")


def _tally(
    outcomes: Iterable[Outcome], both_bad: BothBad
) -> tuple[list[str], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Unique rows (i, j, points of i) with counts; i < j, self-pairs dropped."""
    counts: dict[tuple[str, str, float], int] = defaultdict(int)
    for o in outcomes:
        pts = _points(o.result, both_bad)
        if pts is None or o.model_a == o.model_b:
            continue
        if o.model_a < o.model_b:
            counts[(o.model_a, o.model_b, pts)] += 1
        else:
            counts[(o.model_b, o.model_a, 1.0 - pts)] += 1
    models = sorted({k[0] for k in counts} | {k[1] for k in counts})
    idx = {m: i for i, m in enumerate(models)}
    ij = np.array([(idx[a], idx[b]) for a, b, _ in counts], dtype=np.int64).reshape(-1, 2)
    pts_arr = np.array([k[2] for k in counts], dtype=np.float64)
    cnt = np.array(list(counts.values()), dtype=np.float64)
    return models, ij, pts_arr, cnt


def _components(n: int, ij: NDArray[np.int64]) -> list[list[int]]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in ij:
        parent[find(int(a))] = find(int(b))
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[find(i)].append(i)
    return list(groups.values())


def fit_bt(
    ij: NDArray[np.int64], pts: NDArray[np.float64], weights: NDArray[np.float64], n: int
) -> NDArray[np.float64]:
    """Bradley–Terry MLE (with the weak ridge) for a batch of weightings of the same rows.

    weights: (B, R) counts per unique row; returns (B, n) natural-log strengths. Newton's
    method on the concave log-likelihood, vectorized over the batch.
    """
    from scipy import sparse

    weights = np.atleast_2d(weights)
    b, rows = weights.shape[0], len(ij)
    # Scatter rows into pairwise totals: wins[b, i, j] = points i scored against j. A sparse
    # (rows x n²) indicator keeps this O(B·rows) however many votes the rows stand for.
    ind_ij = sparse.csr_matrix(
        (np.ones(rows), (np.arange(rows), ij[:, 0] * n + ij[:, 1])), shape=(rows, n * n)
    )
    ind_ji = sparse.csr_matrix(
        (np.ones(rows), (np.arange(rows), ij[:, 1] * n + ij[:, 0])), shape=(rows, n * n)
    )
    wins = np.asarray(ind_ij.T @ (weights * pts).T + ind_ji.T @ (weights * (1 - pts)).T)
    wins = wins.T.reshape(b, n, n)
    games = wins + wins.transpose(0, 2, 1)
    score = wins.sum(axis=2)
    r = np.zeros((b, n))
    eye = np.eye(n)
    for _ in range(100):
        prob = 1.0 / (1.0 + np.exp(r[:, None, :] - r[:, :, None]))  # P(i beats j)
        grad = score - (games * prob).sum(axis=2) - RIDGE * r
        h = games * prob * (1.0 - prob)
        neg_hess = h.sum(axis=2)[:, :, None] * eye - h + RIDGE * eye
        step = np.linalg.solve(neg_hess, grad[:, :, None])[:, :, 0]
        step = np.clip(step, -4.0, 4.0)  # damping for near-separated data
        r += step
        if float(np.max(np.abs(step), initial=0.0)) < 1e-9:
            break
    return r


def bradley_terry(
    outcomes: Sequence[Outcome],
    reference: str | None = None,
    n_boot: int = 200,
    seed: int = 0,
    both_bad: BothBad = "tie",
    ci: float = 0.95,
) -> BTResult:
    """Bradley–Terry ratings with percentile bootstrap CIs and rank ranges.

    The bootstrap reweights the unique (model, model, result) rows with multinomial counts, so
    a million votes cost no more than a few thousand rows. Only one connected comparison graph
    can be put on a common scale: the reference's (else the one with most votes); models
    outside it are listed in `unrated` with the reason, never given made-up numbers.
    """
    models, ij, pts, cnt = _tally(outcomes, both_bad)
    result = BTResult(ratings={}, reference=reference, n_outcomes=int(cnt.sum()), n_boot=n_boot)
    if not models:
        result.warnings.append("no pairwise votes yet: nothing to rate")
        return result
    comps = _components(len(models), ij)
    ref_idx = models.index(reference) if reference in models else None
    if reference is not None and ref_idx is None:
        result.warnings.append(
            f"reference model '{reference}' has no pairwise votes: ratings are centred on 1000"
        )

    def comp_votes(c: list[int]) -> float:
        s = set(c)
        return float(sum(w for (a, _), w in zip(ij.tolist(), cnt, strict=True) if a in s))

    main = next((c for c in comps if ref_idx in c), None) or max(comps, key=comp_votes)
    if len(comps) > 1:
        for c in comps:
            if c is not main:
                for i in c:
                    result.unrated[models[i]] = (
                        "not connected to the rated models by any vote; rate it against them"
                    )
        result.warnings.append(
            f"the comparison graph is disconnected ({len(comps)} groups): only "
            f"{', '.join(models[i] for i in sorted(main))} can be rated on one scale; "
            f"{', '.join(sorted(result.unrated))} need votes against them"
        )
    keep = np.isin(ij[:, 0], main)
    remap = {old: new for new, old in enumerate(sorted(main))}
    sub_models = [models[i] for i in sorted(main)]
    sub_ij = np.vectorize(remap.__getitem__, otypes=[np.int64])(ij[keep]).reshape(-1, 2)
    sub_pts, sub_cnt = pts[keep], cnt[keep]
    n = len(sub_models)
    rng = np.random.default_rng(seed)
    total = int(sub_cnt.sum())
    boot = rng.multinomial(total, sub_cnt / total, size=n_boot) if n_boot > 0 else None
    weights = sub_cnt[None, :] if boot is None else np.vstack([sub_cnt[None, :], boot])
    weights = weights.astype(np.float64)
    # Fit the batch in slices so memory stays bounded (B x n x n arrays) with many models.
    # Many tiny solves run far faster single-threaded: OpenBLAS threads only add overhead.
    from threadpoolctl import threadpool_limits

    step = max(1, 4_000_000 // (n * n))
    with threadpool_limits(limits=1, user_api="blas"):
        r = np.vstack(
            [
                fit_bt(sub_ij, sub_pts, weights[i : i + step], n)
                for i in range(0, len(weights), step)
            ]
        )
    anchor = sub_models.index(reference) if reference in sub_models else None
    shift = r[:, [anchor]] if anchor is not None else r.mean(axis=1, keepdims=True)
    elo = SCALE * (r - shift) + INIT
    point = elo[0]
    alpha = (1 - ci) / 2
    lo, hi = (
        (np.quantile(elo[1:], alpha, axis=0), np.quantile(elo[1:], 1 - alpha, axis=0))
        if n_boot > 0
        else (point, point)
    )
    _warn_one_sided(result, sub_models, sub_ij, sub_pts, sub_cnt)
    n_votes = np.zeros(n)
    np.add.at(n_votes, sub_ij[:, 0], sub_cnt)
    np.add.at(n_votes, sub_ij[:, 1], sub_cnt)
    for i, m in enumerate(sub_models):
        result.ratings[m] = ModelRating(
            model=m,
            rating=float(point[i]),
            lo=float(lo[i]),
            hi=float(hi[i]),
            rank=1 + int(np.sum(point > point[i])),
            rank_lo=1 + int(np.sum(lo > hi[i])),
            rank_hi=n - int(np.sum(hi < lo[i])),
            n_votes=int(n_votes[i]),
        )
    return result


def _warn_one_sided(
    result: BTResult,
    models: list[str],
    ij: NDArray[np.int64],
    pts: NDArray[np.float64],
    cnt: NDArray[np.float64],
) -> None:
    """Flag models that won (or lost) every comparison: their rating is only a bound."""
    n = len(models)
    won = np.zeros(n)
    lost = np.zeros(n)
    np.add.at(won, ij[:, 0], cnt * pts)
    np.add.at(won, ij[:, 1], cnt * (1 - pts))
    np.add.at(lost, ij[:, 0], cnt * (1 - pts))
    np.add.at(lost, ij[:, 1], cnt * pts)
    for i, m in enumerate(models):
        if lost[i] == 0:
            result.warnings.append(
                f"{m} never lost a comparison: its rating is a lower bound (needs more votes)"
            )
        elif won[i] == 0:
            result.warnings.append(
                f"{m} never won a comparison: its rating is an upper bound (needs more votes)"
            )


def win_rate_matrix(
    outcomes: Iterable[Outcome], both_bad: BothBad = "tie"
) -> tuple[list[str], NDArray[np.float64]]:
    """models (sorted) and M[i, j] = share of i-vs-j votes that i won (ties half; NaN: none)."""
    models, ij, pts, cnt = _tally(outcomes, both_bad)
    n = len(models)
    wins = np.zeros((n, n))
    games = np.zeros((n, n))
    np.add.at(wins, (ij[:, 0], ij[:, 1]), cnt * pts)
    np.add.at(wins, (ij[:, 1], ij[:, 0]), cnt * (1 - pts))
    np.add.at(games, (ij[:, 0], ij[:, 1]), cnt)
    np.add.at(games, (ij[:, 1], ij[:, 0]), cnt)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = np.where(games > 0, wins / np.where(games > 0, games, 1), np.nan)
    return models, matrix
