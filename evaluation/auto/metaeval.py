"""Meta-evaluation: how well does each automated method rank models the way humans do?

As in the reference study's Figure 10, each method's ranking is compared with the human ranking
on the bottom-k models (the ones a team would drop) with the Jaccard index and rank-biased
overlap (RBO), plus Spearman and Kendall correlations over all models both rankings share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlmodel import Session


@dataclass(frozen=True)
class MethodAgreement:
    """Agreement of one automated method's model ranking with the human ranking."""

    method: str
    jaccard: float
    rbo: float
    spearman: float
    kendall: float
    n_models: int


def rank_models(scores: Mapping[str, float]) -> list[str]:
    """Models best first (higher score is better); equal scores are ordered by name."""
    return sorted(scores, key=lambda m: (-scores[m], m))


def _as_ranking(r: Sequence[str] | Mapping[str, float]) -> list[str]:
    return rank_models(r) if isinstance(r, Mapping) else list(r)


def jaccard_bottom_k(
    a_rank: Sequence[str] | Mapping[str, float], b_rank: Sequence[str] | Mapping[str, float], k: int
) -> float:
    """Jaccard index |A∩B| / |A∪B| of the k worst models of two rankings.

    A ranking is a list of models best first, or a {model: score} mapping (higher is better).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1 (got {k})")
    a = set(_as_ranking(a_rank)[::-1][:k])
    b = set(_as_ranking(b_rank)[::-1][:k])
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def rbo(list1: Sequence[str], list2: Sequence[str], p: float = 0.9) -> float:
    """Rank-biased overlap, extrapolated form RBO_ext (Webber, Moffat & Zobel 2010, eq. 32).

    Top-weighted: agreement at depth d weighs p^(d-1) as much as at depth 1. Handles lists of
    different lengths; items must be unique within a list. 1 = identical, 0 = disjoint.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1) (got {p})")
    if len(set(list1)) != len(list1) or len(set(list2)) != len(list2):
        raise ValueError("rbo: items must be unique within each list")
    short, long_ = (list1, list2) if len(list1) <= len(list2) else (list2, list1)
    s, ll = len(short), len(long_)
    if ll == 0:
        return 1.0
    if s == 0:
        return 0.0
    seen_s: set[str] = set()
    seen_l: set[str] = set()
    overlap = 0
    x: list[int] = [0]  # x[d] = overlap of the two prefixes of depth d (short list stops at s)
    for d in range(1, ll + 1):
        item_l = long_[d - 1]
        if d <= s:
            item_s = short[d - 1]
            if item_s == item_l:
                overlap += 1
            else:
                overlap += (item_s in seen_l) + (item_l in seen_s)
            seen_s.add(item_s)
        elif item_l in seen_s:
            overlap += 1
        seen_l.add(item_l)
        x.append(overlap)
    x_s, x_l = x[s], x[ll]
    total = sum(x[d] / d * p**d for d in range(1, ll + 1))
    total += sum(x_s * (d - s) / (s * d) * p**d for d in range(s + 1, ll + 1))
    return (1 - p) / p * total + ((x_l - x_s) / ll + x_s / s) * p**ll


def _correlations(a: list[float], b: list[float]) -> tuple[float, float]:
    """Spearman's ρ and Kendall's τ-b, as scipy.stats computes them.

    Plain numpy (a few dozen models at most): importing scipy.stats cost a report 0.7 s.
    """
    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan, math.nan  # undefined for constant input
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rho = float(np.corrcoef(_average_ranks(x), _average_ranks(y))[0, 1])
    i, j = np.triu_indices(len(x), k=1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    n0 = len(i)
    denom = math.sqrt((n0 - int(np.sum(sx == 0))) * (n0 - int(np.sum(sy == 0))))
    tau = float(np.sum(sx * sy)) / denom if denom else math.nan
    return rho, tau


def _average_ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank (scipy.stats.rankdata 'average')."""
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    # Each distinct value's mean rank: the ranks before it plus the middle of its own block.
    before = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.asarray((before + (counts + 1) / 2)[inverse], dtype=float)


def meta_evaluate(
    method_scores: Mapping[str, Mapping[str, float]],
    human_scores: Mapping[str, float],
    k: int = 10,
    p: float = 0.9,
) -> list[MethodAgreement]:
    """Compare every method's ranking with the human one on the models both have scores for.

    Bottom-k lists are ordered worst first, so RBO weighs agreement on the very worst most.
    When fewer than k models are shared, all of them are used (then Jaccard is trivially 1).
    A method's direction comes from the methods registry (evaluation.auto.registry): values of a
    lower-is-better method are negated before ranking, so "best" means the same for all.
    """
    from evaluation.auto.registry import find

    out = []
    for method, scores in method_scores.items():
        common = sorted(m for m in scores if m in human_scores and math.isfinite(scores[m]))
        if len(common) < 2:
            continue
        info = find(method)
        sign = -1.0 if info is not None and not info.higher_is_better else 1.0
        mine = {m: sign * scores[m] for m in common}
        human = {m: human_scores[m] for m in common}
        kk = min(k, len(common))
        worst_mine = rank_models(mine)[::-1][:kk]
        worst_human = rank_models(human)[::-1][:kk]
        rho, tau = _correlations([mine[m] for m in common], [human[m] for m in common])
        out.append(
            MethodAgreement(
                method=method,
                jaccard=jaccard_bottom_k(mine, human, kk),
                rbo=rbo(worst_mine, worst_human, p),
                spearman=rho,
                kendall=tau,
                n_models=len(common),
            )
        )
    return out


def method_model_scores(
    session: Session,
    experiment_id: int | None = None,
    judge: str | None = None,
    slice: str | None = None,
) -> dict[str, dict[str, float]]:
    """Per automated method (judge methods and similarity metrics), the mean score per model,
    over one experiment (a feature) and optionally one slice of its inputs, or everything."""
    from evaluation.auto.method_scores import judge_method_scores, similarity_method_scores

    out = judge_method_scores(session, experiment_id=experiment_id, judge=judge, slice=slice)
    out.update(similarity_method_scores(session, experiment_id=experiment_id, slice=slice))
    return out
