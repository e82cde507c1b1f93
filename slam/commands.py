"""Core commands: init, db, models, generate, quantize, demo."""

from __future__ import annotations

import asyncio
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from core.config import ExperimentConfig
from core.errors import SlamError
from core.options import ConfigOpt, bounded

if TYPE_CHECKING:
    from core.config import SlamConfig
    from evaluation.results import VersionInfo


EXAMPLE_INPUTS = "support-tickets.jsonl"  # what the example [[features]] table reads


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("models")(models)
    app.command("generate")(generate)
    app.command("quantize")(quantize)
    app.command("demo")(demo)
    db = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
    db.command("upgrade")(db_upgrade)
    db.command("current")(db_current)
    app.add_typer(db, name="db")


def _config(path: Path | None) -> SlamConfig:
    from core.config import load_config

    return load_config(path)


def init(
    path: Path = typer.Argument(Path("slam.toml"), help="Where to write the example config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented example slam.toml, and beside it the example feature's inputs
    (support-tickets.jsonl; an existing file of that name is kept)."""
    from core.paths import writable_file, write_text_atomic

    path = writable_file(path, "", overwrite=force)
    data = resources.files("core.data")
    write_text_atomic(path, data.joinpath("slam.example.toml").read_text("utf-8"))
    typer.echo(f"wrote {path}: edit the [[models]] and set secrets in the environment")
    inputs = path.parent / EXAMPLE_INPUTS
    if inputs.exists():
        typer.echo(f"kept {inputs} (the example feature reads it)")
    else:
        write_text_atomic(inputs, data.joinpath(EXAMPLE_INPUTS).read_text("utf-8"))
        typer.echo(f"wrote {inputs}: the example feature's inputs, one JSON object per line")


def db_upgrade(config: Path | None = ConfigOpt) -> None:
    """Create or upgrade the database schema to the newest revision."""
    from storage.db import make_engine
    from storage.migrate import current, upgrade

    cfg = _config(config)
    engine = make_engine(cfg.database.url)
    upgrade(engine)
    typer.echo(
        f"database {engine.url.render_as_string(hide_password=True)} at revision {current(engine)}"
    )


def db_current(config: Path | None = ConfigOpt) -> None:
    """Show the database's schema revision."""
    from storage.db import check_connection, make_engine
    from storage.migrate import current

    cfg = _config(config)
    engine = make_engine(cfg.database.url)
    check_connection(engine)
    typer.echo(current(engine) or "empty (run `slam db upgrade`)")


def models(config: Path | None = ConfigOpt) -> None:
    """List the configured models (reference first), where they run and, once the bot has
    seen them answer, their current version (the results service's `model_versions`)."""
    from rich.table import Table

    from core.console import make_console

    cfg = _config(config)
    versions, note = _model_versions(cfg)
    table = Table(title="Configured models")
    for col in ("name", "backend", "model", "quant", "hardware", "role", "version"):
        table.add_column(col)
    for m in sorted(cfg.models, key=lambda m: not m.reference):
        role = "reference" if m.reference else "candidate"
        if cfg.judge_model and cfg.judge_model.name == m.name:
            role += " + judge"
        seen = versions.get(m.name, [])
        version = "—" if not seen else (
            f"{seen[-1].label} (since {seen[-1].day}"
            + (f"; {len(seen)} versions)" if len(seen) > 1 else ")"))  # fmt: skip
        table.add_row(m.name, m.backend, m.model, m.quantization, m.hardware, role, version)
    console = make_console()
    console.print(table)
    if note:
        console.print(note)


def _model_versions(cfg: SlamConfig) -> tuple[dict[str, list[VersionInfo]], str | None]:
    """Each model's versions from the database, if there is one to read (it is never created
    or changed here: `slam models` works without a database, or beside a damaged one)."""
    from sqlalchemy.engine import make_url

    from evaluation.results import Results
    from storage.db import make_engine

    try:
        url = make_url(cfg.database.url)
        if url.get_backend_name() == "sqlite" and not (
                url.database and Path(url.database).is_file()):  # fmt: skip
            return {}, None
        engine = make_engine(cfg.database.url)
        try:
            return Results(engine, cfg).model_versions, None
        finally:
            engine.dispose()
    except Exception as exc:  # no versions: the list is still useful
        return {}, f"(versions not shown: the database could not be read: {str(exc)[:120]})"


def generate(
    config: Path | None = ConfigOpt,
    model: list[str] = typer.Option(None, "--model", "-m", help="Only these models (repeatable)."),
    samples: int | None = bounded(
        None, "--samples", bound=(ExperimentConfig, "samples_per_model"),
        help="Samples per input and model (default: each feature's samples per input).",
    ),
    max_tokens: int | None = bounded(
        None, "--max-tokens", bound=(ExperimentConfig, "max_tokens"),
        help="Override experiment.max_tokens.",
    ),
    run_date: str | None = typer.Option(
        None, "--date", help="Run date YYYY-MM-DD (default today)."
    ),
    feature: str | None = typer.Option(
        None, "--feature", "-f", help="Only this feature (default: every feature)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Generate today's responses of every feature: each input × each of its models (resumable)."""
    from core.console import make_console
    from hosting.generate import generate as run_generate
    from hosting.summary import render_table, summarize
    from storage.migrate import open_database

    cfg = _config(config)
    day = _parse_date(run_date)
    engine = open_database(cfg.database.url)
    res = asyncio.run(
        run_generate(
            engine,
            cfg,
            model_names=model or None,
            feature_name=feature,
            run_date=day,
            samples=samples,
            max_tokens=max_tokens,
            progress=not quiet,
        )
    )
    console = make_console()
    console.print(
        f"{res.done} generated ({res.errors} errors), {res.skipped} already stored for "
        f"{res.run_date}"
    )
    console.print(render_table(summarize(engine, res.run_date)))


def quantize(
    source: str = typer.Argument("builtin:gemma3-270m", help="GGUF path or 'builtin:gemma3-270m'."),
    types: list[str] = typer.Option(
        ["Q3_K_M", "Q2_K"], "--type", "-t", help="Quantization types (repeatable)."
    ),
    out: Path = typer.Option(Path("models"), "--out", "-o", help="Output directory."),
    force: bool = typer.Option(False, "--force", help="Re-create existing variants."),
) -> None:
    """Make lower-bit variants of a GGUF with llama.cpp's own quantizer."""
    from core.paths import writable_dir
    from hosting.backends import resolve_model_path
    from hosting.quantize import normalize_quant
    from hosting.quantize import quantize as run_quantize

    src = resolve_model_path(source)
    quants = [normalize_quant(t) for t in types]  # validate all before the slow part
    out = writable_dir(out, "--out", create=False)
    for q in quants:
        path = run_quantize(src, q, out, force=force)
        typer.echo(f"{q:7s} {path} ({path.stat().st_size / 1e6:.0f} MB)")


def demo(
    workspace: Path = typer.Option(Path(".slam-demo"), help="Directory for the demo's files."),
    quick: bool = typer.Option(False, "--quick", help="Tiny run (2 users, short answers)."),
    fresh: bool = typer.Option(False, "--fresh", help="Start from an empty workspace."),
) -> None:
    """Run the whole pipeline offline on the packaged model and its quantized variants."""
    from slam.demo import run_demo

    run_demo(workspace, quick=quick, fresh=fresh)


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SlamError(f"--date {value!r} is not a date; expected YYYY-MM-DD") from None
