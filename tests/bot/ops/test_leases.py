"""Job leases expire: a replica that dies mid-job loses its slot to another; cron times in a
DST fall-back hour run once. Leases on SQLite and the real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.events import Reply
from bot.ops import jobs, leases
from bot.ops.cron import cron_trigger, next_fire_times, slot_for, slot_key
from bot.ops.jobs import JobRun, run_job
from bot.ops.scheduler import SlamScheduler
from bot.services import BotServices
from core.config import SlamConfig, parse_config
from storage.models import JobLease
from tests.bot.ops.conftest import UseBody

T0 = datetime(2024, 3, 11, 5, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)
NEW_YORK = ZoneInfo("America/New_York")


def config(**schedule: object) -> SlamConfig:
    return parse_config({"schedule": {"timezone": "UTC", **schedule}})


async def quiet(reply: Reply) -> None:
    return None


def lease_rows(engine: Engine) -> list[JobLease]:
    with Session(engine) as s:
        return list(s.exec(select(JobLease).order_by(JobLease.id)).all())  # type: ignore[arg-type]


def test_an_unfinished_lease_is_taken_over_once_it_expires(any_engine: Engine) -> None:
    slot = "2024-03-11T05:00:00+00:00"
    assert leases.claim(any_engine, "slam:probe", slot, "dead", ttl=TTL, now=T0)
    # Before the TTL has passed, the slot is the dead replica's.
    assert not leases.claim(any_engine, "slam:probe", slot, "b", ttl=TTL, now=T0 + TTL / 2)
    # After it, exactly one of two replicas takes it over.
    later = T0 + TTL + timedelta(seconds=1)
    won = [leases.claim(any_engine, "slam:probe", slot, o, ttl=TTL, now=later) for o in "bc"]
    assert won == [True, False]
    (row,) = lease_rows(any_engine)
    assert row.owner == "b" and row.finished_at is None
    assert row.expires_at is not None and row.expires_at == later + TTL
    # The dead owner can neither renew nor finish what is no longer its lease.
    assert not leases.heartbeat(any_engine, "slam:probe", slot, "dead", ttl=TTL, now=later)
    leases.finish(any_engine, "slam:probe", slot, "dead", "too late")
    assert lease_rows(any_engine)[0].error is None
    # A finished lease is never taken over, however old.
    leases.finish(any_engine, "slam:probe", slot, "b")
    far = T0 + timedelta(days=30)
    assert not leases.claim(any_engine, "slam:probe", slot, "d", ttl=TTL, now=far)


def test_a_heartbeat_keeps_the_lease(any_engine: Engine) -> None:
    slot = "2024-03-11T06:00:00+00:00"
    assert leases.claim(any_engine, "slam:generate", slot, "a", ttl=TTL, now=T0)
    for minutes in (4, 8, 12):  # renewed before each expiry: nobody else gets it
        now = T0 + timedelta(minutes=minutes)
        assert leases.heartbeat(any_engine, "slam:generate", slot, "a", ttl=TTL, now=now)
        assert not leases.claim(any_engine, "slam:generate", slot, "b", ttl=TTL, now=now)


def test_leases_from_before_heartbeats_expire_from_their_claim_time(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(JobLease(job_id="slam:digest", slot="x", owner="old", claimed_at=T0))
        s.commit()
    assert not leases.claim(engine, "slam:digest", "x", "new", ttl=TTL, now=T0 + TTL / 2)
    assert leases.claim(engine, "slam:digest", "x", "new", ttl=TTL, now=T0 + 2 * TTL)


async def test_run_job_renews_its_lease_while_the_body_runs(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, use_body: UseBody
) -> None:
    renewed = asyncio.Event()
    real = leases.heartbeat

    def beat(*args: object, **kw: object) -> bool:
        ok = real(*args, **kw)  # type: ignore[arg-type]
        renewed.set()
        return ok

    monkeypatch.setattr(leases, "heartbeat", beat)

    async def body(run: JobRun, slot: datetime) -> str:
        await asyncio.wait_for(renewed.wait(), 20)
        (row,) = await asyncio.to_thread(lease_rows, engine)
        assert row.expires_at is not None and row.expires_at > T0 + TTL  # moved forward
        return "done"

    times = iter([T0, T0 + timedelta(minutes=3)])
    run = JobRun(BotServices.create(engine, config()), quiet, owner="a",
                 clock=lambda: next(times, T0), heartbeat_s=0.01)  # fmt: skip
    use_body("probe", body)
    assert await run_job("probe", run) == "ok"
    (row,) = lease_rows(engine)
    assert row.finished_at is not None and row.error is None


async def test_a_run_whose_lease_was_taken_over_stops(engine: Engine, use_body: UseBody) -> None:
    started, never = asyncio.Event(), asyncio.Event()

    async def body(run: JobRun, slot: datetime) -> str:
        started.set()
        await never.wait()  # stalls; meanwhile another replica takes the slot over
        return "unreachable"

    use_body("probe", body)
    run = JobRun(
        BotServices.create(engine, config()),
        quiet,
        owner="slow",
        clock=lambda: T0,
        heartbeat_s=0.01,
    )
    slot = slot_key(T0)

    async def take_over() -> None:
        await started.wait()
        later = T0 + TTL + timedelta(seconds=1)
        assert await asyncio.to_thread(
            lambda: leases.claim(engine, "slam:probe", slot, "quick", ttl=TTL, now=later)
        )

    outcome, _ = await asyncio.gather(run_job("probe", run), take_over())
    assert outcome == "lost"
    (row,) = lease_rows(engine)
    assert row.owner == "quick" and row.finished_at is None and row.error is None


async def test_another_replica_recovers_a_slot_whose_replica_died(
    any_engine: Engine, use_body: UseBody
) -> None:
    ran: list[tuple[str, datetime]] = []

    async def body(run: JobRun, slot: datetime) -> str:
        ran.append((run.owner, slot))
        return "ran"

    use_body("probe", body)
    cfg = config(probe_cron="0 * * * *")
    slot = slot_key(T0)
    # The replica that won the 05:00 slot died without finishing it (no heartbeat since).
    assert leases.claim(any_engine, "slam:probe", slot, "dead", ttl=TTL, now=T0)
    now = [T0 + timedelta(minutes=2)]
    sched = SlamScheduler(BotServices.create(any_engine, cfg), notify=quiet, owner="alive",
                          clock=lambda: now[0], jobstore="memory")  # fmt: skip
    assert await sched.expired_jobs() == []  # not yet expired: nothing to do
    assert await sched.recover() == {}
    now[0] = T0 + timedelta(minutes=7)
    assert await sched.expired_jobs() == ["probe"]
    assert await sched.recover() == {"probe": "ok"}
    assert [(o, s.astimezone(UTC)) for o, s in ran] == [("alive", T0)]
    (row,) = [r for r in lease_rows(any_engine) if r.job_id == "slam:probe"]
    assert row.owner == "alive" and row.finished_at is not None
    assert await sched.recover() == {}  # finished: never run again


# --- DST fall-back: a fixed-hour cron time in the repeated hour runs once ------------------
FALL_BACK_FIRST = datetime(2024, 11, 3, 5, 30, tzinfo=UTC)  # 01:30 EDT
FALL_BACK_AGAIN = datetime(2024, 11, 3, 6, 30, tzinfo=UTC)  # 01:30 EST, an hour later


def test_a_fixed_time_in_the_repeated_hour_is_one_slot() -> None:
    daily = cron_trigger("30 1 * * *", "America/New_York")
    first = slot_for(daily, FALL_BACK_FIRST + timedelta(minutes=1))
    again = slot_for(daily, FALL_BACK_AGAIN + timedelta(minutes=1))
    assert first is not None and again is not None
    assert slot_key(first) == slot_key(again) == "2024-11-03T05:30:00+00:00"
    runs = next_fire_times(daily, datetime(2024, 11, 2, 12, tzinfo=UTC), 3)
    assert [r.astimezone(UTC).isoformat() for r in runs] == [
        "2024-11-03T05:30:00+00:00",
        "2024-11-04T06:30:00+00:00",
        "2024-11-05T06:30:00+00:00",
    ]


def test_hourly_jobs_still_run_in_both_hours() -> None:
    hourly = cron_trigger("30 * * * *", "America/New_York")
    keys = {
        slot_key(s)
        for t in (FALL_BACK_FIRST, FALL_BACK_AGAIN)
        if (s := slot_for(hourly, t + timedelta(minutes=1))) is not None
    }
    assert keys == {"2024-11-03T05:30:00+00:00", "2024-11-03T06:30:00+00:00"}
    runs = next_fire_times(hourly, FALL_BACK_FIRST - timedelta(minutes=1), 3)
    assert len({r.astimezone(UTC) for r in runs}) == 3


async def test_the_repeat_of_a_fall_back_time_is_skipped(engine: Engine, use_body: UseBody) -> None:
    cfg = parse_config(
        {"schedule": {"timezone": "America/New_York", "generate_cron": "30 1 * * *"}}
    )
    ran: list[datetime] = []

    async def body(run: JobRun, slot: datetime) -> str:
        ran.append(slot)
        return "ran"

    use_body("generate", body)
    times = iter([FALL_BACK_FIRST, FALL_BACK_AGAIN])  # what APScheduler fires
    run = JobRun(BotServices.create(engine, cfg), quiet, owner="a", clock=lambda: next(times))
    outcomes = [await jobs.run_job("generate", run) for _ in range(2)]
    assert outcomes == ["ok", "skipped"] and len(ran) == 1
