"""The `slam` command line. Each area registers its own subcommands; heavy imports stay
inside command bodies so `slam --help` is instant."""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from core.errors import SlamError

app = typer.Typer(
    name="slam",
    help="SLaM bot: can self-hosted small language models replace a paid LLM API?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules exposing `register(app: typer.Typer) -> None`. Missing optional areas are skipped.
COMMAND_MODULES = (
    "slam.commands",  # init, db, generate, quantize, demo, models
    "evaluation.cli",  # score
    "evaluation.perf_cli",  # probe, sweep, report
    "bot.cli",  # bot slack|discord|console, schedule
    "bot.schedule_cli",  # schedule list|run
    "hosting.cli",  # ollama list|pull
    "hosting.aws.cli",  # host up|status|down|guard
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # Skip only when the module (or its package) is absent, not on its own bad imports.
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue
            raise
        module.register(app)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show debug logs."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become a message and exit code 2, never a traceback."""
    _register_all()
    try:
        # Standalone mode lets click print usage errors (exit 2) and --help (exit 0) itself.
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except SlamError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
