"""Seeding helpers for the evaluation tests: real rows through the storage helpers."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from datetime import date

from sqlalchemy.engine import Engine

from core.config import ModelSpec
from storage import repo
from storage.db import session_scope
from storage.models import Generation, Rater, RatingPair, RatingRound, Vote

DAY = date(2024, 3, 1)
_event = itertools.count()


def seed_generations(
    engine: Engine,
    texts: dict[str, Sequence[str]],
    reference: str | None = None,
    prompts: Sequence[str] | None = None,
    errors: dict[str, int] | None = None,
) -> dict[tuple[str, int], int]:
    """texts: model -> one response per prompt. Returns (model, prompt index) -> generation id.

    `errors` marks (model -> prompt index) generations as failed requests.
    """
    n = len(next(iter(texts.values())))
    prompts = list(prompts or [f"Write a pep talk for user {i}." for i in range(n)])
    out: dict[tuple[str, int], int] = {}
    with session_scope(engine) as s:
        exp = repo.ensure_experiment(s, "daily-pep-talk", "{name}")
        models = {
            name: repo.ensure_model(
                s,
                ModelSpec(
                    name=name,
                    backend="llamacpp",
                    model="builtin:gemma3-270m",
                    reference=name == reference,
                ),
            )
            for name in texts
        }
        for i, ptext in enumerate(prompts):
            uc = repo.ensure_user_context(s, f"user{i}", f"User {i}", {"i": i})
            prompt = repo.ensure_prompt(
                s,
                exp.id,
                uc.id,
                ptext,
                hashlib.sha256(ptext.encode()).hexdigest(),  # type: ignore[arg-type]
            )
            for name, responses in texts.items():
                failed = errors is not None and errors.get(name) == i
                g = Generation(
                    experiment_id=exp.id,  # type: ignore[arg-type]
                    prompt_id=prompt.id,  # type: ignore[arg-type]
                    model_id=models[name].id,  # type: ignore[arg-type]
                    run_date=DAY,
                    backend="llamacpp",
                    text=responses[i],
                    error="boom: connection refused" if failed else None,
                )
                s.add(g)
                s.flush()
                out[(name, i)] = g.id  # type: ignore[assignment]
    return out


def seed_feature(
    engine: Engine,
    name: str,
    inputs: Sequence[tuple[str, str | None]],
    models: Sequence[str],
    reference: str | None = None,
    tokens: tuple[int, int] | None = None,
) -> tuple[int, dict[tuple[str, str], int]]:
    """A feature as the pipeline stores it: its experiment, its inputs ((key, slice) rows via
    `repo.ensure_input`), a prompt per input and one generation per model and input (with
    `tokens` = (prompt, output) token counts). Returns (experiment id, (model, input key) ->
    generation id)."""
    out: dict[tuple[str, str], int] = {}
    with session_scope(engine) as s:
        exp = repo.ensure_experiment(s, name, "{{ text }}")
        recs = {}
        for m in models:
            spec = ModelSpec(name=m, backend="llamacpp", model="builtin:gemma3-270m",
                             reference=m == reference)  # fmt: skip
            recs[m] = repo.ensure_model(s, spec)
        for key, slice_ in inputs:
            uc = repo.ensure_input(s, exp.id, key, key, {"id": key, "text": key}, slice_)  # type: ignore[arg-type]
            text = f"{name}: {key}"
            digest = hashlib.sha256(text.encode()).hexdigest()
            prompt = repo.ensure_prompt(s, exp.id, uc.id, text, digest)  # type: ignore[arg-type]
            for m, rec in recs.items():
                g = Generation(
                    experiment_id=exp.id,  # type: ignore[arg-type]
                    prompt_id=prompt.id,  # type: ignore[arg-type]
                    model_id=rec.id,  # type: ignore[arg-type]
                    run_date=DAY,
                    backend="llamacpp",
                    text=f"{m} answers {key} of {name}",
                    prompt_tokens=tokens[0] if tokens else None,
                    output_tokens=tokens[1] if tokens else None,
                )
                s.add(g)
                s.flush()
                out[(m, key)] = g.id  # type: ignore[assignment]
        return exp.id, out  # type: ignore[return-value]


def seed_pair(
    engine: Engine,
    gen_a: int,
    gen_b: int,
    round_id: int | None = None,
    experiment_id: int = 1,
) -> int:
    """A rating pair (in a new round of `experiment_id` unless given); returns the pair id."""
    with session_scope(engine) as s:
        if round_id is None:
            rnd = RatingRound(experiment_id=experiment_id)
            s.add(rnd)
            s.flush()
            round_id = rnd.id
        pair = RatingPair(round_id=round_id, generation_a_id=gen_a, generation_b_id=gen_b)  # type: ignore[arg-type]
        s.add(pair)
        s.flush()
        return pair.id  # type: ignore[return-value]


def seed_round(engine: Engine) -> int:
    with session_scope(engine) as s:
        rnd = RatingRound(experiment_id=1)
        s.add(rnd)
        s.flush()
        return rnd.id  # type: ignore[return-value]


def rater(engine: Engine, name: str) -> int:
    with session_scope(engine) as s:
        r = Rater(platform="console", user_hash=hashlib.sha256(name.encode()).hexdigest())
        s.add(r)
        s.flush()
        return r.id  # type: ignore[return-value]


def vote(
    engine: Engine,
    pair_id: int,
    rater_id: int,
    choice: str | None = None,
    *,
    kind: str = "pairwise",
    action: str = "add",
    target: str | None = None,
    score: int | None = None,
) -> None:
    with session_scope(engine) as s:
        s.add(
            Vote(
                pair_id=pair_id,
                rater_id=rater_id,
                kind=kind,
                action=action,
                choice=choice,
                target=target,
                score=score,
                event_key=f"ev{next(_event)}",
            )
        )
