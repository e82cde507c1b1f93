"""`slam host up|status|down|guard`: the AWS GPU host serving Ollama."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from core.config import AwsConfig
from core.errors import SlamError
from core.options import ConfigOpt, bounded

if TYPE_CHECKING:
    from hosting.aws.host import AwsHosts


def register(app: typer.Typer) -> None:
    host = typer.Typer(
        help="AWS GPU host (g4dn) running Ollama: launch, inspect, terminate.",
        no_args_is_help=True,
    )
    host.command("up")(up)
    host.command("status")(status)
    host.command("down")(down)
    host.command("guard")(guard)
    app.add_typer(host, name="host")


def _hosts(config: Path | None) -> AwsHosts:
    from core.config import load_config
    from hosting.aws.host import AwsHosts
    from storage.db import make_engine
    from storage.migrate import upgrade

    cfg = load_config(config)
    engine = make_engine(cfg.database.url)
    upgrade(engine)
    return AwsHosts(cfg, engine)


def up(
    config: Path | None = ConfigOpt,
    ttl_hours: float | None = bounded(
        None,
        "--ttl-hours",
        bound=(AwsConfig, "ttl_hours"),
        help="Lifetime before the TTL guard terminates it ([aws].ttl_hours).",
    ),
    endpoint: str | None = typer.Option(
        None,
        "--endpoint",
        help="Probe Ollama here instead of http://<instance ip>:11434 (e.g. an SSH tunnel).",
    ),
    keep_on_failure: bool = typer.Option(
        False, "--keep-on-failure", help="Leave the instance running if Ollama never answers."
    ),
    replicas: int | None = bounded(
        None,
        "--replicas",
        bound=(AwsConfig, "replicas"),
        help="Copies of the model on the one GPU ([aws].replicas): N Ollama servers on"
        " consecutive ports, or one with N parallel slots (--replica-mode).",
    ),
    replica_mode: str | None = typer.Option(
        None,
        "--replica-mode",
        help="'servers' (N servers, ports 11434, 11435, ...) or 'parallel'"
        " (OLLAMA_NUM_PARALLEL=N); default [aws].replica_mode.",
    ),
) -> None:
    """Launch a GPU instance, wait until Ollama serves the models, record the host."""
    if replica_mode is not None and replica_mode not in ("servers", "parallel"):
        raise SlamError(f"--replica-mode must be 'servers' or 'parallel' (got {replica_mode!r})")
    hosts = _hosts(config)
    typer.echo(
        f"launching {hosts.aws.instance_type} in {hosts.aws.region}; waiting for Ollama"
        " (installing it and pulling models takes several minutes)..."
    )
    rec = hosts.up(
        endpoint=endpoint,
        ttl_hours=ttl_hours,
        keep_on_failure=keep_on_failure,
        replicas=replicas,
        replica_mode=replica_mode,
    )
    price = hosts.cfg.pricing.instances.get(rec.instance_type)
    typer.echo(f"host {rec.instance_id} ready at {rec.endpoint}")
    n = replicas or hosts.aws.replicas
    mode = replica_mode or hosts.aws.replica_mode
    if n > 1 and rec.endpoint:
        from hosting.aws.host import replica_endpoints

        if mode == "servers":
            ends = " ".join(f"--host {e}" for e in replica_endpoints(rec.endpoint, n))
            typer.echo(f"{n} Ollama servers on the GPU; sweep them: slam sweep -m <model> {ends}")
        else:
            typer.echo(f"one Ollama server with {n} parallel slots (OLLAMA_NUM_PARALLEL={n})")
    typer.echo(f"expires {rec.expires_at:%Y-%m-%d %H:%M} UTC; {_price(price)}")
    typer.echo(f"use it: export OLLAMA_HOST={rec.endpoint}   (or set host = ... in [[models]])")


def status(
    config: Path | None = ConfigOpt,
    all_: bool = typer.Option(False, "--all", help="Include terminated instances."),
) -> None:
    """List the bot's hosts with their hourly price and the cost accrued since launch."""
    from rich.console import Console
    from rich.table import Table

    hosts = _hosts(config)
    rows = hosts.status(include_terminated=all_)
    if not rows:
        typer.echo(f"no slam hosts in {hosts.aws.region}")
        return
    table = Table(title=f"slam hosts in {hosts.aws.region}")
    for col in ("instance", "type", "state", "endpoint", "up since", "expires", "$/h", "cost $"):
        table.add_column(col)
    now = datetime.now(UTC)
    total = 0.0
    for h in rows:
        total += h.accrued_usd or 0.0
        expires = "-"
        if h.expires_at:
            left = (h.expires_at - now).total_seconds() / 3600
            expires = f"{h.expires_at:%m-%d %H:%M}" + (f" ({left:.1f}h)" if left > 0 else " (past)")
        table.add_row(
            h.instance_id,
            h.instance_type,
            h.state,
            h.endpoint or "-",
            f"{h.launched_at:%m-%d %H:%M}",
            expires,
            "?" if h.price_per_hour is None else f"{h.price_per_hour:.3f}",
            "?" if h.accrued_usd is None else f"{h.accrued_usd:.2f}",
        )
    Console(width=140).print(table)
    typer.echo(f"accrued total: ${total:.2f} (prices from [pricing.instances])")


def down(
    instance_ids: list[str] = typer.Argument(None, help="Instance id(s) to terminate."),
    all_: bool = typer.Option(False, "--all", help="Terminate every running slam host."),
    config: Path | None = ConfigOpt,
) -> None:
    """Terminate hosts. Safe to repeat: unknown or terminated instances are not an error."""
    ids = list(instance_ids or [])
    if not ids and not all_:
        raise SlamError("give an instance id (see `slam host status`) or --all")
    if ids and all_:
        raise SlamError("give instance ids or --all, not both")
    outcomes = _hosts(config).down(ids, all_=all_)
    if not outcomes:
        typer.echo("no running slam hosts; nothing to terminate")
    for iid, outcome in outcomes:
        typer.echo(f"{iid}: {outcome}")


def guard(
    config: Path | None = ConfigOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would be terminated."),
) -> None:
    """Terminate slam hosts past their expires-at tag (run it from cron or the scheduler)."""
    result = _hosts(config).guard(dry_run=dry_run)
    verb = "would terminate" if dry_run else "terminated"
    for iid in result.terminated:
        typer.echo(f"{iid}: expired, {verb}")
    for iid, expires in result.kept:
        typer.echo(f"{iid}: kept until {expires:%Y-%m-%d %H:%M} UTC")
    for iid in result.skipped:
        typer.echo(f"{iid}: no valid expires-at tag, left alone (terminate with `slam host down`)")
    if not (result.terminated or result.kept or result.skipped):
        typer.echo("no running slam hosts")


def _price(price: float | None) -> str:
    if price is None:
        return "no price in [pricing.instances] for this type"
    return f"${price:.3f}/h on demand (${price * 24:.2f}/day)"
