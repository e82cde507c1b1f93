"""Daily generation: every user context x model x sample, stored as it completes.

Each result is committed on its own, so a crash loses at most the requests in flight, and
the (prompt, model, day, sample) unique key makes a re-run resume instead of duplicating.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from core.config import ModelSpec, SlamConfig
from core.prompts import load_user_contexts, render_prompt, text_hash
from hosting.backends.base import Backend, Generation, GenerationRequest, create_backend
from storage import models as tables
from storage.db import session_scope
from storage.repo import (
    ensure_experiment,
    ensure_model,
    ensure_prompt,
    ensure_user_context,
    existing_generation,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    experiment_id: int
    prompt_id: int
    prompt: str
    user_key: str
    model: ModelSpec
    model_id: int
    sample_index: int


@dataclass
class RunResult:
    run_date: date
    planned: int
    skipped: int  # already stored by an earlier (possibly interrupted) run
    done: int
    errors: int


def host_key(spec: ModelSpec) -> str:
    """Requests to one host share a concurrency budget; all embedded models share this CPU."""
    if spec.backend == "llamacpp":
        return "embedded"
    return f"{spec.backend}:{spec.host or 'default'}"


def plan_jobs(
    engine: Engine, cfg: SlamConfig, models: list[ModelSpec], run_date: date, samples: int
) -> tuple[list[Job], int]:
    """Store experiment/models/users/prompts; return the jobs not yet done today."""
    exp_cfg = cfg.experiment
    users = load_user_contexts(exp_cfg.user_contexts)
    jobs: list[Job] = []
    skipped = 0
    with session_scope(engine) as s:
        exp = ensure_experiment(s, exp_cfg.name, exp_cfg.prompt_template)
        model_ids = {m.name: ensure_model(s, m).id for m in models}
        for user in users:
            uc = ensure_user_context(s, user.key, user.name, user.model_dump())
            text = render_prompt(exp_cfg.prompt_template, user)
            assert exp.id is not None and uc.id is not None
            prompt = ensure_prompt(s, exp.id, uc.id, text, text_hash(text))
            assert prompt.id is not None
            for spec in models:
                mid = model_ids[spec.name]
                assert mid is not None
                for i in range(samples):
                    prior = existing_generation(s, prompt.id, mid, run_date, i)
                    if prior is not None and prior.error is None:
                        skipped += 1
                        continue
                    jobs.append(Job(exp.id, prompt.id, text, user.key, spec, mid, i))
    return jobs, skipped


def store_generation(
    engine: Engine, job: Job, gen: Generation, run_date: date, temperature: float
) -> None:
    """Commit one result. An earlier errored attempt is replaced; a success is never duplicated."""
    with session_scope(engine) as s:
        row = existing_generation(s, job.prompt_id, job.model_id, run_date, job.sample_index)
        if row is not None and row.error is None:
            return  # another run stored it meanwhile: keep exactly one
        if row is None:
            row = tables.Generation(
                experiment_id=job.experiment_id,
                prompt_id=job.prompt_id,
                model_id=job.model_id,
                run_date=run_date,
                sample_index=job.sample_index,
                backend=gen.backend,
            )
        row.backend = gen.backend
        row.text = gen.text
        for column, value in gen.measurements().items():
            setattr(row, column, value)
        row.temperature = temperature
        row.created_at = datetime.now(UTC)
        s.add(row)


async def generate(
    engine: Engine,
    cfg: SlamConfig,
    *,
    model_names: list[str] | None = None,
    run_date: date | None = None,
    samples: int | None = None,
    max_tokens: int | None = None,
    on_result: Callable[[Job, Generation], None] | None = None,
    progress: bool = True,
) -> RunResult:
    """Generate the feature's responses for every user x model x sample and store them."""
    run_date = run_date or datetime.now(UTC).date()
    models = [cfg.model(n) for n in model_names] if model_names else list(cfg.models)
    if not models:
        from core.errors import SlamError

        raise SlamError("no models configured: add [[models]] entries to slam.toml")
    n_samples = samples or cfg.experiment.samples_per_model
    jobs, skipped = plan_jobs(engine, cfg, models, run_date, n_samples)
    exp = cfg.experiment
    backends: dict[str, Backend] = {}
    limits: dict[str, int] = defaultdict(lambda: 1)
    for spec in models:
        key = host_key(spec)
        limits[key] = 1 if key == "embedded" else max(limits[key], spec.concurrency)
    semaphores = {k: asyncio.Semaphore(v) for k, v in limits.items()}
    result = RunResult(run_date, len(jobs) + skipped, skipped, 0, 0)

    bar = _progress(len(jobs), progress)

    async def run(job: Job) -> None:
        backend = backends.get(job.model.name)
        if backend is None:
            backend = backends[job.model.name] = create_backend(job.model)
        request = GenerationRequest(
            prompt=job.prompt,
            system=exp.system_prompt,
            max_tokens=max_tokens or exp.max_tokens,
            temperature=exp.temperature,
            seed=None if exp.seed is None else exp.seed + job.sample_index,
        )
        async with semaphores[host_key(job.model)]:
            gen = await backend.generate(request)
        store_generation(engine, job, gen, run_date, exp.temperature)
        result.done += 1
        if gen.error:
            result.errors += 1
            log.warning("%s on %s failed: %s", job.model.name, job.user_key, gen.error)
        if on_result:
            on_result(job, gen)
        bar(f"{job.model.name} · {job.user_key}")

    try:
        await asyncio.gather(*(run(j) for j in jobs))
    finally:
        bar(None)
        for b in backends.values():
            await b.aclose()
    return result


def _progress(total: int, enabled: bool) -> Callable[[str | None], None]:
    """A tqdm bar on stderr; call with a label per step and None to close."""
    from tqdm import tqdm

    pbar = tqdm(total=total, desc="generating", unit="resp", disable=not enabled or total == 0)

    def step(label: str | None) -> None:
        if label is None:
            pbar.close()
            return
        pbar.set_postfix_str(label, refresh=False)
        pbar.update(1)

    return step


def todays_generations(engine: Engine, run_date: date) -> list[tables.Generation]:
    with session_scope(engine) as s:
        q = select(tables.Generation).where(tables.Generation.run_date == run_date)
        return list(s.exec(q).all())
