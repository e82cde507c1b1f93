"""The scheduler in a real event loop on a real SQLite job store: due jobs run, jobs persist
across restarts, missed runs coalesce, failures are reported and never stop the scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.events import Reply
from bot.ops import jobs
from bot.ops.cron import cron_trigger, next_fire_times, slot_for, slot_key
from bot.ops.jobs import Body, JobRun
from bot.ops.scheduler import SlamScheduler
from bot.services import BotServices
from core.config import SlamConfig, parse_config
from storage.db import make_engine
from storage.models import JobLease
from tests.bot.ops.conftest import UseBody

BERLIN = ZoneInfo("Europe/Berlin")


def config(**schedule: Any) -> SlamConfig:
    return parse_config(
        {
            "schedule": {
                "timezone": "Europe/Berlin",
                "probe_cron": "0 * * * *",
                "generate_cron": "0 6 * * *",
                "digest_cron": "0 9 * * *",
                **schedule,
            }
        }
    )


class Runs:
    """Collects job execution events; `wait(n)` waits (bounded) until n have arrived."""

    def __init__(self, sched: SlamScheduler):
        self.events: list[JobExecutionEvent] = []
        self._changed = asyncio.Event()
        sched.scheduler.add_listener(self._on, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def _on(self, event: JobExecutionEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait(self, n: int, timeout: float = 20.0) -> list[JobExecutionEvent]:
        async with asyncio.timeout(timeout):
            while len(self.events) < n:
                self._changed.clear()
                await self._changed.wait()
        return self.events


class Inbox:
    """An async notify callable that remembers what it was sent."""

    def __init__(self, fail: bool = False):
        self.replies: list[Reply] = []
        self.fail = fail
        self.arrived = asyncio.Event()

    async def __call__(self, reply: Reply) -> None:
        self.replies.append(reply)
        self.arrived.set()
        if self.fail:
            raise ConnectionError("chat is down")


def recorder(calls: list[tuple[str, datetime]]) -> Body:
    async def body(run: JobRun, slot: datetime) -> str:
        calls.append((run.owner, slot))
        return "done"

    return body


def leases_of(engine: Engine) -> list[JobLease]:
    with Session(engine) as s:
        return list(s.exec(select(JobLease).order_by(JobLease.id)).all())  # type: ignore[arg-type]


@pytest.fixture
async def started() -> AsyncIterator[list[SlamScheduler]]:
    """Schedulers a test starts; all are shut down afterwards."""
    scheds: list[SlamScheduler] = []
    yield scheds
    for s in scheds:
        await s.aclose()


async def test_jobs_are_scheduled_at_the_configured_times(
    engine: Engine, started: list[SlamScheduler]
) -> None:
    cfg = config(generate_cron="30 6 * * 1-5")
    sched = SlamScheduler(BotServices.create(engine, cfg), notify=Inbox())
    started.append(sched)
    before = datetime.now(UTC)
    assert await sched.start(paused=True) == {
        "probe": "added",
        "generate": "added",
        "digest": "added",
    }
    after = datetime.now(UTC)
    runs = sched.next_runs()
    for name, cron in (
        ("probe", "0 * * * *"),
        ("generate", "30 6 * * 1-5"),
        ("digest", "0 9 * * *"),
    ):
        trigger = cron_trigger(cron, "Europe/Berlin")
        expected = {next_fire_times(trigger, t)[0] for t in (before, after)}
        got = runs[name]
        assert got in expected, (name, got, expected)
        assert got is not None and got.tzinfo is not None and str(got.tzinfo) == "Europe/Berlin"
    job = sched.scheduler.get_job("slam:digest")
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 3600)
    assert job.func_ref == "bot.ops.jobs:run_job" and job.args == ("digest",)


async def test_a_due_job_runs_and_its_slot_lease_is_recorded(
    engine: Engine, use_body: UseBody, started: list[SlamScheduler]
) -> None:
    calls: list[tuple[str, datetime]] = []
    use_body("probe", recorder(calls))
    sched = SlamScheduler(BotServices.create(engine, config()), notify=Inbox(), owner="replica-a")
    started.append(sched)
    runs = Runs(sched)
    await sched.start()
    now = datetime.now(BERLIN)
    sched.scheduler.modify_job("slam:probe", next_run_time=now)
    (event,) = await runs.wait(1)
    assert event.job_id == "slam:probe" and event.retval == "ok"
    assert len(calls) == 1 and calls[0][0] == "replica-a"
    slot = slot_for(cron_trigger("0 * * * *", "Europe/Berlin"), datetime.now(UTC))
    assert slot is not None and calls[0][1] == slot and calls[0][1].tzinfo == BERLIN
    (lease,) = leases_of(engine)
    assert (lease.job_id, lease.slot, lease.owner) == ("slam:probe", slot_key(slot), "replica-a")
    assert lease.finished_at is not None and lease.error is None
    nxt = sched.next_runs()["probe"]
    assert nxt is not None and nxt > datetime.now(UTC) and (nxt.minute, nxt.second) == (0, 0)


async def test_slot_comes_from_the_injected_clock(engine: Engine, use_body: UseBody) -> None:
    """Run the runner directly at chosen instants: the slot is the cron time being served,
    and a second run for the same slot is skipped."""
    calls: list[tuple[str, datetime]] = []
    clock = iter(
        [
            datetime(2024, 3, 31, 7, 15, tzinfo=BERLIN),  # after 06:00 CEST
            datetime(2024, 3, 31, 8, 59, tzinfo=BERLIN),  # same slot
            datetime(2024, 4, 1, 6, 0, tzinfo=BERLIN),
        ]
    )
    run = JobRun(BotServices.create(engine, config()), Inbox(), owner="me",
                 clock=lambda: next(clock))  # fmt: skip
    use_body("generate", recorder(calls))
    outcomes = [await jobs.run_job("generate", run) for _ in range(3)]
    assert outcomes == ["ok", "skipped", "ok"]
    assert [c[1].isoformat() for c in calls] == [
        "2024-03-31T06:00:00+02:00",
        "2024-04-01T06:00:00+02:00",
    ]
    assert [x.slot for x in leases_of(engine)] == [
        "2024-03-31T04:00:00+00:00",
        "2024-04-01T04:00:00+00:00",
    ]


async def test_restart_keeps_persisted_jobs_and_next_run_times(sqlite_url: str) -> None:
    eng1 = make_engine(sqlite_url)
    from storage.migrate import upgrade

    upgrade(eng1)
    s1 = SlamScheduler(BotServices.create(eng1, config()), notify=Inbox())
    assert set((await s1.start(paused=True)).values()) == {"added"}
    # A stored next run time that a fresh computation would never produce:
    pinned = datetime(2031, 5, 4, 9, 0, tzinfo=BERLIN)
    s1.scheduler.modify_job("slam:digest", next_run_time=pinned)
    stored = s1.next_runs()
    await s1.aclose()
    assert not s1.running

    eng2 = make_engine(sqlite_url)  # a new process would open a new engine
    s2 = SlamScheduler(BotServices.create(eng2, config()), notify=Inbox())
    try:
        changes = await s2.start(paused=True)
        assert changes == {"probe": "kept", "generate": "kept", "digest": "kept"}
        assert s2.next_runs() == stored and stored["digest"] == pinned
    finally:
        await s2.aclose()

    # Changing a cron in slam.toml replaces that job (new next run), keeps the others.
    eng3 = make_engine(sqlite_url)
    s3 = SlamScheduler(BotServices.create(eng3, config(digest_cron="15 10 * * *")), notify=Inbox())
    try:
        changes = await s3.start(paused=True)
        assert changes == {"probe": "kept", "generate": "kept", "digest": "updated"}
        runs = s3.next_runs()
        assert runs["probe"] == stored["probe"]
        digest = runs["digest"]
        assert digest is not None and (digest.hour, digest.minute) == (10, 15)
        assert digest.astimezone(BERLIN).date() <= (datetime.now(BERLIN) + timedelta(days=1)).date()
    finally:
        await s3.aclose()


async def test_missed_runs_coalesce_into_one_run_after_downtime(
    sqlite_url: str, use_body: UseBody
) -> None:
    from storage.migrate import upgrade

    calls: list[tuple[str, datetime]] = []
    use_body("probe", recorder(calls))
    cfg = config(misfire_grace_s=86_400)
    eng1 = make_engine(sqlite_url)
    upgrade(eng1)
    s1 = SlamScheduler(BotServices.create(eng1, cfg), notify=Inbox())
    await s1.start(paused=True)
    # The bot went down 3.5 hours before its next hourly probe: 4 runs were missed.
    down_since = datetime.now(BERLIN) - timedelta(hours=3, minutes=30)
    first_missed = next_fire_times(cron_trigger("0 * * * *", "Europe/Berlin"), down_since)[0]
    s1.scheduler.modify_job("slam:probe", next_run_time=first_missed)
    await s1.aclose()

    eng2 = make_engine(sqlite_url)
    s2 = SlamScheduler(BotServices.create(eng2, cfg), notify=Inbox(), owner="back-up")
    runs = Runs(s2)
    try:
        assert (await s2.start())["probe"] == "kept"
        events = await runs.wait(1)
        latest_missed = slot_for(cron_trigger("0 * * * *", "Europe/Berlin"), datetime.now(UTC))
        # Without coalescing, one submission would run (and report) all 4 missed times.
        assert len(events) == 1 and events[0].retval == "ok"
        assert events[0].scheduled_run_time == latest_missed
        assert len(calls) == 1 and calls[0][1] == latest_missed
        nxt = s2.next_runs()["probe"]
        assert nxt is not None and nxt > datetime.now(UTC)
        assert latest_missed is not None
        assert [x.slot for x in leases_of(eng2)] == [slot_key(latest_missed)]
    finally:
        await s2.aclose()


async def test_runs_missed_beyond_the_grace_time_are_reported_not_run(
    engine: Engine, use_body: UseBody, started: list[SlamScheduler]
) -> None:
    calls: list[tuple[str, datetime]] = []
    use_body("generate", recorder(calls))
    # A daily job 12 hours away, so the only missed time is the one we pin (2 hours ago).
    hour = (datetime.now(BERLIN) + timedelta(hours=12)).hour
    inbox = Inbox()
    cfg = config(generate_cron=f"0 {hour} * * *", misfire_grace_s=60)
    sched = SlamScheduler(BotServices.create(engine, cfg), notify=inbox)
    started.append(sched)
    await sched.start(paused=True)
    sched.scheduler.modify_job(
        "slam:generate", next_run_time=datetime.now(BERLIN) - timedelta(hours=2)
    )
    sched.resume()
    await asyncio.wait_for(inbox.arrived.wait(), 20)
    (reply,) = inbox.replies
    assert not reply.ok and reply.title == "Scheduled job missed: generate"
    assert "longer than schedule.misfire_grace_s (60 s)" in reply.text
    assert calls == [] and leases_of(engine) == []
    assert sched.running


async def test_a_failing_job_is_reported_and_the_scheduler_keeps_running(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, started: list[SlamScheduler], use_body: UseBody
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-supersecretvalue12345")

    async def broken(run: JobRun, slot: datetime) -> str:
        raise RuntimeError("upstream said 401 for key sk-test-supersecretvalue12345")

    calls: list[tuple[str, datetime]] = []
    use_body("digest", broken)
    use_body("probe", recorder(calls))
    inbox = Inbox()
    sched = SlamScheduler(BotServices.create(engine, config()), notify=inbox, owner="r1")
    started.append(sched)
    runs = Runs(sched)
    labels = {"job": "digest", "outcome": "error"}
    errors_before = REGISTRY.get_sample_value("slam_job_runs_total", labels) or 0.0
    await sched.start()
    sched.scheduler.modify_job("slam:digest", next_run_time=datetime.now(BERLIN))
    (event,) = await runs.wait(1)
    assert event.retval == "error" and event.code == EVENT_JOB_EXECUTED
    (reply,) = inbox.replies
    assert not reply.ok and reply.title == "Scheduled job failed: digest"
    assert "RuntimeError: upstream said 401 for key ***" in reply.text
    assert "sk-test-supersecretvalue12345" not in reply.text
    (lease,) = leases_of(engine)
    assert lease.error == "RuntimeError: upstream said 401 for key ***"
    assert lease.finished_at is not None
    after = REGISTRY.get_sample_value("slam_job_runs_total", labels)
    assert after == errors_before + 1
    # Still alive: the next job runs normally.
    assert sched.running
    sched.scheduler.modify_job("slam:probe", next_run_time=datetime.now(BERLIN))
    events = await runs.wait(2)
    assert events[1].job_id == "slam:probe" and events[1].retval == "ok" and len(calls) == 1


async def test_a_chat_outage_while_reporting_does_not_stop_the_scheduler(
    engine: Engine, use_body: UseBody, started: list[SlamScheduler]
) -> None:
    async def broken(run: JobRun, slot: datetime) -> str:
        raise ValueError("bad data")

    use_body("digest", broken)
    inbox = Inbox(fail=True)
    sched = SlamScheduler(BotServices.create(engine, config()), notify=inbox)
    started.append(sched)
    runs = Runs(sched)
    await sched.start()
    sched.scheduler.modify_job("slam:digest", next_run_time=datetime.now(BERLIN))
    (event,) = await runs.wait(1)
    assert event.retval == "error" and len(inbox.replies) == 1 and sched.running


async def test_start_for_bot_routes_failures_to_admins_and_reports_health(
    engine: Engine, use_body: UseBody
) -> None:
    import io

    from bot.dispatcher import Dispatcher
    from bot.ops.observability import Health, MetricsMiddleware, instrument
    from bot.ops.scheduler import start_for_bot
    from bot.platforms.console import ConsolePort

    sent: list[tuple[str | None, Reply]] = []
    arrived = asyncio.Event()

    class RecordingPort(ConsolePort):
        async def post(
            self, reply: Reply, *, channel: str | None = None, dm_user: str | None = None
        ) -> Any:
            sent.append((channel, reply))
            arrived.set()
            return await super().post(reply, channel=channel, dm_user=dm_user)

    async def broken(run: JobRun, slot: datetime) -> str:
        raise RuntimeError("no disk space")

    use_body("digest", broken)
    cfg = parse_config(
        {
            "schedule": {"timezone": "Europe/Berlin"},
            "chat": {"channel": "C-RATINGS", "admin_channel": "C-ADMIN"},
        }
    )
    dispatcher = instrument(instrument(Dispatcher(engine, cfg, salt=b"s")))
    assert sum(isinstance(m, MetricsMiddleware) for m in dispatcher.middleware) == 1
    health = Health()
    sched = await start_for_bot(dispatcher, RecordingPort(io.StringIO()), health=health)
    try:
        assert await health.run() == (True, {"scheduler": "running"})
        sched.scheduler.modify_job("slam:digest", next_run_time=datetime.now(BERLIN))
        await asyncio.wait_for(arrived.wait(), 20)
        ((channel, reply),) = sent
        assert channel == "C-ADMIN" and reply.title == "Scheduled job failed: digest"
        assert "RuntimeError: no disk space" in reply.text
    finally:
        await sched.aclose()
        await dispatcher.aclose()
    ok, checks = await health.run()
    assert not ok and checks["scheduler"] == "failed: RuntimeError: scheduler is not running"
