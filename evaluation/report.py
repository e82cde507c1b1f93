"""`slam report`: every chart, a leaderboard, and a recommendation, as HTML and Markdown.

The same builder answers `/slam report [chart]` in chat: `summary_text` is the short reply and
`charts` the PNGs to attach.
"""

from __future__ import annotations

import base64
import html
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Engine

from core.config import SlamConfig
from evaluation.charts import CHART_DESCRIPTIONS, CHART_NAMES, RATING_CHARTS, chart_function
from evaluation.charts.data import ReportData
from evaluation.cost import format_usd

__all__ = ["CHART_NAMES", "LeaderboardRow", "Recommendation", "ReportResult", "build_report"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaderboardRow:
    model: str
    is_reference: bool
    hardware: str
    quality: float | None
    quality_lo: float | None
    quality_hi: float | None
    quality_scale: str
    n_votes: int | None
    latency_p50_s: float | None
    latency_p90_s: float | None
    tpot_p50_s: float | None
    tokens_per_s: float | None
    availability: float | None
    cost_label: str
    cost_per_1k_output: float | None
    reduction_label: str
    monthly_usd: float | None

    def quality_text(self) -> str:
        if self.quality is None:
            return "not rated"
        ci = ""
        if (
            self.quality_lo is not None
            and self.quality_hi is not None
            and self.quality_hi > self.quality_lo
        ):
            ci = f" {_interval(self.quality_lo, self.quality_hi, self.quality)}"
        return f"{_num(self.quality)}{ci}"


def _num(v: float, like: float | None = None) -> str:
    """Ratings (hundreds) without decimals, 0–10 scores with two."""
    return f"{v:.0f}" if abs(like if like is not None else v) >= 100 else f"{v:.2f}"


def _interval(lo: float, hi: float, like: float) -> str:
    return f"[{_num(lo, like)}, {_num(hi, like)}]"


@dataclass(frozen=True)
class Recommendation:
    model: str | None  # the model to switch to, or None (keep the reference / not enough data)
    text: str
    reason: str = ""


@dataclass
class ReportResult:
    out_dir: Path
    charts: dict[str, Path]
    html_path: Path
    md_path: Path
    leaderboard: list[LeaderboardRow]
    recommendation: str
    summary_text: str
    recommended_model: str | None = None
    problems: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _s(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def leaderboard(data: ReportData) -> list[LeaderboardRow]:
    """One row per model with data or configuration; best quality first, then cheapest."""
    configured = {m.name for m in data.cfg.models}
    lat = data.named(data.probes.by_model("latency_s"))
    tp = data.named(data.probes.by_model("tpot_s"))
    quality = data.quality
    bt = data.bt
    names = {
        m.name
        for m in data.models.values()
        if m.name in configured or m.name in lat or m.name in quality
    }
    rows = []
    for name in names:
        cost = data.costs.get(name)
        q = quality.get(name)
        ok, total = data.availability.get(name, (0, 0))
        lats = lat.get(name)
        rows.append(
            LeaderboardRow(
                model=name,
                is_reference=name == data.reference,
                hardware=cost.hardware if cost else "unknown",
                quality=q[0] if q else None,
                quality_lo=q[1] if q else None,
                quality_hi=q[2] if q else None,
                quality_scale=q[3] if q else "",
                n_votes=bt.ratings[name].n_votes if bt is not None and name in bt.ratings else None,
                latency_p50_s=float(np.percentile(lats, 50)) if lats is not None else None,
                latency_p90_s=float(np.percentile(lats, 90)) if lats is not None else None,
                tpot_p50_s=float(np.percentile(tp[name], 50)) if name in tp else None,
                tokens_per_s=cost.tokens_per_s if cost else None,
                availability=ok / total if total else None,
                cost_label=cost.label() if cost else "unknown",
                cost_per_1k_output=cost.cost_per_1k_output if cost else None,
                reduction_label=cost.reduction_label() if cost else "n/a",
                monthly_usd=cost.monthly_usd if cost else None,
            )
        )
    rows.sort(
        key=lambda r: (r.quality is None, -(r.quality or 0.0), r.cost_per_1k_output or 0.0, r.model)
    )
    return rows


def pick_recommendation(data: ReportData) -> Recommendation:
    """The cheapest self-hosted model whose quality CI overlaps the reference's, if any."""
    quality, costs, ref = data.quality, data.costs, data.reference
    n_day = f"{data.requests_per_day:,.0f} requests/day"
    if not quality:
        return Recommendation(
            None,
            "Not enough human ratings yet to recommend a model: keep collecting "
            "votes (and run `slam probe` so costs are known).",
        )
    if ref is None or ref not in quality:
        who = (
            "no reference model is configured"
            if ref is None
            else f"the reference {ref} has no ratings yet"
        )
        return Recommendation(None, f"Cannot compare with the API yet: {who}.")
    _, ref_lo, ref_hi, scale = quality[ref]
    candidates = [
        m
        for m in quality
        if m != ref
        and m in costs
        and not costs[m].is_api
        and costs[m].cost_per_1k_output is not None
    ]
    unpriced = [
        m
        for m in quality
        if m != ref and m not in candidates and not (m in costs and costs[m].is_api)
    ]
    good = [m for m in candidates if quality[m][2] >= ref_lo]
    tail = (
        f" ({len(unpriced)} rated model(s) have no throughput measurement yet: run `slam probe`.)"
        if unpriced
        else ""
    )
    if not good:
        best = max(candidates, key=lambda m: quality[m][0], default=None)
        closest = (
            f" The closest is {best} ({quality[best][0]:.0f} vs {quality[ref][0]:.0f})."
            if best
            else ""
        )
        return Recommendation(
            None,
            f"Keep {ref}: no self-hosted model's quality interval reaches the reference's."
            f"{closest}{tail}",
            f"no candidate's CI overlaps {ref}",
        )
    pick = min(good, key=lambda m: (costs[m].cost_per_1k_output or 0.0, -quality[m][0], m))
    c = costs[pick]
    val, lo, hi, _ = quality[pick]
    api_month = data.api_cost_per_request * data.requests_per_day * 30
    lat = data.named(data.probes.by_model("latency_s")).get(pick)
    p90 = f" p90 latency {_s(float(np.percentile(lat, 90)))}." if lat is not None else ""
    avail = data.availability.get(pick)
    up = f" Availability {avail[0] / avail[1]:.1%}." if avail and avail[1] else ""
    if c.free:
        money = f"it is {c.label()}, vs {format_usd(api_month)}/month for the API at {n_day}"
    else:
        dedicated = (
            f"; a dedicated host costs {format_usd(c.monthly_dedicated_usd)}/month"
            if c.monthly_dedicated_usd
            else ""
        )
        money = (
            f"it costs {c.label()} ({c.reduction_label()} cheaper per request): ≈ "
            f"{format_usd(c.monthly_usd)}/month vs {format_usd(api_month)}/month for the API "
            f"at {n_day}{dedicated}"
        )
    text = (
        f"Switch to {pick}: its {scale} {_num(val)} {_interval(lo, hi, val)} overlaps "
        f"{ref}'s {_interval(ref_lo, ref_hi, val)}, and {money}.{p90}{up}{tail}"
    )
    return Recommendation(pick, text, f"pick: cheapest model whose quality CI overlaps {ref}'s")


HEADERS = [
    "#",
    "model",
    "hardware",
    "quality",
    "votes",
    "p50 latency",
    "p90 latency",
    "TPOT p50",
    "tok/s",
    "availability",
    "$ per 1K output",
    "vs API",
    "$/month",
]


def _cells(i: int, r: LeaderboardRow) -> list[str]:
    """One leaderboard row as text cells, in HEADERS order."""
    return [
        str(i),
        r.model + (" (ref)" if r.is_reference else ""),
        r.hardware,
        r.quality_text(),
        str(r.n_votes) if r.n_votes is not None else "",
        _s(r.latency_p50_s),
        _s(r.latency_p90_s),
        _s(r.tpot_p50_s),
        f"{r.tokens_per_s:.1f}" if r.tokens_per_s else "n/a",
        f"{r.availability:.1%}" if r.availability is not None else "n/a",
        r.cost_label,
        r.reduction_label,
        format_usd(r.monthly_usd),
    ]


def _markdown(result: ReportResult, data: ReportData, generated: str) -> str:
    lines = [
        "# SLaM report",
        "",
        f"Generated {generated}. Experiment: {data.cfg.experiment.name}; "
        f"reference: {data.reference or 'none'}.",
        "",
        "## Recommendation",
        "",
        result.recommendation,
        "",
        "## Leaderboard",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    for i, r in enumerate(result.leaderboard, 1):
        cells = [c.replace("|", "\\|") for c in _cells(i, r)]
        if r.is_reference:
            cells[1] = f"**{cells[1]}**"
        lines.append("| " + " | ".join(cells) + " |")
    scale = next((r.quality_scale for r in result.leaderboard if r.quality_scale), "")
    if scale:
        lines += ["", f"Quality: {scale}, 95% interval in brackets."]
    lines += ["", _assumptions(data)]
    if result.problems:
        lines += ["", "## Data notes", ""] + [
            f"- {k}: {v}" for k, v in sorted(result.problems.items())
        ]
    lines += ["", "## Charts", ""]
    for name, path in result.charts.items():
        lines += [f"### {CHART_DESCRIPTIONS[name]}", "", f"![{name}]({path.name})", ""]
    return "\n".join(lines) + "\n"


def _assumptions(data: ReportData) -> str:
    p = data.cfg.pricing
    prompt, output, source = data.request_tokens
    return (
        f"Costs: {p.api_name} at ${p.api_input_per_1k}/1K input and ${p.api_output_per_1k}/1K "
        f"output tokens (prices as of {p.prices_as_of}); self-hosted = instance $/hour ÷ "
        f"(measured output tokens/hour × {p.utilization:.0%} utilization); a request ≈ "
        f"{prompt:.0f} input + {output:.0f} output tokens ({source}); monthly at "
        f"{data.requests_per_day:,.0f} requests/day × 30 days."
    )


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1260px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:14px;width:100%}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td:nth-child(2),td:nth-child(3){text-align:left}tr.ref{font-weight:bold;background:#fafafa}
.rec{background:#e5f5e0;border-left:5px solid #31a354;padding:.8em 1em;font-size:16px}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}.note{color:#555;font-size:14px}"""


def _html(result: ReportResult, data: ReportData, generated: str) -> str:
    e = html.escape
    rows = []
    for i, r in enumerate(result.leaderboard, 1):
        cls = ' class="ref"' if r.is_reference else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in _cells(i, r)) + "</tr>")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>SLaM report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>SLaM report</h1>",
        f"<p class='note'>Generated {e(generated)}. Experiment: {e(data.cfg.experiment.name)}; "
        f"reference: {e(data.reference or 'none')}.</p>",
        f"<h2>Recommendation</h2><p class='rec'>{e(result.recommendation)}</p>",
        "<h2>Leaderboard</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in HEADERS) + "</tr>",
        *rows,
        "</table>",
        f"<p class='note'>{e(_assumptions(data))}</p>",
    ]
    if result.problems:
        parts.append(
            "<h2>Data notes</h2><ul>"
            + "".join(f"<li>{e(k)}: {e(v)}</li>" for k, v in sorted(result.problems.items()))
            + "</ul>"
        )
    parts.append("<h2>Charts</h2>")
    for name, path in result.charts.items():
        b64 = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(
            f"<h3>{e(CHART_DESCRIPTIONS[name])}</h3>"
            f"<img alt='{e(name)}' src='data:image/png;base64,{b64}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def summary_text(rows: list[LeaderboardRow], recommendation: str, limit: int = 8) -> str:
    """A short plain-text leaderboard and the recommendation, for a chat reply."""
    if not rows:
        return "No models with data yet.\n" + recommendation
    lines = ["Leaderboard (quality · p50 latency · $ per 1K output tokens · vs API):"]
    for i, r in enumerate(rows[:limit], 1):
        ref = " (ref)" if r.is_reference else ""
        lines.append(
            f"{i}. {r.model}{ref}: {r.quality_text()} · {_s(r.latency_p50_s)} · "
            f"{r.cost_label} · {r.reduction_label}"
        )
    if len(rows) > limit:
        lines.append(f"… and {len(rows) - limit} more in the full report")
    return "\n".join(lines) + "\n\n" + recommendation


def build_report(
    engine: Engine,
    cfg: SlamConfig,
    out_dir: Path,
    only: list[str] | None = None,
    *,
    requests_per_day: float = 1000,
    window_days: int | None = 30,
) -> ReportResult:
    """Draw the charts (all, or `only` these), then write report.html and report.md."""
    from evaluation.charts._style import no_data, setup

    names = list(CHART_NAMES) if not only else list(dict.fromkeys(only))
    fns = {n: chart_function(n) for n in names}  # validates every name before any work
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = ReportData(engine, cfg, window_days=window_days, requests_per_day=requests_per_day)
    timings: dict[str, float] = {}
    charts: dict[str, Path] = {}
    chart_errors: dict[str, str] = {}
    # Drawing is serial (forking chart workers was measured slower on the shared 2-CPU host
    # and is unsafe in the threaded chat bot), but the Bradley–Terry ratings are computed on
    # a thread meanwhile: one aggregate query and a numpy bootstrap, both mostly outside the
    # GIL. The charts that need ratings are drawn last. (Row-by-row loads stay on this
    # thread: a background fetch would wait for the GIL at every row.)
    cpu = time.thread_time()  # this thread's CPU: the critical path when no one else is busy
    loader = data.prefetch("bt") if RATING_CHARTS.intersection(names) else None
    setup()  # import matplotlib now: a cold process overlaps it with the ratings query
    try:
        for name in sorted(names, key=lambda n: n in RATING_CHARTS):
            fn = fns[name]
            t0 = time.perf_counter()
            path = out_dir / f"{name}.png"
            try:
                charts[name] = fn(data, path)
            except Exception as exc:  # one broken chart must not cost the team the whole report
                log.exception("chart %s failed", name)
                chart_errors[f"chart {name}"] = f"{type(exc).__name__}: {exc}"
                charts[name] = no_data(path, CHART_DESCRIPTIONS[name], f"this chart failed: {exc}")
            timings[f"chart:{name}"] = time.perf_counter() - t0
        charts = {n: charts[n] for n in names}  # the report's order, not the drawing order
        timings = {f"chart:{n}": timings[f"chart:{n}"] for n in names}
        t0 = time.perf_counter()
        rows = leaderboard(data)
        rec = pick_recommendation(data)
    finally:
        if loader is not None:
            loader.join()  # the engine is the caller's again once we return
    timings["leaderboard"] = time.perf_counter() - t0
    problems = {**data.problems, **chart_errors}
    if data.bt is not None:
        for i, w in enumerate(data.bt.warnings):
            problems[f"ratings warning {i + 1}"] = w
    result = ReportResult(
        out_dir=out_dir,
        charts=charts,
        html_path=out_dir / "report.html",
        md_path=out_dir / "report.md",
        leaderboard=rows,
        recommendation=rec.text,
        summary_text=summary_text(rows, rec.text),
        recommended_model=rec.model,
        problems=problems,
        timings=timings,
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    result.md_path.write_text(_markdown(result, data, generated), encoding="utf-8")
    result.html_path.write_text(_html(result, data, generated), encoding="utf-8")
    timings["html+md"] = time.perf_counter() - t0
    timings["main thread CPU"] = time.thread_time() - cpu
    for k, v in data.timings.items():
        timings[f"data:{k}"] = v
    return result
