"""The bodies of the built-in scheduled jobs: hourly latency probes, the daily generation with
its new rating round, the daily digest. Each is registered in `bot.ops.jobs.JOBS` (imported the
first time a job is looked up) and run through `bot.ops.jobs.run_job`, which gives it the
`JobRun` (the bot's services, where to post) and the slot it serves."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from bot.events import Reply
from bot.ops.jobs import JobRun, job, safe_send
from bot.ops.observability import observe_probe, record_generation
from core.config import SlamConfig
from core.errors import SlamError
from storage.db import session_scope


@job("probe", "probe_cron", "latency probes of every model")
async def probe_body(run: JobRun, slot: datetime) -> str:
    """Hourly latency probes of every configured model; latencies also go to the metrics."""
    from evaluation.perf import run_probes

    engine, cfg = run.services.engine, run.services.cfg
    if not cfg.models:
        return "no models configured; nothing to probe"
    summaries = await run_probes(
        engine, cfg, warmup=run.probe_warmup, measure=run.probe_measure, progress=False
    )
    await asyncio.to_thread(_observe_probes, engine, {s.run_id: s.model for s in summaries})
    down = [s.model for s in summaries if s.n_ok == 0]
    note = f"; unavailable: {', '.join(down)}" if down else ""
    return f"probed {len(summaries)} model(s){note}"


def _observe_probes(engine: Engine, runs: dict[str, str]) -> None:
    from sqlmodel import col, select

    from storage.models import Probe

    with session_scope(engine) as s:
        rows = s.exec(
            select(Probe.run_id, Probe.ok, Probe.latency_s).where(
                col(Probe.run_id).in_(list(runs)), Probe.phase == "measure"
            )
        ).all()
    for run_id, ok, latency in rows:
        observe_probe(runs[run_id], latency, bool(ok))


@job("generate", "generate_cron", "daily generation and a new rating round")
async def generate_body(run: JobRun, slot: datetime) -> str:
    """The day's responses from every model, then a new rating round (the open one closes)."""
    from hosting.generate import generate

    engine, cfg = run.services.engine, run.services.cfg
    run_date = slot.date()
    result = await generate(
        engine,
        cfg,
        run_date=run_date,
        progress=False,
        on_result=lambda job, gen: record_generation(job.model.name, gen.ok),
    )
    closed, round_id, n_pairs = await asyncio.to_thread(new_round, engine, cfg, run_date)
    if run.post_round is not None:
        await run.post_round(round_id)
    await announce_settled(run)
    text = (
        f"Generated {result.done} response(s) for {run_date} ({result.errors} failed, "
        f"{result.skipped} already stored). Round {round_id} is open with {n_pairs} pair(s): "
        "rate them with `/slam rate`."
        + (f" Round {closed} was closed." if closed is not None else "")
    )
    await safe_send(run.notify, Reply(text, title="Daily generation"))
    return text


async def announce_settled(run: JobRun) -> None:
    """The stopping rule's message (bot.rating.selection), once, in the team channel."""
    from bot.rating import selection

    engine, cfg = run.services.engine, run.services.cfg

    def check() -> str | None:
        return selection.announce(engine, selection.snapshot(engine, cfg).decision)

    text = await asyncio.to_thread(check)
    if text is not None:
        await safe_send(run.publish or run.notify, Reply(text, title="Decision settled"))


def new_round(engine: Engine, cfg: SlamConfig, run_date: Any) -> tuple[int | None, int, int]:
    """Close the open round (if any) and open one on `run_date`'s responses, atomically:
    when no round can be built, the previous round stays open. Its pairs are chosen by
    bot.rating.selection's planner (informative pairs; only exploration once settled)."""
    from bot.rating import rounds, selection

    with session_scope(engine) as s:
        closed = rounds.close_round(s).id if rounds.open_round(s) is not None else None
        planner = selection.round_planner(engine, cfg)
        rnd, pairs = rounds.start_round(s, cfg, run_date=run_date, planner=planner)
        assert rnd.id is not None
        return closed, rnd.id, len(pairs)


@job("digest", "digest_cron", "daily digest to the team channel")
async def digest_body(run: JobRun, slot: datetime) -> str:
    """Yesterday's digest (relative to the slot, in the schedule's time zone), to the team."""
    from bot.ops.digest import build_digest, render

    day = slot.date() - timedelta(days=1)
    digest = await asyncio.to_thread(
        build_digest, run.services.engine, run.services.cfg, day,
        charts=run.digest_charts, out_dir=run.digest_dir / day.isoformat(),
    )  # fmt: skip
    reply = render(digest)
    if not await safe_send(run.publish or run.notify, reply):
        raise SlamError(f"the digest for {day} was built but could not be posted")
    return f"digest for {day}: {digest.votes} vote(s), {len(digest.leaderboard)} rated model(s)"
