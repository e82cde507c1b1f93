"""Structured JSON logs that never carry secrets, Prometheus metrics, `/healthz` and `/metrics`.

- `setup_logging()` puts one JSON-lines handler on the root logger. Its filter replaces the
  values of secret environment variables (Slack/Discord tokens, OpenAI and AWS keys, the rater
  salt, a database password) and token-shaped strings with `***`, in messages, arguments,
  tracebacks and extra fields alike, before any formatter sees the record.
- Metrics live in the default prometheus_client registry: `slam_votes_total`,
  `slam_commands_total`, `slam_generations_total`, `slam_probe_latency_seconds`,
  `slam_probes_total`, `slam_errors_total`, `slam_job_runs_total`, `slam_job_duration_seconds`,
  `slam_rejected_requests_total` (forged or malformed requests: refused, not errors).
- `add_routes(aiohttp_app, health)` adds `GET /healthz` and `GET /metrics` to an aiohttp
  application (the Slack HTTP mode's), and `serve_ops()` serves them on their own port.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.events import Command, Vote
from core.env import environment

log = logging.getLogger(__name__)

# --- secrets -----------------------------------------------------------------------------
SECRET_ENV = (
    "DISCORD_TOKEN",
    "OPENAI_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "SLAM_RATER_SALT",
)
SECRET_PREFIXES = ("SLACK_",)
NOT_SECRET = frozenset({"SLACK_API_URL"})  # an endpoint, not a credential
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|ACCESS_KEY|SALT", re.I)
MIN_SECRET_LEN = 6  # shorter values ("1", "true") would redact ordinary words
MASK = "***"
# Credentials recognisable by shape, whatever variable (or log line) they came from.
SECRET_SHAPES = (
    re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{6,}"),  # Slack bot/user/refresh tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]{6,}"),  # Slack app-level tokens
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI keys
    re.compile(r"\b[MN][A-Za-z\d_-]{23,25}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,}"),  # Discord
)
URL_PASSWORD = re.compile(r"(?<=://)([^:/@\s]+):([^@/\s]+)@")


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment variables that hold secrets, longest first.

    It scans the whole environment (`os.environ`, or `env`), not only core.env's variables:
    any name that looks like a secret's is redacted, whoever reads it."""
    env = os.environ if env is None else env
    values = set()
    for name, value in env.items():
        upper = name.upper()
        if upper in NOT_SECRET or not value or len(value) < MIN_SECRET_LEN:
            continue
        if upper in SECRET_ENV or upper.startswith(SECRET_PREFIXES) or SECRET_NAME.search(upper):
            values.add(value)
        m = URL_PASSWORD.search(value)  # SLAM_DATABASE_URL=postgresql://bot:password@db/slam
        if m and len(m.group(2)) >= 3:
            values.add(m.group(2))
    return sorted(values, key=len, reverse=True)


class Redactor:
    """Replaces known secret values and secret-shaped strings with `***`."""

    def __init__(self, values: Iterable[str] = ()):
        vals = [v for v in values if v]
        self._values = re.compile("|".join(map(re.escape, vals))) if vals else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Redactor:
        return cls(secret_values(env))

    def __call__(self, text: str) -> str:
        if self._values is not None:
            text = self._values.sub(MASK, text)
        for shape in SECRET_SHAPES:
            text = shape.sub(MASK, text)
        return URL_PASSWORD.sub(rf"\1:{MASK}@", text)


def redact(text: str) -> str:
    """Redact with the current environment's secrets (for chat messages built from errors)."""
    return Redactor.from_env()(text)


_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "redacted",
}


