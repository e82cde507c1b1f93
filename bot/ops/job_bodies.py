"""The bodies of the built-in scheduled jobs: hourly latency probes, the daily generation with
its new rating round, the daily digest. Each is registered in `bot.ops.jobs.JOBS` (imported the
first time a job is looked up) and run through `bot.ops.jobs.run_job`, which gives it the
`JobRun` (the bot's services, where to post) and the slot it serves."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
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
    from bot.ops.alerts import post_alerts

    changes = await post_alerts(run)
    if changes:
        note += f"; {len(changes)} alert change(s) posted"
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


@job("generate", "generate_cron", "daily generation and a new rating round", per_feature=True)
async def generate_body(run: JobRun, slot: datetime, feature: str | None = None) -> str:
    """The day's responses from every model of every feature, then a new rating round per
    feature (each feature's open one closes). A feature with its own `schedule` has its own
    job, `generate:<feature>` (`feature`: this run is that job's), and this one leaves it out."""
    from bot.ops.jobs import own_schedule
    from bot.rating import features
    from core.features import features as every
    from hosting.generate import generate

    engine, cfg = run.services.engine, run.services.cfg
    run_date = slot.date()
    own = own_schedule(cfg)
    names: list[str] | None = None  # None: every feature (none has a schedule of its own)
    if feature is not None:
        names = [feature]
    elif own:
        names = [f.name for f in every(cfg) if f.name not in own]
        if not names:
            return (f"Every feature has its own schedule ({', '.join(sorted(own))}): nothing for "
                    f"the daily generation.")  # fmt: skip

    def record(job: Any, gen: Any) -> None:
        record_generation(job.model.name, gen.ok)

    done = errors = skipped = 0
    for name in names if names is not None else [None]:
        got = await generate(engine, cfg, feature_name=name, run_date=run_date, progress=False,
                             on_result=record)  # fmt: skip
        done, errors, skipped = done + got.done, errors + got.errors, skipped + got.skipped
    opened, problems = await asyncio.to_thread(new_rounds, engine, cfg, run_date, names)
    if run.post_round is not None:
        for o in opened:
            await run.post_round(o.round_id)
    await announce_settled(run)
    which = f" of {', '.join(names)}" if names is not None else ""
    done_text = (f"Generated {done} response(s){which} for {run_date} ({errors} failed, "
                 f"{skipped} already stored).")  # fmt: skip
    several = features.several(cfg)
    lines = []
    for o in opened:
        of = f" ({o.feature})" if several else ""
        closed = f" Round {o.closed} was closed." if o.closed is not None else ""
        lines.append(f"Round {o.round_id}{of} is open with {o.pairs} pair(s): rate them with "
                     f"`/slam rate`.{closed}")  # fmt: skip
    text = " ".join([done_text, *lines]) if not several else "\n".join(
        [done_text, *lines, *(f"No new round for {p}" for p in problems)])  # fmt: skip
    await safe_send(run.notify, Reply(text, title="Daily generation"))
    return text


async def announce_settled(run: JobRun) -> None:
    """The stopping rule's message for each feature (bot.rating.selection), once, in the team
    channel."""
    from bot.rating import features, selection
    from core.features import features as every

    engine, cfg = run.services.engine, run.services.cfg
    several = features.several(cfg)

    def check() -> list[str]:
        out = []
        for f in every(cfg):
            name = features.results_feature(cfg, f.name)
            decision = selection.snapshot(engine, cfg, feature=name).decision
            text = selection.announce(engine, decision, name if several else None)
            if text is not None:
                out.append(text)
        return out

    for text in await asyncio.to_thread(check):
        await safe_send(run.publish or run.notify, Reply(text, title="Decision settled"))


@dataclass(frozen=True)
class NewRound:
    """A round the daily job opened: its feature, id, number of pairs and the round closed."""

    feature: str
    round_id: int
    pairs: int
    closed: int | None


def new_rounds(engine: Engine, cfg: SlamConfig, run_date: Any,
               names: list[str] | None = None) -> tuple[list[NewRound], list[str]]:  # fmt: skip
    """For every feature (`names`: these), close its open round (if any) and open one on
    `run_date`'s responses, atomically per feature: when a feature's round cannot be built, its
    previous round stays open (with one feature that is an error; with several, the feature is
    listed with why). Pairs are chosen by bot.rating.selection's planner (informative pairs; only
    exploration once settled)."""
    from bot.rating import rounds, selection

    with session_scope(engine) as s:
        opened, problems = rounds.start_rounds(
            s, cfg, names, run_date=run_date, replace=True,
            planner=lambda f: selection.round_planner(engine, cfg, feature=f))  # fmt: skip
        return [NewRound(o.feature.name, o.round.id or 0, len(o.pairs), o.closed)
                for o in opened], problems  # fmt: skip


@job("digest", "digest_cron", "daily digest to the team channel")
async def digest_body(run: JobRun, slot: datetime) -> str:
    """Yesterday's digest (relative to the slot, in the schedule's time zone), to the team:
    one section per feature when there are several."""
    from bot.ops.digest import build_digests, render_digests

    day = slot.date() - timedelta(days=1)
    digests = await asyncio.to_thread(
        build_digests, run.services.engine, run.services.cfg, day,
        charts=run.digest_charts, out_dir=run.digest_dir / day.isoformat(),
    )  # fmt: skip
    reply = render_digests(digests)
    if not await safe_send(run.publish or run.notify, reply):
        raise SlamError(f"the digest for {day} was built but could not be posted")
    return f"digest for {day}: " + "; ".join(
        (f"{name}: " if name else "") + f"{d.votes} vote(s), {len(d.leaderboard)} rated model(s)"
        for name, d in digests)  # fmt: skip
