"""The one definition of an effective human vote. Every reader (the vote writer, the chat
commands, the digest, the report, `slam score`) goes through this module.

The vote log keeps every event (storage.models.Vote, never updated). The rules:

1. **Streams.** A rater's events on one pair form a stream per kind: one pairwise stream
   (A / B / tie / both bad), and in score mode one stream per side (target A or B, 0–10).
2. **Order.** Events of a stream are ordered by their event id, the order the database stored
   them in — never by timestamp: replicas' clocks differ, the id sequence does not.
3. **Latest wins, a removal retracts what it names.** The effective vote of a stream is its
   latest 'add' event, unless a later 'remove' event names the same choice (pairwise) or score
   (score mode), or names none. Removing 🅰️ after switching to 🅱️ changes nothing. This equals
   folding the stream in id order (`fold`): an add sets the vote, a matching removal clears it.
4. **Usable.** A pairwise vote counts when its choice is one of A, B, tie, both_bad; a score
   vote when it has a score and a side (A or B).
5. **Completion filter** (`[evaluation] require_completion`, off by default): a rater's votes in
   a round count only once they rated every pair of that round, as the reference study did.
6. **Per-rater cap** (`[evaluation] max_votes_per_rater`, off by default): a rater's first N
   effective votes count (first by event id), so no one rater dominates.
7. **As of** a moment (the digest's "through the end of the day"): events stored before it.

Rules 2–4 run in SQL (a window function and a NOT EXISTS, SQLite ≥ 3.25 and PostgreSQL), so a
report over 100,000 votes reads narrow tuples; rules 5–6 need per-rater bookkeeping and run in
Python over `EffectiveVote` rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlmodel import Session

from core.config import EvaluationConfig
from storage.models import Generation, ModelRecord, RatingPair, Vote

PAIRWISE_CHOICES = ("A", "B", "tie", "both_bad")
SIDES = ("A", "B")

# Core table columns: plain SQL expressions with no ORM row objects behind them.
V = Vote.__table__.c  # type: ignore[attr-defined]
_VOTE = Vote.__table__  # type: ignore[attr-defined]
_PAIR = RatingPair.__table__  # type: ignore[attr-defined]
RP = _PAIR.c
_GEN = Generation.__table__  # type: ignore[attr-defined]
_MODEL = ModelRecord.__table__  # type: ignore[attr-defined]

Current = tuple[str | None, float | None]  # (choice, score) of the effective vote


def fold(
    state: Current | None, action: str, choice: str | None, score: float | None
) -> Current | None:
    """One event applied to a stream's current vote (rule 3): the writer and the tests use it;
    the SQL below computes the same thing for every stream at once."""
    if action == "add":
        return (choice, None if score is None else float(score))
    if state is None:
        return None
    if choice is None and score is None:
        return None  # a removal that names nothing retracts whatever is there
    if choice is not None and state[0] != choice:
        return state
    if score is not None and state[1] != float(score):
        return state
    return None


@dataclass(frozen=True)
class VotePolicy:
    """Which effective votes count (rules 5–7)."""

    require_completion: bool = False
    max_votes_per_rater: int | None = None
    as_of: datetime | None = None

    @classmethod
    def from_config(cls, ev: EvaluationConfig, as_of: datetime | None = None) -> VotePolicy:
        return cls(ev.require_completion, ev.max_votes_per_rater, as_of)

    @property
    def plain(self) -> bool:
        """True when rules 2–4 (and 7) are all: the fast SQL-only paths apply."""
        return not self.require_completion and self.max_votes_per_rater is None

    def key(self) -> tuple[Any, ...]:
        return (self.require_completion, self.max_votes_per_rater, self.as_of)


DEFAULT_POLICY = VotePolicy()


@dataclass(frozen=True)
class EffectiveVote:
    """A rater's current vote on one pair (pairwise) or on one side of it (score)."""

    id: int  # the event id of the effective 'add'
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
    """The effective votes of one kind as a FROM clause: the latest-add subquery (`vote`)
    joined to its pair and the two models' rows. `select` picks columns from these."""

    kind: str
    vote: Any
    pair: Any
    model_a: Any
    model_b: Any
    source: Any
    conditions: tuple[Any, ...]

    def select(self, *columns: Any) -> Select[Any]:
        """SELECT `columns` over the live effective votes, in event-id order."""
        return (
            select(*columns).select_from(self.source).where(*self.conditions).order_by(self.vote.id)
        )

    def counts(self, *columns: Any) -> Select[Any]:
        """SELECT `columns`, count(*) over the live effective votes, one row per distinct
        value (in no particular order: readers sort)."""
        return (
            select(*columns, func.count())
            .select_from(self.source)
            .where(*self.conditions)
            .group_by(*columns)
        )


