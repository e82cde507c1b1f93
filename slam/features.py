"""`slam features` and `slam import responses`: the features a config describes, and answers
produced elsewhere brought in as one model's generations for one feature."""

from __future__ import annotations

from pathlib import Path

import typer

from core.errors import SlamError
from core.options import ConfigOpt


def register(app: typer.Typer) -> None:
    app.command("features")(list_features)
    imports = typer.Typer(
        help="Bring in data produced elsewhere (answers from the paid API's logs, …).",
        no_args_is_help=True,
    )
    imports.command("responses")(import_responses)
    from evaluation.cli import import_votes

    imports.command("votes")(import_votes)
    app.add_typer(imports, name="import")


def list_features(config: Path | None = ConfigOpt) -> None:
    """List the features: their inputs, slices, models, reference and current decision."""
    from rich.table import Table

    from core.config import load_config
    from core.console import make_console
    from core.features import features
    from evaluation.results import Results
    from storage.migrate import open_database

    cfg = load_config(config)
    engine = open_database(cfg.database.url)
    table = Table(title="Features")
    for col in ("feature", "inputs", "slices", "models", "reference", "decision"):
        table.add_column(col, overflow="fold")
    for f in features(cfg):
        inputs = f.inputs()
        slices = sorted({i.slice for i in inputs if i.slice is not None})
        source = "builtin sample users" if f.inputs_source == "builtin" else f.inputs_source
        decision = Results(engine, cfg, feature=f.name).decision.short()
        table.add_row(
            f.name + (" (built in)" if f.builtin else ""),
            f"{len(inputs)} from {Path(source).name if f.inputs_source != 'builtin' else source}",
            f"{f.slice_field}: {len(slices)}" if f.slice_field else "—",
            ", ".join(f.candidates) or "—",
            f.reference or "—",
            decision,
        )
    make_console().print(table)


def import_responses(
    file: Path = typer.Argument(
        ..., help="OpenAI Batch output, chat completions (JSONL) or input_id,text rows (CSV/JSONL)."
    ),
    feature: str = typer.Option(..., "--feature", "-f", help="The feature they answer."),
    model: str = typer.Option(..., "--model", "-m", help="The configured model that wrote them."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be stored only."),
    config: Path | None = ConfigOpt,
) -> None:
    """Store answers produced elsewhere (e.g. the paid API's production logs) as MODEL's
    generations for FEATURE, so the reference is never paid for twice. All or nothing: a bad
    line is named and nothing is stored; importing the same answers again stores nothing."""
    from core.config import load_config
    from core.features import feature as find_feature
    from hosting.imports import import_responses as run_import
    from storage.migrate import open_database

    cfg = load_config(config)
    feat = find_feature(cfg, feature)
    spec = cfg.model(model)
    if spec.name not in feat.models:
        raise SlamError(f"model '{spec.name}' is not one of feature '{feat.name}''s models "
                        f"({', '.join(feat.models)}); add it to the feature's models")  # fmt: skip
    engine = open_database(cfg.database.url)
    result = run_import(engine, feat, spec, file, dry_run=dry_run)
    typer.echo(result.summary(dry_run=dry_run))
    for day, n in sorted(result.by_day.items()):
        typer.echo(f"  {day}: {n} answer(s) {'would be ' if dry_run else ''}stored for {spec.name}")
