"""Which pair to ask about next, and when the votes are enough (the pure algorithm; the bot's
database side is bot.rating.selection, the simulation is benchmarks/bench_active_rating.py).

**What a vote is worth.** The ratings' uncertainty is summarised by the Laplace approximation
of the Bradley–Terry posterior: the MAP natural-log strengths μ (evaluation.human.ratings.fit_bt,
same N(0, PRIOR_SD²) prior) and the covariance Σ = H⁻¹, H the negative Hessian of the log
posterior. One more vote between models i and j adds Fisher information f = p(1−p) (p the
current P(i beats j)) along x = e_i − e_j, so the variance of the comparison c − reference,
u = e_c − e_ref, drops by

    Δ_c(i, j) = f·(uᵀΣx)² / (1 + f·xᵀΣx)        (a rank-one update of Σ)

**Which comparisons matter.** The decision (evaluation.human.decision) walks the priced candidates
cheapest first and the first one that is not ruled out decides. So a comparison matters only
while it is unsettled and every cheaper one may still end ruled out: its weight is the
probability that the walk reaches it, w_c = Π_{c' cheaper} (1 − P(c' acceptable)), with
P(c acceptable) = Φ((d_c + margin)/σ_c) from its interval (1 or 0 once it is settled). A
"too close to call" comparison is weighted by (distance to the margin / half-width)², capped
at 1: near 0 when its estimate sits on the margin (more votes barely move it). Settled
comparisons and those the walk cannot reach weigh 0.

**The pair to ask about** maximises the weighted relative variance reduction
U(i, j) = Σ_c w_c·Δ_c(i, j)/Var(d_c). Per rater it is multiplied by a spread factor
1 / (1 + n_r / (1 + n / R)) (n_r: the rater's votes on that model pair, n: everyone's, R:
raters), so a comparison's votes come from many raters. A share `explore` of the picks (and
every pick while some model has fewer than WARMUP_VOTES votes, or nothing is open) goes to
the least-voted model pair instead, so every model keeps getting votes. A round's batch is
chosen greedily, updating Σ after each pick as if it had been voted on (no outcome is needed
for that), which spreads the batch over the comparisons that matter.

**When to stop.** A comparison is settled when it is acceptable or ruled out on at least
SETTLE_VOTES votes and still so with its interval widened from the configured confidence to
`stop_confidence` (its error rate cut to STOP_SHARE: 95% -> 99%), because the bot looks again
after every few votes and a bound that has only just crossed the margin often crosses back.
The decision is settled (`settled`) when it is switch or keep and every comparison it rests
on is settled: the bot says so once and stops asking about settled comparisons; only the
exploration share of pairs is still posted. "Too close to call" is not settled.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evaluation.human.decision import MAX_ESTIMATE, Comparison, Decision
from evaluation.human.ratings import (
    INIT,
    PRIOR_SD,
    RIDGE,
    SCALE,
    BothBad,
    BTResult,
    Count,
    Diff,
    ModelRating,
    _points,
    fit_bt,
)

WARMUP_VOTES = 5  # every model gets this many votes before information guides the choice
SETTLED_KINDS = ("switch", "keep")
SETTLE_VOTES = 30  # a comparison settles on at least this many votes of its candidate
STOP_SHARE = 0.2  # the stopping rule's error rate: this share of (1 − confidence)
P_CLIP = 0.02  # P(acceptable) of an open comparison stays in [P_CLIP, 1 − P_CLIP]


@lru_cache(maxsize=64)
def z_value(confidence: float) -> float:
    """The two-sided normal quantile of an interval at `confidence` (1.96 at 95%)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def stop_confidence(confidence: float) -> float:
    """The level the stopping rule asks for: the configured one with its error rate cut to
    STOP_SHARE (95% -> 99%), because the bot looks again after every few votes."""
    return 1.0 - (1.0 - confidence) * STOP_SHARE


