"""Scheduled job bodies and the runner every scheduled job goes through.

The persistent job store keeps only a reference, `bot.ops.jobs:run_job`, and the job's name, so
jobs survive restarts and are shared by replicas. What a run needs (engine, config, where to
post) is a `JobContext`: the scheduler's executor hands its context to the runs it starts, so
two schedulers in one process keep separate contexts; `configure()` sets a process default.

`run_job` claims the slot's lease (one replica wins), runs the body, records the outcome, and
turns any failure into a log entry, a metric and an admin notification. It never raises, so a
failing job cannot take the scheduler down.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from bot.events import Reply
from bot.ops import leases
from bot.ops.cron import cron_trigger, slot_for, slot_key
from bot.ops.observability import ERRORS, JOB_DURATION, JOB_RUNS, observe_probe, record_generation
from bot.ops.observability import redact as redact_secrets
from core.config import SlamConfig
from core.errors import SlamError
from storage.db import session_scope

if TYPE_CHECKING:
    from bot.services import ChatPort, Services

log = logging.getLogger(__name__)
Notify = Callable[[Reply], Awaitable[Any]]
RoundHook = Callable[[int], Awaitable[Any]]
DEFAULT_DIGEST_CHARTS = ("bradley_terry", "latency", "cost_per_1k")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class JobContext:
    """What scheduled runs need at run time (set when the scheduler starts)."""

    engine: Engine
    cfg: SlamConfig
    notify: Notify  # admin channel: failures and daily summaries
    publish: Notify | None = None  # team channel: the digest (default: notify)
    post_round: RoundHook | None = None  # posts a new round's pairs (see round_poster)
    owner: str = field(default_factory=leases.default_owner)
    clock: Callable[[], datetime] = _utcnow  # aware "now"; slots are computed from it
    probe_warmup: int = 1
    probe_measure: int = 3
    digest_charts: tuple[str, ...] = DEFAULT_DIGEST_CHARTS
    report_dir: Path = Path(".slam/digests")
    heartbeat_s: float | None = None  # lease renewal interval (default: a third of the TTL)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.cfg.schedule.timezone)

    @property
    def lease_ttl(self) -> timedelta:
        return timedelta(seconds=self.cfg.schedule.lease_ttl_s)

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_s or self.lease_ttl.total_seconds() / 3


CURRENT: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "slam_job_context", default=None
)
_default: JobContext | None = None


def configure(ctx: JobContext | None) -> None:
    """Set (or clear) the process-wide default context."""
    global _default
    _default = ctx


def context() -> JobContext:
    ctx = CURRENT.get() or _default
    if ctx is None:
        raise SlamError("scheduled jobs have no context; start them with bot.ops.scheduler")
    return ctx


Body = Callable[[JobContext, datetime], Awaitable[str]]


@dataclass(frozen=True)
class JobDef:
    """A scheduled job: its cron expression in the config, its body and a description."""

    name: str
    cron_key: str  # attribute of ScheduleConfig
    body: Body
    description: str

    def cron(self, cfg: SlamConfig) -> str:
        return str(getattr(cfg.schedule, self.cron_key))


def job_id(name: str) -> str:
    """Scheduler job id and lease key of a job."""
    return f"slam:{name}"


async def run_job(name: str, ctx: JobContext | None = None, *, manual: bool = False) -> str:
    """Run one scheduled job for its current slot: 'ok', 'skipped' (another replica or an
    earlier run has the slot) or 'error'. Never raises, except on cancellation.

    `manual` runs serve the current moment ("manual:<time>" lease), not the cron slot, so
    they never take a scheduled run's place. While the body runs, the lease is renewed every
    `heartbeat_interval`; if another replica took it over meanwhile (this one stalled past
    the TTL), this run stops and reports 'lost'."""
    ctx = ctx or context()
    job = JOBS.get(name)
    if job is None:
        log.error("scheduled job %r is not defined; known: %s", name, sorted(JOBS))
        return "error"
    now = ctx.clock()
    try:
        trigger = cron_trigger(
            job.cron(ctx.cfg), ctx.cfg.schedule.timezone, f"schedule.{job.cron_key}"
        )
        slot = (now if manual else slot_for(trigger, now) or now).astimezone(ctx.tz)
        key = f"manual:{now.astimezone(UTC).isoformat()}" if manual else slot_key(slot)
        won = await asyncio.to_thread(
            lambda: leases.claim(
                ctx.engine, job_id(name), key, ctx.owner, ttl=ctx.lease_ttl, now=now
            )
        )
    except Exception as exc:
        await _failed(ctx, name, now.astimezone(ctx.tz), exc, None)
        return "error"
    if not won:
        JOB_RUNS.labels(job=name, outcome="skipped").inc()
        log.info(
            "job %s: slot %s already claimed; skipping", name, key, extra={"job": name, "slot": key}
        )
        return "skipped"
    t0 = time.perf_counter()
    body = asyncio.ensure_future(job.body(ctx, slot))
    lost = asyncio.Event()
    beat = asyncio.create_task(_heartbeat(ctx, name, key, body, lost))
    try:
        summary = await body
    except asyncio.CancelledError:
        if lost.is_set() and not _cancelling():
            JOB_RUNS.labels(job=name, outcome="lost").inc()
            log.error(
                "job %s: another replica took over slot %s while this run stalled; stopped",
                name, key, extra={"job": name, "slot": key, "owner": ctx.owner},
            )  # fmt: skip
            return "lost"
        await asyncio.shield(
            asyncio.to_thread(
                leases.finish,
                ctx.engine,
                job_id(name),
                key,
                ctx.owner,
                "cancelled: the bot shut down during the run",
            )
        )
        raise
    except Exception as exc:
        JOB_DURATION.labels(job=name).observe(time.perf_counter() - t0)
        await _failed(ctx, name, slot, exc, key)
        return "error"
    finally:
        beat.cancel()
    JOB_DURATION.labels(job=name).observe(time.perf_counter() - t0)
    JOB_RUNS.labels(job=name, outcome="ok").inc()
    try:
        await asyncio.to_thread(leases.finish, ctx.engine, job_id(name), key, ctx.owner)
    except Exception:
        log.exception("job %s: could not record the finished lease for %s", name, key)
    log.info(
        "job %s done for %s: %s",
        name,
        key,
        summary,
        extra={"job": name, "slot": key, "owner": ctx.owner},
    )
    return "ok"


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (shutdown), not just the body."""
    task = asyncio.current_task()
    return bool(task is not None and task.cancelling())


