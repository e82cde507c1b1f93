"""`slam bot [slack|discord|web|console]`: run the rating bot on a platform (with none, the one
`[chat].platform` names); `slam web` links."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from core.options import ConfigOpt

HostOpt = typer.Option(
    "127.0.0.1",
    envvar="SLAM_HTTP_HOST",
    help="Address for /healthz and /metrics (and Slack events in HTTP mode).",
)
PortOpt = typer.Option(
    3000,
    min=1,
    max=65535,
    envvar="SLAM_HTTP_PORT",
    help="Port for /healthz and /metrics (and Slack events in HTTP mode).",
)
SchedulerOpt = typer.Option(
    True,
    "--scheduler/--no-scheduler",
    help="Run the scheduled jobs (probes, daily generation, digest).",
)


def register(app: typer.Typer) -> None:
    bot = typer.Typer(help="Run the crowd-rating bot (Slack, Discord or the terminal); with no "
                      "platform, the one \\[chat].platform names.",
                      invoke_without_command=True)  # fmt: skip
    bot.callback()(configured)
    bot.command("slack")(slack)
    bot.command("discord")(discord)
    bot.command("web")(web)
    bot.command("console")(console)
    app.add_typer(bot, name="bot")
    from bot.cli.web import register as register_web

    register_web(app)


def configured(ctx: typer.Context, config: Path | None = ConfigOpt) -> None:
    """`slam bot` alone runs the platform `[chat].platform` names (console by default), as its
    own command would with no options (`slam bot slack` is Socket Mode; the SLAM_HTTP_*
    variables still apply)."""
    if ctx.invoked_subcommand is not None:
        if config is not None:
            raise typer.BadParameter(
                f"give it after the platform: slam bot {ctx.invoked_subcommand} --config "
                f"{config}",
                param_hint="--config",
            )
        return
    from typer.core import TyperGroup

    from core.config import load_config

    platform = load_config(config).chat.platform
    group = ctx.command
    command = group.get_command(ctx, platform) if isinstance(group, TyperGroup) else None
    if command is None:
        raise RuntimeError(f"slam bot has no {platform} command")
    # Parsed like `slam bot PLATFORM [--config …]`: its defaults and SLAM_HTTP_* apply.
    args = [] if config is None else ["--config", str(config)]
    with command.make_context(platform, args, parent=ctx) as sub:
        command.invoke(sub)


def _setup(config: Path | None) -> tuple[Any, Any]:
    """Config + a migrated engine."""
    from core.config import load_config
    from storage.db import make_engine
    from storage.migrate import upgrade

    cfg = load_config(config)
    engine = make_engine(cfg.database.url)
    upgrade(engine)
    return cfg, engine


def slack(
    socket: bool = typer.Option(True, "--socket/--http",
                                help="Socket Mode (SLACK_APP_TOKEN) or an HTTP endpoint."),
    host: str = HostOpt,
    port: int = PortOpt,
    config: Path | None = ConfigOpt,
    scheduler: bool = SchedulerOpt,
) -> None:  # fmt: skip
    """Run the Slack bot. Needs SLACK_BOT_TOKEN plus SLACK_APP_TOKEN (Socket Mode) or
    SLACK_SIGNING_SECRET (HTTP mode)."""
    from bot.dispatcher import Dispatcher
    from bot.ops import setup_logging
    from bot.platforms import run_slack
    from core.env import environment

    # Check the secrets before touching the database, so the error is the useful one.
    env = environment()
    env.require("slack_bot_token", "export the app's Bot User OAuth Token (xoxb-…)")
    if socket:
        env.require("slack_app_token", "Socket Mode needs an app-level token (xapp-…)")
    else:
        env.require("slack_signing_secret", "HTTP mode verifies requests with the Signing Secret")
    cfg, engine = _setup(config)
    setup_logging()  # JSON logs on stderr, secrets redacted (SLAM_LOG_LEVEL, SLAM_LOG_FORMAT)

    async def main() -> None:
        await run_slack(
            Dispatcher(engine, cfg), socket_mode=socket, host=host, port=port, scheduler=scheduler
        )

    asyncio.run(main())


def discord(
    config: Path | None = ConfigOpt,
    host: str = HostOpt,
    port: int = PortOpt,
    scheduler: bool = SchedulerOpt,
) -> None:
    """Run the Discord bot (DISCORD_TOKEN)."""
    from bot.ops import setup_logging
    from bot.platforms import run_discord
    from core.env import environment

    token = environment().require("discord_token", "create a bot in the Discord developer "
                                  "portal and export its token")  # fmt: skip
    cfg, engine = _setup(config)
    setup_logging()
    asyncio.run(run_discord(engine, cfg, token, host=host, port=port, scheduler=scheduler))


def web(
    host: str = HostOpt,
    port: int = PortOpt,
    config: Path | None = ConfigOpt,
    scheduler: bool = SchedulerOpt,
) -> None:
    """Run the web front alone: the rating page and the dashboard, for raters outside chat
    (invite them with `slam web invite NAME`)."""
    from bot.cli.web import run_web
    from bot.dispatcher import Dispatcher
    from bot.ops import setup_logging

    cfg, engine = _setup(config)
    setup_logging()
    asyncio.run(run_web(Dispatcher(engine, cfg), host=host, port=port, scheduler=scheduler))


def console(
    config: Path | None = ConfigOpt,
    start_round: bool = typer.Option(True, "--start-round/--no-start-round",
                                     help="Open a round when none is open."),
) -> None:  # fmt: skip
    """Rate pairs in this terminal (the same flow as in chat)."""
    from bot.platforms import rate_in_console

    cfg, engine = _setup(config)
    summary = asyncio.run(rate_in_console(engine, cfg, start_round=start_round))
    typer.echo(f"{summary.recorded} vote(s) recorded on {len(summary.pairs)} pair(s).")
