"""`slam score` as a function: run the judges and similarity metrics, then summarise per model
and against the humans. Async so the bot and the demo can await it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from core.errors import SlamError
from evaluation.auto import (
    JudgeRun,
    SimilarityRun,
    check_methods,
    check_metrics,
    load_corpus,
    run_judges,
    run_similarity,
)
from storage.db import session_scope

if TYPE_CHECKING:
    from core.config import ModelSpec, SlamConfig
    from evaluation.auto import JudgeTrust, MethodAgreement, OrderConsistency
    from evaluation.human import BTResult, JudgeCrowdAgreement
    from evaluation.results import Results


@dataclass
class ScoreResult:
    """What a scoring run did and what the stored judgements now say."""

    judge: str | None = None
    judge_run: JudgeRun | None = None
    similarity_run: SimilarityRun | None = None
    method_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    consistency: list[OrderConsistency] = field(default_factory=list)
    crowd_agreement: list[JudgeCrowdAgreement] = field(default_factory=list)
    # how far to trust each judge method (evaluation.auto.judge_trust), and the crowd's own
    # (decided pairs of different length, share won by the longer answer)
    judge_trust: list[JudgeTrust] = field(default_factory=list)
    crowd_length: tuple[int, float | None] = (0, None)
    human_label: str | None = None  # which human signal the meta-evaluation used
    human_scores: dict[str, float] = field(default_factory=dict)
    ratings: BTResult | None = None  # the results service's ratings, with their intervals
    meta: list[MethodAgreement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_list(value: str | None, allowed: tuple[str, ...], what: str) -> list[str]:
    """'a,b' -> ['a', 'b']; 'all' -> every allowed; 'none' or '' -> []."""
    if value is None or value.strip().lower() == "all":
        return list(allowed)
    items = [v.strip() for v in value.split(",") if v.strip()]
    if items == ["none"]:
        return []
    bad = [v for v in items if v not in allowed]
    if bad:
        raise SlamError(f"unknown {what} {bad}; expected any of {', '.join(allowed)}, all or none")
    return items


def human_signal(results: Results) -> tuple[dict[str, float], str | None, list[str]]:
    """Per-model human quality from the results service: Bradley–Terry ratings when there
    are pairwise votes, else the mean absolute score; ({}, None, []) when nobody has voted
    yet. Also the ratings' warnings."""
    bt = results.ratings
    if bt is not None and len(bt.ratings) >= 2:
        return {m: r.rating for m, r in bt.ratings.items()}, "Bradley–Terry rating", bt.warnings
    means = {m: s.mean for m, s in results.human_scores.items() if s.n}
    if means:
        return means, "mean score", []
    return {}, None, []


def _bar(desc: str, unit: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=None, desc=desc, unit=unit, disable=not enabled, leave=False)


async def score(
    engine: Engine,
    cfg: SlamConfig,
    judges: list[str],
    similarity: list[str],
    progress: bool = True,
    judge_max_tokens: int | None = None,
) -> ScoreResult:
    """Judge and compare every stored generation of the configured experiment (only what is
    not stored yet), then summarise all stored judgements."""
    judges = check_methods(judges)
    similarity = check_metrics(similarity)
    with session_scope(engine) as s:
        corpus = load_corpus(s, cfg.experiment.name)
    result = ScoreResult()
    if not corpus.generations:
        result.notes.append("no successful generations to score yet: run `slam generate`")
    if judges and corpus.generations:
        spec = cfg.judge_model
        if spec is None:
            raise SlamError(
                "no judge model: set [judge] model = '<a [[models]] name>' in slam.toml, or mark"
                " one model reference = true (the reference is the default judge)"
            )
        result.judge = spec.name
        note = judge_note(spec)
        if note:
            result.notes.append(note)
        bar = _bar(f"judging ({spec.name})", "answer", progress)

        def on_progress(method: str, n: int) -> None:
            if method == "start":
                bar.reset(total=n)
            else:
                bar.set_postfix_str(method, refresh=False)
                bar.update(n)

        try:
            result.judge_run = await run_judges(
                engine,
                corpus,
                spec,
                judges,
                max_tokens=judge_max_tokens or cfg.evaluation.judge_max_tokens,
                on_progress=on_progress,
            )
        finally:
            bar.close()
    if similarity and corpus.generations:
        bar = _bar("embedding", "text", progress)
        tick: Callable[[str, int], None] = lambda what, n: bar.update(n)  # noqa: E731
        try:
            result.similarity_run = await asyncio.to_thread(
                run_similarity, engine, corpus, similarity, cfg.evaluation, tick
            )
        finally:
            bar.close()
        result.notes.extend(result.similarity_run.notes)
    _summarise(engine, cfg, corpus.experiment_id, corpus.reference_model, result)
    return result


def _summarise(
    engine: Engine, cfg: SlamConfig, experiment_id: int, reference: str | None, res: ScoreResult
) -> None:
    from evaluation.auto import assess_judges, meta_evaluate, method_model_scores, order_consistency
    from evaluation.human import VotePolicy, judge_crowd_agreement
    from evaluation.results import Results

    with session_scope(engine) as s:
        res.method_scores = method_model_scores(s, experiment_id=experiment_id)
        res.consistency = order_consistency(s)
        policy = VotePolicy.from_config(cfg.evaluation)
        res.crowd_agreement = judge_crowd_agreement(s, policy=policy)
        res.judge_trust, res.crowd_length = assess_judges(
            s, policy, rounds=cfg.evaluation.bootstrap_rounds
        )
    results = Results(engine, cfg)
    res.ratings = results.ratings
    res.human_scores, res.human_label, warnings = human_signal(results)
    res.notes.extend(f"human ratings: {w}" for w in warnings)
    if res.human_scores:
        res.meta = meta_evaluate(
            res.method_scores, res.human_scores, k=cfg.evaluation.bottom_k, p=cfg.evaluation.rbo_p
        )
    else:
        res.notes.append(
            "no human votes yet: agreement with humans appears once raters have voted"
            " (`slam bot console`, Slack or Discord)"
        )


def judge_note(spec: ModelSpec) -> str | None:
    """A warning when the judge is a packaged base model (e.g. the offline default, where the
    reference, Gemma 3 270M, judges): its verdicts parse, but mean little."""
    from hosting.backends import is_base_builtin

    if spec.backend == "llamacpp" and is_base_builtin(spec.model):
        return (
            f"the judge {spec.name} ({spec.model}) is a base model, not an instruct model: its "
            "verdicts are weak. Set [judge] model to an instruct model — offline a [[models]] "
            "entry with model = 'builtin:smollm2-135m', as `slam demo` does, or GPT-4."
        )
    return None


__all__ = ["ScoreResult", "human_signal", "parse_list", "score"]

