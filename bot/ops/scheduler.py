"""The bot's scheduler: APScheduler 3 (AsyncIOScheduler) in the bot's own event loop.

Jobs (hourly probes, daily generation + rating round, daily digest) take their cron
expressions and time zone from `[schedule]` and live in a SQLAlchemy job store in the app's
database, so they survive restarts: on start, a job whose trigger is unchanged keeps its
stored next run time, which is how runs missed during downtime are noticed. Missed runs
coalesce into one run when the bot is back within `misfire_grace_s`. Replicas sharing the
database may all fire a job; the slot lease in `bot.ops.jobs.run_job` lets exactly one run it.
The lease is renewed while the job runs; every half TTL each scheduler looks for a current
slot whose lease expired unfinished (its replica died mid-job) and runs it (`recover`).

Usage in a chat adapter's event loop, once its port exists:

    sched = await start_for_bot(dispatcher, port, health=health)  # admin/ratings channels
    ...
    await sched.aclose()

or, with explicit callables, `await start_scheduler(services, notify=..., publish=...)`
(`services`: the bot's `dispatcher.services`, or `BotServices.create(engine, cfg)`). Its jobs
get the scheduler's `JobRun` (bot.ops.jobs): those services and the callables.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import Engine

from bot.events import Reply
from bot.ops import leases
from bot.ops.cron import cron_trigger, next_fire_times, slot_for, slot_key
from bot.ops.jobs import (
    RUNNING,
    JobRun,
    Notify,
    RoundHook,
    chat_notifier,
    job_id,
    planned,
    round_poster,
    run_job,
    safe_send,
)
from bot.ops.observability import ERRORS, JOB_RUNS
from core.config import SlamConfig

if TYPE_CHECKING:
    from bot.dispatcher import Dispatcher
    from bot.ops.observability import Health
    from bot.services import ChatPort, Services

log = logging.getLogger(__name__)
JOBSTORE_TABLE = "apscheduler_jobs"
FUNC_REF = "bot.ops.jobs:run_job"


@dataclass(frozen=True)
class PlannedJob:
    name: str
    id: str
    cron: str
    description: str
    trigger: CronTrigger


def planned_jobs(cfg: SlamConfig) -> list[PlannedJob]:
    """The configured jobs with their triggers; SlamError naming the key for a bad cron."""
    tz = cfg.schedule.timezone
    return [
        PlannedJob(p.name, job_id(p.name), p.cron, p.description,
                   cron_trigger(p.cron, tz, p.key))
        for p in planned(cfg)
    ]  # fmt: skip


def upcoming(
    cfg: SlamConfig, now: datetime | None = None, count: int = 3
) -> list[tuple[PlannedJob, list[datetime]]]:
    """Each job's next `count` run times after `now`, from the triggers alone."""
    now = now or datetime.now(UTC)
    return [(p, next_fire_times(p.trigger, now, count)) for p in planned_jobs(cfg)]


def job_defaults(cfg: SlamConfig) -> dict[str, Any]:
    return {
        "coalesce": True,
        "misfire_grace_time": cfg.schedule.misfire_grace_s,
        "max_instances": 1,
    }


def _same(job: Job, planned: PlannedJob, defaults: dict[str, Any]) -> bool:
    return (
        job.func_ref == FUNC_REF
        and tuple(job.args) == (planned.name,)
        and repr(job.trigger) == repr(planned.trigger)
        and all(getattr(job, k) == v for k, v in defaults.items())
    )


def sync_jobs(scheduler: AsyncIOScheduler, cfg: SlamConfig) -> dict[str, str]:
    """Make the job store match the config: unchanged jobs are kept as stored (with their
    next run time), changed ones are replaced, stale `slam:` jobs removed."""
    defaults = job_defaults(cfg)
    changes: dict[str, str] = {}
    planned = planned_jobs(cfg)
    for p in planned:
        existing = scheduler.get_job(p.id)
        if existing is not None and _same(existing, p, defaults):
            changes[p.name] = "kept"
            continue
        scheduler.add_job(
            FUNC_REF,
            trigger=p.trigger,
            args=[p.name],
            id=p.id,
            name=p.description,
            replace_existing=True,
            **defaults,
        )
        changes[p.name] = "updated" if existing is not None else "added"
    wanted = {p.id for p in planned}
    for job in scheduler.get_jobs():
        if job.id.startswith("slam:") and job.id not in wanted:
            scheduler.remove_job(job.id)
            changes[job.id.removeprefix("slam:")] = "removed"
    return changes


