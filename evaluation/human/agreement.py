"""Agreement: among raters (Krippendorff's alpha, pairwise agreement) and between the crowd's
majority and each LLM judge on the same pairs (agreement rate and Cohen's kappa)."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlmodel import Session, select

from evaluation.human.votes import EffectiveVote, VotePolicy, effective_votes
from storage.models import JudgeScore, RatingPair

LABELS = ("A", "B", "tie")


def _label(choice: str | None) -> str | None:
    """Pairwise vote -> A / B / tie ('both bad' is a tie, as in the ratings)."""
    if choice in ("A", "B", "tie"):
        return choice
    return "tie" if choice == "both_bad" else None


def krippendorff_alpha(votes: Iterable[EffectiveVote]) -> float | None:
    """Interval-level Krippendorff's alpha of 0–10 score votes (units: each scored response).

    None when no response was scored by two raters or all scores are equal (undefined).
    """
    import krippendorff

    cells = [(v.rater_id, (v.pair_id, v.target), v.score) for v in votes if v.score is not None]
    raters = sorted({c[0] for c in cells})
    units = sorted({c[1] for c in cells}, key=lambda u: (u[0], u[1] or ""))
    per_unit = Counter(c[1] for c in cells)
    if not any(n >= 2 for n in per_unit.values()) or len({c[2] for c in cells}) < 2:
        return None
    r_idx = {r: i for i, r in enumerate(raters)}
    u_idx = {u: i for i, u in enumerate(units)}
    data = np.full((len(raters), len(units)), np.nan)
    for rater, unit, score in cells:
        data[r_idx[rater], u_idx[unit]] = score
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="interval"))


def rater_agreement(votes: Iterable[EffectiveVote]) -> float | None:
    """Share of rater pairs that gave the same pairwise verdict on the same pair."""
    by_pair: dict[int, list[str]] = defaultdict(list)
    for v in votes:
        label = _label(v.choice)
        if label is not None:
            by_pair[v.pair_id].append(label)
    same = total = 0
    for labels in by_pair.values():
        for a, b in itertools.combinations(labels, 2):
            total += 1
            same += a == b
    return same / total if total else None


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two label sequences; None when undefined (empty, or chance = 1)."""
    if len(a) != len(b):
        raise ValueError("cohen_kappa: the two label sequences differ in length")
    if not a:
        return None
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def crowd_majority(votes: Iterable[EffectiveVote]) -> dict[int, str]:
    """pair id -> the plurality verdict; pairs whose top verdicts tie in count are left out."""
    return majority_of_counts(Counter((v.pair_id, str(v.choice)) for v in votes))


def majority_of_counts(counts: Mapping[tuple[int, str], int]) -> dict[int, str]:
    """`crowd_majority` from per-pair counts of effective votes ((pair id, choice) -> votes,
    as `VoteTally.pair_counts` gives) instead of the votes themselves."""
    per_label: dict[tuple[int, str], int] = defaultdict(int)
    for (pair, choice), n in counts.items():
        label = _label(choice)
        if label is not None and n > 0:
            per_label[(pair, label)] += n
    top: dict[int, tuple[int, str | None]] = {}  # pair -> (top count, its label; None: a tie)
    for (pair, label), n in per_label.items():
        best = top.get(pair)
        if best is None or n > best[0]:
            top[pair] = (n, label)
        elif n == best[0]:
            top[pair] = (n, None)
    return {pair: label for pair, (_, label) in top.items() if label is not None}


def judge_verdicts(
    session: Session, judge: str | None = None
) -> dict[str, dict[tuple[int, int], str]]:
    """judge -> (lower gen id, higher gen id) -> winner 'x' (lower) / 'y' / 'tie'.

    Only pairs judged and parsed in both orders count; the two answers are averaged, which
    cancels position bias (an inconsistent pair becomes a tie).
    """
    q = select(JudgeScore).where(JudgeScore.method == "pairwise", JudgeScore.parse_ok == True)  # noqa: E712
    if judge is not None:
        q = q.where(JudgeScore.judge == judge)
    points: dict[str, dict[tuple[int, int], dict[str, float]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for r in sorted(session.exec(q).all(), key=lambda r: r.id or 0):
        if r.score is None or r.generation_id is None or r.other_generation_id is None:
            continue
        if r.order in ("AB", "BA"):
            points[r.judge][(r.generation_id, r.other_generation_id)][r.order] = r.score
    out: dict[str, dict[tuple[int, int], str]] = {}
    for j, pairs in points.items():
        out[j] = {}
        for key, by_order in pairs.items():
            if len(by_order) == 2:
                mean = (by_order["AB"] + by_order["BA"]) / 2
                out[j][key] = "x" if mean > 0.5 else "y" if mean < 0.5 else "tie"
    return out


@dataclass(frozen=True)
class JudgeCrowdAgreement:
    judge: str
    n_pairs: int
    agreement: float | None
    kappa: float | None


def judge_crowd_agreement(
    session: Session, judge: str | None = None, policy: VotePolicy | None = None
) -> list[JudgeCrowdAgreement]:
    """How often each pairwise judge agrees with the crowd majority on the rated pairs (the
    effective votes under `policy`: the config's, as every other surface counts them)."""
    majority = crowd_majority(effective_votes(session, "pairwise", policy or VotePolicy()))
    pairs = {p.id: p for p in session.exec(select(RatingPair)).all() if p.id in majority}
    out = []
    for j, verdicts in sorted(judge_verdicts(session, judge).items()):
        crowd, model = [], []
        for pid, label in sorted(majority.items()):
            p = pairs.get(pid)
            if p is None:
                continue
            x, y = sorted((p.generation_a_id, p.generation_b_id))
            v = verdicts.get((x, y))
            if v is None:
                continue
            winner = {"x": x, "y": y}.get(v)
            crowd.append(label)
            model.append("tie" if winner is None else "A" if winner == p.generation_a_id else "B")
        n = len(crowd)
        agree = sum(a == b for a, b in zip(crowd, model, strict=True)) / n if n else None
        out.append(JudgeCrowdAgreement(j, n, agree, cohen_kappa(crowd, model)))
    return out


def score_alpha(session: Session) -> float | None:
    """Krippendorff's alpha over all effective 0–10 score votes."""
    return krippendorff_alpha(effective_votes(session, "score"))
