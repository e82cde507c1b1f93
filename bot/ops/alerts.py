"""Alerts in chat, on the schedule: after every probe run the conditions of bot.incidents are
checked, each incident that starts or clears is claimed (one replica posts it) and posted in
one message to `[alerts] channel` (else the team channel), and every open alert is a
`slam_alert{kind, subject}` gauge on /metrics (1 while open, 0 once cleared), so a team on
Prometheus can route them through Alertmanager instead."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.engine import Engine

from bot.events import Reply
from bot.incidents import Change, change_text, conditions, incidents, reconcile
from bot.ops.jobs import JobRun, safe_send
from bot.ops.observability import ERRORS, set_alert
from core.config import SlamConfig

log = logging.getLogger(__name__)


def check(engine: Engine, cfg: SlamConfig, now: datetime | None = None) -> list[Change]:
    """Check every alert and claim what changed (what this replica should post); updates
    the /metrics gauges."""
    if not cfg.alerts.enabled:
        return []
    changes = reconcile(engine, conditions(engine, cfg, now))
    publish_gauges(engine)
    return changes


def publish_gauges(engine: Engine) -> None:
    """`slam_alert{kind, subject}`: 1 while its latest incident is open, 0 once it cleared,
    read from the ledger (so any replica shows what another one posted)."""
    for (kind, subject), (_seq, alert) in incidents(engine).items():
        set_alert(kind, subject, alert is not None)


async def post_alerts(run: JobRun, now: datetime | None = None) -> list[Change]:
    """Check the alerts and post what this replica claimed, in one message."""
    engine, cfg = run.services.engine, run.services.cfg
    try:
        changes = await asyncio.to_thread(check, engine, cfg, now or run.clock())
    except Exception:  # the probes are stored either way; open alerts stay open
        log.exception("checking the alerts failed")
        ERRORS.labels(component="alerts").inc()
        return []
    if changes:
        send = run.alerts or run.publish or run.notify
        await safe_send(send, Reply(change_text(changes), title="SLaM alerts"))
    return changes
