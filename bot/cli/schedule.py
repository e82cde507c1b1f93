"""`slam schedule list|run`: the bot's scheduled jobs, from `[schedule]` in slam.toml."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer

from core.errors import SlamError
from core.options import ConfigOpt


def register(app: typer.Typer) -> None:
    schedule = typer.Typer(
        help="The bot's scheduled jobs (probes, daily generation, digest).", no_args_is_help=True
    )
    schedule.command("list")(list_jobs)
    schedule.command("run")(run)
    app.add_typer(schedule, name="schedule")


def parse_start(value: str | None, timezone: str) -> datetime:
    """An ISO 8601 time (naive = in the schedule's time zone), or now."""
    if value is None:
        return datetime.now(UTC)
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise SlamError(
            f"--from {value!r} is not an ISO 8601 time; expected e.g. 2024-03-10T05:30"
        ) from None
    return ts if ts.tzinfo else ts.replace(tzinfo=ZoneInfo(timezone))


def list_jobs(
    config: Path | None = ConfigOpt,
    count: int = typer.Option(3, "--count", "-n", min=1, max=100, help="Run times per job."),
    start: str | None = typer.Option(
        None, "--from", help="List runs after this time (ISO 8601; default: now)."
    ),
    last: bool = typer.Option(
        False, "--last", help="Also show each job's last run from the database."
    ),
) -> None:
    """Next run times of each job in the configured time zone (nothing is started)."""
    from bot.ops import upcoming
    from core.config import load_config

    cfg = load_config(config)
    tz = ZoneInfo(cfg.schedule.timezone)
    now = parse_start(start, cfg.schedule.timezone)
    plans = upcoming(cfg, now, count)
    history = _last_runs(cfg, [p.id for p, _ in plans]) if last else {}
    typer.echo(
        f"time zone {cfg.schedule.timezone}; missed runs coalesce within "
        f"{cfg.schedule.misfire_grace_s} s"
    )
    for plan, times in plans:
        typer.echo(f"\n{plan.name}  ({plan.cron})  {plan.description}")
        for t in times:
            typer.echo(f"  {t.astimezone(tz):%Y-%m-%d %H:%M %Z}")
        if not times:
            typer.echo("  (never fires)")
        if last:
            typer.echo(f"  last run: {history.get(plan.id, 'never')}")


def _last_runs(cfg: Any, ids: list[str]) -> dict[str, str]:
    from bot.ops import latest
    from storage.db import check_connection, make_engine

    engine = make_engine(cfg.database.url)
    check_connection(engine)
    tz = ZoneInfo(cfg.schedule.timezone)
    out = {}
    try:
        for job_id, lease in latest(engine, ids).items():
            slot = datetime.fromisoformat(lease.slot.removeprefix("manual:")).astimezone(tz)
            state = (
                "running" if lease.finished_at is None
                else "ok" if lease.error is None
                else f"failed: {lease.error.splitlines()[0][:120]}"
            )  # fmt: skip
            manual = " (manual)" if lease.slot.startswith("manual:") else ""
            out[job_id] = f"{slot:%Y-%m-%d %H:%M %Z}{manual} on {lease.owner}: {state}"
    except Exception as exc:  # no job_lease table yet, etc.
        raise SlamError(f"cannot read the job history: {exc}; run `slam db upgrade`") from None
    finally:
        engine.dispose()
    return out


def run(
    job: str = typer.Argument(..., help="probe, generate or digest (or generate:<feature> for a "
                                        "feature with its own schedule)"),
    config: Path | None = ConfigOpt,
) -> None:
    """Run one job now, as the scheduler would; messages are printed instead of posted."""
    from bot.events import Reply
    from bot.ops import JobRun, find_planned, planned, run_job
    from bot.services import BotServices
    from core.config import load_config
    from storage.migrate import open_database

    cfg = load_config(config)
    if find_planned(cfg, job) is None:
        raise SlamError(f"unknown job '{job[:60]}'; expected one of: "
                        f"{', '.join(p.name for p in planned(cfg))}")  # fmt: skip
    engine = open_database(cfg.database.url)

    async def show(reply: Reply) -> None:
        typer.echo(reply.plain())

    job_run = JobRun(BotServices.create(engine, cfg), notify=show)
    outcome = asyncio.run(run_job(job, job_run, manual=True))
    engine.dispose()
    if outcome != "ok":
        raise SlamError(f"the {job} job did not complete ({outcome}); see the message above")
    typer.echo(f"{job}: done")
