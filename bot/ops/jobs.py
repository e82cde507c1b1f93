"""The scheduled jobs (`JOBS`) and the runner every scheduled job goes through.

Jobs are a `Registry`, registered with `@job(name, cron_key, description)` over their bodies;
the built-in ones (probe, generate, digest) are in bot.ops.job_bodies, imported on the first
lookup. A body gets a `JobRun`: the running bot's `Services` (bot.services: engine, config...)
and what only jobs need (where to post, the lease owner, the clock), and the slot it serves.

The persistent job store keeps only a reference, `bot.ops.jobs:run_job`, and the job's name, so
jobs survive restarts and are shared by replicas; so a run fired by APScheduler finds its
`JobRun` in one place, the context variable `RUNNING`: the scheduler's executor sets it to
its own `JobRun` for the runs it starts (bot.ops.scheduler), so two schedulers in one process
keep separate ones. Everything else (recovery, `slam schedule run`, tests) passes the
`JobRun` to `run_job` explicitly.

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

from bot.events import Reply
from bot.ops import leases
from bot.ops.cron import cron_trigger, slot_for, slot_key
from bot.ops.observability import ERRORS, JOB_DURATION, JOB_RUNS
from bot.ops.observability import redact as redact_secrets
from core.config import SlamConfig
from core.errors import SlamError
from core.registry import Registry
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
class JobRun:
    """What scheduled runs get: the bot's services and what only jobs need (set when the
    scheduler starts, or by whoever runs a job by hand)."""

    services: Services  # the running bot's (dispatcher.services), or BotServices.create(...)
    notify: Notify  # admin channel: failures and daily summaries
    publish: Notify | None = None  # team channel: the digest (default: notify)
    post_round: RoundHook | None = None  # posts a new round's pairs (see round_poster)
    alerts: Notify | None = None  # `[alerts] channel` (default: publish, else notify)
    owner: str = field(default_factory=leases.default_owner)
    clock: Callable[[], datetime] = _utcnow  # aware "now"; slots are computed from it
    probe_warmup: int = 1
    probe_measure: int = 3
    digest_charts: tuple[str, ...] = DEFAULT_DIGEST_CHARTS
    digest_dir: Path = Path(".slam/digests")
    heartbeat_s: float | None = None  # lease renewal interval (default: a third of the TTL)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.services.cfg.schedule.timezone)

    @property
    def lease_ttl(self) -> timedelta:
        return timedelta(seconds=self.services.cfg.schedule.lease_ttl_s)

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_s or self.lease_ttl.total_seconds() / 3


# The JobRun of the scheduler that fired the current run (see the module docstring).
RUNNING: contextvars.ContextVar[JobRun | None] = contextvars.ContextVar(
    "slam_job_run", default=None
)


def running() -> JobRun:
    """The JobRun of the scheduler that started this run; SlamError outside of one."""
    run = RUNNING.get()
    if run is None:
        raise SlamError("scheduled jobs have no context; start them with bot.ops.scheduler")
    return run


# A body gets the run and its slot; a per-feature job's body also `feature=` (see `planned`).
Body = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class JobDef:
    """A scheduled job: its cron expression in the config, its body and a description.
    `per_feature`: a feature with its own `schedule` gets a job of its own, `<name>:<feature>`,
    at that cron, and the job itself leaves such features out."""

    name: str
    cron_key: str  # attribute of ScheduleConfig
    body: Body
    description: str
    per_feature: bool = False

    def cron(self, cfg: SlamConfig) -> str:
        return str(getattr(cfg.schedule, self.cron_key))


JOBS: Registry[JobDef] = Registry("job", builtins=("bot.ops.job_bodies",))


def job(name: str, cron_key: str, description: str,
        per_feature: bool = False) -> Callable[[Body], Body]:  # fmt: skip
    """Register the decorated body as the job `name`, run at `[schedule].<cron_key>`."""

    def deco(body: Body) -> Body:
        JOBS.add(name, JobDef(name, cron_key, body, description, per_feature))
        return body

    return deco


@dataclass(frozen=True)
class Planned:
    """One job as the config schedules it: its name (`generate`, or `generate:<feature>` for a
    feature with its own `schedule`), definition, cron, the config key that cron comes from
    (for messages) and the feature it is for (None: the job itself)."""

    name: str
    definition: JobDef
    cron: str
    key: str
    feature: str | None = None

    @property
    def description(self) -> str:
        if self.feature is None:
            return self.definition.description
        return f"{self.definition.description}: feature {self.feature} only"


def planned(cfg: SlamConfig) -> list[Planned]:
    """Every job the config schedules: the registered ones at their `[schedule]` cron, plus,
    for a per-feature job, one job per feature with its own `schedule` (`[[features]]`)."""
    from core.features import features

    out: list[Planned] = []
    for name, d in JOBS.items():
        out.append(Planned(name, d, d.cron(cfg), f"schedule.{d.cron_key}"))
        if d.per_feature:
            for f in features(cfg):
                if f.schedule:
                    out.append(Planned(f"{name}:{f.name}", d, f.schedule,
                                       f"features.{f.name}.schedule", f.name))  # fmt: skip
    return out


def find_planned(cfg: SlamConfig, name: str) -> Planned | None:
    return next((p for p in planned(cfg) if p.name == name), None)


def own_schedule(cfg: SlamConfig) -> set[str]:
    """The features with their own `schedule`: a per-feature job's run at its `[schedule]` cron
    leaves them out (their own job serves them)."""
    from core.features import features

    return {f.name for f in features(cfg) if f.schedule}


def job_id(name: str) -> str:
    """Scheduler job id and lease key of a job."""
    return f"slam:{name}"


async def run_job(name: str, run: JobRun | None = None, *, manual: bool = False) -> str:
    """Run one scheduled job for its current slot: 'ok', 'skipped' (another replica or an
    earlier run has the slot) or 'error'. Never raises, except on cancellation.

    `manual` runs serve the current moment ("manual:<time>" lease), not the cron slot, so
    they never take a scheduled run's place. While the body runs, the lease is renewed every
    `heartbeat_interval`; if another replica took it over meanwhile (this one stalled past
    the TTL), this run stops and reports 'lost'."""
    run = run or running()
    engine, cfg = run.services.engine, run.services.cfg
    plan = find_planned(cfg, name)
    if plan is None:
        log.error("scheduled job %r is not defined; known: %s", name,
                  sorted(p.name for p in planned(cfg)))  # fmt: skip
        return "error"
    now = run.clock()
    try:
        trigger = cron_trigger(plan.cron, cfg.schedule.timezone, plan.key)
        slot = (now if manual else slot_for(trigger, now) or now).astimezone(run.tz)
        key = f"manual:{now.astimezone(UTC).isoformat()}" if manual else slot_key(slot)
        won = await asyncio.to_thread(
            lambda: leases.claim(engine, job_id(name), key, run.owner, ttl=run.lease_ttl, now=now)
        )
    except Exception as exc:
        await _failed(run, name, now.astimezone(run.tz), exc, None)
        return "error"
    if not won:
        JOB_RUNS.labels(job=name, outcome="skipped").inc()
        log.info(
            "job %s: slot %s already claimed; skipping", name, key, extra={"job": name, "slot": key}
        )
        return "skipped"
    t0 = time.perf_counter()
    extra = {"feature": plan.feature} if plan.feature is not None else {}
    body = asyncio.ensure_future(plan.definition.body(run, slot, **extra))
    lost = asyncio.Event()
    beat = asyncio.create_task(_heartbeat(run, name, key, body, lost))
    try:
        summary = await body
    except asyncio.CancelledError:
        if lost.is_set() and not _cancelling():
            JOB_RUNS.labels(job=name, outcome="lost").inc()
            log.error(
                "job %s: another replica took over slot %s while this run stalled; stopped",
                name, key, extra={"job": name, "slot": key, "owner": run.owner},
            )  # fmt: skip
            return "lost"
        await asyncio.shield(
            asyncio.to_thread(
                leases.finish,
                engine,
                job_id(name),
                key,
                run.owner,
                "cancelled: the bot shut down during the run",
            )
        )
        raise
    except Exception as exc:
        JOB_DURATION.labels(job=name).observe(time.perf_counter() - t0)
        await _failed(run, name, slot, exc, key)
        return "error"
    finally:
        beat.cancel()
    JOB_DURATION.labels(job=name).observe(time.perf_counter() - t0)
    JOB_RUNS.labels(job=name, outcome="ok").inc()
    try:
        await asyncio.to_thread(leases.finish, engine, job_id(name), key, run.owner)
    except Exception:
        log.exception("job %s: could not record the finished lease for %s", name, key)
    log.info(
        "job %s done for %s: %s",
        name,
        key,
        summary,
        extra={"job": name, "slot": key, "owner": run.owner},
    )
    return "ok"


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (shutdown), not just the body."""
    task = asyncio.current_task()
    return bool(task is not None and task.cancelling())


