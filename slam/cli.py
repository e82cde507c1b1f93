"""The `slam` command line. Each area registers its own subcommands; heavy imports stay
inside command bodies so `slam --help` is instant.

`main` is the CLI's one error boundary: whatever a command raises ends as one or a few
lines on stderr and a non-zero exit status, never a traceback. A `SlamError` is shown as
it is (its message says what was wrong and how to fix it, exit 2); Ctrl-C prints
"interrupted" and exits 130; a file-system or database fault is described by its path or
database; anything else is a bug, reported in one line (`--verbose` or SLAM_DEBUG=1 add the
traceback for these, never for a SlamError).
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any

import typer

from core.errors import Interrupted, SlamError, redact_url_passwords, short

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
    "slam.features",  # features, import responses
    "evaluation.cli.score",  # score
    "evaluation.cli.perf",  # probe, sweep, report
    "evaluation.cli.exchange",  # export
    "bot.cli.run",  # bot slack|discord|console, schedule
    "bot.cli.schedule",  # schedule list|run
    "hosting.cli",  # ollama list|pull
    "hosting.aws.cli",  # host up|status|down|guard
)
MAX_MESSAGE = 4000  # characters of one error message shown on the terminal
_verbose = False


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
    _guard_callbacks(app)


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn Ctrl-C inside a command into `Interrupted` before typer sees it (typer maps a
    KeyboardInterrupt to a silent exit 130)."""
    if getattr(fn, "_slam_guarded", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted() from None

    wrapper._slam_guarded = True  # type: ignore[attr-defined]
    return wrapper


def _guard_callbacks(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.callback is not None:
            info.callback = _guarded(info.callback)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _guard_callbacks(group.typer_instance)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show debug logs."),
) -> None:
    global _verbose
    _verbose = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def describe(exc: BaseException) -> tuple[str, int]:
    """The message and exit status for an exception that reached the boundary."""
    if isinstance(exc, SlamError):
        return str(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(exc, OSError):
        from core.paths import describe_os_error

        return describe_os_error(exc), 1
    if "sqlalchemy" in sys.modules:
        from storage.db import describe_db_error

        text = describe_db_error(exc)
        if text is not None:
            return text, 1
    if isinstance(exc, MemoryError):
        return "out of memory; try a smaller run (fewer models, samples or days)", 1
    first = (str(exc).strip().splitlines() or [""])[0]
    return (
        f"internal error: {type(exc).__name__}: {short(first, 300)}\n"
        "This is a bug in slam. Run the command again with --verbose to see where it "
        "happened, and report it.",
        1,
    )


def _debug() -> bool:
    """SLAM_DEBUG is set: show where a fault happened without --verbose."""
    from core.env import environment

    return bool(environment().slam_debug)


def _show(exc: BaseException) -> int:
    text, code = describe(exc)
    text = short(redact_url_passwords(text), MAX_MESSAGE)
    try:
        if isinstance(exc, Interrupted | KeyboardInterrupt):
            typer.secho(text, err=True)
        else:
            typer.secho(f"error: {text}", fg=typer.colors.RED, err=True)
        # A user error's message is the whole story; where a fault or a bug happened is
        # shown on request.
        expected = isinstance(exc, SlamError | KeyboardInterrupt)
        if not expected and (_verbose or _debug()):
            traceback.print_exception(exc, file=sys.stderr)
    except (OSError, ValueError):  # stderr is closed or a broken pipe: the status still tells
        pass
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become a message and a non-zero status, never a traceback."""
    try:
        _register_all()
        # Standalone mode lets click print usage errors (exit 2) and --help (exit 0) itself.
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # the boundary: every other exception ends here
        return _show(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
