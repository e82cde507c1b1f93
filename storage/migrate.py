"""Alembic migrations, run programmatically (`slam db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from core.errors import SlamError
from storage.db import check_connection, describe_db_error

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Passing the engine through attributes keeps passwords out of alembic's ini handling.
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (default: the newest). A database that cannot be
    reached, written or read as a database is a SlamError saying which and what to do."""
    check_connection(engine, write=True)
    try:
        command.upgrade(alembic_config(engine), revision)
    except DBAPIError as exc:
        raise SlamError(
            describe_db_error(exc, engine) or f"database migration failed: {exc}"
        ) from None
    except CommandError as exc:  # e.g. a revision this version does not know
        raise SlamError(
            f"cannot migrate the database {engine.url.render_as_string(hide_password=True)}: "
            f"{exc}. Is it from a newer version of slam?"
        ) from None


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise SlamError(describe_db_error(exc, engine, connecting=True) or str(exc)) from None


def open_database(url: str | None = None) -> Engine:
    """An engine on `url` with the schema brought up to date (safe to call on every start)."""
    from storage.db import make_engine

    engine = make_engine(url)
    upgrade(engine)
    return engine