class RedactingFilter(logging.Filter):
    """Rewrites a record in place so no handler or formatter after it can print a secret."""

    def __init__(self, redactor: Redactor | None = None):
        super().__init__()
        self.redactor = redactor or Redactor.from_env()

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redactor(value)
        if isinstance(value, int | float | bool) or value is None:
            return value
        if isinstance(value, dict | list | tuple):
            try:  # keep structure for JSON logs: redact the serialized form, then parse it back
                return json.loads(self.redactor(json.dumps(value, default=str)))
            except ValueError:
                pass
        return self.redactor(str(value) if isinstance(value, Exception) else repr(value))

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad %-args: keep what we can, never fail the log call
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.redactor(message), None
        if record.exc_info:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = self.redactor(text)
            record.exc_info = None  # formatters then print exc_text, never the live exception
        elif record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, self._clean(value))
        record.redacted = True
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, exc, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in out:
                out[key] = value
        return json.dumps(out, ensure_ascii=False, default=str)


class ErrorCounter(logging.Handler):
    """Counts ERROR and CRITICAL records in `slam_errors_total` by top-level logger name."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        ERRORS.labels(component=record.name.split(".")[0] or "root").inc()


def setup_logging(
    level: str | int | None = None,
    *,
    fmt: str | None = None,
    stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Configure the root logger: JSON lines (or `fmt='text'`) on stderr, secrets redacted.

    Defaults come from SLAM_LOG_LEVEL (INFO) and SLAM_LOG_FORMAT (json). Safe to call again:
    the handlers it installed before are replaced, and so is any plain console handler (the
    CLI's `logging.basicConfig` one), so every record is printed once; other handlers (files,
    test capture) keep their place and get the redacting filter.
    """
    settings = environment(env)
    level = level or (settings.slam_log_level or "INFO").upper()
    fmt = (fmt or settings.slam_log_format or "json").lower()
    redacting = RedactingFilter(Redactor.from_env(env))
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(redacting)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_slam_ops", False) or _is_console_handler(old):
            root.removeHandler(old)
        else:
            old.filters = [f for f in old.filters if not isinstance(f, RedactingFilter)]
            old.addFilter(redacting)
    counter = ErrorCounter()
    for h in (handler, counter):
        setattr(h, "_slam_ops", True)  # noqa: B010 (marks the handlers this function owns)
        root.addHandler(h)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler


def _is_console_handler(handler: logging.Handler) -> bool:
    """A plain StreamHandler on the process's stdout or stderr (not a file, not a capture)."""
    if type(handler) is not logging.StreamHandler:
        return False
    stream = getattr(handler, "stream", None)
    return stream is not None and stream in (
        sys.stdout,
        sys.stderr,
        sys.__stdout__,
        sys.__stderr__,
    )


# --- metrics -----------------------------------------------------------------------------
VOTES = Counter("slam_votes", "Reactions handled as votes, by outcome", ["platform", "status"])
COMMANDS = Counter("slam_commands", "Slash commands handled", ["command", "outcome"])
GENERATIONS = Counter("slam_generations", "Responses generated", ["model", "outcome"])
PROBES = Counter("slam_probes", "Latency probe requests", ["model", "outcome"])
PROBE_LATENCY = Histogram(
    "slam_probe_latency_seconds",
    "End-to-end latency of successful probe requests",
    ["model"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, float("inf")),
)
ERRORS = Counter("slam_errors", "Errors (error-level logs, failed jobs)", ["component"])
REJECTED = Counter(
    "slam_rejected_requests",
    "Requests refused before any work: missing, malformed, stale or wrong Slack signatures",
    ["reason"],
)
JOB_RUNS = Counter("slam_job_runs", "Scheduled job runs", ["job", "outcome"])
JOB_DURATION = Histogram(
    "slam_job_duration_seconds",
    "Duration of scheduled job runs that won their slot",
    ["job"],
    buckets=(1, 5, 15, 60, 300, 900, 1800, 3600, 7200, float("inf")),
)

ALERTS = Gauge("slam_alert", "Open alerts (1 while open, 0 once cleared)", ["kind", "subject"])


def set_alert(kind: str, subject: str, active: bool) -> None:
    ALERTS.labels(kind=kind, subject=subject).set(1 if active else 0)


def record_generation(model: str, ok: bool) -> None:
    GENERATIONS.labels(model=model, outcome="ok" if ok else "error").inc()


def observe_probe(model: str, latency_s: float | None, ok: bool) -> None:
    PROBES.labels(model=model, outcome="ok" if ok else "error").inc()
    if ok and latency_s is not None:
        PROBE_LATENCY.labels(model=model).observe(latency_s)


