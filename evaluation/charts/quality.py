"""Quality charts: human scores, Bradley–Terry ratings, judges vs humans, meta-evaluation,
and quality vs cost."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from evaluation.auto import find
from evaluation.results import Results

from ._boxes import box_chart
from ._style import (
    HIGHLIGHT,
    REFERENCE_COLOR,
    model_axis,
    new_figure,
    no_data,
    place_labels,
    plain_log_ticks,
    save,
    wrap_name,
)

VOTE_HINT = "Post rating rounds with the bot and collect votes in the ratings channel."
JUDGE_HINT = "Run `slam score` to score responses with the LLM judge and similarity metrics."


def human_scores(data: Results, path: Path) -> Path:
    """Fig. 8: human 0–10 scores per model as box plots with the mean."""
    title = "Human scores per model"
    groups = {m: np.asarray(s.values, dtype=float) for m, s in data.human_scores.items() if s.n}
    if not groups:
        reason = data.problems.get("human_scores", "no human scores yet")
        return no_data(
            path, title, reason + ".", "Turn on score mode ([chat] score_mode = true). " + VOTE_HINT
        )
    return box_chart(
        groups,
        path,
        title=title,
        xlabel="human score (0 = unusable, 10 = perfect)",
        reference=data.reference,
        xlim=(-0.3, 10.3),
    )


STATUS_COLORS = {
    "acceptable": "#31a354",
    "ruled_out": "#bdbdbd",
    "too_close": "#fd8d3c",
    "open": "#3182bd",
    "unrated": "#3182bd",
}


def bradley_terry(data: Results, path: Path) -> Path:
    """Bradley–Terry ratings from pairwise votes with bootstrap intervals, coloured by the
    decision's status, with the non-inferiority margin below the reference."""
    bt = data.ratings
    title = "Human preference: Bradley–Terry ratings"
    if bt is None:
        return no_data(
            path, title, data.problems.get("bt", "no pairwise human votes yet") + ".", VOTE_HINT
        )
    title += f" ({bt.ci:.0%} interval)"
    decision = data.decision
    ranked = sorted(bt.ratings.values(), key=lambda r: r.rating)
    ref = data.reference
    fig, ax = new_figure()
    pos = np.arange(1, len(ranked) + 1)
    vals = np.array([r.rating for r in ranked])
    err = np.array([[r.rating - r.lo for r in ranked], [r.hi - r.rating for r in ranked]])
    colors = [
        REFERENCE_COLOR
        if r.model == ref
        else STATUS_COLORS.get(decision.status(r.model) or "", "#3182bd")
        for r in ranked
    ]
    ax.errorbar(vals, pos, xerr=err, fmt="none", ecolor="#777777", elinewidth=2, capsize=4)
    bounded = np.array([r.bound is not None for r in ranked])
    ax.scatter(
        vals[~bounded],
        pos[~bounded],
        c=[c for c, b in zip(colors, bounded, strict=True) if not b],
        s=60,
        zorder=3,
    )
    if bounded.any():
        ax.scatter(
            vals[bounded],
            pos[bounded],
            facecolors="white",
            edgecolors=[c for c, b in zip(colors, bounded, strict=True) if b],
            linewidths=2,
            s=60,
            zorder=3,
            label="set by the prior (never lost / never won)",
        )
    if ref in bt.ratings:
        r = bt.ratings[ref]
        ax.axvline(r.rating, color=REFERENCE_COLOR, linestyle="--", linewidth=1.2)
        line = r.rating - decision.margin
        ax.axvline(
            line,
            color="#31a354",
            linestyle=":",
            linewidth=1.5,
            label=f"margin: {decision.margin:.0f} below the reference",
        )
    model_axis(ax, [r.model + ("*" if r.bound else "") for r in ranked], ref, "y")
    ax.set_xlabel("rating (Elo scale: +400 = 10:1 odds of being preferred)")
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    if ref in bt.ratings or bounded.any():
        ax.legend(loc="lower right")
    note = (
        f"{bt.n_outcomes:,} effective votes, {bt.n_boot} bootstrap resamples · green acceptable, "
        "orange too close to call, blue open, grey ruled out"
    )
    if bt.warnings:
        note += f"; {len(bt.warnings)} warning(s) in the report"
    return save(fig, path, note)


