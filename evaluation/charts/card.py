"""The summary card: the one image of a `/slam report` chat answer.

Three panels read at a glance in a Slack preview: the ratings with their intervals (coloured
by the decision's status, the margin drawn), quality against cost, and latency (p50 and p90)
— all from the results service, so the card, the leaderboard text and the decision agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluation.results import Results

from ._style import (
    HIGHLIGHT,
    REFERENCE_COLOR,
    new_figure,
    no_data,
    plain_log_ticks,
    save,
    wrap_name,
)
from .quality import STATUS_COLORS, VOTE_HINT

MAX_MODELS = 12  # the card shows the best-rated dozen; the report has them all


def summary_card(data: Results, path: Path) -> Path:
    title = "SLaM summary"
    bt = data.ratings
    if bt is None:
        return no_data(path, title, data.problems.get("bt", "no pairwise votes yet") + ".",
                       VOTE_HINT)  # fmt: skip
    decision, ref = data.decision, data.reference
    fig, axes = new_figure(
        1, 3, left=0.04, right=0.985, top=0.86, bottom=0.12, gridspec_kw={"wspace": 0.55}
    )
    ax_r, ax_q, ax_l = axes
    fig.suptitle(decision.short(), fontsize=15, fontweight="bold", x=0.5, y=0.975)

    ranked = sorted(bt.ratings.values(), key=lambda r: -r.rating)[:MAX_MODELS][::-1]
    names = [r.model for r in ranked]

    def color(m: str) -> str:
        if m == ref:
            return REFERENCE_COLOR
        return STATUS_COLORS.get(decision.status(m) or "", "#3182bd")

    # 1. Ratings with intervals.
    pos = np.arange(len(ranked))
    vals = np.array([r.rating for r in ranked])
    err = np.array([[r.rating - r.lo for r in ranked], [r.hi - r.rating for r in ranked]])
    ax_r.errorbar(vals, pos, xerr=err, fmt="none", ecolor="#888888", elinewidth=2, capsize=3)
    ax_r.scatter(vals, pos, c=[color(m) for m in names], s=40, zorder=3)
    if ref in bt.ratings:
        ax_r.axvline(bt.ratings[ref].rating - decision.margin, color="#31a354", linestyle=":",
                     linewidth=1.5)  # fmt: skip
    ax_r.set_yticks(pos, [wrap_name(m, 18) + ("*" if bt.ratings[m].bound else "") for m in names],
                    fontsize=10)  # fmt: skip
    ax_r.set_title(f"Rating ({bt.ci:.0%} interval)", fontsize=13)
    ax_r.tick_params(axis="x", labelsize=10)
    ax_r.grid(axis="y", visible=False)

    # 2. Quality against cost (free models at the left edge).
    costs = data.costs
    pts: list[tuple[str, float]] = []
    for m in names:
        per_1k = costs[m].cost_per_1k_output if m in costs else None
        if per_1k is not None:
            pts.append((m, per_1k))
    if pts:
        positive = [c for _, c in pts if c > 0]
        floor = min(positive) / 4 if positive else 1e-4
        xs = np.array([c if c > 0 else floor for _, c in pts])
        ys = np.array([bt.ratings[m].rating for m, _ in pts])
        ax_q.scatter(xs, ys, c=[color(m) for m, _ in pts], s=45, zorder=3)
        if decision.model and decision.model in dict(pts):
            i = [m for m, _ in pts].index(decision.model)
            ax_q.scatter([xs[i]], [ys[i]], marker="*", s=320, color=HIGHLIGHT, zorder=4)
        ax_q.set_xscale("log")
        plain_log_ticks(ax_q.xaxis, "${:g}", min_label=floor * 1.5 if floor in xs else 0.0)
        from matplotlib.ticker import LogLocator

        ax_q.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0,)))  # a narrow panel
        ax_q.set_xlabel("$ per 1K output tokens (free: left edge)", fontsize=10)
    else:
        ax_q.text(0.5, 0.5, "no cost yet:\nrun `slam probe`", ha="center", va="center",
                  transform=ax_q.transAxes, color="#777777")  # fmt: skip
    ax_q.set_title("Quality vs cost", fontsize=13)
    ax_q.tick_params(labelsize=10)

    # 3. Latency p50 and p90 of the same models.
    lat = data.named(data.probes.by_model("latency_s"))
    shown = [m for m in names if m in lat]
    if shown:
        p50 = np.array([np.percentile(lat[m], 50) for m in shown])
        p90 = np.array([np.percentile(lat[m], 90) for m in shown])
        y = np.arange(len(shown))
        ax_l.barh(y, p90, color="#c6dbef", label="p90")
        ax_l.barh(y, p50, color="#3182bd", label="p50")
        ax_l.set_yticks(y, [wrap_name(m, 18) for m in shown], fontsize=10)
        ax_l.set_xlabel("seconds per request", fontsize=10)
        ax_l.legend(loc="lower right", fontsize=9)
    else:
        ax_l.text(0.5, 0.5, "no latency yet:\nrun `slam probe`", ha="center", va="center",
                  transform=ax_l.transAxes, color="#777777")  # fmt: skip
        ax_l.set_yticks([])
    ax_l.set_title("Latency", fontsize=13)
    ax_l.tick_params(axis="x", labelsize=10)
    ax_l.grid(axis="y", visible=False)
    # Names need room: each panel's left margin fits its labels.
    for ax, labels in ((ax_r, names), (ax_l, shown)):
        widest = max((len(wrap_name(m, 18).split("\n")[0]) for m in labels), default=0)
        box = ax.get_position()
        shift = min(0.16, widest * 10 * 0.6 / 72 / 12.0)
        ax.set_position((box.x0 + shift, box.y0, box.width - shift, box.height))
    from matplotlib.lines import Line2D

    legend = [("reference", REFERENCE_COLOR)] + [
        (label, STATUS_COLORS[k])
        for k, label in (("acceptable", "acceptable"), ("too_close", "too close"),
                         ("open", "open"), ("ruled_out", "ruled out"))
    ]  # fmt: skip
    fig.legend(
        [Line2D([], [], marker="o", linestyle="", color=c) for _, c in legend],
        [label for label, _ in legend],
        loc="lower left", ncol=len(legend), fontsize=10, frameon=False,
        bbox_to_anchor=(0.0, -0.005),
    )  # fmt: skip
    note = f"{bt.n_outcomes:,} votes · margin {decision.margin:.0f} Elo · {len(bt.ratings)} rated"
    if len(bt.ratings) > MAX_MODELS:
        note += f" (best {MAX_MODELS} shown)"
    meta = {"Decision": decision.kind, "Pick": decision.model or "", "Headline": decision.headline}
    return save(fig, path, note, meta=meta)
