"""Seeding helpers for the bot tests and benchmark: a config with three models and stored
generations (same prompts, one day), written with storage.repo helpers; and a second feature
(support replies over a small JSONL file) beside the built-in pep talk."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from core.config import SlamConfig, parse_config
from core.prompts import text_hash
from storage.db import session_scope
from storage.models import Generation
from storage.repo import ensure_experiment, ensure_model, ensure_prompt, ensure_user_context

RUN_DATE = date(2024, 5, 1)
MODELS: list[dict[str, Any]] = [
    {"name": "gpt-4", "backend": "openai", "model": "gpt-4", "hardware": "api",
     "reference": True},
    {"name": "mistral-7b-q4", "backend": "ollama", "model": "mistral:7b-instruct-q4_K_M"},
    {"name": "gemma3-270m-q4_k_m", "backend": "llamacpp", "model": "builtin:gemma3-270m"},
]  # fmt: skip
USERS = ["Ada", "Grace", "Linus", "Barbara"]


def make_config(**chat: Any) -> SlamConfig:
    return parse_config({"models": MODELS, "chat": {"channel": "C0RATINGS", **chat}}, "<test>")


def ensure_bot_tables(engine: Engine) -> None:
    """Create tables the migration may not have yet (new tables only; never alters)."""
    missing = [t for n, t in SQLModel.metadata.tables.items()
               if not inspect(engine).has_table(n)]  # fmt: skip
    if missing:
        SQLModel.metadata.create_all(engine, tables=missing)


def seed(
    engine: Engine,
    cfg: SlamConfig,
    users: list[str] = USERS,
    texts: dict[str, str] | None = None,
) -> dict[str, int]:
    """Store one generation per (model, user) on RUN_DATE; returns model name -> id."""
    ensure_bot_tables(engine)
    texts = texts or {}
    ids: dict[str, int] = {}
    with session_scope(engine) as s:
        exp = ensure_experiment(s, cfg.experiment.name, cfg.experiment.prompt_template)
        models = {m.name: ensure_model(s, m) for m in cfg.models}
        for user in users:
            ctx = ensure_user_context(s, user.lower(), user, {"name": user})
            text = f"Context: My name is {user}. Today I focus on shipping.\n\nQuery: pep talk"
            assert exp.id and ctx.id
            prompt = ensure_prompt(s, exp.id, ctx.id, text, text_hash(text))
            for name, rec in models.items():
                body = texts.get(f"{name}/{user}") or (
                    f"Good morning {user}! You finished a lot yesterday. Focus on shipping "
                    f"today. Keep your rituals. Every step moves the week's goals. ({len(name)})"
                )
                assert exp.id and prompt.id and rec.id
                s.add(Generation(experiment_id=exp.id, prompt_id=prompt.id, model_id=rec.id,
                                 run_date=RUN_DATE, backend=rec.backend, text=body))  # fmt: skip
                ids[name] = rec.id
    return ids


def effective_votes(session: Any, round_id: int | None = None) -> dict[tuple[Any, ...], Any]:
    """(pair, rater, kind, target) -> the effective vote, from the one vote semantics."""
    from evaluation.human.votes import all_effective_votes

    return {
        (v.pair_id, v.rater_id, v.kind, v.target): v
        for v in all_effective_votes(session, round_id=round_id)
    }


# -- a second feature beside the built-in pep talk ---------------------------------------------
SUPPORT = "support-reply"
SUPPORT_TEMPLATE = "Write a short reply to this {{ kind }} ticket.\nSubject: {{ subject }}"
TICKETS = [
    {"id": "T-1", "kind": "billing", "subject": "I was charged twice"},
    {"id": "T-2", "kind": "billing", "subject": "Refund for my last invoice"},
    {"id": "T-3", "kind": "legal", "subject": "Please delete my data"},
    {"id": "T-4", "kind": "legal", "subject": "Question about the contract terms"},
]


def write_tickets(path: Path) -> Path:
    """The support feature's inputs: a small JSONL file (one ticket a line)."""
    path.write_text("".join(json.dumps(t) + "\n" for t in TICKETS), encoding="utf-8")
    return path


def two_feature_config(tmp_path: Path, **chat: Any) -> SlamConfig:
    """The built-in pep talk (an [experiment] table) and a support-reply feature over
    TICKETS, answered by two of the three models, sliced by ticket kind, with its own
    channel."""
    inputs = write_tickets(tmp_path / "tickets.jsonl")
    return parse_config({
        "models": MODELS, "chat": {"channel": "C0RATINGS", **chat}, "experiment": {},
        "features": [{"name": SUPPORT, "prompt_template": SUPPORT_TEMPLATE,
                      "inputs": str(inputs), "slice_field": "kind",
                      "models": ["gpt-4", "mistral-7b-q4"], "channel": "C0SUPPORT"}],
    }, "<test>")  # fmt: skip


def seed_feature(engine: Engine, cfg: SlamConfig, name: str = SUPPORT) -> dict[str, int]:
    """Store one generation per (feature model, input) of feature `name` on RUN_DATE, the way
    `slam generate` stores them (inputs with their slice, rendered prompts); model -> id."""
    from core.features import feature
    from storage.repo import ensure_input

    ensure_bot_tables(engine)
    feat = feature(cfg, name)
    ids: dict[str, int] = {}
    with session_scope(engine) as s:
        exp = ensure_experiment(s, feat.name, feat.prompt_template)
        assert exp.id is not None
        models = {m.name: ensure_model(s, m) for m in cfg.models if m.name in feat.models}
        for inp in feat.inputs():
            ctx = ensure_input(s, exp.id, inp.id, feat.label(inp), inp.data, inp.slice)
            text = feat.render(inp)
            assert ctx.id is not None
            prompt = ensure_prompt(s, exp.id, ctx.id, text, text_hash(text))
            for model, rec in models.items():
                assert prompt.id and rec.id
                s.add(Generation(experiment_id=exp.id, prompt_id=prompt.id, model_id=rec.id,
                                 run_date=RUN_DATE, backend=rec.backend,
                                 text=f"Thanks for writing about {inp.data['subject']!r}; "
                                      f"we are on it today. ({len(model)})"))  # fmt: skip
                ids[model] = rec.id
    return ids
