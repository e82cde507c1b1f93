"""Style control: Bradley–Terry ratings with response length and markdown as covariates, as
Chatbot Arena's style control does, and the length bias of a fit.

A longer, more formatted answer can win a vote for its look. The style-controlled model
puts the look in the likelihood:

    logit P(A wins) = r_A − r_B + Σ_k β_k·d_k,   d_k = (f_k(A) − f_k(B)) / (f_k(A) + f_k(B))

with features f: words, markdown headers, list items and bold spans (d = 0 when both are 0),
each d_k scaled by its root mean square over the rated pairs (no centering: swapping A and B
flips the sign of every term). The fit is the MAP under the ratings' N(0, PRIOR_SD²) prior on
every parameter (evaluation.human.ratings), by Newton's method; r is the **style-controlled
rating** (Elo scale, reference at 1000) and β_k, in Elo, is what a typical difference in
feature k is worth in a vote. Ties count half, "both bad" as `[evaluation] both_bad` says.
Intervals are Wald intervals from the curvature at the MAP (the Laplace approximation): a
style fit has one row per rated pair of responses, too many to refit a thousand times for
every chat answer; with enough votes they match the bootstrap (tests).

A fit's **length bias** is its β_words (`length_bias`): the crowd's here, each LLM judge's
from the same fit on that judge method's verdicts in evaluation.auto.judge_style.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from statistics import NormalDist
from threading import Lock
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlmodel import Session

from evaluation.human.ratings import INIT, RIDGE, SCALE, BothBad, ModelRating, _points
from evaluation.human.votes import DEFAULT_POLICY, VotePolicy, effective_from, effective_votes
from storage.models import Generation, RatingPair

FEATURES = ("words", "headers", "lists", "bold")
FEATURE_LABEL = {"words": "length (words)", "headers": "markdown headers",
                 "lists": "list items", "bold": "bold spans"}  # fmt: skip
_WORD = re.compile(r"\w+")
_HEADER = re.compile(r"\s{0,3}#{1,6}\s+\S")
_LIST = re.compile(r"\s*(?:[-*+]|\d+[.)])\s+\S")
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
# When a style-controlled rating says something (`style_shown`): its interval is at most this
# much wider than the raw rating's (a share of the raw width, or this many Elo if more).
STYLE_TOLERANCE = 0.5
STYLE_TOLERANCE_ELO = 50.0
NEEDS_MORE_VOTES = "needs more votes"


def style_features(text: str) -> NDArray[np.float64]:
    """(words, markdown headers, list items, bold spans) of one response. Headers and list
    items are matched at line starts, line by line (a MULTILINE ^ scan is slow on long texts);
    the patterns run only when their marker characters occur."""
    lines = text.splitlines()
    headers = sum(1 for ln in lines if _HEADER.match(ln)) if "#" in text else 0
    items = sum(1 for ln in lines if _LIST.match(ln))
    bold = len(_BOLD.findall(text)) if "**" in text or "__" in text else 0
    return np.array([len(_WORD.findall(text)), headers, items, bold], dtype=np.float64)


def style_diff(fa: NDArray[np.float64], fb: NDArray[np.float64]) -> NDArray[np.float64]:
    """(f(A) − f(B)) / (f(A) + f(B)) per feature, 0 where both are 0 (rows: pairs)."""
    total = fa + fb
    return np.divide(fa - fb, total, out=np.zeros_like(total, dtype=np.float64), where=total > 0)


def aggregate_rows(
    ia: NDArray[np.int64],
    ib: NDArray[np.int64],
    d: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64],
           NDArray[np.float64]]:  # fmt: skip
    """The same rows with equal (a, b, d) merged: weight Σw, points Σw·y / Σw. The weighted
    log-likelihood Σ w·(y·η − log(1 + e^η)) of rows sharing η is W·(ȳ·η − log(1 + e^η)), so a
    fit on the merged rows is the same MAP and curvature (votes on one pair of responses share
    their style features: 100,000 votes make a few tens of thousands of rows)."""
    if len(y) == 0:
        return ia, ib, d, y, w
    key = np.ascontiguousarray(np.column_stack([ia.astype(np.float64), ib.astype(np.float64),
                                                d + 0.0]))  # +0.0: -0.0 and 0.0 are one row
    rows = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    weight = np.bincount(inverse, weights=w).astype(np.float64)
    points = np.bincount(inverse, weights=w * y) / np.where(weight > 0, weight, 1.0)
    return ia[first], ib[first], d[first], points.astype(np.float64), weight


def fit_style(
    ia: NDArray[np.int64],
    ib: NDArray[np.int64],
    d: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    n: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """MAP (θ = n strengths then k coefficients, natural-log units) and its covariance (the
    inverse negative Hessian) of logit P(A wins) = r_a − r_b + βᵀd, points y ∈ [0, 1] with
    weights w, prior N(0, PRIOR_SD²) on every parameter.

    Rows with equal (a, b, d) are merged first (`aggregate_rows`: the same MAP), and the
    design matrix [e_a − e_b | d] is never built: the gradient and the Hessian come from sums
    per model (bincount) and the k×k block of d, O(rows·k²) per Newton step instead of
    O(rows·(n + k)²)."""
    ia, ib, d, y, w = aggregate_rows(np.asarray(ia, dtype=np.int64),
                                     np.asarray(ib, dtype=np.int64),
                                     np.asarray(d, dtype=np.float64).reshape(len(y), -1),
                                     np.asarray(y, dtype=np.float64),
                                     np.asarray(w, dtype=np.float64))  # fmt: skip
    k = d.shape[1]
    eye = np.eye(n + k)
    pair_ab, pair_ba = ia * n + ib, ib * n + ia

    def per_model(v: NDArray[np.float64]) -> NDArray[np.float64]:
        """Σ over rows of v·(e_a − e_b): Eᵀv."""
        out = np.bincount(ia, weights=v, minlength=n) - np.bincount(ib, weights=v, minlength=n)
        return out.astype(np.float64)

    def curvature(theta: NDArray[np.float64]) -> tuple[NDArray[np.float64],
                                                        NDArray[np.float64]]:  # fmt: skip
        eta = theta[ia] - theta[ib] + d @ theta[n:]
        p = 1.0 / (1.0 + np.exp(-eta))
        s = w * p * (1 - p)
        hess = np.empty((n + k, n + k))
        diag = np.bincount(ia, weights=s, minlength=n) + np.bincount(ib, weights=s, minlength=n)
        off = np.bincount(pair_ab, weights=s, minlength=n * n) + np.bincount(
            pair_ba, weights=s, minlength=n * n)  # fmt: skip
        hess[:n, :n] = np.diag(diag) - off.reshape(n, n)
        sd = d * s[:, None]
        cross = np.column_stack([per_model(sd[:, j]) for j in range(k)]) if k else np.zeros((n, 0))
        hess[:n, n:] = cross
        hess[n:, :n] = cross.T
        hess[n:, n:] = d.T @ sd
        hess += RIDGE * eye
        return p, hess

    theta = np.zeros(n + k)
    for _ in range(100):
        p, hess = curvature(theta)
        r = w * (y - p)
        grad = np.concatenate([per_model(r), d.T @ r]) - RIDGE * theta
        step = np.clip(np.linalg.solve(hess, grad), -4.0, 4.0)
        theta += step
        if float(np.max(np.abs(step), initial=0.0)) < 1e-10:
            break
    _, hess = curvature(theta)
    cov = np.asarray(np.linalg.inv(hess), dtype=np.float64)
    return theta, cov


@dataclass(frozen=True)
class StyleRating:
    model: str
    rating: float  # style-controlled, Elo scale, reference at 1000
    lo: float
    hi: float
    n_votes: int


@dataclass(frozen=True)
class Coefficient:
    feature: str
    elo: float  # what one typical (RMS) difference of this feature is worth, in Elo
    lo: float
    hi: float
    scale: float  # the RMS of the normalized difference the coefficient is per


@dataclass
class StyleResult:
    ratings: dict[str, StyleRating]
    coefficients: dict[str, Coefficient]
    reference: str | None
    n_votes: int
    ci: float = 0.95
    features: tuple[str, ...] = FEATURES
    notes: list[str] = field(default_factory=list)

    def ranked(self) -> list[StyleRating]:
        return sorted(self.ratings.values(), key=lambda r: (-r.rating, r.model))

    def text(self, model: str) -> str:
        r = self.ratings.get(model)
        return f"{r.rating:.0f} [{r.lo:.0f}, {r.hi:.0f}]" if r is not None else "not rated"

    def lines(self) -> list[str]:
        """Plain sentences for the report."""
        if not self.ratings:
            return ["Style control: no rated pairs with response texts yet."]
        coef = "; ".join(
            f"{FEATURE_LABEL[c.feature]} {c.elo:+.0f} Elo [{c.lo:+.0f}, {c.hi:+.0f}]"
            for c in self.coefficients.values()
        )
        return [
            f"Style-controlled ratings (Bradley–Terry with length and markdown as covariates, "
            f"{self.n_votes} votes, {self.ci:.0%} Wald intervals). What a typical difference "
            f"is worth in a vote: {coef}.",
            *self.notes,
        ]


def style_shown(style: StyleRating | None, raw: ModelRating | None) -> bool:
    """Whether a style-controlled rating says something beside the raw one: the raw rating is
    bounded by the votes (not by the prior) and the style interval is no wider than the raw
    one's plus the tolerance (STYLE_TOLERANCE of its width, at least STYLE_TOLERANCE_ELO).

    The style fit spends the same votes on four more parameters; while the style features move
    with the models (each model's answers as long as each other's), the two cannot be told
    apart and the interval is far wider than the raw one (`327 [-970, 1624]` from 10 votes).
    Once the answers vary within each model, the interval closes in on the raw one."""
    if style is None or raw is None or raw.bound is not None:
        return False
    raw_width = max(raw.hi - raw.lo, 0.0)
    allowed = raw_width + max(STYLE_TOLERANCE * raw_width, STYLE_TOLERANCE_ELO)
    return style.hi - style.lo <= allowed


def style_cell(style: StyleRating | None, raw: ModelRating | None) -> str:
    """'1012 [950, 1070]' when the style-controlled rating says something (`style_shown`),
    else 'needs more votes' ('' for a model the style fit did not rate)."""
    if style is None:
        return ""
    if not style_shown(style, raw):
        return NEEDS_MORE_VOTES
    return f"{style.rating:.0f} [{style.lo:.0f}, {style.hi:.0f}]"


Row = tuple[str, str, int, int, str, float]  # model A, model B, generation A, B, choice, votes


def style_control(
    rows: Sequence[Row],
    texts: Mapping[int, str],
    reference: str | None,
    ci: float = 0.95,
    both_bad: BothBad = "tie",
    features: Mapping[int, NDArray[np.float64]] | None = None,
) -> StyleResult:
    """Style-controlled ratings and coefficients from (model A, model B, generation A,
    generation B, choice, votes) rows and the generations' texts (or their `features`)."""
    feats = features if features is not None else {g: style_features(t) for g, t in texts.items()}
    if not rows:
        return StyleResult({}, {}, reference, 0, ci)
    # Columns as arrays (a hundred thousand rows: no per-row Python beyond one map per column).
    col_a, col_b, col_ga, col_gb, col_c, col_n = (list(map(itemgetter(i), rows)) for i in range(6))
    size = len(rows)
    names = sorted(set(col_a) | set(col_b))
    name_idx = {x: i for i, x in enumerate(names)}
    ia = np.fromiter(map(name_idx.__getitem__, col_a), np.int64, size)
    ib = np.fromiter(map(name_idx.__getitem__, col_b), np.int64, size)
    choices = sorted(set(col_c), key=str)
    choice_idx = {c: i for i, c in enumerate(choices)}
    pts = np.array([np.nan if (v := _points(c, both_bad)) is None else v for c in choices],
                   dtype=np.float64)  # not counted: NaN, left out below
    y = pts[np.fromiter(map(choice_idx.__getitem__, col_c), np.int64, size)]
    w = np.fromiter(col_n, np.float64, size)
    gens = np.array(sorted(feats), dtype=np.int64)
    table = np.array([feats[int(g)] for g in gens]).reshape(len(gens), len(FEATURES))

    def position(col: list[Any]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        try:
            ids = np.fromiter(col, np.int64, size)
        except TypeError:  # a missing generation id: in no row kept
            ids = np.fromiter((-1 if g is None else g for g in col), np.int64, size)
        at = np.minimum(np.searchsorted(gens, ids), max(len(gens) - 1, 0))
        return at, (gens[at] == ids) if len(gens) else np.zeros(size, dtype=bool)

    at_a, has_a = position(col_ga)
    at_b, has_b = position(col_gb)
    keep = (ia != ib) & (w > 0) & ~np.isnan(y) & has_a & has_b
    result = StyleResult({}, {}, reference, int(w[keep].sum()), ci)
    if not keep.any():
        return result
    used_models = np.unique(np.concatenate([ia[keep], ib[keep]]))
    models = [names[i] for i in used_models]  # sorted, as names are
    idx = {x: i for i, x in enumerate(models)}
    renumber = np.full(len(names), -1, dtype=np.int64)
    renumber[used_models] = np.arange(len(used_models))
    ia, ib, y, w = renumber[ia[keep]], renumber[ib[keep]], y[keep], w[keep]
    d = style_diff(table[at_a[keep]], table[at_b[keep]])
    rms = np.sqrt((w[:, None] * d**2).sum(axis=0) / w.sum())
    used = rms > 1e-12
    result.features = tuple(f for f, u in zip(FEATURES, used, strict=True) if u)
    if not used.all():
        result.notes.append(
            "No variation in " + ", ".join(FEATURE_LABEL[f] for f, u in
                                           zip(FEATURES, used, strict=True) if not u)
            + ": left out of the fit."
        )  # fmt: skip
    d = d[:, used] / rms[used]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # small solves: threads only cost
        theta, cov = fit_style(ia, ib, d, y, w, len(models))
    z = NormalDist().inv_cdf(0.5 + ci / 2)
    anchor = idx.get(reference or "")
    votes = np.bincount(ia, weights=w, minlength=len(models)) + np.bincount(
        ib, weights=w, minlength=len(models))  # fmt: skip
    for m, i in idx.items():
        if anchor is None:
            point = SCALE * (theta[i] - theta[: len(models)].mean()) + INIT
            var = cov[i, i]
        else:
            point = SCALE * (theta[i] - theta[anchor]) + INIT
            var = cov[i, i] + cov[anchor, anchor] - 2 * cov[i, anchor]
        half = z * SCALE * math.sqrt(max(var, 0.0))
        result.ratings[m] = StyleRating(m, float(point), float(point - half),
                                        float(point + half), int(votes[i]))  # fmt: skip
    n = len(models)
    for k, f in enumerate(result.features):
        beta, half = SCALE * theta[n + k], z * SCALE * math.sqrt(max(cov[n + k, n + k], 0.0))
        result.coefficients[f] = Coefficient(f, float(beta), float(beta - half),
                                             float(beta + half),
                                             float(rms[used][k]))  # fmt: skip
    return result


_FEATURES: OrderedDict[tuple[str, int], NDArray[np.float64]] = OrderedDict()
_FEATURES_MAX = 500_000
_FEATURES_LOCK = Lock()


def generation_features(session: Session, ids: Iterable[int]) -> dict[int, NDArray[np.float64]]:
    """Style features of stored generations. A generation's text never changes, so its
    features are remembered in the process (by database and id; at most 500,000): after new
    votes only the new pairs' texts are read."""
    db = str(session.connection().engine.url)
    ids = set(ids)
    out: dict[int, NDArray[np.float64]] = {}
    with _FEATURES_LOCK:
        for i in ids:
            f = _FEATURES.get((db, i))
            if f is not None:
                out[i] = f
    missing = ids - out.keys()
    if missing:
        new = {i: style_features(t) for i, t in _texts(session, missing).items()}
        out.update(new)
        with _FEATURES_LOCK:
            _FEATURES.update({(db, i): f for i, f in new.items()})
            while len(_FEATURES) > _FEATURES_MAX:
                _FEATURES.popitem(last=False)
    return out


def _texts(session: Session, ids: Iterable[int]) -> dict[int, str]:
    g = Generation.__table__.c  # type: ignore[attr-defined]
    ids = sorted(set(ids))
    out: dict[int, str] = {}
    for start in range(0, len(ids), 900):
        q = select(g.id, g.text).where(g.id.in_(ids[start : start + 900]))
        out.update({i: t for i, t in session.connection().execute(q)})
    return out


def vote_rows(session: Session, policy: VotePolicy = DEFAULT_POLICY) -> list[Row]:
    """(model A, model B, generation A, generation B, choice, votes) of the counted pairwise
    votes under `policy` (evaluation.human.votes: the one definition)."""
    if policy.plain:
        e = effective_from("pairwise", as_of=policy.as_of, scope=policy.scope)
        q = e.counts(e.model_a.name, e.model_b.name, e.pair.generation_a_id,
                     e.pair.generation_b_id, e.vote.choice)  # fmt: skip
        return sorted((a, b, ga, gb, c, float(n))
                      for a, b, ga, gb, c, n in session.connection().execute(q))  # fmt: skip
    votes = effective_votes(session, "pairwise", policy)
    rp = RatingPair.__table__.c  # type: ignore[attr-defined]
    pair_ids = sorted({v.pair_id for v in votes})
    gens: dict[int, tuple[int, int]] = {}
    for start in range(0, len(pair_ids), 900):
        q = select(rp.id, rp.generation_a_id, rp.generation_b_id).where(
            rp.id.in_(pair_ids[start : start + 900]))  # fmt: skip
        gens.update({i: (a, b) for i, a, b in session.connection().execute(q)})
    counts: dict[tuple[str, str, int, int, str], float] = defaultdict(float)
    for v in votes:
        ga, gb = gens[v.pair_id]
        counts[(v.model_a, v.model_b, ga, gb, v.choice or "")] += 1
    return sorted((a, b, ga, gb, c, n) for (a, b, ga, gb, c), n in counts.items())


def style_ratings(
    session: Session,
    policy: VotePolicy = DEFAULT_POLICY,
    reference: str | None = None,
    ci: float = 0.95,
    both_bad: BothBad = "tie",
    rows: Sequence[Row] | None = None,
) -> StyleResult:
    """The style-controlled ratings of the counted human votes (`rows`: already counted, as
    the results service's tally gives them; default: read under `policy`)."""
    rows = vote_rows(session, policy) if rows is None else rows
    feats = generation_features(session, [r[2] for r in rows] + [r[3] for r in rows])
    return style_control(rows, {}, reference, ci, both_bad, features=feats)


def pair_generations(
    session: Session, ids: Collection[int] | None = None
) -> dict[int, tuple[int, int]]:
    """pair id -> (generation shown as A, as B): of `ids`, or of every pair."""
    rp = RatingPair.__table__.c  # type: ignore[attr-defined]
    q = select(rp.id, rp.generation_a_id, rp.generation_b_id)
    if ids is not None and len(ids) <= 900:
        q = q.where(rp.id.in_(sorted(ids)))
    result = session.connection().execute(q)
    try:  # plain DBAPI tuples: tens of thousands of pairs in one read
        return {i: (a, b) for i, a, b in result.cursor.fetchall()}
    finally:
        result.close()


def pair_rows(
    session: Session,
    counts: Mapping[tuple[int, str], int],
    models: Mapping[int, tuple[str, str]],
    gens: Mapping[int, tuple[int, int]] | None = None,
) -> list[Row]:
    """Rows from per-pair counts ((pair id, choice) -> votes) and the pairs' models
    (`gens`: the pairs' generations, when the caller holds them)."""
    if gens is None:
        gens = pair_generations(session, {pid for pid, _ in counts})
    return [(*models[pid], *gens[pid], c, float(n)) for (pid, c), n in counts.items()
            if pid in gens and pid in models]  # fmt: skip


# -- the length bias of a fit ----------------------------------------------------------------
@dataclass(frozen=True)
class LengthBias:
    judge: str  # "judge / method", or "crowd"
    n: int  # comparisons the fit used
    elo: float | None  # β_words in Elo per typical length difference
    lo: float | None
    hi: float | None


def length_bias(name: str, res: StyleResult) -> LengthBias:
    """β_words of a style fit, as the length bias of `name` (the crowd, or a judge method)."""
    c = res.coefficients.get("words")
    if c is None:
        return LengthBias(name, res.n_votes, None, None, None)
    return LengthBias(name, res.n_votes, c.elo, c.lo, c.hi)


def bias_lines(biases: Sequence[LengthBias]) -> list[str]:
    """One line per judge method (and the crowd): its length bias in Elo."""
    out = []
    for b in biases:
        if b.elo is None or b.lo is None or b.hi is None:
            out.append(f"- {b.judge}: no length variation to measure ({b.n} comparisons)")
        else:
            out.append(f"- {b.judge}: {b.elo:+.0f} Elo [{b.lo:+.0f}, {b.hi:+.0f}] per typical "
                       f"length difference ({b.n} comparisons)")  # fmt: skip
    return out


def report_lines(quality: Any, style: StyleResult | None,
                 biases: Sequence[LengthBias]) -> list[str]:  # fmt: skip
    """The report's "Rater quality and style control" section: how many raters and votes rule
    9 (evaluation.human.votes) affected, never who; the style coefficients; each judge's length
    bias beside the crowd's (taken from `style` when `biases` has no crowd row)."""
    out = list(quality.lines()) if quality is not None else []
    if style is not None:
        out += style.lines()
        if style.ratings and not any(b.judge == "crowd" for b in biases):
            biases = [length_bias("crowd", style), *biases]
    if biases:
        out += ["Length bias (Elo a typical length difference is worth, beyond the models' "
                "quality; 0: length does not matter):", *bias_lines(biases)]  # fmt: skip
    return out
