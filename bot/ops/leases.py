"""Job leases: each scheduled job runs once per slot, however many bot replicas fire it.

A replica claims (job id, slot) by inserting a `JobLease` row; the unique constraint lets
exactly one insert win on SQLite and PostgreSQL alike, with no lock held while the job runs.
The winner records when it finished and any error, which `slam schedule list` shows.

Leases expire: the owner renews `expires_at` (a heartbeat) while its job runs. A replica
that dies mid-job stops renewing, and once its lease has expired unfinished, `claim` by
another replica takes the slot over (one conditional UPDATE, so one taker wins).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.db import session_scope
from storage.models import JobLease, utcnow

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 4000
DEFAULT_TTL = timedelta(minutes=5)


def default_owner() -> str:
    """host:pid:random, unique per running bot process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def claim(
    engine: Engine,
    job_id: str,
    slot: str,
    owner: str,
    *,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> bool:
    """Claim the slot for `owner` until now + `ttl`; False when another replica (or an
    earlier run) holds it or has finished it. An unfinished lease that has expired (its
    owner stopped renewing it) is taken over."""
    now = now or utcnow()
    try:
        with session_scope(engine) as s:
            s.add(JobLease(job_id=job_id, slot=slot, owner=owner, claimed_at=now,
                           expires_at=now + ttl))  # fmt: skip
            s.flush()
    except IntegrityError:
        return _take_over(engine, job_id, slot, owner, ttl, now)
    return True


def _expired(now: datetime, ttl: timedelta) -> object:
    return and_(
        col(JobLease.finished_at).is_(None),
        or_(
            col(JobLease.expires_at) < now,
            and_(col(JobLease.expires_at).is_(None), col(JobLease.claimed_at) < now - ttl),
        ),
    )


def _take_over(
    engine: Engine, job_id: str, slot: str, owner: str, ttl: timedelta, now: datetime
) -> bool:
    with session_scope(engine) as s:
        old = s.exec(
            select(JobLease.owner).where(JobLease.job_id == job_id, JobLease.slot == slot)
        ).first()
        won = _extend(s, job_id, slot, now + ttl, _expired(now, ttl), owner=owner)
    if won:
        log.warning(
            "job %s: took over slot %s from %s, whose lease expired unfinished",
            job_id, slot, old, extra={"job": job_id, "slot": slot, "owner": owner},
        )  # fmt: skip
    return won


def heartbeat(
    engine: Engine,
    job_id: str,
    slot: str,
    owner: str,
    *,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> bool:
    """Renew the owner's unfinished lease until now + `ttl`; False when it is no longer
    the owner's (another replica took it over) or it was finished or removed."""
    now = now or utcnow()
    with session_scope(engine) as s:
        mine = and_(col(JobLease.owner) == owner, col(JobLease.finished_at).is_(None))
        return _extend(s, job_id, slot, now + ttl, mine)


def _extend(s: Session, job_id: str, slot: str, until: datetime, where: Any, **values: Any) -> bool:
    """Move the (job, slot) lease's expiry to `until` (and set `values`) if `where` holds;
    whether it did."""
    result = s.execute(
        update(JobLease)
        .where(col(JobLease.job_id) == job_id, col(JobLease.slot) == slot)
        .where(where)
        .values(expires_at=until, **values)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def is_expired(lease: JobLease, now: datetime, ttl: timedelta = DEFAULT_TTL) -> bool:
    """An unfinished lease whose owner stopped renewing it."""
    if lease.finished_at is not None:
        return False
    expires = lease.expires_at or (lease.claimed_at + ttl)
    return expires < now


def finish(
    engine: Engine,
    job_id: str,
    slot: str,
    owner: str,
    error: str | None = None,
    at: datetime | None = None,
) -> None:
    """Record that the owner's run of the slot ended (with `error` when it failed)."""
    with session_scope(engine) as s:
        row = s.exec(
            select(JobLease).where(
                JobLease.job_id == job_id, JobLease.slot == slot, JobLease.owner == owner
            )
        ).first()
        if row is None:  # the lease was cleared by hand meanwhile: nothing to record on
            return
        row.finished_at = at or utcnow()
        row.error = error[:MAX_ERROR_CHARS] if error else None
        s.add(row)


def get(engine: Engine, job_id: str, slot: str) -> JobLease | None:
    with session_scope(engine) as s:
        return s.exec(
            select(JobLease).where(JobLease.job_id == job_id, JobLease.slot == slot)
        ).first()


def latest(engine: Engine, job_ids: list[str]) -> dict[str, JobLease]:
    """The most recently claimed lease of each job (jobs never run are absent)."""
    out: dict[str, JobLease] = {}
    with session_scope(engine) as s:
        rows = s.exec(
            select(JobLease)
            .where(col(JobLease.job_id).in_(job_ids))
            .order_by(col(JobLease.claimed_at), col(JobLease.id))
        ).all()
    for row in rows:
        out[row.job_id] = row
    return out
