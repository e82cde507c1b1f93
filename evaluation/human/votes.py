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
   folding the stream in id order (`fold`; a whole log: `fold_events`): an add sets the
   vote, a matching removal clears it.
4. **Usable.** A pairwise vote counts when its choice is one of A, B, tie, both_bad; a score
   vote when it has a score and a side (A or B).
5. **Completion filter** (`[evaluation] require_completion`, off by default): a rater's votes in
   a round count only once they rated every pair of that round, as the reference study did.
6. **Per-rater cap** (`[evaluation] max_votes_per_rater`, off by default): a rater's first N
   effective votes count (first by event id), so no one rater dominates.
7. **As of** a moment (the digest's "through the end of the day"): events stored before it.
8. **Gold pairs never count.** A gold pair (`rating_pair.kind = 'gold'`: the reference's answer
   against a clearly bad one) checks the rater, not the models: its votes are left out of every
   count, rating and score; only rule 9 reads them (`gold_votes`).
9. **Rater quality** (`[evaluation] rater_quality`, 'exclude' by default): a rater is flagged by
   the *gold rule* when they failed at least 2 gold pairs and at least half of the gold pairs
   they rated (a tie or "both bad" on a gold pair is a failure), or by the *chance rule* when
   their decisive votes (A or B) agree with the consensus no better than chance: with p the
   consensus probability that the model shown as A wins (Bradley–Terry over everyone else's
   counted votes) and s = +1 for a vote for A, −1 for B, z = Σ(2p−1)s / √Σ(2p−1)² is about 0
   for a coin and about √V (V = Σ(2p−1)²) for a rater who agrees with the consensus; the rule
   flags z < 1 once V ≥ 16 (a careful rater then scores about 4). A flagged rater's votes are
   left out ('exclude') or only counted in the report ('report'). Nothing is deleted and the
   rule is re-evaluated on every read: a rater whose later gold answers are right, or whose
   votes come to agree with the consensus, counts again, and `rater_quality = "report"`
   restores every vote. Reports show how many raters and votes each rule affected, never who.

**Scope.** A policy's `scope` (evaluation.human.scope) narrows every count to one feature's
pairs and, optionally, one slice of its inputs; rules 5–6 are applied over the whole log first
(a rater's round and cap do not depend on which feature is being read), rule 9 always judges
raters over every feature.

Rules 2–4, 7 and 8 run in SQL (a window function and a NOT EXISTS, SQLite ≥ 3.25 and
PostgreSQL), so a report over 100,000 votes reads narrow tuples; rules 5–6 need per-rater
bookkeeping and run in Python over `EffectiveVote` rows; rule 9 reads one aggregate row per
rater, model pair and choice and fits the leave-one-rater-out consensus in one batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlmodel import Session

from core.config import EvaluationConfig
from evaluation.human.scope import EVERYTHING, Scope
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
    """One event applied to a stream's current vote (rule 3): `fold_events` and the writer's
    decisions use it; the SQL below computes the same thing for every stream at once."""
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


StreamKey = tuple[int, int, str, str | None]  # (pair, rater, kind, target: score votes only)
# A stored vote event as the readers select it: (id, pair, rater, kind, action, choice,
# target, score), the vote table's columns in that order.
VoteEvent = tuple[int, int, int, str, str, str | None, str | None, float | None]


def fold_events(
    events: Iterable[VoteEvent], start: Mapping[StreamKey, Current] | None = None
) -> dict[StreamKey, Current]:
    """Events in id order folded per stream (rules 1–3) with `fold`: stream key -> its current
    vote, streams without one left out. `start`: the streams before these events (not
    changed). The one Python fold of the log: the vote writer (the raters' current votes
    before a batch), the web rating flow (a rater's vote on a pair) and the results service's
    tally all call it."""
    streams = dict(start) if start is not None else {}
    for _, pair, rater, kind, action, choice, target, score in events:
        key = (pair, rater, kind, target if kind == "score" else None)
        state = fold(streams.get(key), action, choice, score)
        if state is None:
            streams.pop(key, None)
        else:
            streams[key] = state
    return streams


@dataclass(frozen=True)
class VotePolicy:
    """Which effective votes count (rules 5–7 and 9; rule 8 always applies), and of which
    feature and slice (`scope`; the default is every vote the database holds)."""

    require_completion: bool = False
    max_votes_per_rater: int | None = None
    as_of: datetime | None = None
    rater_quality: bool = False  # rule 9: leave out the votes of flagged raters
    scope: Scope = EVERYTHING

    @classmethod
    def from_config(
        cls, ev: EvaluationConfig, as_of: datetime | None = None, scope: Scope = EVERYTHING
    ) -> VotePolicy:
        return cls(ev.require_completion, ev.max_votes_per_rater, as_of,
                   ev.rater_quality == "exclude", scope)  # fmt: skip

    @property
    def plain(self) -> bool:
        """True when rules 2–4 and 7–8 are all: the fast SQL-only paths apply."""
        return (
            not self.require_completion
            and self.max_votes_per_rater is None
            and not self.rater_quality
        )

    @property
    def foldable(self) -> bool:
        """True when rules 5–6 are off: folding the log per stream (evaluation.human.tally) gives
        the counted votes, rule 9 included."""
        return not self.require_completion and self.max_votes_per_rater is None

    def key(self) -> tuple[Any, ...]:
        return (self.require_completion, self.max_votes_per_rater, self.as_of, self.rater_quality,
                *self.scope.key())  # fmt: skip


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
    kind: str,
    *,
    as_of: datetime | None = None,
    round_id: int | None = None,
    pairs: Literal["models", "gold"] = "models",
    scope: Scope = EVERYTHING,
) -> EffectiveFrom:
    """The FROM clause and WHERE conditions of the effective votes of `kind` (rules 1–4, 7),
    on model pairs (rule 8: never on gold pairs) or, for rule 9, on gold pairs only; `scope`:
    only the pairs of one feature (and slice)."""
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
    conds.append(RP.kind == "gold" if pairs == "gold" else RP.kind != "gold")
    if round_id is not None:
        conds.append(RP.round_id == round_id)
    ga, gb = _GEN.alias("ga"), _GEN.alias("gb")
    conds += scope.generation_conditions(ga.c)
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
    session: Session,
    kind: str,
    as_of: datetime | None,
    round_id: int | None,
    scope: Scope = EVERYTHING,
) -> list[EffectiveVote]:
    e = effective_from(kind, as_of=as_of, round_id=round_id, scope=scope)
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
    """The effective votes of one kind under `policy`, in event-id order (rules 1–7, 9).

    With `round_id`, only that round's pairs, counted as over the whole log: the completion
    filter judges by round anyway, and the per-rater cap counts a rater's votes in every round.
    The policy's scope likewise: rules 5–6 run over the whole log, then the scope's pairs stay.
    """
    capped = policy.max_votes_per_rater is not None
    in_sql = policy.foldable  # no rule 5–6 bookkeeping: the scope can go into the SQL
    votes = _sql_votes(session, kind, policy.as_of, None if capped else round_id,
                       policy.scope if in_sql else EVERYTHING)  # fmt: skip
    if policy.require_completion:
        votes = completed_only(votes, round_pairs(session))
    if policy.max_votes_per_rater is not None:
        votes = cap_per_rater(votes, policy.max_votes_per_rater)
        if round_id is not None:
            votes = [v for v in votes if v.round_id == round_id]
    if not in_sql and (keep := policy.scope.pair_ids(session)) is not None:
        votes = [v for v in votes if v.pair_id in keep]
    if policy.rater_quality:
        flagged = rater_quality(session, policy).flagged
        votes = [v for v in votes if v.rater_id not in flagged]
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
        e = effective_from("pairwise", as_of=policy.as_of, scope=policy.scope)
        rows = session.connection().execute(e.counts(e.model_a.name, e.model_b.name, e.vote.choice))
        out = [(a, b, c, int(n)) for a, b, c, n in rows]
    elif policy.rater_quality and not (policy.require_completion or policy.max_votes_per_rater):
        flagged = rater_quality(session, policy).flagged
        kept: dict[tuple[str, str, str], int] = defaultdict(int)
        for rater, a, b, c, n in rater_tallies(session, policy):
            if rater not in flagged:
                kept[(a, b, c)] += n
        out = [(a, b, c, n) for (a, b, c), n in kept.items()]
    else:
        counts: dict[tuple[str, str, str], int] = defaultdict(int)
        for v in effective_votes(session, "pairwise", policy):
            counts[(v.model_a, v.model_b, v.choice or "")] += 1
        out = [(a, b, c, n) for (a, b, c), n in counts.items()]
    return sorted(out)