async def _heartbeat(
    ctx: JobContext, name: str, key: str, body: asyncio.Future[Any], lost: asyncio.Event
) -> None:
    """Renew the lease while the body runs; cancel the body if the lease is no longer ours."""
    while not body.done():
        await asyncio.sleep(ctx.heartbeat_interval)
        try:
            mine = await asyncio.to_thread(
                lambda: leases.heartbeat(
                    ctx.engine, job_id(name), key, ctx.owner, ttl=ctx.lease_ttl, now=ctx.clock()
                )
            )
        except Exception as exc:  # a database hiccup: try again at the next beat
            log.warning("job %s: could not renew the lease for %s: %s", name, key, exc)
            continue
        if not mine:
            lost.set()
            body.cancel()
            return


async def _failed(
    ctx: JobContext, name: str, slot: datetime, exc: BaseException, key: str | None
) -> None:
    """Log, count, record on the lease and tell the admins; nothing here may raise."""
    what = str(exc) if isinstance(exc, SlamError) else f"{type(exc).__name__}: {exc}"
    what = redact_secrets(what)
    log.error(
        "job %s failed for %s: %s",
        name,
        key or slot.isoformat(),
        what,
        exc_info=exc,
        extra={"job": name, "slot": key},
    )
    JOB_RUNS.labels(job=name, outcome="error").inc()
    ERRORS.labels(component="scheduler").inc()
    if key is not None:
        try:
            await asyncio.to_thread(leases.finish, ctx.engine, job_id(name), key, ctx.owner, what)
        except Exception:
            log.exception("job %s: could not record the failure on its lease", name)
    reply = Reply(
        f"The `{name}` job for {slot:%Y-%m-%d %H:%M %Z} failed: {what}\n"
        "The scheduler keeps running; the job runs again at its next scheduled time.",
        title=f"Scheduled job failed: {name}",
        ok=False,
    )
    await safe_send(ctx.notify, reply)


async def safe_send(send: Notify, reply: Reply) -> bool:
    """Send a notification; a chat outage is logged, never raised into the scheduler."""
    try:
        await send(reply)
    except Exception:
        log.exception("could not post %r", reply.title or reply.text[:60])
        return False
    return True