class MetricsMiddleware:
    """Dispatcher middleware counting votes by outcome and commands by result.

    Wire it first: `dispatcher.middleware.insert(0, MetricsMiddleware())`.
    """

    async def __call__(self, event: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        try:
            result = await call_next(event)
        except Exception:
            ERRORS.labels(component="dispatcher").inc()
            raise
        if isinstance(event, Vote):
            VOTES.labels(platform=event.platform, status=getattr(result, "status", "unknown")).inc()
        elif isinstance(event, Command):
            from bot.commands import COMMANDS as KNOWN

            name = event.name if event.name in KNOWN else "unknown"  # bounded label values
            outcome = "ignored" if result is None else ("ok" if result.ok else "refused")
            COMMANDS.labels(command=name, outcome=outcome).inc()
        return result


def instrument(dispatcher: Any) -> Any:
    """Add MetricsMiddleware in front of a Dispatcher's middleware (once)."""
    if not any(isinstance(m, MetricsMiddleware) for m in dispatcher.middleware):
        dispatcher.middleware.insert(0, MetricsMiddleware())
    return dispatcher


# --- /healthz and /metrics -----------------------------------------------------------------
Check = Callable[[], Any]


class Health:
    """Named readiness checks; each returns a short status or raises (sync checks run in a
    worker thread, every check has a timeout)."""

    def __init__(self, timeout_s: float = 5.0):
        self.checks: dict[str, Check] = {}
        self.timeout_s = timeout_s

    def add(self, name: str, check: Check) -> Health:
        self.checks[name] = check
        return self

    async def run(self) -> tuple[bool, dict[str, str]]:
        results: dict[str, str] = {}
        ok = True
        for name, check in self.checks.items():
            try:
                if inspect.iscoroutinefunction(check):
                    value = await asyncio.wait_for(check(), self.timeout_s)
                else:
                    value = await asyncio.wait_for(asyncio.to_thread(check), self.timeout_s)
                results[name] = str(value if value is not None else "ok")
            except Exception as exc:
                ok = False
                results[name] = redact(f"failed: {type(exc).__name__}: {exc}")[:300]
        return ok, results


def database_check(engine: Any) -> Check:
    """`SELECT 1` on the app's database."""
    from sqlalchemy import text

    def check() -> str:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"

    return check


def scheduler_check(scheduler: Any) -> Check:
    """Healthy while the APScheduler instance is running."""

    def check() -> str:
        if not scheduler.running:
            raise RuntimeError("scheduler is not running")
        return "running"

    return check


def add_routes(app: Any, health: Health | None = None, *, healthz: bool = True,
               refresh: Callable[[], None] | None = None) -> Any:  # fmt: skip
    """Add GET /metrics (and /healthz unless `healthz=False`) to an aiohttp Application.
    `refresh` runs (in a thread) before each scrape: gauges read from the database (the open
    alerts) are then the same on every replica."""
    from aiohttp import web

    health = health or Health()

    async def healthz_handler(_: web.Request) -> web.Response:
        ok, checks = await health.run()
        return web.json_response({"ok": ok, "checks": checks}, status=200 if ok else 503)

    async def metrics_handler(_: web.Request) -> web.Response:
        if refresh is not None:
            try:
                await asyncio.to_thread(refresh)
            except Exception:  # the other metrics are still served
                logging.getLogger(__name__).exception("refreshing the metrics failed")
        body = await asyncio.to_thread(generate_latest, REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    if healthz:
        app.router.add_get("/healthz", healthz_handler)
    app.router.add_get("/metrics", metrics_handler)
    return app


async def serve_ops(host: str, port: int, health: Health | None = None) -> Any:
    """Serve /healthz and /metrics on their own port; returns the aiohttp runner
    (`await runner.cleanup()` stops it)."""
    from aiohttp import web

    runner = web.AppRunner(add_routes(web.Application(), health), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("ops endpoints on http://%s:%d (/healthz, /metrics)", host, port)
    return runner
