"""Engines and sessions. SQLite (WAL) by default; any SQLAlchemy URL via SLAM_DATABASE_URL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session, create_engine

from core.errors import SlamError

DEFAULT_URL = "sqlite:///slam.db"


def normalize_url(url: str) -> str:
    """Accept the common PostgreSQL spellings and use the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (reports) run while the bot writes; busy_timeout rides out short locks.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for `url` (default: SLAM_DATABASE_URL, else ./slam.db)."""
    url = normalize_url(url or os.environ.get("SLAM_DATABASE_URL") or DEFAULT_URL)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SlamError(
            f"database url {url!r} is not a valid SQLAlchemy URL; expected e.g. "
            "'sqlite:///slam.db' or 'postgresql://user@host:5432/db'"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error, so nothing is half-written."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def check_connection(engine: Engine) -> None:
    """Fail with a clear message when the database does not answer."""
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        raise SlamError(
            f"cannot connect to the database {engine.url.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}. "
            "Check SLAM_DATABASE_URL (or [database].url) and that the server is running."
        ) from None
