"""Pairwise human votes -> win rates and Bradley–Terry ratings with bootstrap intervals.

Ratings use the Elo-like scale of Chatbot Arena: rating = 400·log10(strength) + 1000, so a
400-point gap means 10:1 odds, and the reference model is anchored at 1000 when it has votes.
Ties count as half a win for each side. "Both bad" also counts as a tie by default: the rater
found the two equally unacceptable, which says they are indistinguishable, not that one is
better (Chatbot Arena treats its "tie (bothbad)" the same way); `both_bad="exclude"` drops
those votes instead.

The fit is the maximum a posteriori estimate under an independent N(0, PRIOR_SD²) prior on
each model's natural-log strength (PRIOR_SD = 10: 1,737 Elo, negligible wherever the votes
bound a gap). The prior keeps the fit finite when the *win graph* (an edge i → j when i took
points from j) is not strongly connected — a group that never lost to another group has no
finite maximum-likelihood gap — and then the prior, not the votes, sets that gap: the result
warns and marks the ratings whose distance to the reference is set that way (`bound`).

Intervals are percentile bootstrap intervals over votes. The bootstrap's random seed derives
from the data (a hash of the sorted vote counts), so the same votes give the same intervals on
every surface and every replica, whatever order they were stored in.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

RESULTS = ("A", "B", "tie", "both_bad")
BothBad = Literal["tie", "exclude"]
Bound = Literal["lower", "upper", "prior"]
SCALE = 400.0 / math.log(10.0)  # natural-log strength -> Elo points
INIT = 1000.0
PRIOR_SD = 10.0  # prior N(0, PRIOR_SD²) on natural-log strengths
RIDGE = 1.0 / PRIOR_SD**2


@dataclass(frozen=True)
class Outcome:
    """One effective pairwise vote: A better, B better, tie, or both bad."""

    model_a: str
    model_b: str
    result: str


# (model A, model B, result, number of votes): what evaluation.human.votes.pairwise_results returns.
Count = tuple[str, str, str, int]


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
    # None: the votes bound this model's distance to the anchor. 'lower': it never lost to the
    # anchor's group, so its rating is only a lower bound set by the prior; 'upper': it never
    # won against it; 'prior': no chain of votes orders it against the anchor at all.
    bound: Bound | None = None


@dataclass(frozen=True)
class Diff:
    """A model's rating minus another's, with the bootstrap interval of the difference."""

    point: float
    lo: float
    hi: float
    prior_set: bool  # the two are in different groups of the win graph


@dataclass
class BTResult:
    """Ratings of the models in the rated comparison graph, and why others were left out."""

    ratings: dict[str, ModelRating]
    reference: str | None
    n_outcomes: int
    n_boot: int
    ci: float = 0.95
    seed: int = 0
    warnings: list[str] = field(default_factory=list)
    unrated: dict[str, str] = field(default_factory=dict)
    # Strongly connected groups of the win graph, best first; one group when the graph is
    # strongly connected (every gap bounded by the votes).
    groups: list[list[str]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # column order of `samples`
    samples: NDArray[np.float64] | None = field(default=None, repr=False)  # (n_boot, n) Elo

    def ranked(self) -> list[ModelRating]:
        return sorted(self.ratings.values(), key=lambda r: (-r.rating, r.model))

    @property
    def anchor(self) -> str | None:
        return self.reference if self.reference in self.ratings else None

    def group_of(self, model: str) -> int | None:
        return next((i for i, g in enumerate(self.groups) if model in g), None)

    def diff(self, model: str, other: str | None = None) -> Diff | None:
        """model − other (default: the reference), interval from the paired bootstrap."""
        other = other or self.reference
        if other is None or model not in self.ratings or other not in self.ratings:
            return None
        point = self.ratings[model].rating - self.ratings[other].rating
        lo = hi = point
        if self.samples is not None and len(self.samples):
            d = (
                self.samples[:, self.models.index(model)]
                - self.samples[:, self.models.index(other)]
            )
            alpha = (1 - self.ci) / 2
            lo, hi = (float(x) for x in np.quantile(d, [alpha, 1 - alpha]))
        return Diff(point, lo, hi, self.group_of(model) != self.group_of(other))


def outcome_counts(outcomes: Iterable[Outcome]) -> list[Count]:
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for o in outcomes:
        counts[(o.model_a, o.model_b, o.result)] += 1
    return [(a, b, r, n) for (a, b, r), n in counts.items()]


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


def _as_counts(data: Sequence[Outcome] | Sequence[Count]) -> list[Count]:
    if data and isinstance(data[0], Outcome):
        return outcome_counts(data)  # type: ignore[arg-type]
    return list(data)  # type: ignore[arg-type]


def _tally(
    data: Sequence[Outcome] | Sequence[Count], both_bad: BothBad
) -> tuple[list[str], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Unique rows (i, j, points of i) with counts, i < j, in a canonical (sorted) order:
    nothing downstream depends on the order the votes were stored in."""
    counts: dict[tuple[str, str, float], int] = defaultdict(int)
    for a, b, result, n in _as_counts(data):
        pts = _points(result, both_bad)
        if pts is None or a == b or n <= 0:
            continue
        if a < b:
            counts[(a, b, pts)] += n
        else:
            counts[(b, a, 1.0 - pts)] += n
    keys = sorted(counts)
    models = sorted({k[0] for k in keys} | {k[1] for k in keys})
    idx = {m: i for i, m in enumerate(models)}
    ij = np.array([(idx[a], idx[b]) for a, b, _ in keys], dtype=np.int64).reshape(-1, 2)
    pts_arr = np.array([k[2] for k in keys], dtype=np.float64)
    cnt = np.array([counts[k] for k in keys], dtype=np.float64)
    return models, ij, pts_arr, cnt


