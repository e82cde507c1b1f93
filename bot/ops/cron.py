"""Cron expressions from `slam.toml` as APScheduler triggers, and the slot a run serves.

`[schedule]` cron strings use standard crontab weekdays (0 or 7 = Sunday). APScheduler 3
numbers weekdays from Monday, so numeric weekday fields are rewritten as day names first.
A *slot* is the cron fire time a run serves: the latest fire time at or before `now`. Every
replica computes the same slot for the same run, which is what the job leases key on.

At a DST fall-back a wall time happens twice (01:30 EDT, then 01:30 EST). Like cron, a job
at a fixed hour runs once then: the second occurrence is the same slot as the first, so its
lease is taken and it is skipped. Jobs on every hour (hour field `*`) run in both hours,
which are different hours of real time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from core.errors import SlamError

# Standard crontab weekday numbers (0 and 7 are Sunday) and names.
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_TOKEN = re.compile(r"^(\*|[a-z0-9]+)(?:-([a-z0-9]+))?(?:/(\d+))?$")


def _day(value: str, field: str) -> int:
    if value.isdigit() and 0 <= int(value) <= 7:
        return int(value) % 7
    if value[:3] in DAY_NAMES and len(value) == 3:
        return DAY_NAMES.index(value)
    raise ValueError(
        f"bad day of week {value!r} in {field!r}; use 0-7 (0 or 7 = Sunday) or sun-sat"
    )


def standard_weekdays(field: str) -> str:
    """A crontab day-of-week field as APScheduler day names ('1-5' -> 'mon,tue,wed,thu,fri')."""
    field = field.strip().lower()
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for token in field.split(","):
        m = _TOKEN.match(token)
        if m is None:
            raise ValueError(f"bad day-of-week expression {token!r} in {field!r}")
        start, end, step = m.groups()
        if start == "*":
            lo, hi = 0, 6
        else:
            lo = _day(start, field)
            # "7" as a range end means Sunday at the end of the week, e.g. "5-7" = fri,sat,sun.
            hi = (7 if end == "7" else _day(end, field)) if end else (6 if step else lo)
        if hi < lo:
            raise ValueError(f"day-of-week range {token!r} runs backwards in {field!r}")
        days.update(d % 7 for d in range(lo, hi + 1, int(step or 1)))
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def cron_trigger(expr: str, timezone: str, key: str = "schedule") -> CronTrigger:
    """A trigger for a 5-field crontab expression in an IANA time zone; SlamError if invalid."""
    fields = expr.split()
    if len(fields) != 5:
        raise SlamError(f"{key}: {expr!r} is not a 5-field cron expression like '0 * * * *'")
    try:
        tz = ZoneInfo(timezone)
        minute, hour, day, month, dow = fields
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=standard_weekdays(dow),
            timezone=tz,
        )
    except (ValueError, KeyError) as exc:
        raise SlamError(f"{key}: {expr!r} is not a valid cron expression: {exc}") from None


def _utc(t: datetime) -> datetime:
    # Aware datetimes sharing a tzinfo compare by wall time, ignoring `fold`: 02:00 CEST and
    # 02:00 CET would be "equal" at a DST fall-back. Comparing in UTC compares instants.
    return t.astimezone(UTC)


def _after(trigger: CronTrigger, t: datetime) -> datetime | None:
    """The first fire time strictly after the instant `t`.

    Asked from t + 1 µs, APScheduler 3 can return t itself at a DST fall-back (it rounds up
    in wall time); fire times are whole minutes, so retrying from t + 1 s, then t + 1 min,
    still finds the next one and always moves forward.
    """
    for step in (timedelta(microseconds=1), timedelta(seconds=1), timedelta(minutes=1)):
        nxt = trigger.get_next_fire_time(None, _utc(t) + step)
        if nxt is None or _utc(nxt) > _utc(t):
            return nxt
    return None


def _fixed_hour(trigger: CronTrigger) -> bool:
    return any(f.name == "hour" and str(f) != "*" for f in trigger.fields)


def first_occurrence(trigger: CronTrigger, t: datetime) -> datetime:
    """`t`, or the earlier fire time with the same wall time when `t` is the repeat of a
    DST fall-back hour and the job runs at fixed hours (cron runs those once)."""
    tz = trigger.timezone
    local = t.astimezone(tz)
    if not local.fold or not _fixed_hour(trigger):
        return t
    first = local.replace(fold=0)
    if _utc(first) == _utc(local):  # not an ambiguous wall time after all
        return t
    again = trigger.get_next_fire_time(None, _utc(first))
    if again is not None and _utc(again) == _utc(first):
        return first
    return t


def next_fire_times(trigger: CronTrigger, now: datetime, n: int = 1) -> list[datetime]:
    """The next `n` runs strictly after `now`, in the trigger's time zone (the repeat of a
    fall-back hour is not a run of its own, see `first_occurrence`)."""
    out: list[datetime] = []
    t: datetime | None = _utc(now)
    while len(out) < n and t is not None:
        t = _after(trigger, t)
        if t is not None and first_occurrence(trigger, t) is t:
            out.append(t)
    return out


def slot_for(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The slot a run at `now` serves: the latest fire time at or before `now` (its first
    occurrence at a DST fall-back); None if there was none in five years."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = _utc(now)
    lookback = timedelta(minutes=1)
    while lookback <= timedelta(days=5 * 366):
        t = trigger.get_next_fire_time(None, now - lookback)
        if t is not None and _utc(t) <= now:
            while True:  # walk forward to the last fire time not after now
                nxt = _after(trigger, t)
                if nxt is None or _utc(nxt) > now:
                    return first_occurrence(trigger, t)
                t = nxt
        lookback *= 4
    return None


def slot_key(slot: datetime) -> str:
    """The slot as stored in a lease: ISO 8601 in UTC, so replicas in any zone agree."""
    return slot.astimezone(UTC).isoformat(timespec="seconds")
