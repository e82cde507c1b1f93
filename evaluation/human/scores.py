"""Absolute human scores (0–10 per response): per-model mean, median and bootstrap CIs."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlmodel import Session

from evaluation.human.votes import DEFAULT_POLICY, VotePolicy, scored_models


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
    session: Session, policy: VotePolicy = DEFAULT_POLICY
) -> dict[str, list[float]]:
    """model -> effective 0–10 score votes under `policy` (see evaluation.human.votes)."""
    out: dict[str, list[float]] = defaultdict(list)
    for name, score in scored_models(session, policy):
        out[name].append(score)
    return dict(out)


def _boot_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of n_boot resamples (with replacement, of the same size).

    Scores take few distinct values (0–10), so a resample is fully described by how many
    times it drew each value: multinomial counts over the distinct values, the same
    distribution as drawing indices, at a cost independent of the number of votes. Many
    distinct values fall back to drawing indices, in chunks so memory stays bounded."""
    uniq, counts = np.unique(values, return_counts=True)
    if uniq.size <= 64:
        draws = rng.multinomial(values.size, counts / values.size, size=n_boot)
        return np.asarray(draws @ uniq / values.size, dtype=np.float64)
    chunk = max(1, 2_000_000 // values.size)
    parts = [
        values[rng.integers(0, values.size, size=(min(chunk, n_boot - i), values.size))].mean(
            axis=1
        )
        for i in range(0, n_boot, chunk)
    ]
    return np.concatenate(parts)


def _seed(model: str, values: np.ndarray) -> int:
    """A seed from the model and its sorted scores: equal votes, equal interval, whatever
    order they were stored in."""
    h = hashlib.sha256(model.encode())
    h.update(np.sort(values).tobytes())
    return int.from_bytes(h.digest()[:8], "big") >> 1


def score_summary(
    scores: Mapping[str, Sequence[float]],
    n_boot: int = 1000,
    seed: int | None = None,
    ci: float = 0.95,
) -> dict[str, ScoreSummary]:
    """Mean, median and a percentile-bootstrap CI of the mean for each model with votes.

    `seed=None` seeds each model's bootstrap from its own data (see `_seed`)."""
    alpha = (1 - ci) / 2
    out = {}
    for model in sorted(scores):
        values = np.sort(np.asarray(scores[model], dtype=np.float64))
        if values.size == 0:
            continue
        rng = np.random.default_rng(_seed(model, values) if seed is None else seed)
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