def ensure_jobstore_table(engine: Engine, tablename: str = JOBSTORE_TABLE) -> None:
    """Create the job store's table if needed. Replicas starting together on a fresh
    PostgreSQL race on CREATE TABLE (the loser gets a unique violation): losing is fine."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    table = SQLAlchemyJobStore(engine=engine, tablename=tablename).jobs_t
    try:
        table.create(engine, checkfirst=True)
    except DBAPIError:
        if not inspect(engine).has_table(tablename):
            raise


class _RunExecutor(AsyncIOExecutor):
    """Runs coroutine jobs with this scheduler's JobRun in `bot.ops.jobs.RUNNING`: the task a
    job runs in copies the context current when it is created, i.e. here."""

    def __init__(self, run: JobRun):
        super().__init__()
        self.job_run = run

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        token = RUNNING.set(self.job_run)
        try:
            super()._do_submit_job(job, run_times)
        finally:
            RUNNING.reset(token)


class SlamScheduler:
    """An AsyncIOScheduler with the bot's jobs, job store, executor and failure reporting."""

    def __init__(
        self,
        services: Services,
        *,
        notify: Notify,
        publish: Notify | None = None,
        post_round: RoundHook | None = None,
        owner: str | None = None,
        clock: Callable[[], datetime] | None = None,
        jobstore: Literal["database", "memory"] = "database",
        **options: Any,
    ):
        engine, cfg = services.engine, services.cfg
        planned_jobs(cfg)  # a bad cron expression fails here, before anything starts
        self.cfg = cfg
        kw: dict[str, Any] = dict(options)
        if owner:
            kw["owner"] = owner
        if clock:
            kw["clock"] = clock
        self.job_run = JobRun(services, notify, publish=publish, post_round=post_round, **kw)
        store = (
            SQLAlchemyJobStore(engine=engine, tablename=JOBSTORE_TABLE)
            if jobstore == "database"
            else MemoryJobStore()
        )
        self._engine = engine if jobstore == "database" else None
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": store},
            executors={"default": _RunExecutor(self.job_run)},
            job_defaults=job_defaults(cfg),
            timezone=ZoneInfo(cfg.schedule.timezone),
        )
        self.scheduler.add_listener(
            self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._recovering: set[str] = set()

    async def start(self, *, paused: bool = False) -> dict[str, str]:
        """Start in the running loop, sync the jobs with the config, then run them (unless
        `paused`; call `resume()` later). Returns what happened to each job."""
        if self._engine is not None:
            await asyncio.to_thread(ensure_jobstore_table, self._engine)
        self.scheduler.start(paused=True)
        try:
            changes = sync_jobs(self.scheduler, self.cfg)  # a few quick queries, at startup only
        except BaseException:
            self.scheduler.shutdown(wait=False)
            raise
        if not paused:
            self.scheduler.resume()
        self._spawn(self._watch_leases())
        log.info(
            "scheduler started (%s): %s",
            self.cfg.schedule.timezone,
            ", ".join(f"{k} {v}" for k, v in changes.items()),
            extra={"owner": self.job_run.owner},
        )
        return changes

    def resume(self) -> None:
        self.scheduler.resume()

    async def expired_jobs(self) -> list[str]:
        """Jobs whose current slot has a lease that expired unfinished."""
        now = self.job_run.clock()

        def check() -> list[str]:
            out = []
            for p in planned_jobs(self.cfg):
                slot = slot_for(p.trigger, now)
                if slot is None:
                    continue
                lease = leases.get(self.job_run.services.engine, p.id, slot_key(slot))
                if lease is not None and leases.is_expired(lease, now, self.job_run.lease_ttl):
                    out.append(p.name)
            return out

        return await asyncio.to_thread(check)

    async def recover(self) -> dict[str, str]:
        """Run every current slot whose lease expired unfinished (another replica died
        mid-job): job name -> run_job's outcome ('ok', 'skipped' if a third replica was
        quicker, 'error'). The scheduler calls this every half TTL."""
        names = await self.expired_jobs()
        results = await asyncio.gather(*(run_job(n, self.job_run) for n in names))
        return dict(zip(names, results, strict=True))

    async def _watch_leases(self) -> None:
        interval = self.job_run.lease_ttl.total_seconds() / 2
        while True:
            await asyncio.sleep(interval)
            try:
                for name in await self.expired_jobs():
                    if name not in self._recovering:
                        self._recovering.add(name)
                        task = self._spawn(run_job(name, self.job_run))
                        task.add_done_callback(functools.partial(self._recovered, name))
            except Exception:  # the database is away: look again next time
                log.warning("could not check job leases", exc_info=True)

    def _recovered(self, name: str, _task: asyncio.Task[Any]) -> None:
        self._recovering.discard(name)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def next_runs(self) -> dict[str, datetime | None]:
        """Job name -> next run time (None when paused), as stored."""
        return {j.id.removeprefix("slam:"): j.next_run_time for j in self.scheduler.get_jobs()}

    async def aclose(self) -> None:
        """Stop the scheduler (running jobs are cancelled and their leases say so)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            for _ in range(1000):  # shutdown is handed to the loop: let it happen
                if not self.scheduler.running:
                    break
                await asyncio.sleep(0)
        for task in list(self._tasks):
            task.cancel()

    def _on_event(self, event: JobExecutionEvent | JobSubmissionEvent) -> None:
        name = event.job_id.removeprefix("slam:")
        when = event.scheduled_run_time if isinstance(event, JobExecutionEvent) else None
        if event.code == EVENT_JOB_MAX_INSTANCES:
            JOB_RUNS.labels(job=name, outcome="overlap").inc()
            log.warning("job %s is still running; this run was skipped", name)
            return
        if event.code == EVENT_JOB_MISSED:
            JOB_RUNS.labels(job=name, outcome="missed").inc()
            text = (
                f"The `{name}` job missed its run at {when} because the bot was down for "
                f"longer than schedule.misfire_grace_s ({self.cfg.schedule.misfire_grace_s}"
                " s). It runs again at its next scheduled time."
            )
            log.warning(text)
            self._send(Reply(text, title=f"Scheduled job missed: {name}", ok=False))
            return
        # run_job never raises, so this is a bug in the job runner itself.
        ERRORS.labels(component="scheduler").inc()
        exc = getattr(event, "exception", None)
        log.error("job %s raised: %r\n%s", name, exc, getattr(event, "traceback", ""))
        self._send(
            Reply(
                f"The `{name}` job crashed: {type(exc).__name__}: {exc}",
                title=f"Scheduled job failed: {name}",
                ok=False,
            )
        )

    def _send(self, reply: Reply) -> None:
        try:
            task = asyncio.get_running_loop().create_task(safe_send(self.job_run.notify, reply))
        except RuntimeError:  # no loop (shutting down): the log line is the record
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def start_scheduler(services: Services, *, notify: Notify, **kwargs: Any) -> SlamScheduler:
    """Create and start the scheduler in the running event loop (see SlamScheduler)."""
    sched = SlamScheduler(services, notify=notify, **kwargs)
    await sched.start()
    return sched


async def start_for_bot(
    dispatcher: Dispatcher, port: ChatPort, *, health: Health | None = None, **kwargs: Any
) -> SlamScheduler:
    """The scheduler wired to a running chat adapter: failures and daily summaries go to
    `[chat].admin_channel` (else the ratings channel), the digest and each new round's pairs
    to `[chat].channel`; with `health`, /healthz also reports whether the scheduler runs."""
    from bot.ops.observability import scheduler_check

    services = dispatcher.services
    cfg = services.cfg
    if cfg.alerts.channel:  # `[alerts] channel`; else alerts go to the team channel
        kwargs.setdefault("alerts", chat_notifier(port, cfg.alerts.channel))
    sched = SlamScheduler(
        services,
        notify=chat_notifier(port, cfg.chat.admin_channel or cfg.chat.channel),
        publish=chat_notifier(port, cfg.chat.channel),
        post_round=round_poster(services, port),
        **kwargs,
    )
    await sched.start()
    if health is not None:
        health.add("scheduler", scheduler_check(sched.scheduler))
    return sched
