"""storage.db.begin_write on SQLite: this process's writers queue on a mutex released however
the transaction ends (commit, rollback, an error, a closed connection), so a writer never
waits in SQLite's sleeping busy handler behind another thread of its own process."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from storage.db import _WRITERS, begin_write, session_scope


@pytest.fixture
def lock(engine: Engine) -> threading.Lock:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    return _WRITERS[engine]


def test_the_writer_mutex_is_released_however_the_transaction_ends(
    engine: Engine, lock: threading.Lock
) -> None:
    with engine.begin() as conn:  # commit
        begin_write(conn)
        assert lock.locked()
        conn.execute(text("INSERT INTO t VALUES (1)"))
    assert not lock.locked()
    with pytest.raises(ValueError), engine.begin() as conn:  # rollback on an error
        begin_write(conn)
        raise ValueError
    assert not lock.locked()
    conn = engine.connect()  # a connection closed with its transaction open
    conn.begin()
    begin_write(conn)
    assert lock.locked()
    conn.close()
    assert not lock.locked()
    with pytest.raises(Exception, match="no such table"), session_scope(engine) as s:
        begin_write(s.connection())
        s.execute(text("INSERT INTO missing VALUES (1)"))
    assert not lock.locked()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1


def test_a_second_writer_starts_when_the_first_commits(engine: Engine,
                                                       lock: threading.Lock) -> None:  # fmt: skip
    order: list[str] = []
    first_in = threading.Event()
    go = threading.Event()

    def first() -> None:
        with engine.begin() as conn:
            begin_write(conn)
            first_in.set()
            go.wait(10)
            conn.execute(text("INSERT INTO t VALUES (1)"))
            order.append("first commits")

    def second() -> None:
        first_in.wait(10)
        with engine.begin() as conn:
            begin_write(conn)
            n = conn.execute(text("SELECT count(*) FROM t")).scalar()
            order.append(f"second sees {n}")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    first_in.wait(10)
    assert lock.locked()
    go.set()
    for t in threads:
        t.join(20)
    assert order == ["first commits", "second sees 1"]
    assert not lock.locked()
