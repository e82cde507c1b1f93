"""Shared fixtures: migrated SQLite and PostgreSQL databases, the packaged GGUF, free ports."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.support.ports import free_port

# Nothing in the test suite may reach a hub or the internet.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

PG_ADMIN_URL = os.environ.get(
    "SLAM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'slam.db'}"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    """A migrated SQLite database in a temp dir."""
    from storage.db import make_engine
    from storage.migrate import upgrade

    eng = make_engine(sqlite_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database on the real PostgreSQL; dropped afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"slam_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - environment problem, make it loud
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not usable: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """A migrated database on the real PostgreSQL."""
    from storage.db import make_engine
    from storage.migrate import upgrade

    eng = make_engine(pg_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_engine(request: pytest.FixtureRequest) -> Engine:
    """Runs the test on SQLite and on the real PostgreSQL."""
    name = "engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    """The packaged Gemma 3 270M Q4_K_M GGUF."""
    from hosting.backends.gguf import packaged_gemma3_270m

    return packaged_gemma3_270m()


@pytest.fixture
def clean_root() -> Iterator[None]:
    """setup_logging changes the root logger: restore it for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {h: list(h.filters) for h in handlers}
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    for h, fs in filters.items():
        h.filters = fs
    root.setLevel(level)
    logging.captureWarnings(False)
