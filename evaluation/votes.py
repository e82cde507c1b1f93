"""Effective human votes from the immutable vote log, and rater-quality filters.

The log keeps every event; a rater's effective vote on a pair is their latest event of that
kind (and, for scores, that target), and a 'remove' event retracts it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from storage.models import Generation, ModelRecord, RatingPair, Vote

PAIRWISE_CHOICES = ("A", "B", "tie", "both_bad")


@dataclass(frozen=True)
class EffectiveVote:
    """A rater's current vote on one pair (pairwise) or on one side of it (score)."""

    pair_id: int
    round_id: int
    rater_id: int
    kind: str
    choice: str | None
    target: str | None
    score: float | None
    model_a: str
    model_b: str
    created_at: datetime

    @property
    def target_model(self) -> str | None:
        """For a score vote, the model whose response was scored."""
        return {"A": self.model_a, "B": self.model_b}.get(self.target or "")


def effective_votes(session: Session, kind: str = "pairwise") -> list[EffectiveVote]:
    """Latest non-retracted event per (pair, rater[, target]) of one kind, oldest first."""
    rows = session.exec(
        select(Vote).where(Vote.kind == kind).order_by(Vote.created_at, Vote.id)  # type: ignore[arg-type]
    ).all()
    latest: dict[tuple[int, int, str | None], Vote] = {}
    for v in rows:
        key = (v.pair_id, v.rater_id, v.target if kind == "score" else None)
        latest[key] = v
    live = [v for v in latest.values() if v.action != "remove"]
    if kind == "pairwise":
        live = [v for v in live if v.choice in PAIRWISE_CHOICES]
    else:
        live = [v for v in live if v.score is not None and v.target in ("A", "B")]
    if not live:
        return []
    pairs = _pair_models(session, {v.pair_id for v in live})
    out = []
    for v in live:
        round_id, model_a, model_b = pairs[v.pair_id]
        out.append(
            EffectiveVote(
                pair_id=v.pair_id,
                round_id=round_id,
                rater_id=v.rater_id,
                kind=kind,
                choice=v.choice,
                target=v.target,
                score=float(v.score) if v.score is not None else None,
                model_a=model_a,
                model_b=model_b,
                created_at=v.created_at,
            )
        )
    out.sort(key=lambda e: e.created_at)
    return out


def _pair_models(session: Session, pair_ids: set[int]) -> dict[int, tuple[int, str, str]]:
    """pair id -> (round id, model name of A, model name of B)."""
    names = {m.id: m.name for m in session.exec(select(ModelRecord)).all()}
    gen_model: dict[int, int] = {}
    pairs = session.exec(select(RatingPair).where(RatingPair.id.in_(pair_ids))).all()  # type: ignore[union-attr]
    gen_ids = {p.generation_a_id for p in pairs} | {p.generation_b_id for p in pairs}
    for g in session.exec(select(Generation).where(Generation.id.in_(gen_ids))).all():  # type: ignore[union-attr]
        assert g.id is not None
        gen_model[g.id] = g.model_id
    return {
        p.id: (p.round_id, names[gen_model[p.generation_a_id]], names[gen_model[p.generation_b_id]])
        for p in pairs
        if p.id is not None
    }


def round_pairs(session: Session) -> dict[int, set[int]]:
    """round id -> ids of the pairs posted in it (a rater's assigned set by default)."""
    out: dict[int, set[int]] = defaultdict(set)
    for p in session.exec(select(RatingPair)).all():
        if p.id is not None:
            out[p.round_id].add(p.id)
    return dict(out)


def completed_only(
    votes: Iterable[EffectiveVote],
    assigned: Mapping[int, set[int]],
    by_rater: Mapping[int, set[int]] | None = None,
) -> list[EffectiveVote]:
    """Keep only raters who finished their assigned set, as the reference study did.

    `assigned` maps round id -> pair ids; a rater's set is every pair of each round they voted in,
    unless `by_rater` (rater id -> pair ids) says otherwise. Completion is judged per round.
    """
    votes = list(votes)
    done: dict[tuple[int, int], set[int]] = defaultdict(set)
    for v in votes:
        done[(v.rater_id, v.round_id)].add(v.pair_id)
    keep = []
    for v in votes:
        needed = assigned.get(v.round_id, set())
        if by_rater is not None and v.rater_id in by_rater:
            needed = by_rater[v.rater_id] & needed if needed else by_rater[v.rater_id]
        if needed <= done[(v.rater_id, v.round_id)]:
            keep.append(v)
    return keep


def cap_per_rater(votes: Iterable[EffectiveVote], max_votes: int) -> list[EffectiveVote]:
    """Keep each rater's first `max_votes` effective votes so no one rater dominates."""
    if max_votes < 1:
        raise ValueError(f"max_votes must be at least 1 (got {max_votes})")
    counts: dict[int, int] = defaultdict(int)
    keep = []
    for v in sorted(votes, key=lambda e: e.created_at):
        if counts[v.rater_id] < max_votes:
            counts[v.rater_id] += 1
            keep.append(v)
    return keep