def effective_from(
    kind: str, *, as_of: datetime | None = None, round_id: int | None = None
) -> EffectiveFrom:
    """The FROM clause and WHERE conditions of the effective votes of `kind` (rules 1–4, 7)."""
    if kind not in ("pairwise", "score"):
        raise ValueError(f"unknown vote kind {kind!r}; expected 'pairwise' or 'score'")
    stream = [V.pair_id, V.rater_id] + ([V.target] if kind == "score" else [])
    rn = func.row_number().over(partition_by=stream, order_by=V.id.desc())
    cols = [V.id, V.pair_id, V.rater_id, V.choice, V.target, V.score, V.created_at]
    adds = select(*cols, rn.label("rn")).where(V.kind == kind, V.action == "add")
    if as_of is not None:
        adds = adds.where(V.created_at < as_of)
    latest = adds.subquery("latest")
    rm = _VOTE.alias("rm")
    names_it = (
        or_(rm.c.choice.is_(None), rm.c.choice == latest.c.choice)
        if kind == "pairwise"
        else or_(rm.c.score.is_(None), rm.c.score == latest.c.score)
    )
    same_stream = [rm.c.pair_id == latest.c.pair_id, rm.c.rater_id == latest.c.rater_id]
    if kind == "score":
        same_stream.append(rm.c.target == latest.c.target)
    retracted = [rm.c.kind == kind, rm.c.action == "remove", rm.c.id > latest.c.id, names_it]
    if as_of is not None:
        retracted.append(rm.c.created_at < as_of)
    conds: list[Any] = [
        latest.c.rn == 1,
        ~exists(select(rm.c.id).where(and_(*same_stream, *retracted))),
    ]
    if kind == "pairwise":
        conds.append(latest.c.choice.in_(PAIRWISE_CHOICES))
    else:
        conds += [latest.c.score.is_not(None), latest.c.target.in_(SIDES)]
    if round_id is not None:
        conds.append(RP.round_id == round_id)
    ga, gb = _GEN.alias("ga"), _GEN.alias("gb")
    ma, mb = _MODEL.alias("ma"), _MODEL.alias("mb")
    source = (
        latest.join(_PAIR, RP.id == latest.c.pair_id)
        .join(ga, ga.c.id == RP.generation_a_id)
        .join(gb, gb.c.id == RP.generation_b_id)
        .join(ma, ma.c.id == ga.c.model_id)
        .join(mb, mb.c.id == gb.c.model_id)
    )
    return EffectiveFrom(kind, latest.c, RP, ma.c, mb.c, source, tuple(conds))


def _sql_votes(
    session: Session, kind: str, as_of: datetime | None, round_id: int | None
) -> list[EffectiveVote]:
    e = effective_from(kind, as_of=as_of, round_id=round_id)
    q = e.select(
        e.vote.id,
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
            id=vid,
            pair_id=pair_id,
            round_id=rnd,
            rater_id=rater_id,
            kind=kind,
            choice=choice,
            target=target,
            score=float(score) if score is not None else None,
            model_a=model_a,
            model_b=model_b,
            created_at=created_at,
        )
        for vid, pair_id, rnd, rater_id, choice, target, score, model_a, model_b, created_at in (
            session.connection().execute(q).all()
        )
    ]


