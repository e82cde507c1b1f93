"""One lifecycle for every adapter: what runs around a platform connection.

    async with AdapterRuntime(dispatcher, host=host, port=port, scheduler=True) as rt:
        await rt.serve(routes=...)      # /healthz, /metrics, the web front, the adapter's routes
        ...connect the platform; once its port exists:
        await rt.start_jobs(port)       # the scheduler, posting through that port
        ...run until cancelled

On entry the dispatcher gets its metrics middleware and /healthz its database check; `serve`
starts one aiohttp server on host:port with the ops endpoints, the web front (rating page and
dashboard, unless `[web] enabled = false`) and any routes the adapter adds (Slack's events in
HTTP mode); `start_jobs` starts the scheduler and adds its check to /healthz. On exit, in
order: the scheduler stops, the HTTP server stops (in-flight requests finish), and the vote
writer stops after the last vote it was given is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bot.dispatcher import Dispatcher
from bot.ops.observability import Health, database_check, instrument

if TYPE_CHECKING:
    from bot.ops.scheduler import SlamScheduler
    from bot.services import ChatPort

log = logging.getLogger(__name__)
Routes = Callable[[Any], None]  # adds routes to an aiohttp Application


class AdapterRuntime:
    """The scheduler, the HTTP server (ops endpoints, web front, adapter routes), the vote
    writer and an orderly shutdown, shared by the Slack, Discord and web adapters."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        scheduler: bool = True,
        web: bool | None = None,
    ):
        self.dispatcher = instrument(dispatcher)
        self.host, self.port = host, port
        self.scheduler_enabled = scheduler
        self.web_enabled = dispatcher.services.cfg.web.enabled if web is None else web
        self.health = Health().add("database", database_check(dispatcher.services.engine))
        self.sched: SlamScheduler | None = None
        self.runner: Any = None
        self.web: Any = None  # the web front (bot.web.app.WebFront) once served

    async def __aenter__(self) -> AdapterRuntime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def application(self, routes: Routes | None = None) -> Any:
        """The aiohttp application: ops endpoints, the web front, the adapter's routes."""
        from aiohttp import web

        from bot.ops.observability import add_routes

        middlewares = []
        if self.web_enabled:
            from bot.web import WebFront

            self.web = WebFront(self.dispatcher)
            middlewares = self.web.middlewares()
        app = web.Application(middlewares=middlewares, client_max_size=1024**2)
        engine = self.dispatcher.services.engine

        def alert_gauges() -> None:  # every replica's /metrics shows the open alerts
            from bot.ops.alerts import publish_gauges

            publish_gauges(engine)

        add_routes(app, self.health, refresh=alert_gauges)
        if self.web is not None:
            self.web.add_routes(app)
        if routes is not None:
            routes(app)
        return app

    async def serve(self, routes: Routes | None = None) -> None:
        """Start the HTTP server (nothing when the runtime has no port)."""
        if self.port is None:
            return
        from aiohttp import web

        self.runner = web.AppRunner(self.application(routes), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.host, self.port).start()
        front = " and the web front (/r/…, /dashboard)" if self.web is not None else ""
        log.info("HTTP on http://%s:%d: /healthz, /metrics%s", self.host, self.port, front)

    async def start_jobs(self, port: ChatPort) -> None:
        """Start the scheduled jobs, posting through `port` (unless the scheduler is off)."""
        if not self.scheduler_enabled or self.sched is not None:
            return
        from bot.ops.scheduler import start_for_bot

        self.sched = await start_for_bot(self.dispatcher, port, health=self.health)

    async def aclose(self) -> None:
        try:
            if self.sched is not None:
                await self.sched.aclose()
                self.sched = None
        finally:
            try:
                if self.runner is not None:
                    await self.runner.cleanup()
                    self.runner = None
            finally:
                if self.web is not None:
                    await self.web.aclose()
                await self.dispatcher.aclose()