def scored_models(session: Session, policy: VotePolicy = DEFAULT_POLICY) -> list[tuple[str, float]]:
    """(scored model, 0–10 score) of every effective score vote, in event-id order."""
    if policy.plain:
        e = effective_from("score", as_of=policy.as_of, scope=policy.scope)
        model = case((e.vote.target == "A", e.model_a.name), else_=e.model_b.name)
        rows = session.connection().execute(e.select(model, e.vote.score))
        return [(m, float(s)) for m, s in rows]
    return [
        (v.target_model, v.score)
        for v in effective_votes(session, "score", policy)
        if v.target_model is not None and v.score is not None
    ]


def round_pairs(session: Session) -> dict[int, set[int]]:
    """round id -> ids of the pairs posted in it when it opened (a rater's assigned set by
    default; pairs drawn later for one rater, and gold pairs, are not in everyone's set)."""
    out: dict[int, set[int]] = defaultdict(set)
    q = select(RP.id, RP.round_id).where(RP.kind == "round")
    for pair_id, rnd in session.connection().execute(q).all():
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


# -- rule 9: rater quality ----------------------------------------------------------------------
GOLD_FAILS = 2  # gold rule: at least this many failed gold pairs, and at least half of them
CHANCE_INFO = 16.0  # chance rule: applies once V = Σ(2p−1)² over decisive votes reaches this
CHANCE_Z = 1.0  # chance rule: flagged when the agreement score z is below this
RULES = {
    "gold": "failed gold pairs",
    "chance": "agreed with the consensus no better than chance",
}


