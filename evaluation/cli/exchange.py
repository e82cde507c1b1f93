"""`slam export KIND`: the data out, in the field's formats (evaluation.exchange), and
`import_votes`, the body of `slam import votes` (the `import` group lives in slam.features)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import typer
from sqlalchemy.engine import Engine

from core.config import SlamConfig
from core.errors import SlamError, short
from core.options import ConfigOpt

KIND_HELP = "votes, generations, judgements, similarity, probes, ratings or comments."


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def _open(config: Path | None) -> tuple[SlamConfig, Engine]:
    from core.config import load_config
    from storage.migrate import open_database

    cfg = load_config(config)
    return cfg, open_database(cfg.database.url)


def parse_moment(value: str | None, what: str) -> datetime | None:
    """An ISO date (midnight UTC) or date-time (UTC unless it says otherwise)."""
    if value is None or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SlamError(f"{what} {short(repr(value), 40)} is not a date or date-time; write "
                        "e.g. 2026-03-01 or 2026-03-01T09:00:00Z") from None  # fmt: skip
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def export(
    kind: str = typer.Argument(..., help=KIND_HELP),
    fmt: str = typer.Option("csv", "--format", help="csv, jsonl, parquet, or arena (votes)."),
    feature: str | None = typer.Option(None, "--feature", "-f", help="Only this feature."),
    since: str | None = typer.Option(None, "--since", help="Rows stored at or after (ISO)."),
    until: str | None = typer.Option(None, "--until", help="Rows stored before (ISO)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="The file (default: stdout)."),
    config: Path | None = ConfigOpt,
) -> None:
    """Write one kind of data as CSV, JSONL, Parquet or (votes) Chatbot Arena battles. Raters
    appear as stable pseudonyms; every file carries the data version and config fingerprint
    that produced it (docs/data.md)."""
    from evaluation.exchange import (
        ExportRequest,
        Pseudonyms,
        export_data,
        pseudonym_key,
        write_export,
    )

    req = ExportRequest(kind.strip().lower(), fmt.strip().lower(), feature,
                        parse_moment(since, "--since"), parse_moment(until, "--until"))  # fmt: skip
    req.check()
    cfg, engine = _open(config)
    result = export_data(engine, cfg, req, Pseudonyms(pseudonym_key()))
    written = write_export(result, req.format, out, stdout=sys.stdout.buffer,
                           stdout_is_tty=sys.stdout.isatty())  # fmt: skip
    prov = result.provenance
    where = ", ".join(str(p) for p in written) or "stdout"
    typer.echo(f"{prov.rows} {req.kind} row(s) → {where} (data version {prov.data_version}, "
               f"config {prov.config_fingerprint})", err=True)  # fmt: skip


def import_votes(
    file: Path = typer.Argument(..., help="Chatbot Arena battles: a JSON array or JSON Lines."),
    feature: str = typer.Option(..., "--feature", "-f", help="The feature they rate."),
    fmt: str = typer.Option("arena", "--format", help="arena (Chatbot Arena's battle format)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be stored only."),
    config: Path | None = ConfigOpt,
) -> None:
    """Store votes rated elsewhere (Chatbot Arena battles) in FEATURE, with the answers and
    pairs they need. All or nothing: a bad record is named with its line and nothing is
    stored; importing the same battles again stores nothing."""
    from core.features import feature as find_feature
    from evaluation.exchange import import_battles

    if fmt.strip().lower() != "arena":
        raise SlamError(f"unknown import format '{short(fmt, 30)}'; votes are imported in "
                        "Chatbot Arena's battle format: --format arena")  # fmt: skip
    cfg, engine = _open(config)
    feat = find_feature(cfg, feature)
    result = import_battles(engine, cfg, feat, file, dry_run=dry_run)
    typer.echo(result.summary(dry_run=dry_run))