# --- job bodies ----------------------------------------------------------------------------
async def probe_body(ctx: JobContext, slot: datetime) -> str:
    """Hourly latency probes of every configured model; latencies also go to the metrics."""
    from evaluation.perf.probes import run_probes

    if not ctx.cfg.models:
        return "no models configured; nothing to probe"
    summaries = await run_probes(
        ctx.engine, ctx.cfg, warmup=ctx.probe_warmup, measure=ctx.probe_measure, progress=False
    )
    await asyncio.to_thread(_observe_probes, ctx.engine, {s.run_id: s.model for s in summaries})
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


async def generate_body(ctx: JobContext, slot: datetime) -> str:
    """The day's responses from every model, then a new rating round (the open one closes)."""
    from hosting.generate import generate

    run_date = slot.date()
    result = await generate(
        ctx.engine,
        ctx.cfg,
        run_date=run_date,
        progress=False,
        on_result=lambda job, gen: record_generation(job.model.name, gen.ok),
    )
    closed, round_id, n_pairs = await asyncio.to_thread(new_round, ctx.engine, ctx.cfg, run_date)
    if ctx.post_round is not None:
        await ctx.post_round(round_id)
    await announce_settled(ctx)
    text = (
        f"Generated {result.done} response(s) for {run_date} ({result.errors} failed, "
        f"{result.skipped} already stored). Round {round_id} is open with {n_pairs} pair(s): "
        "rate them with `/slam rate`."
        + (f" Round {closed} was closed." if closed is not None else "")
    )
    await safe_send(ctx.notify, Reply(text, title="Daily generation"))
    return text


async def announce_settled(ctx: JobContext) -> None:
    """The stopping rule's message (bot.rating.selection), once, in the team channel."""
    from bot.rating import selection

    def check() -> str | None:
        return selection.announce(ctx.engine, selection.snapshot(ctx.engine, ctx.cfg).decision)

    text = await asyncio.to_thread(check)
    if text is not None:
        await safe_send(ctx.publish or ctx.notify, Reply(text, title="Decision settled"))


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


async def digest_body(ctx: JobContext, slot: datetime) -> str:
    """Yesterday's digest (relative to the slot, in the schedule's time zone), to the team."""
    from bot.ops.digest import build_digest, render

    day = slot.date() - timedelta(days=1)
    out_dir = ctx.report_dir / day.isoformat()
    digest = await asyncio.to_thread(
        build_digest, ctx.engine, ctx.cfg, day, charts=ctx.digest_charts, out_dir=out_dir
    )
    reply = render(digest)
    if not await safe_send(ctx.publish or ctx.notify, reply):
        raise SlamError(f"the digest for {day} was built but could not be posted")
    return f"digest for {day}: {digest.votes} vote(s), {len(digest.leaderboard)} rated model(s)"


JOBS: dict[str, JobDef] = {
    "probe": JobDef("probe", "probe_cron", probe_body, "latency probes of every model"),
    "generate": JobDef(
        "generate", "generate_cron", generate_body, "daily generation and a new rating round"
    ),
    "digest": JobDef("digest", "digest_cron", digest_body, "daily digest to the team channel"),
}


# --- wiring helpers for the adapters ----------------------------------------------------------
def chat_notifier(port: ChatPort, channel: str) -> Notify:
    """Post replies to `channel` through an adapter's port (charts too when it can upload)."""

    async def notify(reply: Reply) -> None:
        if reply.files and port.capabilities.uploads:
            await port.send_reply(reply, channel, "")
        else:
            await port.post(reply, channel=channel)

    return notify


def round_poster(services: Services, port: ChatPort, channel: str | None = None) -> RoundHook:
    """A `post_round` hook: posts each pair of a new round in the ratings channel exactly as
    `/slam round start` does (seed reactions, score prompts, remembered messages). A port
    without a channel (the web front) posts nothing: its raters fetch their pairs."""
    from bot.rating import posting, rounds

    async def post(round_id: int) -> None:
        if not port.capabilities.channel:
            return
        legend = posting.legend(services, port)

        def views() -> list[Any]:
            with session_scope(services.engine) as s:
                masker = posting.masker(services, s)
                return [
                    rounds.pair_view(s, p, masker, legend) for p in rounds.round_pairs(s, round_id)
                ]

        for view in await asyncio.to_thread(views):
            await posting.post_pair(
                services, port, view, channel=channel or services.cfg.chat.channel
            )

    return post
