"""Job leases: each scheduled job runs once per slot, however many bot replicas fire it.

A replica claims (job id, slot) by inserting a `JobLease` row; the unique constraint lets
exactly one insert win on SQLite and PostgreSQL alike, with no lock held while the job runs.
The winner records when it finished and any error, which `slam schedule list` shows.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from storage.db import session_scope
from storage.models import JobLease, utcnow

MAX_ERROR_CHARS = 4000


def default_owner() -> str:
    """host:pid:random, unique per running bot process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def claim(engine: Engine, job_id: str, slot: str, owner: str) -> bool:
    """Claim the slot for `owner`; False when another replica (or an earlier run) has it."""
    try:
        with session_scope(engine) as s:
            s.add(JobLease(job_id=job_id, slot=slot, owner=owner))
            s.flush()
    except IntegrityError:
        return False
    return True


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
