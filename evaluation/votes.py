"""Effective human votes from the immutable vote log, and rater-quality filters.

The log keeps every event; a rater's effective vote on a pair is their latest event of that
kind (and, for scores, that target), and a 'remove' event retracts it.

"Latest" is decided in SQL with a window function (SQLite ≥ 3.25 and PostgreSQL) and model
names come from joins, so a report over 100,000 votes reads narrow tuples instead of building
an ORM object per event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlmodel import Session

from storage.models import Generation, ModelRecord, RatingPair, Vote

PAIRWISE_CHOICES = ("A", "B", "tie", "both_bad")

# Core table columns: plain SQL expressions with no ORM row objects behind them.
V = Vote.__table__.c  # type: ignore[attr-defined]
_PAIR = RatingPair.__table__  # type: ignore[attr-defined]
RP = _PAIR.c
_GEN = Generation.__table__  # type: ignore[attr-defined]
_MODEL = ModelRecord.__table__  # type: ignore[attr-defined]


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


@dataclass(frozen=True)
class EffectiveFrom:
    """The effective votes of one kind as a FROM clause: the latest-event subquery (`vote`)
    joined to its pair and the two models' rows. `select` picks columns from these."""

    kind: str
    vote: Any
    pair: Any
    model_a: Any
    model_b: Any
    source: Any

    def live(self) -> list[Any]:
        """WHERE conditions: the latest event of each key, not a removal, a usable vote."""
        v = self.vote
        conds = [v.rn == 1, v.action != "remove"]
        if self.kind == "pairwise":
            return [*conds, v.choice.in_(PAIRWISE_CHOICES)]
        return [*conds, v.score.is_not(None), v.target.in_(("A", "B"))]

    def select(self, *columns: Any) -> Select[Any]:
        """SELECT `columns` over the live effective votes, oldest first (ties by event id)."""
        v = self.vote
        return (
            select(*columns)
            .select_from(self.source)
            .where(*self.live())
            .order_by(v.created_at, v.id)
        )

    def counts(self, *columns: Any) -> Select[Any]:
        """SELECT `columns`, count(*) over the live effective votes, one row per distinct
        value, in order of first appearance (earliest vote, then lowest event id)."""
        v = self.vote
        return (
            select(*columns, func.count())
            .select_from(self.source)
            .where(*self.live())
            .group_by(*columns)
            .order_by(func.min(v.created_at), func.min(v.id))
        )


def effective_from(kind: str) -> EffectiveFrom:
    """Build the FROM clause of the effective votes of `kind` ('pairwise' or 'score')."""
    # One row per (pair, rater[, target]) is ranked first: the latest event by (created_at, id).
    part = [V.pair_id, V.rater_id] + ([V.target] if kind == "score" else [])
    rn = func.row_number().over(partition_by=part, order_by=(V.created_at.desc(), V.id.desc()))
    cols = [V.id, V.pair_id, V.rater_id, V.action, V.choice, V.target, V.score, V.created_at]
    latest = select(*cols, rn.label("rn")).where(V.kind == kind).subquery("latest")
    ga, gb = _GEN.alias("ga"), _GEN.alias("gb")
    ma, mb = _MODEL.alias("ma"), _MODEL.alias("mb")
    source = (
        latest.join(_PAIR, RP.id == latest.c.pair_id)
        .join(ga, ga.c.id == RP.generation_a_id)
        .join(gb, gb.c.id == RP.generation_b_id)
        .join(ma, ma.c.id == ga.c.model_id)
        .join(mb, mb.c.id == gb.c.model_id)
    )
    return EffectiveFrom(kind, latest.c, RP, ma.c, mb.c, source)


def effective_votes(session: Session, kind: str = "pairwise") -> list[EffectiveVote]:
    """Latest non-retracted event per (pair, rater[, target]) of one kind, oldest first
    (ties in time by event id)."""
    e = effective_from(kind)
    q = e.select(
        e.vote.pair_id,
        e.pair.round_id,
        e.vote.rater_id,
        e.vote.choice,
        e.vote.target,
        e.vote.score,
        e.model_a.name,
        e.model_b.name,
        e.vote.created_at,
    )
    return [
        EffectiveVote(
            pair_id=pair_id,
            round_id=round_id,
            rater_id=rater_id,
            kind=kind,
            choice=choice,
            target=target,
            score=float(score) if score is not None else None,
            model_a=model_a,
            model_b=model_b,
            created_at=created_at,
        )
        for pair_id, round_id, rater_id, choice, target, score, model_a, model_b, created_at in (
            session.connection().execute(q).all()
        )
    ]


def pairwise_results(session: Session) -> list[tuple[str, str, str, int]]:
    """(model A, model B, choice, number of effective votes) per distinct result, in order of
    first appearance. One aggregate query: the database does the work, so it also runs well
    on a background thread (a row-by-row fetch would wait for the GIL at every row)."""
    e = effective_from("pairwise")
    rows = session.connection().execute(e.counts(e.model_a.name, e.model_b.name, e.vote.choice))
    return [(a, b, c, int(n)) for a, b, c, n in rows]


def scored_models(session: Session) -> list[tuple[str, float]]:
    """(scored model, 0–10 score) of every effective score vote, oldest first."""
    e = effective_from("score")
    model = case((e.vote.target == "A", e.model_a.name), else_=e.model_b.name)
    rows = session.connection().execute(e.select(model, e.vote.score))
    return [(m, float(s)) for m, s in rows]


def round_pairs(session: Session) -> dict[int, set[int]]:
    """round id -> ids of the pairs posted in it (a rater's assigned set by default)."""
    out: dict[int, set[int]] = defaultdict(set)
    for pair_id, round_id in session.connection().execute(select(RP.id, RP.round_id)).all():
        out[round_id].add(pair_id)
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
