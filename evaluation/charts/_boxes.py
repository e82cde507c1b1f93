"""Horizontal box plots per model from precomputed statistics (fast on 100k+ values)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._style import HIGHLIGHT, REFERENCE_COLOR, model_axis, new_figure, save

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
    bp = ax.bxp(
        stats,
        orientation="horizontal",
        showmeans=True,
        meanline=True,
        patch_artist=True,
        widths=0.6,
        medianprops={"color": "#111111", "linewidth": 2},
        meanprops={"color": HIGHLIGHT, "linewidth": 2, "linestyle": "--"},
    )
    for patch, name in zip(bp["boxes"], names, strict=True):
        patch.set_facecolor("#bbbbbb" if name == reference else "#9ecae1")
        patch.set_edgecolor(REFERENCE_COLOR if name == reference else "#3182bd")
    model_axis(ax, names, reference, "y")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if xlim:
        ax.set_xlim(*xlim)
    ax.grid(axis="y", visible=False)
    counts = [int(v.size) for _, v in items]
    text = (
        "boxes: quartiles; whiskers: p5–p95; black: median; red dashed: mean; "
        f"n per model {min(counts)}–{max(counts)}"
    )
    if dropped:
        text += f"; {dropped} more models not shown"
    if note:
        text = note + " · " + text
    return save(fig, path, text)
