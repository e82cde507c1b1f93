"""Several bot replicas on the real PostgreSQL: each job runs once per slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.events import Reply
from bot.ops import leases
from bot.ops.jobs import JobRun, run_job
from bot.ops.scheduler import SlamScheduler
from bot.services import BotServices
from core.config import SlamConfig, parse_config
from storage.db import make_engine
from storage.models import JobLease
from tests.bot.ops.conftest import UseBody

pytestmark = pytest.mark.postgres
BERLIN = ZoneInfo("Europe/Berlin")


def config() -> SlamConfig:
    return parse_config({"schedule": {"timezone": "Europe/Berlin", "digest_cron": "0 9 * * *"}})


async def quiet(reply: Reply) -> None:
    return None


class Calls:
    """A job body that records which replica ran which slot."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, datetime]] = []

    async def __call__(self, run: JobRun, slot: datetime) -> str:
        self.runs.append((run.owner, slot))
        await asyncio.sleep(0)  # let the other replica's run interleave
        return "ran"


class Runs:
    def __init__(self, sched: SlamScheduler):
        self.events: list[JobExecutionEvent] = []
        self._changed = asyncio.Event()
        sched.scheduler.add_listener(self._on, EVENT_JOB_EXECUTED)

    def _on(self, event: JobExecutionEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait(self, n: int, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.events) < n:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def replicas(pg_url: str, pg_engine: Engine) -> AsyncIterator[list[SlamScheduler]]:
    """Schedulers started by a test, each on its own engine; shut down afterwards."""
    scheds: list[SlamScheduler] = []
    yield scheds
    for s in scheds:
        await s.aclose()


def test_lease_insert_wins_once(any_engine: Engine) -> None:
    assert leases.claim(any_engine, "slam:probe", "2024-03-11T05:00:00+00:00", "a")
    assert not leases.claim(any_engine, "slam:probe", "2024-03-11T05:00:00+00:00", "b")
    assert leases.claim(any_engine, "slam:probe", "2024-03-11T06:00:00+00:00", "b")
    assert leases.claim(any_engine, "slam:digest", "2024-03-11T05:00:00+00:00", "b")
    leases.finish(any_engine, "slam:probe", "2024-03-11T05:00:00+00:00", "b", "not mine")
    leases.finish(any_engine, "slam:probe", "2024-03-11T05:00:00+00:00", "a", "x" * 5000)
    row = leases.get(any_engine, "slam:probe", "2024-03-11T05:00:00+00:00")
    assert row is not None and row.owner == "a" and row.finished_at is not None
    assert row.error == "x" * leases.MAX_ERROR_CHARS
    last = leases.latest(any_engine, ["slam:probe", "slam:digest", "slam:generate"])
    assert {k: v.slot for k, v in last.items()} == {
        "slam:probe": "2024-03-11T06:00:00+00:00",
        "slam:digest": "2024-03-11T05:00:00+00:00",
    }


async def test_concurrent_runners_race_for_a_slot_and_one_wins(
    pg_url: str, pg_engine: Engine, use_body: UseBody
) -> None:
    calls = Calls()
    use_body("digest", calls)
    engines = [pg_engine] + [make_engine(pg_url) for _ in range(5)]
    at = datetime(2024, 3, 11, 9, 0, 1, tzinfo=BERLIN)
    runs = [
        JobRun(BotServices.create(e, config()), quiet, owner=f"replica-{i}", clock=lambda: at)
        for i, e in enumerate(engines)
    ]
    try:
        outcomes = await asyncio.gather(*(run_job("digest", c) for c in runs))
    finally:
        for e in engines[1:]:
            e.dispose()
    assert sorted(outcomes) == ["ok"] + ["skipped"] * 5
    assert len(calls.runs) == 1
    with Session(pg_engine) as s:
        (lease,) = s.exec(select(JobLease)).all()
    assert lease.slot == "2024-03-11T08:00:00+00:00" and lease.owner == calls.runs[0][0]
    assert lease.finished_at is not None and lease.error is None


async def test_two_schedulers_run_each_slot_once(
    pg_url: str,
    pg_engine: Engine,
    use_body: UseBody,
    replicas: list[SlamScheduler],
) -> None:
    """Two replicas that both fire the digest (each with its own job store) for three slots:
    the leases in PostgreSQL let exactly one of them run each slot."""
    calls = Calls()
    use_body("digest", calls)
    now = {"t": datetime(2024, 3, 11, 9, 0, 2, tzinfo=BERLIN)}
    for i, eng in enumerate([pg_engine, make_engine(pg_url)]):
        sched = SlamScheduler(
            BotServices.create(eng, config()),
            notify=quiet,
            owner=f"replica-{i}",
            clock=lambda: now["t"],
            jobstore="memory",
        )
        replicas.append(sched)
    runs = [Runs(s) for s in replicas]
    for sched in replicas:
        await sched.start()
    for day in range(3):
        now["t"] = datetime(2024, 3, 11 + day, 9, 0, 2, tzinfo=BERLIN)
        fire = datetime.now(UTC)
        for sched in replicas:
            sched.scheduler.modify_job("slam:digest", next_run_time=fire)
        for r in runs:
            await r.wait(day + 1)
        assert sorted(r.events[day].retval for r in runs) == ["ok", "skipped"]
    assert [slot.isoformat() for _, slot in calls.runs] == [
        "2024-03-11T09:00:00+01:00",
        "2024-03-12T09:00:00+01:00",
        "2024-03-13T09:00:00+01:00",
    ]
    with Session(pg_engine) as s:
        rows = s.exec(select(JobLease).order_by(col(JobLease.slot))).all()
    assert [r.slot for r in rows] == [
        "2024-03-11T08:00:00+00:00",
        "2024-03-12T08:00:00+00:00",
        "2024-03-13T08:00:00+00:00",
    ]
    assert [r.owner for r in rows] == [owner for owner, _ in calls.runs]
    assert all(r.finished_at is not None and r.error is None for r in rows)


async def test_replicas_share_the_postgres_job_store(
    pg_url: str,
    pg_engine: Engine,
    use_body: UseBody,
    replicas: list[SlamScheduler],
) -> None:
    """The deployed setup: both replicas keep their jobs in the same PostgreSQL table."""
    calls = Calls()
    use_body("probe", calls)
    a = SlamScheduler(BotServices.create(pg_engine, config()), notify=quiet, owner="replica-a")
    b = SlamScheduler(
        BotServices.create(make_engine(pg_url), config()), notify=quiet, owner="replica-b"
    )
    replicas += [a, b]
    won = asyncio.Event()  # set when a replica's run returns "ok" (its lease is finished)
    for sched in replicas:
        sched.scheduler.add_listener(
            lambda e: won.set() if e.retval == "ok" else None, EVENT_JOB_EXECUTED
        )
    results = await asyncio.gather(a.start(), b.start())
    assert results == [
        {"probe": "added", "generate": "added", "digest": "added"},
        {"probe": "kept", "generate": "kept", "digest": "kept"},
    ]
    assert a.next_runs() == b.next_runs()  # one table: the same jobs and times
    a.scheduler.modify_job("slam:probe", next_run_time=datetime.now(BERLIN) - timedelta(seconds=1))
    b.scheduler.wakeup()  # both replicas look at the due job
    await asyncio.wait_for(won.wait(), 20)
    with Session(pg_engine) as s:
        rows = s.exec(select(JobLease)).all()
    assert rows[0].finished_at is not None and rows[0].error is None
    assert len(rows) == 1 and len(calls.runs) == 1
    assert rows[0].owner == calls.runs[0][0]
    nxt = a.next_runs()["probe"]
    assert nxt is not None and nxt > datetime.now(UTC) and b.next_runs()["probe"] == nxt


def test_replicas_creating_the_job_store_table_together_do_not_fail(pg_url: str) -> None:
    """Without the guard, concurrent CREATE TABLE on PostgreSQL fails for all but one."""
    import threading

    from sqlalchemy import inspect

    from bot.ops.scheduler import JOBSTORE_TABLE, ensure_jobstore_table

    engines = [make_engine(pg_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        barrier.wait()
        try:
            ensure_jobstore_table(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    try:
        assert errors == []
        assert inspect(engines[0]).has_table(JOBSTORE_TABLE)
    finally:
        for e in engines:
            e.dispose()
