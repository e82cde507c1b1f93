"""`slam probe`, `slam sweep`, `slam report`. Heavy modules are imported inside the commands."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from core.errors import SlamError
from core.options import ConfigOpt

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from core.config import SlamConfig


def register(app: typer.Typer) -> None:
    app.command("probe")(probe)
    app.command("sweep")(sweep)
    app.command("report")(report)


def _open(config: Path | None) -> tuple[SlamConfig, Engine]:
    from core.config import load_config
    from storage.migrate import open_database

    cfg = load_config(config)
    return cfg, open_database(cfg.database.url)


def probe(
    config: Path | None = ConfigOpt,
    model: list[str] = typer.Option(None, "--model", "-m", help="Only these models (repeatable)."),
    warmup: int = typer.Option(
        10, min=0, help="Warm-up requests per model (stored, phase=warmup)."
    ),
    measure: int = typer.Option(10, min=1, help="Measured requests per model."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Measure each model's latency: warm up, then time the same request N times."""
    from evaluation.probes import run_probes

    cfg, engine = _open(config)
    summaries = asyncio.run(
        run_probes(
            engine, cfg, models=model or None, warmup=warmup, measure=measure, progress=not quiet
        )
    )
    for s in summaries:
        typer.echo(s.line())


def _floats(text: str | None, what: str) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SlamError(
            f"{what}: expected comma-separated numbers like '1,2,4' (got {text!r})"
        ) from None


def sweep(
    model: str = typer.Option(..., "--model", "-m", help="The configured model to load-test."),
    config: Path | None = ConfigOpt,
    host: list[str] = typer.Option(
        None,
        "--host",
        help="Endpoint of one replica (repeat for several; default: the model's host).",
    ),
    concurrency: str = typer.Option("1,2,4,8", help="Concurrency levels, comma-separated."),
    rate: bool = typer.Option(
        False, "--rate", help="GuideLLM-style: synchronous, max throughput, then rates between."
    ),
    rates: str | None = typer.Option(
        None, help="Explicit request rates (req/s) for --rate, comma-separated."
    ),
    n_rates: int = typer.Option(3, min=1, help="How many evenly spaced rates for --rate."),
    requests: int | None = typer.Option(
        None, min=1, help="Requests per level (default max(8, 2×concurrency))."
    ),
    max_tokens: int | None = typer.Option(None, min=1, help="Override experiment.max_tokens."),
    slo_ttft_ms: float = typer.Option(2000, help="Goodput SLO: time to first token (ms)."),
    slo_tpot_ms: float = typer.Option(200, help="Goodput SLO: time per output token (ms)."),
    slo_e2e_s: float = typer.Option(30, help="Goodput SLO: end-to-end latency (s)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Drive one model at rising load; print throughput, latency percentiles and goodput."""
    from evaluation.latency_stats import SLO
    from evaluation.sweep import run_sweep

    levels = _floats(concurrency, "--concurrency") or []
    if any(c < 1 or c != int(c) for c in levels):
        raise SlamError(f"--concurrency: levels must be whole numbers ≥ 1 (got {concurrency!r})")
    cfg, engine = _open(config)
    result = asyncio.run(
        run_sweep(
            engine,
            cfg,
            model,
            hosts=host or None,
            mode="rate" if rate or rates else "concurrency",
            concurrencies=[int(c) for c in levels],
            rates=_floats(rates, "--rates"),
            n_rates=n_rates,
            requests_per_level=requests,
            max_tokens=max_tokens,
            slo=SLO(ttft_s=slo_ttft_ms / 1000, tpot_s=slo_tpot_ms / 1000, e2e_s=slo_e2e_s),
            progress=not quiet,
        )
    )
    typer.echo(result.table())


def report(
    out: Path = typer.Option(
        Path("slam-report"), "--out", "-o", help="Directory for the PNGs and report files."
    ),
    chart: list[str] = typer.Option(
        None, "--chart", help="Only this chart (repeatable); see --list."
    ),
    config: Path | None = ConfigOpt,
    requests_per_day: float = typer.Option(1000, min=1, help="Load for the monthly cost estimate."),
    days: int = typer.Option(30, min=1, help="Latency window: the last N days of probes."),
    list_charts: bool = typer.Option(False, "--list", help="List the chart names and exit."),
) -> None:
    """Write every chart plus report.html (self-contained) and report.md with the leaderboard."""
    from evaluation.charts import CHART_DESCRIPTIONS

    if list_charts:
        for name, desc in CHART_DESCRIPTIONS.items():
            typer.echo(f"{name:16} {desc}")
        return
    from evaluation.report import build_report

    cfg, engine = _open(config)
    result = build_report(
        engine, cfg, out, only=chart or None, requests_per_day=requests_per_day, window_days=days
    )
    typer.echo(result.summary_text)
    typer.echo(f"\nwrote {len(result.charts)} chart(s), {result.html_path} and {result.md_path}")
