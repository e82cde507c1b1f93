"""Storage on SQLite and the real PostgreSQL: migrations match the models, writes are atomic."""

from __future__ import annotations

from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, select

from core.config import default_config
from core.errors import SlamError
from storage.db import make_engine, normalize_url, session_scope
from storage.migrate import current, downgrade, upgrade
from storage.models import Generation, Vote
from storage.repo import ensure_experiment, ensure_model, ensure_prompt, ensure_user_context


def seed_generation(engine: Engine, text_: str = "hello") -> int:
    spec = default_config().models[0]
    with session_scope(engine) as s:
        exp = ensure_experiment(s, "e", "t")
        model = ensure_model(s, spec)
        uc = ensure_user_context(s, "u", "U", {"focus_tasks": ["x"]})
        assert exp.id and uc.id and model.id
        prompt = ensure_prompt(s, exp.id, uc.id, "p", "h")
        assert prompt.id
        gen = Generation(
            experiment_id=exp.id,
            prompt_id=prompt.id,
            model_id=model.id,
            run_date=date(2026, 11, 21),
            backend="llamacpp",
            text=text_,
            output_tokens=3,
        )
        s.add(gen)
        s.flush()
        assert gen.id
        return gen.id


def test_migrations_match_models(any_engine: Engine) -> None:
    with any_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == [], f"models and migrations differ; regenerate the migration: {diff}"
    assert current(any_engine) is not None


def test_upgrade_is_idempotent_and_downgrade_reverses(any_engine: Engine) -> None:
    upgrade(any_engine)  # second time: no-op
    tables = set(inspect(any_engine).get_table_names())
    assert {"generation", "vote", "probe", "judge_score", "rating_pair"} <= tables
    downgrade(any_engine, "base")
    assert "generation" not in set(inspect(any_engine).get_table_names())
    upgrade(any_engine)
    assert "generation" in set(inspect(any_engine).get_table_names())


def test_failed_transaction_writes_nothing(any_engine: Engine) -> None:
    gen_id = seed_generation(any_engine)
    with pytest.raises(RuntimeError), session_scope(any_engine) as s:
        row = s.get(Generation, gen_id)
        assert row is not None
        row.text = "half-written"
        s.add(row)
        s.flush()
        raise RuntimeError("crash in the middle")
    with session_scope(any_engine) as s:
        row = s.get(Generation, gen_id)
        assert row is not None and row.text == "hello"


def test_unique_keys_prevent_double_counting(any_engine: Engine) -> None:
    from storage.models import Rater, RatingPair, RatingRound
    from storage.repo import try_insert

    gen_id = seed_generation(any_engine)
    with session_scope(any_engine) as s:
        rnd = RatingRound(experiment_id=1)
        rater = Rater(platform="slack", user_hash="abc")
        s.add(rnd)
        s.add(rater)
        s.flush()
        assert rnd.id and rater.id
        pair = RatingPair(round_id=rnd.id, generation_a_id=gen_id, generation_b_id=gen_id)
        s.add(pair)
        s.flush()
        assert pair.id
        first = Vote(pair_id=pair.id, rater_id=rater.id, choice="A", event_key="Ev1")
        again = Vote(pair_id=pair.id, rater_id=rater.id, choice="A", event_key="Ev1")
        assert try_insert(s, first) is True
        assert try_insert(s, again) is False
    with session_scope(any_engine) as s:
        assert len(s.exec(select(Vote)).all()) == 1


def test_sqlite_uses_wal(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_postgres_url_spellings() -> None:
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_bad_urls_give_clear_errors() -> None:
    with pytest.raises(SlamError, match="not a valid SQLAlchemy URL"):
        make_engine("not a url")
    eng = make_engine("postgresql://postgres@127.0.0.1:1/nope")
    with pytest.raises(
        SlamError, match=r"cannot connect to the database .* Check SLAM_DATABASE_URL"
    ):
        upgrade(eng)
