"""`slam probe`, `slam sweep`, `slam report`. Heavy modules are imported inside the commands."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from core.config import CommandLimits, ExperimentConfig
from core.errors import SlamError, short
from core.options import ConfigOpt, bounded, check_bound

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
    warmup: int = bounded(
        10,
        "--warmup",
        bound=(CommandLimits, "probe_warmup"),
        help="Warm-up requests per model (stored, phase=warmup).",
    ),
    measure: int = bounded(
        10,
        "--measure",
        bound=(CommandLimits, "probe_measure"),
        help="Measured requests per model.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Measure each model's latency: warm up, then time the same request N times."""
    from evaluation.perf import run_probes

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
        out = [float(x) for x in text.split(",") if x.strip()]
        if not all(math.isfinite(x) for x in out):
            raise ValueError
        return out
    except ValueError:
        raise SlamError(
            f"{what}: expected comma-separated numbers like '1,2,4' (got {short(repr(text), 60)})"
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
    n_rates: int = bounded(
        3,
        "--n-rates",
        bound=(CommandLimits, "sweep_n_rates"),
        help="How many evenly spaced rates for --rate.",
    ),
    requests: int | None = bounded(
        None,
        "--requests",
        bound=(CommandLimits, "sweep_requests"),
        help="Requests per level (default max(8, 2×concurrency)).",
    ),
    max_tokens: int | None = bounded(
        None,
        "--max-tokens",
        bound=(ExperimentConfig, "max_tokens"),
        help="Override experiment.max_tokens.",
    ),
    slo_ttft_ms: float = bounded(
        2000,
        "--slo-ttft-ms",
        bound=(CommandLimits, "slo_ttft_ms"),
        help="Goodput SLO: time to first token (ms).",
    ),
    slo_tpot_ms: float = bounded(
        200,
        "--slo-tpot-ms",
        bound=(CommandLimits, "slo_tpot_ms"),
        help="Goodput SLO: time per output token (ms).",
    ),
    slo_e2e_s: float = bounded(
        30,
        "--slo-e2e-s",
        bound=(CommandLimits, "slo_e2e_s"),
        help="Goodput SLO: end-to-end latency (s).",
    ),
    replicas: str | None = typer.Option(
        None,
        "--replicas",
        help="Replica counts to drive, comma-separated (e.g. '1,2,4'): each uses the first N"
        " --host endpoints, or one host and the ports after it (`slam host up --replicas`).",
    ),
    slo_search: bool = typer.Option(
        False,
        "--slo-search",
        help="Then bisect between the levels for the highest load meeting the SLO (goodput).",
    ),
    slo_attainment: float = typer.Option(
        0.9,
        "--slo-attainment",
        min=0.01,
        max=1.0,
        help="Share of a level's requests that must meet the SLO for it to count (0.01–1).",
    ),
    no_early_stop: bool = typer.Option(
        False,
        "--no-early-stop",
        help="Run every request of a level even when the server is over-saturated.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Drive one model at rising load (per replica count); print throughput, latency
    percentiles, goodput and the GPU's energy per token where telemetry reads it."""
    from evaluation.perf import SLO, run_sweep

    replica_counts = _floats(replicas, "--replicas")
    for r in replica_counts or []:
        if r != int(r) or not 1 <= r <= 16:
            raise SlamError(f"--replicas: counts must be whole numbers from 1 to 16 (got {r:g})")

    levels = _floats(concurrency, "--concurrency") or []
    for c in levels:
        if not math.isfinite(c) or c != int(c):
            raise SlamError(f"--concurrency: levels must be whole numbers ≥ 1 (got {c:g})")
        check_bound(CommandLimits, "sweep_concurrency", int(c), "--concurrency")
    rate_list = _floats(rates, "--rates")
    for r in rate_list or []:
        check_bound(CommandLimits, "sweep_rate", r, "--rates")
    cfg, engine = _open(config)
    result = asyncio.run(
        run_sweep(
            engine,
            cfg,
            model,
            hosts=host or None,
            mode="rate" if rate or rates else "concurrency",
            concurrencies=[int(c) for c in levels],
            rates=rate_list,
            n_rates=n_rates,
            requests_per_level=requests,
            max_tokens=max_tokens,
            slo=SLO(ttft_s=slo_ttft_ms / 1000, tpot_s=slo_tpot_ms / 1000, e2e_s=slo_e2e_s),
            progress=not quiet,
            replicas=[int(r) for r in replica_counts] if replica_counts else None,
            stop_when_saturated=not no_early_stop,
            slo_search=slo_search,
            slo_attainment=slo_attainment,
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
    requests_per_day: float = bounded(
        1000,
        "--requests-per-day",
        bound=(CommandLimits, "requests_per_day"),
        help="Load for the monthly cost estimate.",
    ),
    days: int = bounded(
        30,
        "--days",
        bound=(CommandLimits, "report_days"),
        help="Latency window: the last N days of probes.",
    ),
    list_charts: bool = typer.Option(False, "--list", help="List the chart names and exit."),
    no_cache: bool = typer.Option(
        False,
        "--no-cache",
        help="Recompute everything (default: reuse results whose inputs did not change, "
        "cached in $SLAM_CACHE_DIR or .slam/cache).",
    ),
    feature: str | None = typer.Option(
        None, "--feature", "-f", help="Only this feature's report (see `slam features`)."
    ),
) -> None:
    """Write the decision, the leaderboard and every chart: PNGs, a self-contained
    report.html and report.md. Results whose data did not change since the last run are
    reused from a disk cache. With several features and no --feature: one report per feature
    in a subfolder named by it, and index.html / index.md linking them."""
    from evaluation.charts import CHART_DESCRIPTIONS

    if list_charts:
        for name, desc in CHART_DESCRIPTIONS.items():
            typer.echo(f"{name:16} {desc}")
        return
    from core.features import feature as find_feature
    from core.features import features
    from core.paths import writable_dir
    from evaluation.report import build_report, build_reports
    from evaluation.results import ResultCache, default_cache_dir

    out = writable_dir(out, "--out", create=False)  # a bad folder fails before any work
    cfg, engine = _open(config)
    if feature is not None:
        find_feature(cfg, feature)  # an unknown name fails before any work
    cache = None if no_cache else ResultCache(disk_dir=default_cache_dir())
    if feature is None and len(features(cfg)) > 1:
        index = build_reports(
            engine, cfg, out, only=chart or None, requests_per_day=requests_per_day,
            window_days=days, cache=cache,
        )  # fmt: skip
        typer.echo(index.summary_text)
        typer.echo(f"\nwrote {len(index.reports)} reports and {index.html_path}, {index.md_path}")
        return
    result = build_report(
        engine, cfg, out, only=chart or None, requests_per_day=requests_per_day,
        window_days=days, cache=cache, feature=feature,
    )  # fmt: skip
    typer.echo(result.summary_text)
    typer.echo(f"\nwrote {len(result.charts)} chart(s), {result.html_path} and {result.md_path}")
