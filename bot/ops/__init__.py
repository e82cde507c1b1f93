"""Operations: the scheduler (APScheduler in the bot's loop), the scheduled jobs (a job is one
`@job` entry of `jobs.JOBS`, its body in `job_bodies`), cron triggers, leases that make each
slot run once across replicas, the daily digest message, logs and metrics, and the runtime
every adapter runs inside (`runtime`: /healthz, /metrics, the web front, the scheduler).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from bot.ops.jobs import JOBS, JobRun, run_job
    from bot.ops.leases import latest
    from bot.ops.observability import ERRORS, REJECTED, add_routes, setup_logging
    from bot.ops.runtime import AdapterRuntime
    from bot.ops.scheduler import upcoming

# The wing's public surface: name -> the module that defines it (imported on first use).
EXPORTS = {
    "AdapterRuntime": "runtime",
    "ERRORS": "observability",
    "JOBS": "jobs",
    "JobRun": "jobs",
    "REJECTED": "observability",
    "add_routes": "observability",
    "latest": "leases",
    "run_job": "jobs",
    "setup_logging": "observability",
    "upcoming": "scheduler",
}
__getattr__ = lazy_exports(__name__, EXPORTS)
__all__ = [
    "ERRORS",
    "JOBS",
    "REJECTED",
    "AdapterRuntime",
    "JobRun",
    "add_routes",
    "latest",
    "run_job",
    "setup_logging",
    "upcoming",
]