def judge_vs_human(data: Results, path: Path) -> Path:
    """Fig. 9: each automated method's model score against the human mean, one panel per method."""
    title = "Automated scores vs human judgement"
    human, human_label = data.human_means
    methods = {
        m: {k: v for k, v in s.items() if k in human and math.isfinite(v)}
        for m, s in data.method_scores.items()
    }
    methods = {m: s for m, s in methods.items() if s}
    if not human or not methods:
        why = (
            "no human ratings yet"
            if not human
            else data.problems.get("method_scores", "no judge scores yet")
        )
        return no_data(path, title, why + ".", JUDGE_HINT if human else VOTE_HINT)
    shown = sorted(methods)[:6]
    ncols = min(3, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    fig, axes = new_figure(nrows, ncols, squeeze=False, top=0.86, bottom=0.12)
    fig.subplots_adjust(hspace=0.45, wspace=0.25)
    ref = data.reference
    for ax, method in zip(axes.flat, shown, strict=False):
        pts = methods[method]
        xs = np.array([human[m] for m in pts])
        ys = np.array([pts[m] for m in pts])
        ax.scatter(
            xs, ys, s=45, c=[REFERENCE_COLOR if m == ref else "#3182bd" for m in pts], zorder=3
        )
        ax.margins(x=0.08, y=0.12)
        if len(pts) <= 12:
            place_labels(
                ax,
                [(x, y, wrap_name(m, 22), m == ref) for m, x, y in zip(pts, xs, ys, strict=True)],
            )
        rho = _spearman(xs, ys)
        ax.set_title(
            f"{method}  (Spearman ρ {rho:+.2f})" if rho is not None else method, fontsize=13
        )
        ax.set_xlabel(human_label, fontsize=11.5)
        info = find(method)
        direction = "" if info is None or info.higher_is_better else " (lower is better)"
        ax.set_ylabel(f"automated score{direction}", fontsize=11.5)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=16, fontweight="bold")
    note = "one point per model; black: reference"
    if len(methods) > len(shown):
        note += f"; {len(shown)} of {len(methods)} methods shown"
    return save(fig, path, note)


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's ρ (Pearson on average ranks); None when undefined."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rx, ry = _ranks(x), _ranks(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), without importing scipy.stats."""
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(1, len(v) + 1)
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return np.asarray(sums[inverse] / counts[inverse], dtype=float)


def metaeval(data: Results, path: Path) -> Path:
    """Fig. 10: agreement of each method's bottom-k ranking with the human one (Jaccard, RBO)."""
    title = "Which automated method ranks models like humans do?"
    rows = sorted(data.agreement, key=lambda a: -(a.rbo if math.isfinite(a.rbo) else -1))
    if not rows:
        human, _ = data.human_means
        why = (
            "no human ratings yet"
            if not human
            else "no method shares ≥ 2 models with the human ratings"
        )
        return no_data(path, title, why + ".", JUDGE_HINT)
    fig, ax = new_figure()
    x = np.arange(len(rows))
    w = 0.38
    jac = [a.jaccard for a in rows]
    rb = [a.rbo for a in rows]
    ev = data.cfg.evaluation
    ax.bar(x - w / 2, jac, w, label=f"Jaccard (bottom {ev.bottom_k})", color="#3182bd")
    ax.bar(x + w / 2, rb, w, label=f"RBO (p = {ev.rbo_p:g})", color="#fd8d3c")
    for xi, j, r in zip(x, jac, rb, strict=True):
        ax.text(xi - w / 2, j + 0.01, f"{j:.2f}", ha="center", fontsize=11)
        ax.text(xi + w / 2, r + 0.01, f"{r:.2f}", ha="center", fontsize=11)
    ax.set_xticks(
        x,
        [wrap_name(a.method, 14) + f"\n(n={a.n_models})" for a in rows],
        fontsize=11.5,
        rotation=0 if len(rows) <= 8 else 30,
    )
    ax.set_xlim(-0.9, max(len(rows), 3) - 0.1)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("agreement with human ranking (0–1)")
    ax.set_title(title)
    ax.legend(loc="upper right")
    ax.grid(axis="x", visible=False)
    return save(fig, path, "bottom-k: the models a team would drop; higher is better")


