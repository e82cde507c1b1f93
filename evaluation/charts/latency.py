"""Latency charts: per-request and per-token latency, output length, 24-hour profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluation.results import Results

from ._boxes import box_chart, box_stats, draw_boxes
from ._style import model_colors, new_figure, no_data, save, wrap_name

PROBE_HINT = "Run `slam probe` (hourly with `slam bot`/the scheduler) to measure latency."
MAX_LINES = 8


def _window(data: Results) -> str:
    return f"last {data.window_days} days" if data.window_days else "all time"


def latency(data: Results, path: Path) -> Path:
    """Fig. 11: per-request latency distribution per model."""
    title = "Per-request latency (end to end)"
    groups = data.named(data.probes.by_model("latency_s"))
    if not groups:
        return no_data(path, title, "no successful latency probes in the window.", PROBE_HINT)
    return box_chart(
        groups,
        path,
        title=title,
        xlabel="latency per request (s)",
        reference=data.reference,
        note=f"measure-phase probes, {_window(data)}",
    )


def tpot(data: Results, path: Path) -> Path:
    """Fig. 12: per-output-token latency (TPOT) distribution per model."""
    title = "Per-token latency (time per output token after the first)"
    groups = data.named(data.probes.by_model("tpot_s"))
    if not groups:
        return no_data(
            path, title, "no probes with at least 2 output tokens and a TTFT.", PROBE_HINT
        )
    return box_chart(
        groups,
        path,
        title=title,
        xlabel="TPOT (ms per token)",
        reference=data.reference,
        scale=1000.0,
        note=f"TPOT = (latency − TTFT) / (output tokens − 1), {_window(data)}",
    )


def output_tokens(data: Results, path: Path) -> Path:
    """Fig. 13: output length per response, from generations (else probes)."""
    title = "Output length per response"
    groups = data.named(data.generations.by_model("output_tokens"))
    source = "generated responses"
    if not groups:
        groups = data.named(data.probes.by_model("output_tokens"))
        source = f"latency probes, {_window(data)}"
    if not groups:
        return no_data(
            path,
            title,
            "no generations or probes with token counts.",
            "Run `slam generate` or `slam probe`.",
        )
    return box_chart(
        groups,
        path,
        title=title,
        xlabel="output tokens per response",
        reference=data.reference,
        note=source,
    )


def _hourly(data: Results) -> dict[str, list[np.ndarray]]:
    """model -> 24 arrays of latencies, one per hour of day."""
    cols = data.probes
    lat, hour = cols.values["latency_s"], cols.values["hour"]
    keep = np.isfinite(lat) & np.isfinite(hour)
    m, h, v = cols.model[keep], hour[keep].astype(np.int64), lat[keep]
    out: dict[str, list[np.ndarray]] = {}
    if v.size == 0:
        return out
    key = m * 24 + h
    order = np.argsort(key, kind="stable")
    key, v = key[order], v[order]
    keys, starts = np.unique(key, return_index=True)
    for k, part in zip(keys, np.split(v, starts[1:]), strict=True):
        name = data.name(int(k // 24))
        out.setdefault(name, [np.zeros(0) for _ in range(24)])[int(k % 24)] = part
    return out


def hourly_latency(data: Results, path: Path) -> Path:
    """Figs. 14–15: latency by hour of day; boxes for one model, median lines for several."""
    title = "Latency over the day"
    per_model = _hourly(data)
    if not per_model:
        return no_data(path, title, "no successful latency probes in the window.", PROBE_HINT)
    tz = data.cfg.schedule.timezone
    fig, ax = new_figure(right=0.97 if len(per_model) == 1 else 0.74)
    if len(per_model) == 1:
        name, hours = next(iter(per_model.items()))
        present = [h for h in range(24) if hours[h].size]
        draw_boxes(
            ax,
            [box_stats(hours[h], str(h)) for h in present],
            present,
            facecolors=["#9ecae1"] * len(present),
            edgecolors=["#3182bd"] * len(present),
            horizontal=False,
        )
        ax.set_title(f"{title}: {wrap_name(name, 60)}")
        note = "boxes: quartiles; whiskers: p5–p95; black: median; red: mean"
    else:
        overall = {m: float(np.median(np.concatenate(h))) for m, h in per_model.items()}
        ref = data.reference
        chosen = sorted(overall, key=overall.__getitem__)[:MAX_LINES]
        if ref in per_model and ref not in chosen:
            chosen = [*chosen[: MAX_LINES - 1], ref]
        colors = model_colors(per_model, ref)
        for name in chosen:
            hours = per_model[name]
            xs = [h for h in range(24) if hours[h].size]
            ys = [float(np.median(hours[h])) for h in xs]
            ax.plot(
                xs,
                ys,
                marker="o",
                linewidth=2.5 if name == ref else 1.8,
                color=colors[name],
                label=wrap_name(name, 30) + (" (ref)" if name == ref else ""),
            )
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.set_title(title + " (median per hour)")
        note = "median latency per hour of day"
        if len(per_model) > len(chosen):
            note += f"; the {len(chosen)} fastest of {len(per_model)} models shown"
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlim(-0.7, 23.7)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"hour of day ({tz})")
    ax.set_ylabel("latency per request (s)")
    return save(fig, path, f"{note}; {_window(data)}")
