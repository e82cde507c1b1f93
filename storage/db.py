"""Engines and sessions. SQLite (WAL) by default; any SQLAlchemy URL via SLAM_DATABASE_URL."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlmodel import Session, create_engine

from core.env import environment
from core.errors import SlamError, redact_url_passwords, short

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
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    cur.close()


def begin_write(conn: Connection) -> None:
    """Make the transaction just begun on `conn` a writer from its first statement.

    On SQLite, Python's driver issues BEGIN only before the first INSERT/UPDATE/DELETE, so the
    reads a writer makes before it writes run outside its transaction: another process may
    commit in between, and the writer decides on stale rows. BEGIN IMMEDIATE takes the write
    lock first (waiting up to busy_timeout), so reads and writes see one state. PostgreSQL
    writers lock the rows they depend on instead (SELECT … FOR UPDATE): nothing to do."""
    if conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        lock = _WRITERS.get(conn.engine)
        # This process's writers queue on a mutex first: a thread waiting in SQLite's busy
        # handler sleeps in steps of up to 100 ms and wakes late; one waiting on the mutex
        # starts the moment the writer before it commits. Other processes still meet at the
        # file's lock (busy_timeout); the mutex is released when the transaction ends.
        if (lock is not None and "slam_writer" not in conn.info
                and lock.acquire(timeout=BUSY_TIMEOUT_S)):  # fmt: skip
            conn.info["slam_writer"] = lock
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release_writer(conn)
            raise


BUSY_TIMEOUT_S = 30.0
_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def _release_writer(conn: Connection, *_: Any) -> None:
    lock = conn.info.pop("slam_writer", None)
    if lock is not None:
        lock.release()


def _serialize_writers(engine: Engine) -> None:
    """`begin_write` on this SQLite engine queues on an in-process mutex (see there)."""
    _WRITERS[engine] = threading.Lock()
    for name in ("commit", "rollback"):
        event.listen(engine, name, _release_writer)


def _sqlite_file(db: str) -> Path:
    """The database file of a SQLite URL, checked: its folder exists (created if missing)
    and is writable, and the path is not a folder."""
    from core.paths import writable_dir

    path = Path(db).expanduser()
    shown = short(str(path), 200)
    if path.is_dir():
        raise SlamError(
            f"database {shown} is a folder; point SLAM_DATABASE_URL (or [database].url) at a "
            "file, e.g. sqlite:///slam.db"
        )
    writable_dir(path.parent, "database folder")
    return path


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for `url` (default: SLAM_DATABASE_URL, else ./slam.db).

    A URL that cannot work (not a URL, an unknown database type, a driver that is not
    installed, a SQLite file in a folder that cannot be written) is a SlamError naming it."""
    url = normalize_url(url or environment().slam_database_url or DEFAULT_URL)
    shown = short(redact_url_passwords(url), 200)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise SlamError(
            f"database url {shown!r} is not a valid SQLAlchemy URL; expected e.g. "
            "'sqlite:///slam.db' or 'postgresql://user@host:5432/db'"
        ) from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise SlamError(
            f"database url {shown!r}: unknown database type {parsed.drivername!r}; slam runs "
            "on SQLite ('sqlite:///slam.db') or PostgreSQL ('postgresql://user@host/db')"
        ) from None
    except ImportError as exc:
        raise _missing_driver(shown, parsed.drivername, exc) from None
    try:
        if parsed.get_backend_name() == "sqlite":
            db = parsed.database
            if db and db != ":memory:" and not db.startswith("file:"):
                url = parsed.set(database=str(_sqlite_file(db))).render_as_string(
                    hide_password=False
                )
            engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
            event.listen(engine, "connect", _sqlite_pragmas)
            _serialize_writers(engine)
        else:
            kwargs.setdefault("pool_pre_ping", True)
            engine = create_engine(url, **kwargs)
    except ImportError as exc:
        raise _missing_driver(shown, parsed.drivername, exc) from None
    return engine


def _missing_driver(shown: str, driver: str, exc: ImportError) -> SlamError:
    module = getattr(exc, "name", None) or str(exc)
    return SlamError(
        f"database url {shown!r} needs the Python driver {module!r}, which is not installed; "
        f"install it into slam's environment (pip install …) or use SQLite or PostgreSQL "
        f"(driver {driver!r})"
    )


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


def check_connection(engine: Engine, *, write: bool = False) -> None:
    """Fail with a clear message when the database does not answer (or, with `write`, when
    it cannot be written: a read-only SQLite file)."""
    try:
        with engine.connect() as conn:
            if write and engine.dialect.name == "sqlite":
                # Rewriting user_version with its own value needs a write lock and a write.
                version = conn.exec_driver_sql("PRAGMA user_version").scalar() or 0
                conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
                conn.commit()
    except DBAPIError as exc:
        raise SlamError(describe_db_error(exc, engine, connecting=True) or str(exc)) from None


_SQLITE_HINTS = (
    ("readonly database", "the database is read-only; make the file (and its folder) "
     "writable, or point SLAM_DATABASE_URL at another file"),
    ("file is not a database", "the file is not a SQLite database or is damaged; restore it "
     "from a backup (docs/operations.md, Backups) or point SLAM_DATABASE_URL at another file"),
    ("database disk image is malformed", "the database file is damaged; restore it from a "
     "backup (docs/operations.md, Backups)"),
    ("unable to open database file", "the file cannot be opened; check the path and that its "
     "folder exists and is writable"),
    ("database is locked", "another process holds a lock on it; try again, or stop the "
     "other writer"),
    ("disk i/o error", "the disk reported an error; check free space and the file system"),
)


def describe_db_error(
    exc: BaseException, engine: Engine | None = None, *, connecting: bool = False
) -> str | None:
    """One line for a database failure, naming the database (password hidden) and what to
    do; None when `exc` is not a database error."""
    if isinstance(exc, NoSuchModuleError):
        return f"unknown database type: {exc}; use SQLite or PostgreSQL"
    if not isinstance(exc, SQLAlchemyError):
        return None
    where = ""
    if engine is not None:
        where = f" {engine.url.render_as_string(hide_password=True)}"
    orig = getattr(exc, "orig", None)
    detail = (str(orig if orig is not None else exc).strip().splitlines() or [""])[0]
    low = detail.lower()
    for needle, hint in _SQLITE_HINTS:
        if needle in low:
            return f"database{where}: {short(detail, 200)}: {hint}"
    if "no such table" in low or ("does not exist" in low and "relation" in low):
        return (
            f"database{where}: {short(detail, 200)}: the schema is missing or out of date; "
            "run `slam db upgrade`"
        )
    if connecting or isinstance(exc, OperationalError | InterfaceError):
        return (
            f"cannot connect to the database{where}: {short(detail, 300)}. Check "
            "SLAM_DATABASE_URL (or [database].url) and that the server is running."
        )
    return (
        f"database error{where}: {type(exc).__name__}: {short(detail, 300)}. If the schema is "
        "out of date, run `slam db upgrade`."
    )
