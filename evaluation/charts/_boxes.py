"""Horizontal box plots per model from precomputed statistics (fast on 100k+ values)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._style import HIGHLIGHT, REFERENCE_COLOR, bars, model_axis, new_figure, save

MAX_MODELS = 30


def box_stats(values: np.ndarray, label: str) -> dict[str, Any]:
    """matplotlib `bxp` stats: quartiles, p5–p95 whiskers, mean (no outlier points)."""
    p5, q1, med, q3, p95 = np.percentile(values, [5, 25, 50, 75, 95])
    return {
        "label": label,
        "med": med,
        "q1": q1,
        "q3": q3,
        "whislo": p5,
        "whishi": p95,
        "mean": float(values.mean()),
        "fliers": [],
    }


def draw_boxes(
    ax: Any,
    stats: Sequence[dict[str, Any]],
    positions: Sequence[float],
    *,
    facecolors: Sequence[Any],
    edgecolors: Sequence[Any],
    horizontal: bool,
    width: float = 0.6,
) -> None:
    """Box plots as one bar container and three line collections.

    Equivalent to `Axes.bxp` with a mean line, but a few artists instead of seven per box:
    a report draws thousands of boxes and bxp's Line2D-per-part made it the slowest chart.
    """
    from matplotlib.collections import LineCollection

    pos = np.asarray(positions, dtype=float)
    q1 = np.array([s["q1"] for s in stats])
    q3 = np.array([s["q3"] for s in stats])
    lo = np.array([s["whislo"] for s in stats])
    hi = np.array([s["whishi"] for s in stats])
    med = np.array([s["med"] for s in stats])
    mean = np.array([s["mean"] for s in stats])
    half, cap = width / 2, width / 4

    def seg(v0: np.ndarray, v1: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> list[Any]:
        # Segments from (value v0, position p0) to (v1, p1), in data (x, y) order.
        pts = np.stack([np.stack([v0, p0], -1), np.stack([v1, p1], -1)], 1)
        return list(pts if horizontal else pts[:, :, ::-1])

    bars(
        ax,
        pos,
        q3 - q1,
        start=q1,
        width=width,
        colors=facecolors,
        edgecolors=edgecolors,
        horizontal=horizontal,
    )
    whiskers = seg(lo, q1, pos, pos) + seg(q3, hi, pos, pos)
    caps = seg(lo, lo, pos - cap, pos + cap) + seg(hi, hi, pos - cap, pos + cap)
    ax.add_collection(LineCollection(whiskers + caps, colors="#333333", linewidths=1.2))
    ax.add_collection(
        LineCollection(seg(med, med, pos - half, pos + half), colors="#111111", linewidths=2.2)
    )
    ax.add_collection(
        LineCollection(
            seg(mean, mean, pos - half, pos + half), colors=HIGHLIGHT, linewidths=2, linestyles="--"
        )
    )
    values = np.concatenate([lo, hi])
    corners = np.stack([values, np.concatenate([pos, pos])], -1)
    ax.update_datalim(corners if horizontal else corners[:, ::-1])
    ax.autoscale_view()


def box_chart(
    groups: Mapping[str, np.ndarray],
    path: Path,
    *,
    title: str,
    xlabel: str,
    reference: str | None,
    scale: float = 1.0,
    note: str | None = None,
    sort_desc: bool = False,
    xlim: tuple[float, float] | None = None,
) -> Path:
    """One horizontal box per model, sorted by median (best at the top), mean as a line."""
    items = [(m, v * scale) for m, v in groups.items() if v.size]
    items.sort(key=lambda kv: float(np.median(kv[1])), reverse=not sort_desc)
    dropped = 0
    if len(items) > MAX_MODELS:
        dropped = len(items) - MAX_MODELS
        items = items[-MAX_MODELS:]
    names = [m for m, _ in items]
    stats = [box_stats(v, m) for m, v in items]
    fig, ax = new_figure()
    ref_face, face = "#bbbbbb", "#9ecae1"
    draw_boxes(
        ax,
        stats,
        list(range(1, len(stats) + 1)),
        facecolors=[ref_face if n == reference else face for n in names],
        edgecolors=[REFERENCE_COLOR if n == reference else "#3182bd" for n in names],
        horizontal=True,
    )
    model_axis(ax, names, reference, "y")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if xlim:
        ax.set_xlim(*xlim)
    ax.grid(axis="y", visible=False)
    counts = [int(v.size) for _, v in items]
    text = (
        "boxes: quartiles; whiskers: p5–p95; black: median; red: mean; "
        f"n per model {min(counts)}–{max(counts)}"
    )
    if dropped:
        text += f"; {dropped} more models not shown"
    if note:
        text = note + " · " + text
    return save(fig, path, text)