def comparison_settled(c: Comparison, margin: float, confidence: float) -> bool:
    """Acceptable or ruled out, on at least SETTLE_VOTES votes (below that a handful of lucky
    votes can clear the margin), and still so with its interval widened from `confidence`
    to `stop_confidence` (the bot looks after every few votes: a bound that has only just
    crossed the margin often crosses back)."""
    if c.status not in ("acceptable", "ruled_out") or c.n_votes < SETTLE_VOTES:
        return False
    if c.diff is None or c.lo is None or c.hi is None:
        return False
    z = z_value(confidence)
    extra = (z_value(stop_confidence(confidence)) - z) * (c.hi - c.lo) / (2 * z)
    if c.status == "acceptable":
        return c.lo - extra > -margin
    return c.hi + extra < -margin


def deciding(decision: Decision) -> list[Comparison]:
    """The comparisons a switch or keep decision rests on: for a switch, the chosen
    candidate and every cheaper priced one (all ruled out); for keep, the ruled-out ones."""
    priced = [c for c in decision.comparisons if c.priced]
    if decision.kind == "switch":
        k = next((i for i, c in enumerate(priced) if c.model == decision.model), len(priced))
        return priced[: k + 1]
    if decision.kind == "keep":
        return [c for c in priced if c.status == "ruled_out"]
    return []


def settled(decision: Decision) -> bool:
    """The stopping rule: the decision is switch or keep at the configured confidence, and
    every comparison it rests on has at least SETTLE_VOTES votes. "Too close to call" is not
    settled: its comparison keeps getting votes while more votes can still clear the margin
    (weighted by how likely that is, `_resolvable`)."""
    return decision.kind in SETTLED_KINDS and all(
        comparison_settled(c, decision.margin, decision.confidence) for c in deciding(decision)
    )


def notice_key(decision: Decision) -> str:
    """What identifies one settled decision: it is announced once per key."""
    return (
        f"decision:{decision.kind}:{decision.model or ''}:{decision.reference or ''}:"
        f"{decision.margin:g}:{decision.confidence:g}"
    )


def settled_text(decision: Decision) -> str:
    """The channel message when the decision settles."""
    return (
        f"The decision is settled at {decision.confidence:.0%} confidence: {decision.headline} "
        "More votes would not change it, so the bot stops posting pairs for the settled "
        "comparisons (a few pairs keep every model's rating fresh)."
    )


def gold_due(k: Any, rate: float, phase: Any) -> Any:
    """Whether a rater's k-th pair (k = 1, 2, …) is a gold pair: floor(k·rate + φ) >
    floor((k − 1)·rate + φ), with the rater's phase φ in [0, 1 − rate). Exactly `rate` of a
    rater's pairs are gold, evenly spaced, never the first. Works on arrays too."""
    if rate <= 0:
        return np.zeros(np.shape(k), dtype=bool) if np.ndim(k) else False
    k, phase = np.asarray(k, dtype=np.float64), np.asarray(phase, dtype=np.float64)
    due = np.floor(k * rate + phase) > np.floor((k - 1) * rate + phase)
    return due if due.ndim else bool(due)


def gold_phase(user_hash: str, rate: float) -> float:
    """A rater's phase in [0, 1 − rate), from their stored (salted) identity."""
    digest = hashlib.sha256(user_hash.encode()).hexdigest()
    return int(digest[:8], 16) / 16**8 * max(0.0, 1.0 - rate)