def quality_vs_cost(data: Results, path: Path) -> Path:
    """Quality (with its interval) against $ per 1K output tokens; the decision's pick is
    starred and its sentence is the footnote (one Decision object: evaluation.human.decision)."""
    title = "Quality vs cost"
    quality = data.quality
    costs = data.costs
    pts = {
        m: q for m, q in quality.items() if m in costs and costs[m].cost_per_1k_output is not None
    }
    if not quality:
        return no_data(path, title, "no human ratings yet.", VOTE_HINT)
    if not pts:
        return no_data(path, title, "no rated model has a known cost yet.", "Run `slam probe`.")
    decision = data.decision
    pick = decision.model
    positive = [c.cost_per_1k_output for c in costs.values() if c.cost_per_1k_output]
    free_x = (min(positive) / 4) if positive else 1e-4
    ref = data.reference
    scale = next(iter(pts.values()))[3]
    fig, ax = new_figure()
    bt = data.ratings
    if bt is not None and ref in bt.ratings and scale == "Bradley–Terry rating":
        line = bt.ratings[ref].rating - decision.margin
        top = max(q[2] for q in quality.values()) + 1
        ax.axhspan(
            line,
            max(top, line + 1),
            color="#e5f5e0",
            alpha=0.6,
            label=f"within the margin ({decision.margin:.0f} below the reference)",
        )
    xs = {m: costs[m].cost_per_1k_output or free_x for m in pts}
    names = list(pts)
    x_arr = np.array([xs[m] for m in names])
    val = np.array([pts[m][0] for m in names])
    err = np.array([[pts[m][0] - pts[m][1] for m in names], [pts[m][2] - pts[m][0] for m in names]])
    # One error-bar container and one scatter for all models (not an errorbar call each).
    ax.errorbar(x_arr, val, yerr=err, fmt="none", ecolor="#999999", capsize=3, zorder=3)
    # Label the reference, the pick and the candidate the decision turns on (the cheapest one
    # not ruled out), whatever the number of points.
    first = next(
        (c.model for c in decision.comparisons if c.priced and c.status != "ruled_out"), None
    )
    key = [m in (ref, pick, first) for m in names]
    ax.scatter(
        x_arr,
        val,
        s=[64 if k else 36 for k in key],
        c=[REFERENCE_COLOR if m == ref else STATUS_COLORS.get(decision.status(m) or "", "#3182bd")
           for m in names],
        zorder=3.5,
    )  # fmt: skip
    labels = [
        (xs[m], pts[m][0], wrap_name(m, 22) + (" (ref)" if m == ref else ""), k)
        for m, k in zip(names, key, strict=True)
        if len(pts) <= 15 or k
    ]
    if pick and pick in pts:
        c = costs[pick]
        ax.scatter(
            [c.cost_per_1k_output or free_x],
            [pts[pick][0]],
            marker="*",
            s=500,
            color=HIGHLIGHT,
            zorder=4,
            label=f"switch to {pick} ({c.label()})",
        )
    ax.set_xscale("log")
    has_free = any(costs[m].cost_per_1k_output == 0 for m in pts)
    plain_log_ticks(ax.xaxis, "${:g}", min_label=free_x * 1.8 if has_free else 0.0)
    ax.set_xlim(free_x / 2.5, max(xs.values()) * 2.5)
    if has_free:
        # $0 has no place on a log axis: free models sit in their own column on the left.
        ax.axvline(free_x * 1.8, color="#aaaaaa", linewidth=1, linestyle=":")
        ax.text(
            free_x,
            0.98,
            "free",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=12,
            fontweight="bold",
            color="#555555",
        )
    # Key models first, so they get the best spots.
    place_labels(ax, sorted(labels, key=lambda lab: not lab[3]))
    ax.set_xlabel("$ per 1K output tokens (log scale; API includes its input-token price)")
    ax.set_ylabel(scale)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right")
    meta = {"Decision": decision.kind, "Pick": pick or "", "Headline": decision.headline}
    return save(fig, path, decision.short(), meta=meta)
