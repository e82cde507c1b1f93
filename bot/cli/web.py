"""`slam web invite|revoke`: personal links to the rating page and the dashboard."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from core.options import ConfigOpt

ViewerOpt = typer.Option(False, "--viewer", help="A link to the live dashboard (read-only) "
                         "instead of the rating page.")  # fmt: skip


def register(app: typer.Typer) -> None:
    web = typer.Typer(help="Personal links to the web rating page and the live dashboard.",
                      no_args_is_help=True)  # fmt: skip
    web.command("invite")(invite)
    web.command("revoke")(revoke)
    app.add_typer(web, name="web")


def invite(
    name: str = typer.Argument(..., help="Who the link is for, e.g. alice or student-07."),
    viewer: bool = ViewerOpt,
    days: float | None = typer.Option(None, min=0.01, max=366, help="Valid this many days "
                                      "(default: [web] invite_days or viewer_days)."),
    config: Path | None = ConfigOpt,
) -> None:  # fmt: skip
    """Print a private link for NAME: no password, signed, expiring and revocable."""
    from bot.rating import Role, Tokens, check_name, link, load_secret
    from core.config import load_config

    cfg = load_config(config)
    check_name(name)
    role: Role = "view" if viewer else "rate"
    valid = days if days is not None else (cfg.web.viewer_days if viewer else cfg.web.invite_days)
    token, grant = Tokens(load_secret()).issue(role, name, valid)
    until = datetime.fromtimestamp(grant.expires).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    typer.echo(link(cfg.web.public_url, role, token))
    what = "the dashboard" if viewer else "the rating page"
    typer.echo(f"A private link for {name} to {what}, valid until {until}. Send it to "
               f"{name} only; `slam web revoke {name}{' --viewer' if viewer else ''}` ends "
               "it.", err=True)  # fmt: skip
    if not cfg.web.public_url:
        typer.echo("This is the path on the bot's HTTP server; set [web] public_url in "
                   "slam.toml for a full link.", err=True)  # fmt: skip


def revoke(
    name: str = typer.Argument(..., help="Whose links to end."),
    viewer: bool = ViewerOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """End every link issued to NAME so far (a new invite works again)."""
    from bot.rating import Tokens, load_secret
    from core.config import load_config
    from storage.db import make_engine
    from storage.migrate import upgrade

    cfg = load_config(config)
    engine = make_engine(cfg.database.url)
    upgrade(engine)
    Tokens(load_secret(), engine).revoke("view" if viewer else "rate", name)
    typer.echo(f"Revoked the {'viewer' if viewer else 'rating'} links of {name} (every replica "
               "refuses them within seconds).")  # fmt: skip


async def _warm(dispatcher: Any) -> None:
    """The rating page's shared state built before the port opens (a failure only logs: the
    first page builds it then)."""
    import asyncio
    import logging

    from bot.rating import warm_state

    try:
        svc = dispatcher.services
        await asyncio.to_thread(warm_state, svc.engine, svc.cfg)
    except Exception as exc:  # the pages build it themselves
        logging.getLogger(__name__).warning("warming the rating state failed (%s: %s); the "
                                            "first page builds it", type(exc).__name__, exc)


async def run_web(dispatcher: Any, *, host: str = "127.0.0.1", port: int = 3000,
                  scheduler: bool = True) -> None:  # fmt: skip
    """Run the web front alone until cancelled (bot.ops.runtime's lifecycle): scheduled jobs'
    notices go to the log, and new rounds are fetched by raters rather than posted."""
    import asyncio

    from bot.ops import AdapterRuntime
    from bot.web import WebPort

    async with AdapterRuntime(dispatcher, host=host, port=port, scheduler=scheduler,
                              web=True) as rt:  # fmt: skip
        await _warm(dispatcher)
        await rt.serve()
        await rt.start_jobs(WebPort(dispatcher))
        print(f"slam bot: web front at http://{host}:{port}/ (links: slam web invite NAME)",
              flush=True)  # fmt: skip
        await asyncio.Event().wait()