def effective_votes(
    session: Session,
    kind: str = "pairwise",
    policy: VotePolicy = DEFAULT_POLICY,
    *,
    round_id: int | None = None,
) -> list[EffectiveVote]:
    """The effective votes of one kind under `policy`, in event-id order (rules 1–7).

    With `round_id`, only that round's pairs (the completion filter still judges by round).
    """
    votes = _sql_votes(session, kind, policy.as_of, round_id)
    if policy.require_completion:
        votes = completed_only(votes, round_pairs(session))
    if policy.max_votes_per_rater is not None:
        votes = cap_per_rater(votes, policy.max_votes_per_rater)
    return votes


def all_effective_votes(
    session: Session, policy: VotePolicy = DEFAULT_POLICY, *, round_id: int | None = None
) -> list[EffectiveVote]:
    """Pairwise and score votes together (for counts per rater and per pair)."""
    return effective_votes(session, "pairwise", policy, round_id=round_id) + effective_votes(
        session, "score", policy, round_id=round_id
    )


def pairwise_results(
    session: Session, policy: VotePolicy = DEFAULT_POLICY
) -> list[tuple[str, str, str, int]]:
    """(model A, model B, choice, number of effective votes) per distinct result, sorted.

    Under a plain policy this is one aggregate query: the database does the work, so it also
    runs well on a background thread (a row-by-row fetch would wait for the GIL at every row).
    """
    if policy.plain:
        e = effective_from("pairwise", as_of=policy.as_of)
        rows = session.connection().execute(e.counts(e.model_a.name, e.model_b.name, e.vote.choice))
        out = [(a, b, c, int(n)) for a, b, c, n in rows]
    else:
        counts: dict[tuple[str, str, str], int] = defaultdict(int)
        for v in effective_votes(session, "pairwise", policy):
            counts[(v.model_a, v.model_b, v.choice or "")] += 1
        out = [(a, b, c, n) for (a, b, c), n in counts.items()]
    return sorted(out)


def scored_models(session: Session, policy: VotePolicy = DEFAULT_POLICY) -> list[tuple[str, float]]:
    """(scored model, 0–10 score) of every effective score vote, in event-id order."""
    if policy.plain:
        e = effective_from("score", as_of=policy.as_of)
        model = case((e.vote.target == "A", e.model_a.name), else_=e.model_b.name)
        rows = session.connection().execute(e.select(model, e.vote.score))
        return [(m, float(s)) for m, s in rows]
    return [
        (v.target_model, v.score)
        for v in effective_votes(session, "score", policy)
        if v.target_model is not None and v.score is not None
    ]


def round_pairs(session: Session) -> dict[int, set[int]]:
    """round id -> ids of the pairs posted in it (a rater's assigned set by default)."""
    out: dict[int, set[int]] = defaultdict(set)
    for pair_id, rnd in session.connection().execute(select(RP.id, RP.round_id)).all():
        out[rnd].add(pair_id)
    return dict(out)


def completed_only(
    votes: Iterable[EffectiveVote],
    assigned: Mapping[int, set[int]],
    by_rater: Mapping[int, set[int]] | None = None,
) -> list[EffectiveVote]:
    """Rule 5: keep only raters who finished their assigned set, judged per round.

    `assigned` maps round id -> pair ids; a rater's set is every pair of each round they voted
    in, unless `by_rater` (rater id -> pair ids) says otherwise.
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
    """Rule 6: keep each rater's first `max_votes` effective votes (by event id)."""
    if max_votes < 1:
        raise ValueError(f"max_votes must be at least 1 (got {max_votes})")
    counts: dict[int, int] = defaultdict(int)
    keep = []
    for v in sorted(votes, key=lambda e: e.id):
        if counts[v.rater_id] < max_votes:
            counts[v.rater_id] += 1
            keep.append(v)
    return keep