def gold_rule(gold_n: NDArray[Any], gold_failed: NDArray[Any]) -> NDArray[np.bool_]:
    """Raters the gold rule flags: at least GOLD_FAILS failed gold pairs, and at least half
    of the gold pairs they rated. Arrays of any shape (one entry per rater)."""
    gold_n, gold_failed = np.asarray(gold_n), np.asarray(gold_failed)
    return (gold_failed >= GOLD_FAILS) & (2 * gold_failed >= gold_n)


def chance_scores(
    ij: NDArray[np.int64],
    pts: NDArray[np.float64],
    own: NDArray[np.float64],
    total: NDArray[np.float64],
    n: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each rater's agreement with the consensus of everyone else: (z, V) per rater.

    ij, pts: the unique (model i, model j, points of i) rows; own: (R, rows) the rater's
    votes per row; total: (rows,) or (R, rows) everyone's. The consensus is the Bradley–Terry
    MAP fit (evaluation.human.ratings.fit_bt) of total − own, one batch for all raters. Over the
    rater's decisive rows (points 0 or 1), with p = P(i beats j) and s = +1 when i won:
    z = Σ n·(2p−1)·s / √V, V = Σ n·(2p−1)² (z = 0 when V = 0)."""
    from evaluation.human.ratings import fit_bt

    own = np.atleast_2d(np.asarray(own, dtype=np.float64))
    if own.shape[0] == 0 or len(ij) == 0:
        return np.zeros(own.shape[0]), np.zeros(own.shape[0])
    others = np.clip(np.broadcast_to(total, own.shape) - own, 0.0, None)
    r = fit_bt(ij, pts, others, n)
    p = 1.0 / (1.0 + np.exp(r[:, ij[:, 1]] - r[:, ij[:, 0]]))  # (R, rows) P(i beats j)
    w = 2.0 * p - 1.0
    decisive = (pts == 0.0) | (pts == 1.0)
    sign = np.where(pts == 1.0, 1.0, -1.0) * decisive
    t = (own * w * sign).sum(axis=1)
    v = (own * w * w * decisive).sum(axis=1)
    z = np.divide(t, np.sqrt(v), out=np.zeros_like(t), where=v > 0)
    return z, v


def chance_rule(z: NDArray[Any], info: NDArray[Any]) -> NDArray[np.bool_]:
    """Raters the chance rule flags: enough information (V ≥ CHANCE_INFO), z < CHANCE_Z."""
    return (np.asarray(info) >= CHANCE_INFO) & (np.asarray(z) < CHANCE_Z)


@dataclass(frozen=True)
class RaterQuality:
    """Rule 9's verdict on one snapshot of the votes. `flagged` holds internal rater ids for
    the readers that filter votes; what people see is `lines()`: counts, never who."""

    raters: int  # raters with counted model votes or gold votes
    votes: int  # counted pairwise model votes (rules 1–8)
    gold_votes: int
    gold_failed: int
    flagged: frozenset[int] = frozenset()
    # rule -> (raters it flags, their counted pairwise model votes); a rater may be in both
    by_rule: dict[str, tuple[int, int]] = field(default_factory=dict)
    excluded: bool = True  # whether the flagged raters' votes are left out

    def lines(self) -> list[str]:
        """Plain sentences for the report: how many raters and votes each rule affected."""
        if not self.raters:
            return ["Rater quality: no votes yet."]
        gold = (
            f"{self.gold_votes} gold-pair vote(s), {self.gold_failed} failed"
            if self.gold_votes
            else "no gold-pair votes yet"
        )
        out = [f"Rater quality: {self.raters} rater(s), {self.votes} counted pairwise vote(s); "
               f"{gold}."]  # fmt: skip
        for rule, text in RULES.items():
            r, v = self.by_rule.get(rule, (0, 0))
            out.append(f"- {text}: {r} rater(s), {v} vote(s)")
        what = "left out of the results" if self.excluded else "still counted (report only)"
        out.append(f"Flagged: {len(self.flagged)} rater(s); their votes are {what}.")
        return out


def gold_votes(session: Session, policy: VotePolicy = DEFAULT_POLICY) -> list[tuple[int, bool]]:
    """(rater id, passed) of every effective pairwise vote on a gold pair (rules 1–4, 7), in
    the policy's scope."""
    e = effective_from("pairwise", as_of=policy.as_of, pairs="gold", scope=policy.scope)
    q = e.select(e.vote.rater_id, e.vote.choice, e.pair.gold_answer)
    return [(rid, choice == answer) for rid, choice, answer in session.connection().execute(q)]


def rater_tallies(
    session: Session, policy: VotePolicy = DEFAULT_POLICY
) -> list[tuple[int, str, str, str, int]]:
    """(rater id, model A, model B, choice, votes) of the counted pairwise model votes under
    rules 1–8 (rule 9 is what reads them), in the policy's scope."""
    if not (policy.require_completion or policy.max_votes_per_rater):
        e = effective_from("pairwise", as_of=policy.as_of, scope=policy.scope)
        q = e.counts(e.vote.rater_id, e.model_a.name, e.model_b.name, e.vote.choice)
        return sorted((r, a, b, c, int(n)) for r, a, b, c, n in session.connection().execute(q))
    counts: dict[tuple[int, str, str, str], int] = defaultdict(int)
    for v in effective_votes(session, "pairwise", replace(policy, rater_quality=False)):
        counts[(v.rater_id, v.model_a, v.model_b, v.choice or "")] += 1
    return sorted((r, a, b, c, n) for (r, a, b, c), n in counts.items())


def assess_raters(
    tallies: Sequence[tuple[int, str, str, str, int]],
    gold: Sequence[tuple[int, bool]],
    excluded: bool = True,
) -> RaterQuality:
    """Rule 9 over per-rater tallies and gold answers (what `rater_quality` reads)."""
    from evaluation.human.ratings import _points

    gold_n: dict[int, int] = defaultdict(int)
    gold_bad: dict[int, int] = defaultdict(int)
    for rid, passed in gold:
        gold_n[rid] += 1
        gold_bad[rid] += not passed
    raters = sorted({t[0] for t in tallies} | set(gold_n))
    votes_of: dict[int, int] = defaultdict(int)
    rows: dict[tuple[str, str, float], int] = {}
    entries: list[tuple[int, int, float]] = []  # (rater index, row, votes)
    where = {r: k for k, r in enumerate(raters)}
    for rid, a, b, choice, n in tallies:
        votes_of[rid] += n
        pts = _points(choice, "tie")
        if pts is None or a == b:
            continue
        key = (a, b, pts) if a < b else (b, a, 1.0 - pts)
        entries.append((where[rid], rows.setdefault(key, len(rows)), float(n)))
    flags: dict[str, set[int]] = {
        "gold": {r for r in raters if gold_rule(np.array(gold_n[r]), np.array(gold_bad[r]))},
        "chance": set(),
    }
    if rows:
        models = sorted({k[0] for k in rows} | {k[1] for k in rows})
        idx = {m: i for i, m in enumerate(models)}
        ij = np.array([(idx[a], idx[b]) for a, b, _ in rows], dtype=np.int64)
        pts_arr = np.array([p for _, _, p in rows])
        own = np.zeros((len(raters), len(rows)))
        for k, row, w in entries:
            own[k, row] += w
        # Only raters with enough decisive votes can reach V ≥ CHANCE_INFO (each adds ≤ 1).
        decisive = own[:, (pts_arr == 0.0) | (pts_arr == 1.0)].sum(axis=1)
        which = np.flatnonzero(decisive >= CHANCE_INFO)
        if which.size:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"):  # many tiny solves
                z, v = chance_scores(ij, pts_arr, own[which], own.sum(axis=0), len(models))
            hits = chance_rule(z, v)
            flags["chance"] = {raters[int(k)] for k in which[hits]}
    flagged = frozenset(flags["gold"] | flags["chance"])
    return RaterQuality(
        raters=len(raters),
        votes=sum(votes_of.values()),
        gold_votes=sum(gold_n.values()),
        gold_failed=sum(gold_bad.values()),
        flagged=flagged,
        by_rule={rule: (len(ids), sum(votes_of[r] for r in ids)) for rule, ids in flags.items()},
        excluded=excluded,
    )


def rater_quality(session: Session, policy: VotePolicy = DEFAULT_POLICY) -> RaterQuality:
    """Rule 9 for one snapshot: which raters the gold and chance rules flag, over the votes
    rules 1–8 count (as of `policy.as_of`) in every feature, whatever the policy's scope: a
    rater's reliability is about the rater (evaluation.human.scope)."""
    inner = replace(policy, rater_quality=False, scope=EVERYTHING)
    return assess_raters(rater_tallies(session, inner), gold_votes(session, inner),
                         excluded=policy.rater_quality)  # fmt: skip
