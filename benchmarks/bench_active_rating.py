"""Fewer votes per decision: informative pairs + rater quality against round-robin, simulated.

The setup: 12 models with known strengths — the reference and 11 candidates in cost order,
3 of them within the margin (50 Elo) of the reference; the right decision is to switch to
the cheapest of those three. 30 raters: 27 follow Bradley–Terry with 10% ties, 3 (10%) click
at random (A 45%, B 45%, tie 10%). Votes arrive one at a time, each from a random rater.

- **round-robin** (the bot before): model pairs in turn, a fresh shuffled cycle each time
  (as `bot.rating.rounds.plan_pairs` covers them); no gold pairs; every vote counts.
- **active**: `evaluation.human.active` picks the pair for the arriving rater (the pairs whose votes
  most narrow the open comparisons of the current decision, the rater spread factor, 10%
  exploration, warm-up); gold pairs at `[evaluation] gold_rate` (10%, they cost votes too: a
  careful rater passes 98% of them, a clicker 45%); rater quality (`evaluation.human.votes` rule 9,
  the gold and chance rules) leaves flagged raters' votes out.

After every few votes (every 20 up to 800, then every 2.5%), the real
`evaluation.human.decision.decide` runs on the counted votes, with intervals from the Laplace
posterior (`evaluation.human.active.NormalBT`: mean ± z·sd, what the bootstrap converges to, and
cheap enough to ask ~100,000 times). A replication's *votes* is the count after which the
decision is "switch to the right model" at every later check up to the horizon; its *error*
is that the stopping rule announced a wrong decision (the first settled one was wrong) or
that it never became correct and stayed correct. Target: active needs at most half the
median votes of round-robin, with an error rate ≤ 5% and no higher than round-robin's.

    python benchmarks/bench_active_rating.py [--reps 200] [--quick] [--chart docs/active_rating.png]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.human.active import (
    WARMUP_VOTES,
    comparison_weights,
    gold_due,
    laplace,
    normal_bt,
    pair_matrix,
    pair_utility,
    settled,
    spread_factor,
    weights_for,
)
from evaluation.human.active import choose as choose_pairs
from evaluation.human.decision import Decision, decide
from evaluation.human.votes import chance_rule, chance_scores, gold_rule
from evaluation.perf.cost import ModelCost

MARGIN, CONFIDENCE = 50.0, 0.95
# Candidates cheapest first: Elo gap to the reference. Within the margin: c06, c08, c10.
GAPS = [-400, -300, -230, -170, -120, -25, -95, -10, -140, 15, -200]
MODELS = ["ref"] + [f"c{k + 1:02d}" for k in range(len(GAPS))]
RIGHT = "c06"  # the cheapest candidate within the margin
RATERS, CLICKERS = 30, 3
TIES = 0.10
GOLD_RATE, EXPLORE = 0.10, 0.10
GOLD_PASS = {"careful": 0.98, "clicker": 0.45}
LN_ELO = math.log(10) / 400


def costs() -> dict[str, ModelCost]:
    out = {}
    for k, m in enumerate(MODELS):
        api = m == "ref"
        per_req = 0.01 if api else 0.0002 * (k + 1)
        out[m] = ModelCost(m, "api" if api else "g4dn.xlarge", api, None if api else 0.526,
                           None, "pricing table", per_req * 5, per_req, per_req * 30_000, None,
                           None)  # fmt: skip
    return out


COSTS = costs()
N = len(MODELS)
PAIRS = [(i, j) for i in range(N) for j in range(i + 1, N)]
P = len(PAIRS)
X = pair_matrix(PAIRS, N)
PI = np.array([i for i, _ in PAIRS])
PJ = np.array([j for _, j in PAIRS])
TRUE = np.array([0.0, *GAPS]) * LN_ELO  # natural-log strengths
P_WIN = 1.0 / (1.0 + np.exp(TRUE[PJ] - TRUE[PI]))  # P(i beats j) when decisive
# Outcome rows: pair p, points of i in (1, ½, 0) -> row 3p + {0, 1, 2}.
ROW_IJ = np.repeat(np.array(PAIRS, dtype=np.int64), 3, axis=0)
ROW_PTS = np.tile([1.0, 0.5, 0.0], P)


def checkpoints(horizon: int) -> list[int]:
    out, t = [], 20
    while t < horizon:
        out.append(t)
        t += max(20, int(t * 0.025))
    return [*out, horizon]


@dataclass
class Run:
    """One strategy over all replications: the decision at every checkpoint."""

    name: str
    correct: NDArray[np.bool_]  # (checkpoints, reps)
    wrong_settled: NDArray[np.bool_]  # settled on a wrong decision
    announced_ok: NDArray[np.bool_]  # (reps,) the first settled decision was right
    announced_at: NDArray[np.float64]  # (reps,) votes when it settled (inf: never)
    flagged_clickers: float = 0.0
    flagged_careful: float = 0.0
    seconds: float = 0.0
    announced: Counter[str] = field(default_factory=Counter)


Posterior = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]


def posterior(weights: NDArray[np.float64]) -> Posterior:
    """Laplace posterior (mean, cov) and votes per model, per replication."""
    mean, cov = laplace(ROW_IJ, ROW_PTS, weights, N)
    votes = np.zeros((len(weights), N))
    np.add.at(votes.T, ROW_IJ[:, 0], weights.T)
    np.add.at(votes.T, ROW_IJ[:, 1], weights.T)
    return mean, cov, votes


def groups(weights: NDArray[np.float64]) -> list[list[list[str]]]:
    """Per replication, the strongly connected groups of the win graph (i -> j when i took
    points from j), by transitive closure: membership is what the decision reads, the same
    components as evaluation.human.ratings.win_graph_groups."""
    took = weights[:, None] * np.array([ROW_PTS > 0, ROW_PTS < 1]) > 0  # (B, 2, rows)
    reach = np.zeros((len(weights), N, N), dtype=np.int64)
    for side, (src, dst) in enumerate(((ROW_IJ[:, 0], ROW_IJ[:, 1]), (ROW_IJ[:, 1], ROW_IJ[:, 0]))):
        b, r = np.nonzero(took[:, side])
        reach[b, src[r], dst[r]] = 1
    reach |= np.eye(N, dtype=np.int64)
    for _ in range(math.ceil(math.log2(N))):
        reach = (reach @ reach > 0).astype(np.int64)
    mutual = (reach & reach.transpose(0, 2, 1)).astype(bool)
    out = []
    for m in mutual:
        if m.all():
            out.append([MODELS])
            continue
        labels = m.argmax(axis=1)  # the first model each one shares a group with
        out.append([[MODELS[i] for i in np.flatnonzero(labels == g)] for g in np.unique(labels)])
    return out


def decisions(weights: NDArray[np.float64], post: Posterior) -> list[Decision]:
    """The real decision rule per replication, on Laplace intervals of the counted votes."""
    mean, cov, votes = post
    out = []
    for b, g in enumerate(groups(weights)):
        bt = normal_bt(MODELS, mean[b], cov[b], votes[b], "ref", CONFIDENCE, g)
        out.append(decide(bt, COSTS, "ref", MODELS[1:], margin=MARGIN, confidence=CONFIDENCE))
    return out


def outcome(rng: np.random.Generator, pick: NDArray[np.int64],
            clicker: NDArray[np.bool_]) -> NDArray[np.int64]:  # fmt: skip
    """0: i won, 1: tie, 2: j won."""
    u = rng.random(len(pick))
    tie = u < TIES
    v = (u - TIES) / (1 - TIES)
    i_wins = np.where(clicker, v < 0.5, v < P_WIN[pick])
    return np.where(tie, 1, np.where(i_wins, 0, 2))


def simulate(strategy: str, reps: int, horizon: int, seed: int) -> Run:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    b_idx = np.arange(reps)
    clicker_of = np.zeros((reps, RATERS), dtype=bool)
    for b in range(reps):
        clicker_of[b, rng.choice(RATERS, CLICKERS, replace=False)] = True
    phase = rng.random((reps, RATERS)) * (1 - GOLD_RATE)
    tally = np.zeros((reps, RATERS, P * 3))
    rater_pairs = np.zeros((reps, RATERS, P))
    sent = np.zeros((reps, RATERS))
    gold_n = np.zeros((reps, RATERS))
    gold_bad = np.zeros((reps, RATERS))
    flagged = np.zeros((reps, RATERS), dtype=bool)
    utility = np.zeros((reps, P))
    pair_votes = np.zeros((reps, P))
    cycle = np.array([rng.permutation(P) for _ in range(reps)])
    grid = checkpoints(horizon)
    correct = np.zeros((len(grid), reps), dtype=bool)
    wrong_settled = np.zeros((len(grid), reps), dtype=bool)
    announced_ok = np.zeros(reps, dtype=bool)
    announced_at = np.full(reps, np.inf)
    announced = ["never"] * reps
    active = strategy == "active"
    next_quality = 100
    g = 0
    for t in range(1, horizon + 1):
        rater = rng.integers(RATERS, size=reps)
        clicker = clicker_of[b_idx, rater]
        if active:
            sent[b_idx, rater] += 1
            gold = gold_due(sent[b_idx, rater], GOLD_RATE, phase[b_idx, rater])
            passed = rng.random(reps) < np.where(clicker, GOLD_PASS["clicker"],
                                                 GOLD_PASS["careful"])  # fmt: skip
            gold_n[b_idx, rater] += gold
            gold_bad[b_idx, rater] += gold & ~passed
            spread = spread_factor(rater_pairs[b_idx, rater], pair_votes, RATERS)
            pick = choose_pairs(utility * spread, pair_votes, np.ones((reps, P), dtype=bool),
                                rng.random(reps) < EXPLORE, rng.random((reps, P)))  # fmt: skip
            model_vote = ~gold
        else:
            pick = cycle[:, (t - 1) % P]
            if t % P == 0:
                cycle = np.array([rng.permutation(P) for _ in range(reps)])
            model_vote = np.ones(reps, dtype=bool)
        res = outcome(rng, pick, clicker)
        bb, rr = b_idx[model_vote], rater[model_vote]
        tally[bb, rr, 3 * pick[model_vote] + res[model_vote]] += 1
        rater_pairs[bb, rr, pick[model_vote]] += 1
        pair_votes[bb, pick[model_vote]] += ~flagged[bb, rr]
        if t != grid[g]:
            continue
        if active and t >= next_quality:  # rule 9, re-evaluated as votes come in
            next_quality = int(t * 1.25) + 10
            z, v = chance_scores(ROW_IJ, ROW_PTS, tally.reshape(-1, P * 3),
                                 np.repeat(tally.sum(axis=1), RATERS, axis=0), N)  # fmt: skip
            flagged = gold_rule(gold_n, gold_bad) | chance_rule(z, v).reshape(reps, RATERS)
            pair_votes = (~flagged[:, :, None] * rater_pairs).sum(axis=1)
        weights = (np.where(flagged, 0.0, 1.0)[:, :, None] * tally).sum(axis=1)
        post = posterior(weights)
        decs = decisions(weights, post)
        for b, d in enumerate(decs):
            ok = d.kind == "switch" and d.model == RIGHT
            correct[g, b] = ok
            if settled(d):
                wrong_settled[g, b] = not ok
                if math.isinf(announced_at[b]):
                    announced_at[b], announced_ok[b] = t, ok
                    announced[b] = f"{d.kind} {d.model or ''}".strip()
        if active:
            utility = _utilities(post, decs)
        g += 1
    run = Run(strategy, correct, wrong_settled, announced_ok, announced_at,
              seconds=time.perf_counter() - t0)  # fmt: skip
    run.announced = Counter(announced)
    if active:
        run.flagged_clickers = float(flagged[clicker_of].mean())
        run.flagged_careful = float(flagged[~clicker_of].mean())
    return run


def _utilities(post: Posterior, decs: list[Decision]) -> NDArray[np.float64]:
    mean, cov, votes = post
    w = np.array([weights_for(comparison_weights(d, COSTS["ref"].cost_per_request), MODELS)
                  for d in decs])  # fmt: skip
    u = pair_utility(mean, cov, w, 0, X)
    warm = votes.min(axis=1) < WARMUP_VOTES
    u[warm] = 0.0  # warm-up: the least-voted pairs (choose's coverage rule)
    return u


def votes_to_correct(run: Run, grid: list[int]) -> NDArray[np.float64]:
    """Per replication: the first checkpoint from which the decision is right at every later
    one (inf when it is not right at the horizon)."""
    out = np.full(run.correct.shape[1], np.inf)
    for b in range(run.correct.shape[1]):
        col = run.correct[:, b]
        if not col[-1]:
            continue
        bad = np.flatnonzero(~col)
        out[b] = grid[bad[-1] + 1] if bad.size else grid[0]
    return out


def chart(path: Path, grid: list[int], runs: list[Run], medians: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.6), dpi=120)
    colors = {"active": "#1b7837", "round-robin": "#762a83"}
    for run, med in zip(runs, medians, strict=True):
        c = colors[run.name]
        label = "active + rater quality" if run.name == "active" else "round-robin"
        ax.plot(grid, 1 - run.correct.mean(axis=1), color=c, lw=2,
                label=f"{label}: decision not yet right")  # fmt: skip
        ax.plot(grid, run.wrong_settled.mean(axis=1), color=c, lw=1.2, ls=":",
                label=f"{label}: settled on a wrong decision")  # fmt: skip
        if math.isfinite(med):
            ax.axvline(med, color=c, lw=0.8, ls="--")
            ax.annotate(f"median {med:,.0f}", (med, 0.9), rotation=90, color=c, fontsize=8,
                        ha="right", va="top")  # fmt: skip
    ax.axhline(0.05, color="grey", lw=0.6, ls="-.")
    ax.set_xscale("log")
    ax.set_xlabel("votes cast (gold pairs included)")
    ax.set_ylabel("share of replications")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Decision error against votes ({runs[0].correct.shape[1]} replications, "
                 "12 models, margin 50 Elo)", fontsize=10)  # fmt: skip
    ax.legend(fontsize=8, loc="center left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=200, help="replications (default 200)")
    ap.add_argument("--horizon", type=int, default=24_000, help="votes per replication")
    ap.add_argument("--quick", action="store_true",
                    help="12 replications, 12,000 votes each (for tests)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chart", type=Path, default=None, help="write the chart here (PNG)")
    args = ap.parse_args(argv)
    reps = 12 if args.quick else args.reps
    horizon = min(args.horizon, 12_000) if args.quick else args.horizon
    grid = checkpoints(horizon)
    print(f"{reps} replications, horizon {horizon:,} votes, {N} models, {RATERS} raters "
          f"({CLICKERS} random clickers), ties {TIES:.0%}, margin {MARGIN:.0f} Elo, "
          f"right decision: switch to {RIGHT}")  # fmt: skip
    runs = [simulate("active", reps, horizon, args.seed),
            simulate("round-robin", reps, horizon, args.seed + 1)]  # fmt: skip
    medians, errors = [], []
    for run in runs:
        v = votes_to_correct(run, grid)
        err = float(np.mean(~run.announced_ok | ~np.isfinite(v)))
        med = float(np.median(v))
        medians.append(med)
        errors.append(err)
        settle = run.announced_at[np.isfinite(run.announced_at)]
        extra = ""
        if run.name == "active":
            extra = (f"; raters flagged: {run.flagged_clickers:.0%} of clickers, "
                     f"{run.flagged_careful:.1%} of careful raters")  # fmt: skip
        print(f"{run.name:>11}: votes to a right, stable decision median {med:,.0f} "
              f"(p10 {np.percentile(v, 10):,.0f}, p90 {np.percentile(v, 90):,.0f}); "
              f"stopping rule fired at median {np.median(settle) if settle.size else math.inf:,.0f}"
              f"; error {err:.1%}{extra} [{run.seconds:.0f} s]")  # fmt: skip
        shown = ", ".join(f"{k} ×{n}" for k, n in run.announced.most_common())
        print(f"{'':>11}  first settled decision: {shown}")
    if args.chart is not None:
        chart(args.chart, grid, runs, medians)
        print(f"chart: {args.chart}")
    ratio = medians[0] / medians[1] if medians[1] > 0 else math.inf
    ok = ratio <= 0.5 and errors[0] <= 0.05 and errors[0] <= errors[1]
    print(f"target (ratio ≤ 0.5, error ≤ 5% and ≤ round-robin's): {'OK' if ok else 'MISSED'}")
    print(f"summary: active {medians[0]:,.0f} votes vs round-robin {medians[1]:,.0f} "
          f"(ratio {ratio:.2f}), error {errors[0]:.1%} vs {errors[1]:.1%}; "
          f"target ratio ≤ 0.5, error ≤ 5%: {'OK' if ok else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
