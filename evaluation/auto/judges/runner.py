"""Run LLM judges over a corpus: temperature 0, bounded concurrency, cached, resumable.

Each question is asked with the method's answer schema, which the backend enforces with its
own constrained decoding. When the judge's server turns schemas down (the backend answers
with `structured=False`), that is remembered for the rest of the run and the remaining
questions ask for the free-text answer line instead.

Answers (parsed or not) are stored as immutable JudgeScore rows as they arrive, so an
interrupted run resumes where it stopped. A transport error is not an answer: it is counted
and reported but not stored, so the next run asks again.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import select

from core.config import ModelSpec
from evaluation.auto.corpus import Corpus
from evaluation.auto.judges.answers import answer_schema
from evaluation.auto.judges.tasks import JudgeTask, build_tasks, judge_methods
from evaluation.auto.registry import checked
from hosting.backends import GenerationRequest, create_backend
from storage.db import session_scope
from storage.models import JudgeScore
from storage.repo import try_insert

# Enough for the score line alone; the reasoning methods get the configured budget.
SHORT_ANSWER_TOKENS = 16


@dataclass
class MethodRun:
    """What one judge method did in one run."""

    method: str
    tasks: int = 0
    cached: int = 0  # already stored: nothing to do
    reused: int = 0  # same question answered before (e.g. identical texts): no call
    calls: int = 0
    structured: int = 0  # answers decoded under the answer schema
    parse_failures: int = 0
    errors: int = 0
    first_error: str | None = None


@dataclass
class JudgeRun:
    judge: str
    methods: dict[str, MethodRun] = field(default_factory=dict)
    free_text: bool = False  # the judge's server rejected answer schemas: free text was asked

    @property
    def calls(self) -> int:
        return sum(m.calls for m in self.methods.values())


def check_methods(methods: list[str]) -> list[str]:
    return checked(methods, judge_methods(), "judge method(s)")


def _store(engine: Engine, task: JudgeTask, judge: str, raw: str) -> int:
    """Insert the task's rows; returns how many were parse failures."""
    rows = task.rows(judge, raw)
    with session_scope(engine) as s:
        for row in rows:
            try_insert(s, row)  # a concurrent run may have stored it first: fine
    return int(not rows[0].parse_ok)


async def run_judges(
    engine: Engine,
    corpus: Corpus,
    spec: ModelSpec,
    methods: list[str],
    max_tokens: int = 256,
    on_progress: Callable[[str, int], None] | None = None,
) -> JudgeRun:
    """Ask `spec` (the judge) every question the methods need that is not answered yet."""
    methods = check_methods(methods)
    judge = spec.name
    tasks = build_tasks(corpus, methods, judge, spec.model)
    with session_scope(engine) as s:
        stored = set(s.exec(select(JudgeScore.cache_key).where(JudgeScore.judge == judge)).all())
        answered = {
            k: raw
            for k, raw in s.exec(
                select(JudgeScore.group_key, JudgeScore.raw).where(JudgeScore.judge == judge)
            ).all()
            if k is not None
        }
    run = JudgeRun(judge, {m: MethodRun(m) for m in methods})
    todo: dict[str, list[JudgeTask]] = defaultdict(list)  # question -> tasks awaiting its answer
    for t in tasks:
        stat = run.methods[t.method]
        stat.tasks += 1
        if all(k in stored for k in t.row_keys()):
            stat.cached += 1
        elif t.question_key in answered:
            stat.reused += 1
            stat.parse_failures += _store(engine, t, judge, answered[t.question_key])
        else:
            todo[t.question_key].append(t)
    if on_progress is not None:
        on_progress("start", len(todo))
    if not todo:
        return run
    backend = create_backend(spec)
    sem = asyncio.Semaphore(spec.concurrency)

    async def ask(group: list[JudgeTask]) -> None:
        first = group[0]
        budget = SHORT_ANSWER_TOKENS if first.method == "comparer-nr" else max_tokens
        async with sem:
            gen = await backend.generate(request_for(first, budget, structured=not run.free_text))
        stat = run.methods[first.method]
        stat.calls += 1
        if gen.structured:
            stat.structured += 1
        elif gen.error is None and not run.free_text:
            run.free_text = True  # remembered: the next questions ask for free text
        if gen.error is not None:
            stat.errors += 1
            stat.first_error = stat.first_error or gen.error
        else:
            for t in group:
                stat.parse_failures += _store(engine, t, judge, gen.text)
        if on_progress is not None:
            on_progress(first.method, 1)

    try:
        await asyncio.gather(*(ask(g) for g in todo.values()))
    finally:
        await backend.aclose()
    return run


def request_for(task: JudgeTask, max_tokens: int, *, structured: bool = True) -> GenerationRequest:
    """The judge request for a task: temperature 0, seeded, with the method's answer schema
    (or, once the server has turned schemas down, the free-text wording and no schema)."""
    if not structured:
        return GenerationRequest(
            prompt=task.free_prompt, max_tokens=max_tokens, temperature=0.0, seed=0
        )
    schema = answer_schema(
        task.method,
        reasoning=task.asks_reasoning,
        n=len(task.members) if task.shape == "index" else None,
        max_tokens=max_tokens,
    )
    return GenerationRequest(
        prompt=task.prompt, max_tokens=max_tokens, temperature=0.0, seed=0, answer_schema=schema
    )