async def _heartbeat(
    run: JobRun, name: str, key: str, body: asyncio.Future[Any], lost: asyncio.Event
) -> None:
    """Renew the lease while the body runs; cancel the body if the lease is no longer ours."""
    engine = run.services.engine
    while not body.done():
        await asyncio.sleep(run.heartbeat_interval)
        try:
            mine = await asyncio.to_thread(
                lambda: leases.heartbeat(
                    engine, job_id(name), key, run.owner, ttl=run.lease_ttl, now=run.clock()
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
    run: JobRun, name: str, slot: datetime, exc: BaseException, key: str | None
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
            await asyncio.to_thread(
                leases.finish, run.services.engine, job_id(name), key, run.owner, what
            )
        except Exception:
            log.exception("job %s: could not record the failure on its lease", name)
    reply = Reply(
        f"The `{name}` job for {slot:%Y-%m-%d %H:%M %Z} failed: {what}\n"
        "The scheduler keeps running; the job runs again at its next scheduled time.",
        title=f"Scheduled job failed: {name}",
        ok=False,
    )
    await safe_send(run.notify, reply)


async def safe_send(send: Notify, reply: Reply) -> bool:
    """Send a notification; a chat outage is logged, never raised into the scheduler."""
    try:
        await send(reply)
    except Exception:
        log.exception("could not post %r", reply.title or reply.text[:60])
        return False
    return True


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
    """A `post_round` hook: posts each pair of a new round in its feature's ratings channel
    (the feature's `channel`, else `[chat].channel`; `channel` overrides both) exactly as
    `/slam round start` does (seed reactions, score prompts, remembered messages). A port
    without a channel (the web front) posts nothing: its raters fetch their pairs."""
    from bot.rating import features, posting, rounds
    from storage.models import RatingRound

    async def post(round_id: int) -> None:
        if not port.capabilities.channel:
            return
        legend = posting.legend(services, port)

        def views() -> tuple[str, list[Any]]:
            with session_scope(services.engine) as s:
                masker = posting.masker(services, s)
                rnd = s.get(RatingRound, round_id)
                feat = rounds.round_feature(s, services.cfg, rnd) if rnd is not None else None
                return features.channel(services.cfg, feat), [
                    rounds.pair_view(s, p, masker, legend) for p in rounds.round_pairs(s, round_id)
                ]

        where, shown = await asyncio.to_thread(views)
        for view in shown:
            await posting.post_pair(services, port, view, channel=channel or where)

    return post
