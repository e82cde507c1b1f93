"""Operations: the scheduler (APScheduler in the bot's loop), the scheduled jobs (a job is one
`@job` entry of `jobs.JOBS`, its body in `job_bodies`), cron triggers, leases that make each
slot run once across replicas, the daily digest message, logs and metrics, and the runtime
every adapter runs inside (`runtime`: /healthz, /metrics, the web front, the scheduler).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from bot.ops.jobs import JOBS, JobRun, find_planned, planned, run_job
    from bot.ops.leases import latest
    from bot.ops.observability import ERRORS, REJECTED, add_routes, setup_logging
    from bot.ops.runtime import AdapterRuntime
    from bot.ops.scheduler import upcoming

__getattr__ = lazy_exports(__name__, __file__)
