"""`slam ollama list|pull`: manage the models an Ollama host serves."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

HOST_HELP = "Ollama endpoint (default: $OLLAMA_HOST, else http://127.0.0.1:11434)."


def _human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def list_command(
    host: str | None = typer.Option(None, "--host", envvar="OLLAMA_HOST", help=HOST_HELP),
) -> None:
    """List the models installed at the Ollama host."""
    from rich.console import Console
    from rich.table import Table

    from hosting.backends import list_models, ollama_host

    models = asyncio.run(list_models(host))
    console = Console()
    if not models:
        console.print(f"no models at {ollama_host(host)}; pull one with `slam ollama pull MODEL`")
        return
    table = Table(title=f"Ollama models at {ollama_host(host)}")
    for col in ("model", "parameters", "quantization", "size", "modified"):
        table.add_column(col, justify="right" if col in ("size", "parameters") else "left")
    for m in models:
        table.add_row(
            m.name,
            m.parameter_size or "-",
            m.quantization or "-",
            _human_size(m.size_bytes),
            m.modified or "-",
        )
    console.print(table)


def pull_command(
    model: str = typer.Argument(..., help="Model tag to pull, e.g. gemma3:270m"),
    host: str | None = typer.Option(None, "--host", envvar="OLLAMA_HOST", help=HOST_HELP),
) -> None:
    """Pull a model to the Ollama host, with a progress bar per layer."""
    from rich.console import Console

    console = Console()
    status = asyncio.run(_pull(model, host, console))
    console.print(f"pulled {model}: {status}")


async def _pull(model: str, host: str | None, console: Console) -> str:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from hosting.backends import pull_model

    tasks: dict[str, TaskID] = {}
    last = ""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        async for p in pull_model(model, host):
            last = p.status
            if p.digest and p.total:
                task = tasks.get(p.digest)
                if task is None:
                    task = progress.add_task(p.status, total=p.total)
                    tasks[p.digest] = task
                progress.update(task, completed=p.completed or 0)
            elif p.status:
                progress.console.print(p.status)
    return last


def register(app: typer.Typer) -> None:
    """Add the `ollama` command group."""
    group = typer.Typer(help="Ollama models: list and pull.", no_args_is_help=True)
    group.command("list")(list_command)
    group.command("pull")(pull_command)
    app.add_typer(group, name="ollama")
