"""Absolute human scores (0–10 per response): per-model mean, median and bootstrap CIs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlmodel import Session

from evaluation.votes import (
    cap_per_rater,
    completed_only,
    effective_votes,
    round_pairs,
    scored_models,
)


@dataclass(frozen=True)
class ScoreSummary:
    model: str
    n: int
    mean: float
    median: float
    lo: float  # bootstrap CI of the mean
    hi: float
    values: list[float]

    def histogram(self) -> list[int]:
        """How many votes gave each score 0..10."""
        counts = [0] * 11
        for v in self.values:
            counts[min(10, max(0, round(v)))] += 1
        return counts


def load_absolute_scores(
    session: Session,
    *,
    require_completion: bool = False,
    max_votes_per_rater: int | None = None,
) -> dict[str, list[float]]:
    """model -> effective 0–10 score votes (latest per rater, pair and side; removals retract)."""
    out: dict[str, list[float]] = defaultdict(list)
    if not require_completion and max_votes_per_rater is None:
        for name, score in scored_models(session):  # fast path: no per-vote objects
            out[name].append(score)
        return dict(out)
    votes = effective_votes(session, "score")
    if require_completion:
        votes = completed_only(votes, round_pairs(session))
    if max_votes_per_rater is not None:
        votes = cap_per_rater(votes, max_votes_per_rater)
    for v in votes:
        model = v.target_model
        if model is not None and v.score is not None:
            out[model].append(v.score)
    return dict(out)


def _boot_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of n_boot resamples, in chunks so memory stays bounded for many votes."""
    chunk = max(1, 2_000_000 // values.size)
    parts = [
        values[rng.integers(0, values.size, size=(min(chunk, n_boot - i), values.size))].mean(
            axis=1
        )
        for i in range(0, n_boot, chunk)
    ]
    return np.concatenate(parts)


def score_summary(
    scores: Mapping[str, Sequence[float]], n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> dict[str, ScoreSummary]:
    """Mean, median and a percentile-bootstrap CI of the mean for each model with votes."""
    rng = np.random.default_rng(seed)
    alpha = (1 - ci) / 2
    out = {}
    for model in sorted(scores):
        values = np.asarray(scores[model], dtype=np.float64)
        if values.size == 0:
            continue
        mean = float(values.mean())
        if values.size > 1 and n_boot > 0:
            means = _boot_means(values, n_boot, rng)
            lo, hi = (float(x) for x in np.quantile(means, [alpha, 1 - alpha]))
        else:
            lo = hi = mean  # one vote says nothing about its own spread
        out[model] = ScoreSummary(
            model=model,
            n=int(values.size),
            mean=mean,
            median=float(np.median(values)),
            lo=lo,
            hi=hi,
            values=[float(v) for v in values],
        )
    return out
