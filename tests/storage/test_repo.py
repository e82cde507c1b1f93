"""storage.repo: the names a database knows a model by (configured, and reported by sources)."""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine
from sqlmodel import select

from storage.db import session_scope
from storage.models import Generation
from storage.repo import model_name_hints
from tests.support.bot_seed import make_config, seed


def test_model_name_hints_add_what_sources_reported(engine: Engine) -> None:
    cfg = make_config()
    seed(engine, cfg)
    with session_scope(engine) as s:
        hints = model_name_hints(s)
        assert {"gpt-4", "mistral-7b-q4", "mistral:7b-instruct-q4_K_M"} <= set(hints)
        assert "starcoder2" not in hints
        g = s.exec(select(Generation)).first()
        assert g is not None
        g.meta_json = json.dumps({"model": "gpt-4-0613", "details": {"family": "starcoder2"}})
        s.add(g)
    with session_scope(engine) as s:  # a new generation with metadata is seen on the next call
        hints = model_name_hints(s)
        assert {"gpt-4-0613", "starcoder2"} <= set(hints)
        assert len(hints) == len(set(hints))
