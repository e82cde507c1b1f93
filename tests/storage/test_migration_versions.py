"""Migration 0005 upgrades a database of the previous release in place: its generations and
probes keep no version (NULL, counted with the model's current version), model versions can
be recorded afterwards, and the downgrade removes them again — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from storage.db import make_engine
from storage.migrate import current, downgrade, upgrade

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_0005_adds_versions_to_an_existing_database(
    db: str, request: pytest.FixtureRequest
) -> None:
    engine = make_engine(request.getfixturevalue("sqlite_url" if db == "sqlite" else "pg_url"))
    upgrade(engine, "0004")
    with engine.begin() as c:
        c.execute(text("INSERT INTO experiment (id, name, prompt_template, created_at) "
                       "VALUES (1, 'f', 't', :t)"), {"t": NOW})
        c.execute(text("INSERT INTO user_context (id, experiment_id, key, name, data_json, "
                       "created_at) VALUES (1, 1, 'u', 'u', '{}', :t)"), {"t": NOW})
        c.execute(text("INSERT INTO model (id, name, backend, model_id, quantization, hardware, "
                       "is_reference, created_at) VALUES (1, 'm', 'ollama', 'm', 'unknown', "
                       "'local-cpu', false, :t)"), {"t": NOW})
        c.execute(text("INSERT INTO prompt (id, experiment_id, user_context_id, text, text_hash, "
                       "created_at) VALUES (1, 1, 1, 'p', 'h', :t)"), {"t": NOW})
        c.execute(text("INSERT INTO generation (id, experiment_id, prompt_id, model_id, run_date, "
                       "sample_index, backend, text, source, created_at) VALUES (1, 1, 1, 1, :d, "
                       "0, 'ollama', 'hi', 'generated', :t)"), {"d": date(2026, 12, 1), "t": NOW})
    upgrade(engine, "0005")
    assert current(engine) == "0005"
    with engine.begin() as c:
        assert c.execute(text("SELECT model_version_id FROM generation")).scalar() is None
        c.execute(text("INSERT INTO model_version (id, model_id, identity, label, details_json, "
                       "first_seen) VALUES (1, 1, :k, 'abc', '{}', :t)"), {"k": "a" * 64, "t": NOW})
        c.execute(text("UPDATE generation SET model_version_id = 1"))
    with pytest.raises(IntegrityError), engine.begin() as c:  # one row per (model, identity)
        c.execute(text("INSERT INTO model_version (model_id, identity, label, details_json, "
                       "first_seen) VALUES (1, :k, 'again', '{}', :t)"),
                  {"k": "a" * 64, "t": NOW})  # fmt: skip
    downgrade(engine, "0004")
    insp = inspect(engine)
    assert "model_version" not in insp.get_table_names()
    assert "model_version_id" not in {c["name"] for c in insp.get_columns("generation")}
    assert "model_version_id" not in {c["name"] for c in insp.get_columns("probe")}
