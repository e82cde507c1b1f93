"""The `host` table: one row per launched instance, updated as its state changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from storage.db import session_scope
from storage.models import HostRecord

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def find_host(engine: Engine, instance_id: str) -> HostRecord | None:
    with session_scope(engine) as s:
        return s.exec(select(HostRecord).where(HostRecord.instance_id == instance_id)).first()


def save_host(engine: Engine, instance_id: str, **fields: Any) -> HostRecord:
    """Create or update the host's row (one transaction)."""
    with session_scope(engine) as s:
        rec = s.exec(select(HostRecord).where(HostRecord.instance_id == instance_id)).first()
        if rec is None:
            rec = HostRecord(instance_id=instance_id, provider="aws", **fields)
        else:
            for key, value in fields.items():
                setattr(rec, key, value)
        s.add(rec)
        s.flush()
        s.refresh(rec)
        return rec


def mark_terminated(engine: Engine, instance_id: str) -> None:
    """Record the termination once; the first time seen is kept."""
    with session_scope(engine) as s:
        rec = s.exec(select(HostRecord).where(HostRecord.instance_id == instance_id)).first()
        if rec is not None and rec.state != "terminated":
            rec.state = "terminated"
            rec.terminated_at = rec.terminated_at or datetime.now(UTC)
            s.add(rec)


def active_endpoint(engine: Engine) -> str | None:
    """The newest ready host's Ollama endpoint, for backends without an explicit host."""
    with session_scope(engine) as s:
        rec = s.exec(
            select(HostRecord)
            .where(HostRecord.state == "ready", col(HostRecord.terminated_at).is_(None))
            .order_by(col(HostRecord.launched_at).desc())
        ).first()
        return rec.endpoint if rec else None
