"""Serving one GPU fully: replication and energy, from the latest sweeps (Results.sweeps).

- `replicas_pareto`: throughput vs median latency of every (replicas, load) configuration of
  each model, one marker per replica count, and the Pareto front over all of them: which
  configurations of the one GPU are worth running at all;
- `tokens_per_joule`: output tokens per joule of GPU energy vs load, per replica count;
- `gpu_load`: GPU utilization and memory used vs load, per replica count.
"""

from __future__ import annotations

import math
from pathlib import Path

from evaluation.perf import SweepLevel, pareto_frontier
from evaluation.results import Results

from ._style import new_figure, no_data, save, setup, wrap_name

MARKERS = ["o", "s", "^", "D", "v", "P"]
NO_SWEEP = "Run `slam sweep --model NAME --replicas 1,2` against a host serving replicas."
NO_ENERGY = (
    "Sweep a model whose GPU telemetry is read: dcgm-exporter on the GPU host "
    "(`slam host up` starts it) or NVML on this machine."
)


def _load(lv: SweepLevel) -> float:
    """A level's load: its concurrency (closed loop) or its rate (open loop)."""
    return lv.rate if lv.rate is not None else float(lv.concurrency)


def _load_axis(levels: list[SweepLevel]) -> str:
    if levels and all(lv.rate is not None for lv in levels):
        return "offered load (requests per second)"
    return "load (concurrent requests)"


def _series_colors(keys: list[tuple[str, int]]) -> dict[tuple[str, int], object]:
    """A colour per (model, replica count): the replica counts of one model told apart."""
    setup()
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {k: cmap(i % 10) for i, k in enumerate(sorted(set(keys)))}


def replicas_pareto(data: Results, path: Path) -> Path:
    title = "Replication on one GPU: throughput vs latency, and the Pareto front"
    series = [s for s in data.sweeps if s.levels]
    if not series:
        return no_data(path, title, "no load sweep has been run.", NO_SWEEP)
    fig, ax = new_figure()
    colors = _series_colors([(s.model, s.replicas) for s in series])
    models = sorted({s.model for s in series})
    points: dict[str, list[tuple[float, float, str]]] = {}
    for s in series:
        tokens = all(lv.summary.mean_output_tokens is not None for lv in s.levels)
        xs = [
            lv.summary.output_tokens_per_s if tokens else lv.summary.requests_per_s
            for lv in s.levels
        ]
        ys = [math.nan if lv.summary.latency[50] is None else lv.summary.latency[50]
              for lv in s.levels]  # fmt: skip
        ax.scatter(
            xs,
            ys,
            marker=MARKERS[models.index(s.model) % len(MARKERS)],
            s=90,
            facecolors="none",
            edgecolors=[colors[(s.model, s.replicas)]],
            linewidths=2,
            label=f"{wrap_name(s.model, 24)} ×{s.replicas} replica(s)",
            zorder=3,
        )
        points.setdefault(s.model, []).extend(
            (x, y, f"×{s.replicas} {lv.label}") for x, y, lv in zip(xs, ys, s.levels, strict=True)
        )
    for model, pts in points.items():
        front = pareto_frontier([p[0] for p in pts], [p[1] for p in pts])
        ax.plot(
            [pts[i][0] for i in front],
            [pts[i][1] for i in front],
            linestyle="--",
            linewidth=1.8,
            color="#222222",
            alpha=0.8,
            zorder=2,
            label="Pareto front" if model == models[0] else None,
        )
        if len(points) <= 2:
            for i in front:
                ax.annotate(pts[i][2], pts[i][:2], textcoords="offset points", xytext=(6, 6),
                            fontsize=11)  # fmt: skip
    ax.set_xlabel("throughput (output tokens per second; requests/s without token counts)")
    ax.set_ylabel("median latency per request (s)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False, fontsize=11)
    return save(
        fig,
        path,
        "dashed: Pareto front over every replicas × load configuration of a model (no other "
        "is both faster and higher-throughput)",
    )


def tokens_per_joule(data: Results, path: Path) -> Path:
    title = "Energy efficiency: output tokens per joule vs load"
    series = [s for s in data.sweeps if any(_tpj(lv) is not None for lv in s.levels)]
    if not series:
        return no_data(path, title, "no sweep level has GPU energy measured.", NO_ENERGY)
    colors = _series_colors([(s.model, s.replicas) for s in series])
    fig, ax = new_figure()
    for s in series:
        pts = [(_load(lv), _tpj(lv)) for lv in s.levels if _tpj(lv) is not None]
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker=MARKERS[(s.replicas - 1) % len(MARKERS)],
            markersize=8,
            linewidth=2,
            color=colors[(s.model, s.replicas)],
            label=f"{wrap_name(s.model, 24)} ×{s.replicas} replica(s)",
        )
    ax.set_xlabel(_load_axis([lv for s in series for lv in s.levels]))
    ax.set_ylabel("output tokens per joule (GPU energy, idle included)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False, fontsize=11)
    return save(fig, path, "higher is better: more of the GPU's energy goes into answers")


def _tpj(lv: SweepLevel) -> float | None:
    return lv.energy.tokens_per_joule if lv.energy is not None else None


def gpu_load(data: Results, path: Path) -> Path:
    title = "GPU utilization and memory vs load"
    series = [
        s
        for s in data.sweeps
        if any(lv.energy is not None and lv.energy.util_pct is not None for lv in s.levels)
    ]
    if not series:
        return no_data(path, title, "no sweep level has GPU telemetry.", NO_ENERGY)
    colors = _series_colors([(s.model, s.replicas) for s in series])
    fig, (util_ax, mem_ax) = new_figure(1, 2, left=0.07, right=0.98)
    fig.subplots_adjust(wspace=0.25)
    for s in series:
        levels = [lv for lv in s.levels if lv.energy is not None]
        xs = [_load(lv) for lv in levels]
        style = {
            "marker": MARKERS[(s.replicas - 1) % len(MARKERS)],
            "markersize": 8,
            "linewidth": 2,
            "color": colors[(s.model, s.replicas)],
            "label": f"{wrap_name(s.model, 20)} ×{s.replicas}",
        }
        util = [math.nan if lv.energy is None or lv.energy.util_pct is None
                else lv.energy.util_pct for lv in levels]  # fmt: skip
        mem = [math.nan if lv.energy is None or lv.energy.memory_used_mib is None
               else lv.energy.memory_used_mib for lv in levels]  # fmt: skip
        util_ax.plot(xs, util, **style)
        mem_ax.plot(xs, mem, **style)
    axis = _load_axis([lv for s in series for lv in s.levels])
    util_ax.set_ylim(0, 105)
    util_ax.set_ylabel("GPU utilization (%)")
    mem_ax.set_ylim(bottom=0)
    mem_ax.set_ylabel("GPU memory used (MiB, peak)")
    for ax in (util_ax, mem_ax):
        ax.set_xlabel(axis)
        ax.set_xlim(left=0)
    util_ax.legend(loc="lower right", frameon=False, fontsize=11)
    fig.suptitle(title)
    return save(fig, path, "each replica holds its own copy of the model: memory grows with ×N")
