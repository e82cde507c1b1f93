"""Throughput–latency chart of the latest load sweeps, with each series' Pareto frontier."""

from __future__ import annotations

import math
from pathlib import Path

from evaluation.perf import pareto_frontier, throughput_axis
from evaluation.results import Results

from ._style import model_colors, new_figure, no_data, save, wrap_name


def sweep(data: Results, path: Path) -> Path:
    """x: output tokens/s, y: p50 latency; frontier points joined by a solid line."""
    title = "Throughput vs latency under load"
    series = [s for s in data.sweeps if s.levels]
    if not series:
        return no_data(
            path,
            title,
            "no load sweep has been run.",
            "Run `slam sweep --model NAME` (add --host several times for replicas).",
        )
    colors = model_colors({s.model for s in series}, data.reference)
    fig, ax = new_figure()
    markers = ["o", "s", "^", "D"]
    # Tokens/s when every series has token counts; otherwise requests/s for all, same axis.
    by_tokens = all(throughput_axis(s.levels)[1].startswith("output") for s in series)
    unit = "output tokens per second" if by_tokens else "requests per second"
    for s in series:
        xs = [
            lv.summary.output_tokens_per_s if by_tokens else lv.summary.requests_per_s
            for lv in s.levels
        ]
        ys = [
            lv.summary.latency[50] if lv.summary.latency[50] is not None else math.nan
            for lv in s.levels
        ]
        front = pareto_frontier(xs, ys)
        label = wrap_name(s.model, 28) + (f" ×{s.replicas} replicas" if s.replicas > 1 else "")
        color = colors[s.model]
        marker = markers[(s.replicas - 1) % len(markers)]
        ax.plot(xs, ys, linestyle=":", color=color, alpha=0.6)
        ax.plot(
            [xs[i] for i in front],
            [ys[i] for i in front],
            marker=marker,
            linestyle="-",
            linewidth=2.2,
            markersize=8,
            color=color,
            label=label,
        )
        others = [i for i in range(len(xs)) if i not in front]
        ax.scatter(
            [xs[i] for i in others],
            [ys[i] for i in others],
            marker=marker,
            s=60,
            facecolors="none",
            edgecolors=color,
        )
        if len(series) <= 4:
            for lv, x, y in zip(s.levels, xs, ys, strict=True):
                if math.isfinite(y):
                    ax.annotate(
                        lv.label, (x, y), textcoords="offset points", xytext=(6, -12), fontsize=11
                    )
    ax.set_xlabel(f"throughput ({unit}, all requests together)")
    ax.set_ylabel("median latency per request (s)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False)
    return save(
        fig,
        path,
        "solid line + filled markers: Pareto frontier (no other level is faster and "
        "higher-throughput); hollow: dominated levels",
    )
