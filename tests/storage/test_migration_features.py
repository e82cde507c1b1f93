"""Migration 0004 upgrades a database made by the previous release in place: its inputs belong
to the feature their prompts were rendered for (the built-in pep talk), its generations are
'generated', and inputs of two features may share an id afterwards — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from storage.db import make_engine
from storage.migrate import current, upgrade

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _previous_release(url: str) -> Engine:
    """A database at revision 0003 with a pep-talk experiment's data, written as that release
    wrote it (plain SQL: today's models have the new columns)."""
    engine = make_engine(url)
    upgrade(engine, "0003")
    with engine.begin() as c:
        c.execute(text("INSERT INTO experiment (id, name, prompt_template, created_at) "
                       "VALUES (1, 'daily-pep-talk', 'Pep talk for {name}', :t)"), {"t": NOW})
        for i, key in enumerate(["maya-pm", "sam-eng", "unused"], 1):
            c.execute(text("INSERT INTO user_context (id, key, name, data_json, created_at) "
                           "VALUES (:i, :k, :k, '{}', :t)"), {"i": i, "k": key, "t": NOW})
        c.execute(text("INSERT INTO model (id, name, backend, model_id, quantization, hardware, "
                       "is_reference, created_at) VALUES (1, 'gpt-4', 'openai', 'gpt-4', "
                       "'unknown', 'api', true, :t)"), {"t": NOW})
        for i in (1, 2):
            c.execute(text("INSERT INTO prompt (id, experiment_id, user_context_id, text, "
                           "text_hash, created_at) VALUES (:i, 1, :i, 'p', :h, :t)"),
                      {"i": i, "h": f"h{i}", "t": NOW})
            c.execute(text("INSERT INTO generation (id, experiment_id, prompt_id, model_id, "
                           "run_date, sample_index, backend, text, created_at) VALUES "
                           "(:i, 1, :i, 1, :d, 0, 'openai', 'You can do it', :t)"),
                      {"i": i, "d": date(2026, 11, 20), "t": NOW})
    return engine


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_an_existing_database_upgrades_as_the_pep_talk_feature(
    db: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "pg_url")
    engine = _previous_release(url)
    upgrade(engine, "0004")
    assert current(engine) == "0004"
    with engine.begin() as c:
        inputs = c.execute(text("SELECT key, experiment_id, slice FROM user_context ORDER BY id"))
        # each input belongs to the feature of its prompts; one with none to the only feature
        assert [tuple(r) for r in inputs] == [("maya-pm", 1, None), ("sam-eng", 1, None),
                                              ("unused", 1, None)]  # fmt: skip
        sources = c.execute(text("SELECT source, meta_json FROM generation")).all()
        assert [tuple(r) for r in sources] == [("generated", None), ("generated", None)]
        # a second feature may have an input called maya-pm too; the same feature may not
        c.execute(text("INSERT INTO experiment (id, name, prompt_template, created_at) "
                       "VALUES (2, 'support-reply', 'x', :t)"), {"t": NOW})
        c.execute(text("INSERT INTO user_context (id, experiment_id, key, name, data_json, "
                       "created_at) VALUES (10, 2, 'maya-pm', 'maya-pm', '{}', :t)"), {"t": NOW})
    with pytest.raises(IntegrityError), engine.begin() as c:
        c.execute(text("INSERT INTO user_context (id, experiment_id, key, name, data_json, "
                       "created_at) VALUES (11, 1, 'maya-pm', 'again', '{}', :t)"), {"t": NOW})
    engine.dispose()