# -- the posterior --------------------------------------------------------------------------------
def _games(ij: NDArray[np.int64], weights: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """(B, n, n) votes between each two models for a batch of row weightings."""
    weights = np.atleast_2d(weights)
    flat = np.zeros((weights.shape[0], n * n))
    np.add.at(flat.T, ij[:, 0] * n + ij[:, 1], weights.T)
    np.add.at(flat.T, ij[:, 1] * n + ij[:, 0], weights.T)
    return flat.reshape(-1, n, n)


def laplace(
    ij: NDArray[np.int64], pts: NDArray[np.float64], weights: NDArray[np.float64], n: int,
    init: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Laplace approximation of the Bradley–Terry posterior for a batch of row weightings:
    MAP natural-log strengths (B, n) and covariance (B, n, n) = inverse negative Hessian.
    `init` (n,): where Newton starts (a previous fit's mean: a warm start, same optimum)."""
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if len(ij) == 0:
        b = weights.shape[0]
        return np.zeros((b, n)), np.broadcast_to(np.eye(n) * PRIOR_SD**2, (b, n, n)).copy()
    mean = fit_bt(ij, pts, weights, n, init)
    games = _games(ij, weights, n)
    prob = 1.0 / (1.0 + np.exp(mean[:, None, :] - mean[:, :, None]))
    h = games * prob * (1.0 - prob)
    eye = np.eye(n)
    neg_hess = h.sum(axis=2)[:, :, None] * eye - h + RIDGE * eye
    return mean, np.linalg.inv(neg_hess)


@dataclass(frozen=True)
class Posterior:
    """The Laplace posterior over `models` (natural-log strengths, any anchor)."""

    models: list[str]
    mean: NDArray[np.float64]
    cov: NDArray[np.float64]
    votes: NDArray[np.float64]  # votes per model

    def index(self, model: str) -> int:
        return self.models.index(model)


def tally_rows(
    counts: Sequence[Count], models: Sequence[str], both_bad: BothBad = "tie"
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Unique (i, j, points of i) rows over a fixed model order, with their vote counts."""
    idx = {m: k for k, m in enumerate(models)}
    acc: dict[tuple[int, int, float], float] = {}
    for a, b, result, n in counts:
        pts = _points(result, both_bad)
        if pts is None or a == b or a not in idx or b not in idx or n <= 0:
            continue
        i, j = idx[a], idx[b]
        key = (i, j, pts) if i < j else (j, i, 1.0 - pts)
        acc[key] = acc.get(key, 0.0) + n
    keys = sorted(acc)
    ij = np.array([(i, j) for i, j, _ in keys], dtype=np.int64).reshape(-1, 2)
    return ij, np.array([p for _, _, p in keys]), np.array([acc[k] for k in keys])


def posterior(
    counts: Sequence[Count], models: Sequence[str], both_bad: BothBad = "tie",
    init: NDArray[np.float64] | None = None,
) -> Posterior:
    """The Laplace posterior over `models`; a model without votes keeps its prior. `init`: a
    previous posterior's mean over the same models (Newton warm-started from it: a few new
    votes move the optimum a little, so it takes a step or two instead of a full fit)."""
    models = list(models)
    ij, pts, cnt = tally_rows(counts, models, both_bad)
    if init is not None and np.shape(init) != (len(models),):
        init = None
    mean, cov = laplace(ij, pts, cnt, len(models), init)
    votes = np.zeros(len(models))
    np.add.at(votes, ij[:, 0], cnt)
    np.add.at(votes, ij[:, 1], cnt)
    return Posterior(models, mean[0], cov[0], votes)


# -- which comparisons matter ---------------------------------------------------------------------
def _p_acceptable(c: Comparison, margin: float, confidence: float) -> float:
    """P(the comparison ends acceptable), from its interval (normal approximation)."""
    if comparison_settled(c, margin, confidence):
        return 1.0 if c.status == "acceptable" else 0.0
    z = z_value(confidence)
    if c.diff is None or c.lo is None or c.hi is None or not math.isfinite(c.hi - c.lo):
        return 0.5
    sd = max((c.hi - c.lo) / (2 * z), 1e-9)
    return min(1 - P_CLIP, max(P_CLIP, normal_cdf((c.diff + margin) / sd)))


def _resolvable(c: Comparison, margin: float, z: float) -> float:
    """For a 'too close to call' comparison: (distance to the margin / half-width)², capped
    at 1, about the share of its votes so far that would settle it. Near 0 when its estimate
    sits on the margin (more votes barely move it), near 1 when it is about to clear it."""
    if c.diff is None or c.lo is None or c.hi is None:
        return 0.0
    half = (c.hi - c.lo) / 2
    return float(min(1.0, (abs(c.diff + margin) / half) ** 2)) if half > 0 else 0.0


def comparison_weights(
    decision: Decision, reference_cost: float | None = None
) -> dict[str, float]:
    """model -> the probability that its comparison is the one that decides, for the open
    comparisons that can still change the decision (empty once it is settled).

    The walk is the decision's: priced candidates cheapest first (those dearer than the
    reference, `reference_cost` per request, are not candidates), then the unpriced ones."""
    if settled(decision) or decision.reference is None:
        return {}
    z, conf = z_value(decision.confidence), decision.confidence
    walk = [c for c in decision.comparisons if c.priced and not (
        reference_cost is not None and (c.cost_per_request or 0.0) > reference_cost)]  # fmt: skip
    walk += [c for c in decision.comparisons if not c.priced]
    out: dict[str, float] = {}
    reach = 1.0
    for c in walk:
        p = _p_acceptable(c, decision.margin, conf)
        if c.status in ("open", "unrated") or (
            c.status in ("acceptable", "ruled_out")
            and not comparison_settled(c, decision.margin, conf)
        ):
            out[c.model] = reach
        elif c.status == "too_close":
            out[c.model] = reach * _resolvable(c, decision.margin, z)
        reach *= 1.0 - p
        if reach < 1e-4:
            break
    return out


# -- what a vote is worth -------------------------------------------------------------------------
def pair_matrix(pairs: Sequence[tuple[int, int]], n: int) -> NDArray[np.float64]:
    """(P, n) rows x = e_i − e_j."""
    x = np.zeros((len(pairs), n))
    for k, (i, j) in enumerate(pairs):
        x[k, i], x[k, j] = 1.0, -1.0
    return x


def pair_utility(
    mean: NDArray[np.float64],
    cov: NDArray[np.float64],
    weights: NDArray[np.float64],
    ref: int,
    x: NDArray[np.float64],
    votes: float | NDArray[np.float64] = 1.0,
) -> NDArray[np.float64]:
    """U(i, j) for every pair row of x (P, n), batched: mean (B, n), cov (B, n, n), weights
    (B, n) (w_c per candidate, 0 elsewhere) -> (B, P). `votes`: how many votes the pair is
    expected to get (a channel post gets several)."""
    mean, cov, weights = np.atleast_2d(mean), np.asarray(cov), np.atleast_2d(weights)
    if cov.ndim == 2:
        cov = cov[None]
    sx = cov @ x.T  # (B, n, P): Σx
    s = np.einsum("pn,bnp->bp", x, sx)  # xᵀΣx
    d = x @ mean[:, :, None]  # (B, P, 1) μ_i − μ_j
    p = 1.0 / (1.0 + np.exp(-d[:, :, 0]))
    f = p * (1.0 - p) * votes  # (B, P)
    usx = sx - sx[:, [ref], :]  # (B, n, P): uᵀΣx for u = e_c − e_ref
    diag = np.einsum("bnn->bn", cov)
    var = diag - 2 * cov[:, :, ref] + cov[:, [ref], ref]  # (B, n): Var(d_c)
    var = np.where(var > 1e-12, var, 1.0)
    gain = f[:, None, :] * usx**2 / (1.0 + f * s)[:, None, :]  # (B, n, P)
    return np.einsum("bn,bnp->bp", weights / var, gain)


def update_cov(
    cov: NDArray[np.float64], x: NDArray[np.float64], f: NDArray[np.float64] | float
) -> NDArray[np.float64]:
    """Σ after `f` units of information along each batch row's x (B, n): the rank-one
    (Sherman–Morrison) update; no outcome is needed."""
    if cov.ndim == 2:
        cov = cov[None]
    x = np.atleast_2d(x)
    f = np.broadcast_to(np.asarray(f, dtype=np.float64), (cov.shape[0],))
    sx = np.einsum("bij,bj->bi", cov, x)
    s = np.einsum("bi,bi->b", x, sx)
    return cov - (f / (1.0 + f * s))[:, None, None] * sx[:, :, None] * sx[:, None, :]


def spread_factor(
    rater_votes: NDArray[np.float64], pair_votes: NDArray[np.float64], raters: float
) -> NDArray[np.float64]:
    """1 / (1 + n_r / (1 + n / R)): below 1 once a rater has more than their share."""
    return 1.0 / (1.0 + rater_votes / (1.0 + pair_votes / max(raters, 1.0)))


def choose(
    utility: NDArray[np.float64],
    pair_votes: NDArray[np.float64],
    allowed: NDArray[np.bool_],
    explore: NDArray[np.bool_],
    jitter: NDArray[np.float64],
) -> NDArray[np.int64]:
    """One pair index per batch row (−1 when nothing is allowed): the most useful allowed pair,
    or, where `explore` is set or nothing has positive utility, the least-voted allowed pair.
    `jitter` (B, P) in [0, 1) breaks ties (random in the simulation, an order in the bot)."""
    utility, pair_votes = np.atleast_2d(utility), np.atleast_2d(pair_votes)
    allowed = np.atleast_2d(allowed)
    useful = np.where(allowed, utility, -np.inf)
    best_u = useful.max(axis=1)
    cover = np.asarray(explore) | ~(best_u > 0)
    scale = np.where(best_u > 0, best_u, 1.0)[:, None]
    active = np.where(allowed, utility / scale + 1e-9 * jitter, -np.inf)
    coverage = np.where(allowed, -(pair_votes + 0.5 * jitter), -np.inf)
    pick = np.where(cover, coverage.argmax(axis=1), active.argmax(axis=1))
    return np.where(allowed.any(axis=1), pick, -1).astype(np.int64)


@dataclass
class Plan:
    """What the bot needs to choose pairs: utilities per model pair and how they were made."""

    models: list[str]
    reference: str | None
    pairs: list[tuple[str, str]]  # model pairs (name order as in `models`)
    utility: NDArray[np.float64]  # (P,)
    pair_votes: NDArray[np.float64]  # (P,) counted votes per model pair
    weights: dict[str, float] = field(default_factory=dict)  # comparison -> w_c
    warmup: bool = False
    settled: bool = False
    posterior: Posterior | None = None

    def utility_of(self, a: str, b: str) -> float:
        k = self._index.get((a, b), self._index.get((b, a)))
        return float(self.utility[k]) if k is not None else 0.0

    def votes_of(self, a: str, b: str) -> float:
        k = self._index.get((a, b), self._index.get((b, a)))
        return float(self.pair_votes[k]) if k is not None else 0.0

    @cached_property
    def _index(self) -> dict[tuple[str, str], int]:
        return {p: k for k, p in enumerate(self.pairs)}


def make_plan(
    decision: Decision,
    counts: Sequence[Count],
    models: Sequence[str],
    reference_cost: float | None = None,
    both_bad: BothBad = "tie",
    votes_per_pair: float = 1.0,
    init: Posterior | None = None,
) -> Plan:
    """Utilities of every pair of `models` for the open decision (the bot's entry point).
    `init`: the previous plan's posterior; over the same models its mean warm-starts the fit
    (bot.rating.posterior keeps it per process)."""
    models = sorted(set(models))
    pairs = [(models[i], models[j]) for i in range(len(models)) for j in range(i + 1, len(models))]
    start = init.mean if init is not None and init.models == models else None
    post = posterior(counts, models, both_bad, start)
    idx = {m: k for k, m in enumerate(models)}
    pv = np.zeros(len(pairs))
    pair_k = {p: k for k, p in enumerate(pairs)}
    for a, b, result, n in counts:
        if _points(result, both_bad) is None or a == b or a not in idx or b not in idx:
            continue
        pv[pair_k[(a, b) if idx[a] < idx[b] else (b, a)]] += n
    weights = comparison_weights(decision, reference_cost)
    warm = bool(len(models) and post.votes.min() < WARMUP_VOTES)
    plan = Plan(models, decision.reference, pairs, np.zeros(len(pairs)), pv,
                {m: w for m, w in weights.items() if m in idx}, warm, settled(decision),
                post)  # fmt: skip
    ref = decision.reference
    if warm or not plan.weights or ref not in idx or not pairs:
        return plan
    w = np.zeros(len(models))
    for m, wc in plan.weights.items():
        w[idx[m]] = wc
    x = pair_matrix([(idx[a], idx[b]) for a, b in pairs], len(models))
    plan.utility = pair_utility(post.mean, post.cov, w, idx[ref], x, votes_per_pair)[0]
    return plan


def plan_batch(plan: Plan, k: int, explore: float, votes_per_pair: float = 1.0,
               rng: np.random.Generator | None = None,
               allowed: set[tuple[str, str]] | None = None) -> list[tuple[str, str]]:  # fmt: skip
    """A round's k model pairs, chosen greedily: after each informative pick Σ is updated as
    if the pair had been voted on `votes_per_pair` times; ceil(explore·k) picks (and all picks
    during warm-up or once settled) go to the least-voted model pairs. `allowed`: the model
    pairs that can be shown (both answered the same prompt); default all."""
    ok = np.array([allowed is None or p in allowed or (p[1], p[0]) in allowed
                   for p in plan.pairs], dtype=bool)  # fmt: skip
    if not plan.pairs or k <= 0 or not ok.any():
        return []
    rng = rng or np.random.default_rng(0)
    n_explore = k if plan.warmup or not plan.weights else math.ceil(explore * k)
    post = plan.posterior
    idx = {m: i for i, m in enumerate(plan.models)}
    x = pair_matrix([(idx[a], idx[b]) for a, b in plan.pairs], len(plan.models))
    votes = plan.pair_votes.astype(np.float64).copy()
    cov = post.cov[None].copy() if post is not None else None
    w = np.zeros(len(plan.models))
    for m, wc in plan.weights.items():
        w[idx[m]] = wc
    ref = idx.get(plan.reference or "", -1)
    out: list[tuple[str, str]] = []
    explore_slots = set(rng.choice(k, size=min(n_explore, k), replace=False).tolist())
    for slot in range(k):
        jitter = rng.random(len(plan.pairs))
        least = int(np.argmin(np.where(ok, votes + 0.5 * jitter, np.inf)))
        if slot in explore_slots or cov is None or post is None or ref < 0:
            pick = least
        else:
            u = np.where(ok, pair_utility(post.mean, cov, w, ref, x, votes_per_pair)[0], -np.inf)
            if not (u.max() > 0):
                pick = least
            else:
                pick = int(np.argmax(u / u.max() + 1e-9 * jitter))
                d = float(x[pick] @ post.mean)
                f = votes_per_pair / (1 + math.exp(-d)) / (1 + math.exp(d))
                cov = update_cov(cov, x[pick][None], f)
        votes[pick] += votes_per_pair
        out.append(plan.pairs[pick])
    return out


# -- a BTResult from a normal posterior (the simulation's fast intervals) -------------------------
@dataclass
class NormalBT(BTResult):
    """Ratings whose intervals come from the Laplace posterior (normal, mean ± z·sd) instead of
    the bootstrap: asymptotically the same, thousands of times cheaper, so the simulation can
    ask the real `evaluation.human.decision.decide` after every few votes."""

    cov: NDArray[np.float64] | None = field(default=None, repr=False)  # natural-log units

    def diff(self, model: str, other: str | None = None) -> Diff | None:
        other = other or self.reference
        if other is None or model not in self.ratings or other not in self.ratings:
            return None
        point = self.ratings[model].rating - self.ratings[other].rating
        i, j = self.models.index(model), self.models.index(other)
        assert self.cov is not None
        var = self.cov[i, i] + self.cov[j, j] - 2 * self.cov[i, j]
        half = z_value(self.ci) * SCALE * math.sqrt(max(var, 0.0))
        return Diff(point, point - half, point + half, self.group_of(model) != self.group_of(other))


def normal_bt(
    models: Sequence[str],
    mean: NDArray[np.float64],
    cov: NDArray[np.float64],
    votes: NDArray[np.float64],
    reference: str,
    ci: float = 0.95,
    groups: list[list[str]] | None = None,
) -> NormalBT:
    """A NormalBT for `models` (all rated) anchored at the reference."""
    models = list(models)
    ref = models.index(reference)
    elo_arr = SCALE * (mean - mean[ref]) + INIT
    sd = SCALE * np.sqrt(np.clip(np.diag(cov) + cov[ref, ref] - 2 * cov[:, ref], 0, None))
    rank = (elo_arr[None, :] > elo_arr[:, None]).sum(axis=1) + 1
    elo, half, n = elo_arr.tolist(), (z_value(ci) * sd).tolist(), votes.astype(int).tolist()
    ratings = {
        m: ModelRating(m, elo[i], elo[i] - half[i], elo[i] + half[i], int(rank[i]),
                       int(rank[i]), int(rank[i]), n[i])
        for i, m in enumerate(models)
    }
    return NormalBT(ratings=ratings, reference=reference, n_outcomes=int(votes.sum() / 2),
                    n_boot=0, ci=ci, groups=groups or [models], models=models,
                    cov=np.asarray(cov))  # fmt: skip


def votes_to_settle(c: Comparison, margin: float, confidence: float) -> int | None:
    """About how many more votes of its candidate settle an unsettled comparison (clear the
    margin at the stopping rule's level, `stop_confidence`), assuming the interval's
    half-width shrinks like 1/√votes: n·(h·z_stop/z / distance)² − n, at least what
    SETTLE_VOTES still asks. None when its estimate sits on the margin or it has no votes."""
    if comparison_settled(c, margin, confidence):
        return 0
    if c.diff is None or c.lo is None or c.hi is None or c.n_votes <= 0:
        return None
    z, zs = z_value(confidence), z_value(stop_confidence(confidence))
    half = (c.hi - c.lo) / 2 * zs / z
    distance = abs(c.diff + margin)
    if distance < 1e-9 or not math.isfinite(half):
        return None
    need = max(c.n_votes * (half / distance) ** 2 - c.n_votes, SETTLE_VOTES - c.n_votes, 1)
    return int(min(MAX_ESTIMATE, math.ceil(need)))


def open_comparisons(
    decision: Decision, reference_cost: float | None = None
) -> list[tuple[str, str]]:
    """(candidate, 'about N more votes …') for the comparisons that can still change the
    decision, most likely to decide first (what `/slam status` shows)."""
    weights = comparison_weights(decision, reference_cost)
    out = []
    for model in sorted(weights, key=lambda m: -weights[m]):
        c = decision.comparison(model)
        if c is None:
            continue
        need = votes_to_settle(c, decision.margin, decision.confidence)
        if c.status == "unrated" or need is None:
            text = "its first votes" if c.n_votes == 0 else "more votes (estimate on the margin)"
        elif need >= MAX_ESTIMATE:
            text = "many more votes (its estimate is close to the margin)"
        else:
            text = f"about {need:,} more vote(s)"
        out.append((model, f"{text} ({c.n_votes} so far)"))
    return out


def weights_for(plan_weights: Mapping[str, float], models: Sequence[str]) -> NDArray[np.float64]:
    """The (n,) weight vector of `plan_weights` over `models`."""
    w = np.zeros(len(models))
    for k, m in enumerate(models):
        w[k] = plan_weights.get(m, 0.0)
    return w
