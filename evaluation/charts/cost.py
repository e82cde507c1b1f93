"""Cost charts: $ per 1K output tokens (Fig. 16), reduction vs the API (Fig. 17), and the
idealized (contention-free) runtime per output token."""

from __future__ import annotations

import math
from pathlib import Path

from evaluation.perf import ModelCost, format_usd
from evaluation.results import Results

from ._style import (
    HIGHLIGHT,
    REFERENCE_COLOR,
    bars,
    model_axis,
    new_figure,
    no_data,
    plain_log_ticks,
    save,
)

# With more models than this, bar labels carry the value only: longer ones crowd a Slack preview
# (and every glyph costs drawing time).
DETAIL_MAX = 15
COST_HINT = "Run `slam probe` so throughput (tokens/s) can be priced."


def _pricing_note(data: Results) -> str:
    p = data.cfg.pricing
    prompt, output, source = data.request_tokens
    return (
        f"{p.api_name}: ${p.api_input_per_1k}/1K in, ${p.api_output_per_1k}/1K out "
        f"(prices as of {p.prices_as_of}); utilization {p.utilization:.0%}; "
        f"request ≈ {prompt:.0f} in + {output:.0f} out tokens ({source})"
    )


def _api_per_1k(data: Results) -> float:
    _, output, _ = data.request_tokens
    return data.api_cost_per_request / output * 1000 if output else math.nan


def cost_per_1k(data: Results, path: Path) -> Path:
    """Self-hosted $ per 1K output tokens per model, with the API price as a line."""
    title = "Cost per 1K output tokens"
    costs = [c for c in data.costs.values() if c.cost_per_1k_output is not None or c.is_api]
    if not any(not c.is_api and c.cost_per_1k_output is not None for c in costs):
        return no_data(
            path, title, "no self-hosted model has a measured throughput yet.", COST_HINT
        )
    costs.sort(key=lambda c: -(c.cost_per_1k_output or 0.0))
    names = [c.model for c in costs]
    values = [c.cost_per_1k_output or 0.0 for c in costs]
    fig, ax = new_figure()
    colors = [REFERENCE_COLOR if c.is_api else "#3182bd" for c in costs]
    pos = range(1, len(costs) + 1)
    bars(ax, list(pos), values, colors=colors)
    api = _api_per_1k(data)
    top = max([*values, api if math.isfinite(api) else 0.0]) or 1.0
    for y, c in zip(pos, costs, strict=True):
        label = c.label() if c.free else f"{format_usd(c.cost_per_1k_output)}"
        if c.tokens_per_s and not c.is_api and len(costs) <= DETAIL_MAX:
            sweep = ", sweep" if c.throughput_source.startswith("sweep") else ""
            energy = f", {c.j_per_1k_output:,.0f} J/1K" if c.j_per_1k_output is not None else ""
            label += f"  ({c.tokens_per_s:.0f} tok/s{sweep}{energy})"
        ax.text((c.cost_per_1k_output or 0.0) + top * 0.01, y, label, va="center", fontsize=11)
    if math.isfinite(api):
        ax.axvline(
            api,
            color=HIGHLIGHT,
            linestyle="--",
            linewidth=2,
            label=f"{data.cfg.pricing.api_name} API: {format_usd(api)} per 1K output tokens",
        )
        ax.legend(loc="upper right")
    model_axis(ax, names, data.reference, "y")
    ax.set_xlim(0, top * 1.5)
    ax.set_xlabel("$ per 1K output tokens (self-hosted: $/hour ÷ tokens/hour at utilization)")
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    return save(fig, path, _pricing_note(data))


def cost_reduction(data: Results, path: Path) -> Path:
    """How many times cheaper than the API each self-hosted model is, per request."""
    title = f"Cost reduction vs the {data.cfg.pricing.api_name} API"
    costs: list[ModelCost] = [c for c in data.costs.values() if not c.is_api and c.reduction]
    if not costs:
        return no_data(
            path, title, "no self-hosted model has a measured throughput yet.", COST_HINT
        )
    finite = [c.reduction for c in costs if c.reduction is not None and math.isfinite(c.reduction)]
    cap = max(finite) * 2 if finite else 10.0
    costs.sort(key=lambda c: c.reduction or 0.0)
    fig, ax = new_figure()
    pos = list(range(1, len(costs) + 1))
    widths = [min(c.reduction or 0.0, cap) for c in costs]
    colors = ["#31a354" if (c.reduction or 0) >= 1 else HIGHLIGHT for c in costs]
    bars(ax, pos, widths, colors=colors)
    for y, c, w in zip(pos, costs, widths, strict=True):
        text = "free (local CPU)" if c.free and c.hardware == "local-cpu" else c.reduction_label()
        if c.cost_per_request is not None and not c.free and len(costs) <= DETAIL_MAX:
            api = format_usd(data.api_cost_per_request)
            text += f"  ({format_usd(c.cost_per_request)} vs {api} per request)"
        ax.text(w * 1.08, y, text, va="center", fontsize=11)
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis, "{:g}×")
    ax.axvline(
        1.0, color=REFERENCE_COLOR, linestyle="--", linewidth=1.5, label="same cost as the API (1×)"
    )
    ax.legend(loc="lower right")
    lo = min([*widths, 1.0])
    ax.set_xlim(lo / 2, cap * 8)
    model_axis(ax, [c.model for c in costs], data.reference, "y")
    ax.set_xlabel("times cheaper than the API per request (log scale)")
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    return save(fig, path, _pricing_note(data))


def runtime_fit(data: Results, path: Path) -> Path:
    """Idealized (contention-free) time per output token from the robust runtime fit."""
    title = "Idealized runtime: time per output token without contention"
    fits = data.runtime_fits
    if not fits:
        return no_data(path, title, "fewer than 3 timed requests per model.", PROBE_HINT_FIT)
    items = sorted(fits.values(), key=lambda f: -f.c_s_per_output_token)
    fig, ax = new_figure()
    pos = list(range(1, len(items) + 1))
    values = [f.c_s_per_output_token * 1000 for f in items]
    colors = ["#3182bd" if f.r2 >= 0.6 else "#fdae6b" for f in items]
    bars(ax, pos, values, colors=colors)
    top = max(values) or 1.0
    for y, f, v in zip(pos, items, values, strict=True):
        cost = data.costs.get(f.model)
        hourly = data.cfg.pricing.instances.get(cost.hardware) if cost else None
        per_1k = f.cost_per_1k_output(hourly)
        price = (
            ""
            if per_1k is None
            else (" · free" if per_1k == 0 else f" · ≈ {format_usd(per_1k)}/1K")
        )
        text = f"{v:.1f} ms · R² {f.r2:.2f}{price}" if len(items) <= DETAIL_MAX else f"{v:.1f} ms"
        ax.text(v + top * 0.01, y, text, va="center", fontsize=11)
    model_axis(ax, [f.model for f in items], data.reference, "y")
    ax.set_xlim(0, top * 1.55)
    ax.set_xlabel("c: seconds per output token in runtime ≈ a + b·prompt + c·output (ms)")
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    return save(
        fig,
        path,
        "robust (soft-L1) fit on single-stream probes and generations; orange: poor fit (R² < 0.6)",
    )


PROBE_HINT_FIT = "Run `slam probe` and `slam generate`; the fit needs varied output lengths."