def data_seed(models: list[str], ij: NDArray[np.int64], pts: NDArray[np.float64],
              cnt: NDArray[np.float64]) -> int:  # fmt: skip
    """A 63-bit seed from the canonical tally: equal votes, equal seed."""
    h = hashlib.sha256()
    for (i, j), p, c in zip(ij.tolist(), pts.tolist(), cnt.tolist(), strict=True):
        h.update(f"{models[i]}\x1f{models[j]}\x1f{p:g}\x1f{c:g}\x1e".encode())
    return int.from_bytes(h.digest()[:8], "big") >> 1


def _graph(n: int, src: NDArray[np.int64], dst: NDArray[np.int64]) -> csr_matrix:
    """The directed graph with an edge src[k] → dst[k] for every k (a sparse n x n matrix).

    Each row keeps its neighbours in descending order: scipy's search takes them from the
    end, so it visits them in ascending order and groups the votes leave unordered come out
    in the same order on every run (the first model's search first)."""
    from scipy import sparse

    order = np.lexsort((-dst, src))
    src, dst = src[order], dst[order]
    new = np.ones(len(src), dtype=bool)
    new[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    src, dst = src[new], dst[new]
    indptr = np.searchsorted(src, np.arange(n + 1))
    return sparse.csr_matrix((np.ones(len(dst)), dst, indptr), shape=(n, n))


def _components(n: int, ij: NDArray[np.int64]) -> list[list[int]]:
    """Connected components of the comparison graph (an edge per voted pair), each sorted,
    in the order of their first model."""
    from scipy.sparse.csgraph import connected_components

    k, labels = connected_components(_graph(n, ij[:, 0], ij[:, 1]), directed=False)
    return sorted((np.flatnonzero(labels == c).tolist() for c in range(k)), key=min)


def win_graph_groups(
    n: int, ij: NDArray[np.int64], pts: NDArray[np.float64]
) -> tuple[list[list[int]], set[tuple[int, int]]]:
    """Strongly connected components of the win graph (i → j when i took points from j) in
    topological order, best first, and the edges between components (as component indices).

    The Bradley–Terry maximum-likelihood estimate is finite exactly when this graph is
    strongly connected (Zermelo 1929; Ford 1957)."""
    from scipy.sparse.csgraph import connected_components

    src = np.concatenate([ij[pts > 0, 0], ij[pts < 1, 1]])
    dst = np.concatenate([ij[pts > 0, 1], ij[pts < 1, 0]])
    k, labels = connected_components(_graph(n, src, dst), directed=True, connection="strong")
    # scipy (Pearce's variant of Tarjan's algorithm) numbers the components as its search
    # finishes them, sinks first: reversed, every edge points down the list.
    comps = [np.flatnonzero(labels == c).tolist() for c in range(k - 1, -1, -1)]
    where = k - 1 - labels
    between = {(int(a), int(b)) for a, b in zip(where[src], where[dst], strict=True) if a != b}
    return comps, between


def fit_bt(
    ij: NDArray[np.int64],
    pts: NDArray[np.float64],
    weights: NDArray[np.float64],
    n: int,
    init: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Bradley–Terry MAP estimates (prior N(0, PRIOR_SD²)) for a batch of weightings of the
    same rows.

    weights: (B, R) counts per unique row; returns (B, n) natural-log strengths. Newton's
    method on the concave log-posterior, vectorized over the batch; `init` (n,): where
    every fit starts (a bootstrap starts at the point estimate: fewer steps, same optimum).
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
    r = np.zeros((b, n)) if init is None else np.tile(init, (b, 1))
    eye = np.eye(n)
    for _ in range(200):
        prob = 1.0 / (1.0 + np.exp(r[:, None, :] - r[:, :, None]))  # P(i beats j)
        grad = score - (games * prob).sum(axis=2) - RIDGE * r
        h = games * prob * (1.0 - prob)
        neg_hess = h.sum(axis=2)[:, :, None] * eye - h + RIDGE * eye
        step = np.linalg.solve(neg_hess, grad[:, :, None])[:, :, 0]
        step = np.clip(step, -4.0, 4.0)  # damping for near-separated data
        r += step
        # 1e-8 in log-strength is 4e-6 Elo. A tighter bound can sit below the rounding floor of
        # the solve (the prior-only overall level makes it ill-conditioned: steps of ~3e-10
        # were measured on 1M votes), and then every bootstrap batch ran all 200 steps.
        if float(np.max(np.abs(step), initial=0.0)) < 1e-8:
            break
    return r


def bradley_terry(
    outcomes: Sequence[Outcome] | Sequence[Count],
    reference: str | None = None,
    n_boot: int = 1000,
    seed: int | None = None,
    both_bad: BothBad = "tie",
    ci: float = 0.95,
) -> BTResult:
    """Bradley–Terry ratings with percentile bootstrap intervals and rank ranges.

    `outcomes`: Outcome objects or (model A, model B, result, count) rows. The bootstrap
    reweights the unique (model, model, result) rows with multinomial counts, so a million
    votes cost no more than a few thousand rows. `seed=None` derives the seed from the data.
    Only one connected comparison graph can be put on a common scale: the reference's (else
    the one with most votes); models outside it are listed in `unrated` with the reason, never
    given made-up numbers.
    """
    models, ij, pts, cnt = _tally(outcomes, both_bad)
    result = BTResult(
        ratings={}, reference=reference, n_outcomes=int(cnt.sum()), n_boot=n_boot, ci=ci
    )
    if not models:
        result.warnings.append("no pairwise votes yet: nothing to rate")
        return result
    comps = _components(len(models), ij)
    ref_idx = models.index(reference) if reference in models else None
    if reference is not None and ref_idx is None:
        result.warnings.append(
            f"reference model '{reference}' has no pairwise votes: ratings are centred on 1000"
        )

    def comp_votes(c: list[int]) -> tuple[float, list[str]]:
        s = set(c)
        votes = float(sum(w for (a, _), w in zip(ij.tolist(), cnt, strict=True) if a in s))
        return votes, [models[i] for i in c]

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
    result.seed = data_seed(sub_models, sub_ij, sub_pts, sub_cnt) if seed is None else seed
    rng = np.random.default_rng(result.seed)
    total = int(sub_cnt.sum())
    boot = rng.multinomial(total, sub_cnt / total, size=n_boot) if n_boot > 0 else None
    weights = sub_cnt[None, :] if boot is None else np.vstack([sub_cnt[None, :], boot])
    weights = weights.astype(np.float64)
    # Fit the batch in slices so memory stays bounded (B x n x n arrays) with many models.
    # Many tiny solves run far faster single-threaded: OpenBLAS threads only add overhead.
    from threadpoolctl import threadpool_limits

    step = max(1, 4_000_000 // (n * n))
    with threadpool_limits(limits=1, user_api="blas"):
        point_fit = fit_bt(sub_ij, sub_pts, weights[:1], n)
        # Each resample starts at the point estimate (deterministic: the same data, the same
        # start), which it is close to: about half the Newton steps from zero.
        r = np.vstack(
            [point_fit]
            + [
                fit_bt(sub_ij, sub_pts, weights[i : i + step], n, init=point_fit[0])
                for i in range(1, len(weights), step)
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
    result.models = sub_models
    result.samples = elo[1:] if n_boot > 0 else None
    bounds = _win_graph(result, sub_models, sub_ij, sub_pts, anchor)
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
            bound=bounds.get(i),
        )
    return result


def _win_graph(
    result: BTResult,
    models: list[str],
    ij: NDArray[np.int64],
    pts: NDArray[np.float64],
    anchor: int | None,
) -> dict[int, Bound]:
    """Record the win graph's groups, warn when it is not strongly connected, and say which
    ratings the prior bounds: relative to the anchor (the reference, else the group with the
    most models)."""
    comps, between = win_graph_groups(len(models), ij, pts)
    result.groups = [[models[i] for i in c] for c in comps]
    if len(comps) == 1:
        return {}
    where = {v: c for c, comp in enumerate(comps) for v in comp}
    above: dict[int, set[int]] = defaultdict(set)  # component -> components it reaches
    for c in range(len(comps) - 1, -1, -1):  # sinks first: reach sets built bottom-up
        for a, b in between:
            if a == c:
                above[c] |= {b} | above[b]
    home = (
        where[anchor] if anchor is not None else max(range(len(comps)), key=lambda c: len(comps[c]))
    )
    bounds: dict[int, Bound] = {}
    for v in range(len(models)):
        c = where[v]
        if c == home:
            continue
        if home in above[c]:
            bounds[v] = "lower"
        elif c in above[home]:
            bounds[v] = "upper"
        else:
            bounds[v] = "prior"
    for c, comp in enumerate(comps):
        names = ", ".join(models[i] for i in comp)
        beaten = sorted({models[j] for (a, b) in between if a == c for j in comps[b]})
        if beaten:
            result.warnings.append(
                f"{names} never lost to {', '.join(beaten)}: the gap is set by the prior, not "
                "the votes (its interval is marked; more votes will bound it)"
            )
    return bounds


def win_rate_matrix(
    outcomes: Sequence[Outcome] | Sequence[Count], both_bad: BothBad = "tie"
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
