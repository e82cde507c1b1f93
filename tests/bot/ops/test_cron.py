"""Cron triggers and slots in a non-UTC time zone, with explicit `now` values; `slam schedule`."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.ops.cron import cron_trigger, next_fire_times, slot_for, slot_key, standard_weekdays
from bot.ops.scheduler import planned_jobs, upcoming
from core.config import parse_config
from core.errors import SlamError
from slam.cli import main

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def utc(ts: datetime | None) -> str:
    assert ts is not None
    return ts.astimezone(UTC).isoformat(timespec="minutes")


@pytest.mark.parametrize(
    ("cron", "now", "slot"),
    [
        # daily 06:00 Berlin: before 06:00 the slot is yesterday's, at/after it today's
        ("0 6 * * *", "2024-03-12T05:59:59+01:00", "2024-03-11T05:00+00:00"),
        ("0 6 * * *", "2024-03-12T06:00:00+01:00", "2024-03-12T05:00+00:00"),
        ("0 6 * * *", "2024-03-12T23:10:00+01:00", "2024-03-12T05:00+00:00"),
        # spring forward (31 March): 06:00 is now UTC+2
        ("0 6 * * *", "2024-03-31T07:00:00+02:00", "2024-03-31T04:00+00:00"),
        ("0 6 * * *", "2024-03-31T05:00:00+02:00", "2024-03-30T05:00+00:00"),
        # hourly across the fall-back hour (27 October): 02:00 happens twice
        ("0 * * * *", "2024-10-27T00:30:00+00:00", "2024-10-27T00:00+00:00"),
        ("0 * * * *", "2024-10-27T01:30:00+00:00", "2024-10-27T01:00+00:00"),
        # weekdays only (standard crontab 1-5): on Sunday the slot is Friday's
        ("30 6 * * 1-5", "2024-03-10T12:00:00+01:00", "2024-03-08T05:30+00:00"),
        # yearly: the slot is months back
        ("0 9 1 1 *", "2024-03-10T12:00:00+01:00", "2024-01-01T08:00+00:00"),
    ],
)
def test_slot_is_the_latest_fire_time_not_after_now(cron: str, now: str, slot: str) -> None:
    trigger = cron_trigger(cron, "Europe/Berlin")
    got = slot_for(trigger, at(now))
    assert utc(got) == slot
    assert got is not None and got.tzinfo is not None


def test_next_fire_times_in_the_configured_zone() -> None:
    hourly = cron_trigger("0 * * * *", "Europe/Berlin")
    times = next_fire_times(hourly, at("2024-10-26T23:30:00+00:00"), 4)
    assert [utc(t) for t in times] == [
        "2024-10-27T00:00+00:00",  # 02:00 CEST
        "2024-10-27T01:00+00:00",  # 02:00 CET, the repeated hour
        "2024-10-27T02:00+00:00",
        "2024-10-27T03:00+00:00",
    ]
    daily = cron_trigger("0 9 * * *", "Europe/Berlin")
    assert [t.isoformat() for t in next_fire_times(daily, at("2024-03-30T10:00:00+01:00"), 2)] == [
        "2024-03-31T09:00:00+02:00",
        "2024-04-01T09:00:00+02:00",
    ]
    # strictly after now: a fire time equal to now is not "next"
    assert (
        utc(next_fire_times(daily, at("2024-03-31T09:00:00+02:00"))[0]) == "2024-04-01T07:00+00:00"
    )


def test_weekdays_follow_standard_crontab_numbering() -> None:
    assert standard_weekdays("0") == "sun" and standard_weekdays("7") == "sun"
    assert standard_weekdays("1-5") == "mon,tue,wed,thu,fri"
    assert standard_weekdays("*/2") == "sun,tue,thu,sat"
    assert standard_weekdays("5-7") == "sun,fri,sat"
    assert standard_weekdays("sat,sun") == "sun,sat"
    monday = cron_trigger("0 9 * * 1", "Europe/Berlin")
    nxt = next_fire_times(monday, at("2024-03-09T12:00:00+01:00"))[0]  # a Saturday
    assert nxt.isoformat() == "2024-03-11T09:00:00+01:00" and nxt.weekday() == 0


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("0 25 * * *", "higher than the maximum"),
        ("0 9 * * 8", "bad day of week"),
        ("0 9 * *", "not a 5-field cron expression"),
        ("0 9 * * 5-2", "runs backwards"),
    ],
)
def test_bad_cron_names_the_key(cron: str, why: str) -> None:
    with pytest.raises(SlamError) as err:
        cron_trigger(cron, "Europe/Berlin", "schedule.digest_cron")
    assert str(err.value).startswith("schedule.digest_cron: ") and why in str(err.value)


def test_slot_key_is_utc_and_needs_aware_now() -> None:
    assert slot_key(at("2024-03-12T06:00:00+01:00")) == "2024-03-12T05:00:00+00:00"
    with pytest.raises(ValueError, match="timezone-aware"):
        slot_for(cron_trigger("0 * * * *", "UTC"), datetime(2024, 1, 1))


def schedule_config(**overrides: object) -> dict[str, object]:
    return {
        "schedule": {
            "timezone": "Europe/Berlin",
            "probe_cron": "0 * * * *",
            "generate_cron": "30 6 * * 1-5",
            "digest_cron": "0 9 * * *",
            "misfire_grace_s": 900,
            **overrides,
        }
    }


def test_planned_jobs_and_upcoming_come_from_the_config() -> None:
    cfg = parse_config(schedule_config())
    assert [(p.name, p.id, p.cron) for p in planned_jobs(cfg)] == [
        ("probe", "slam:probe", "0 * * * *"),
        ("generate", "slam:generate", "30 6 * * 1-5"),
        ("digest", "slam:digest", "0 9 * * *"),
    ]
    plan = dict((p.name, times) for p, times in upcoming(cfg, at("2024-03-08T23:30:00+01:00"), 2))
    assert [t.isoformat() for t in plan["generate"]] == [
        "2024-03-11T06:30:00+01:00",  # Friday night -> Monday
        "2024-03-12T06:30:00+01:00",
    ]
    assert [t.isoformat() for t in plan["probe"]] == [
        "2024-03-09T00:00:00+01:00",
        "2024-03-09T01:00:00+01:00",
    ]
    bad = parse_config(schedule_config(generate_cron="0 6 * * mon-funday"))
    with pytest.raises(SlamError, match=r"^schedule\.generate_cron: "):
        planned_jobs(bad)


def test_schedule_list_prints_next_runs(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "slam.toml"
    cfg.write_text(
        '[schedule]\ntimezone = "Europe/Berlin"\nprobe_cron = "0 * * * *"\n'
        'generate_cron = "30 6 * * 1-5"\ndigest_cron = "0 9 * * *"\nmisfire_grace_s = 900\n'
    )
    code = main(["schedule", "list", "-c", str(cfg), "--from", "2024-03-30T23:10", "-n", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "time zone Europe/Berlin; missed runs coalesce within 900 s" in out
    assert (
        "probe  (0 * * * *)  latency probes of every model\n"
        "  2024-03-31 00:00 CET\n  2024-03-31 01:00 CET\n  2024-03-31 03:00 CEST\n"
    ) in out  # 02:00 does not exist on the spring-forward night
    assert "generate  (30 6 * * 1-5)" in out and "  2024-04-01 06:30 CEST\n" in out
    assert "  2024-03-31 09:00 CEST\n  2024-04-01 09:00 CEST\n" in out

    code = main(["schedule", "list", "-c", str(cfg), "--from", "tomorrow"])
    err = capsys.readouterr().err
    assert code == 2 and "is not an ISO 8601 time" in err and "Traceback" not in err


def test_schedule_run_rejects_unknown_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["schedule", "run", "backup"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown job 'backup'; expected one of: probe, generate, digest" in err
