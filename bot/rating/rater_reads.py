"""What a rating page reads for one rater, without scanning the vote log: their own vote rows
(one indexed read, folded by evaluation.human.votes.fold_events into the same effective votes
as the SQL rules of effective_from), the round's pairs as plain rows, the votes on a few pairs,
and the round's answers memoised per process (bot.rating.posterior). bot.rating.selection
decides with them."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.rating import posterior, rounds
from bot.rating.pair_index import PairRow, round_pairs
from bot.rating.rounds import Candidate
from core.config import SlamConfig
from evaluation.human import PAIRWISE_CHOICES, effective_from, fold_events
from storage.models import Generation, PairMessage, RatingPair, RatingRound, Vote

_VT = Vote.__table__  # type: ignore[attr-defined]
_PT = RatingPair.__table__  # type: ignore[attr-defined]
_EVENT = (_VT.c.id, _VT.c.pair_id, _VT.c.rater_id, _VT.c.kind, _VT.c.action, _VT.c.choice,
          _VT.c.target, _VT.c.score)  # fmt: skip
_GA, _GB = Generation.__table__.alias("ga"), Generation.__table__.alias("gb")  # type: ignore[attr-defined]
# Built once: a statement's column proxies cost more to make than the indexed read itself.
_RATER_ROWS = (core_select(*_EVENT, _PT.c.round_id, _PT.c.kind, _PT.c.generation_a_id,
                           _PT.c.generation_b_id, _GA.c.model_id, _GB.c.model_id)
               .join(_PT, _PT.c.id == _VT.c.pair_id)
               .join(_GA, _GA.c.id == _PT.c.generation_a_id)
               .join(_GB, _GB.c.id == _PT.c.generation_b_id)
               .where(_VT.c.rater_id == bindparam("rater")).order_by(_VT.c.id))  # fmt: skip
_PAIR_EVENTS = (core_select(*_EVENT).join(_PT, _PT.c.id == _VT.c.pair_id)
                .where(_VT.c.pair_id.in_(bindparam("ids", expanding=True)),
                       _VT.c.kind == "pairwise", _PT.c.round_id == bindparam("round"),
                       _PT.c.kind != "gold").order_by(_VT.c.id))  # fmt: skip


_MT = PairMessage.__table__  # type: ignore[attr-defined]
_SEEN = (core_select(_MT.c.pair_id, _PT.c.generation_a_id, _PT.c.generation_b_id)
         .join(_PT, _PT.c.id == _MT.c.pair_id).where(_MT.c.rater_id == bindparam("rater")))


def pair_rows(session: Session, round_id: int) -> tuple[PairRow, ...]:
    """The round's pairs (bot.rating.pair_index: read incrementally, kept per process)."""
    return round_pairs(session, round_id)


def as_orm(session: Session, row: PairRow) -> RatingPair:
    pair = session.get(RatingPair, row.id)
    assert pair is not None
    return pair


def round_candidates(session: Session, cfg: SlamConfig, engine: Engine, rnd: RatingRound,
                      version: posterior.Version) -> list[Candidate]:  # fmt: skip
    """The round's answers, kept per process while the generations and models stay as they
    are (they are immutable rows; the version's `rest` holds their newest ids and counts)."""
    feat = rounds.round_feature(session, cfg, rnd)
    key = ("candidates", rnd.id, rnd.experiment_id, rnd.run_date,
           tuple(feat.models) if feat is not None and feat.models else None, version.rest)
    return posterior.shared(engine).memo(key, lambda: rounds.round_candidates(session, cfg, rnd))


def effective(streams: dict[Any, Any]) -> dict[Any, Any]:
    """The streams of `fold_events` that are effective votes (rules 1–4, 7): a pairwise
    choice of PAIRWISE_CHOICES, a score on response A or B (what effective_from keeps)."""
    return {k: v for k, v in streams.items()
            if (k[2] == "pairwise" and v[0] in PAIRWISE_CHOICES)
            or (k[2] == "score" and v[1] is not None and k[3] in ("A", "B"))}  # fmt: skip


@dataclass(frozen=True)
class RaterVotes:
    """One rater's votes, read once per page with one indexed query (their own rows) and folded
    by evaluation.human.votes.fold_events: the same effective votes as effective_from's, for
    the per-rater part of the selection (a cheap look-up, whatever the log's size)."""

    voted: frozenset[int]  # every pair they have any vote event on
    rated: dict[int, frozenset[int]]  # round -> pairs with an effective vote (any kind)
    model_pairs: Counter[frozenset[int]]  # model-id pairs -> effective pairwise votes
    generations: dict[int, frozenset[int]]  # pair -> its generation pair (voted pairs)
    gold: frozenset[int] = frozenset()  # the gold pairs among `voted`

    @classmethod
    def load(cls, session: Session, rater_id: int) -> RaterVotes:
        rows = session.connection().execute(_RATER_ROWS, {"rater": rater_id}).all()
        info = {r[1]: (r[8], r[9], r[10], r[11], r[12], r[13]) for r in rows}
        streams = effective(fold_events(tuple(r[:8]) for r in rows))
        rated: dict[int, set[int]] = defaultdict(set)
        mine: Counter[frozenset[int]] = Counter()
        for pair, _rater, kind, _target in streams:
            round_id, pkind, _a, _b, ma, mb = info[pair]
            rated[round_id].add(pair)
            if kind == "pairwise" and pkind != "gold":
                mine[frozenset((ma, mb))] += 1
        return cls(frozenset(info), {k: frozenset(v) for k, v in rated.items()}, mine,
                   {p: frozenset((v[2], v[3])) for p, v in info.items()},
                   frozenset(p for p, v in info.items() if v[1] == "gold"))  # fmt: skip

    def rated_in(self, round_id: int) -> frozenset[int]:
        return self.rated.get(round_id, frozenset())


def rated_sql(session: Session, rater_id: int, round_id: int) -> set[int]:
    """Pairs of the round with an effective vote (any kind, gold too) by the rater (the SQL
    form; `RaterVotes` computes the same from the rater's rows)."""
    out: set[int] = set()
    kinds: tuple[Literal["models", "gold"], ...] = ("models", "gold")
    for kind in ("pairwise", "score"):
        for pairs in kinds:
            e = effective_from(kind, round_id=round_id, pairs=pairs)
            q = e.select(e.vote.pair_id).where(e.vote.rater_id == rater_id)
            out |= set(session.connection().execute(q).scalars())
    return out


def seen_by(session: Session, rater_id: int,
          votes: RaterVotes) -> tuple[set[int], set[frozenset[int]]]:  # fmt: skip
    """Pairs sent to the rater (any round), and every generation pair they have been sent or
    voted on: a rater never gets the same generation pair twice."""
    rows = session.connection().execute(_SEEN, {"rater": rater_id}).all()
    sent = {p for p, _, _ in rows}
    gens = {frozenset((a, b)) for _, a, b in rows} | set(votes.generations.values())
    return sent, gens


def pair_votes(session: Session, round_id: int, pair_ids: Iterable[int] | None = None
                ) -> Counter[int]:  # fmt: skip
    """Effective pairwise votes per pair of the round (`pair_ids`: only those pairs, read and
    folded from their own rows: a look-up, not a scan of the log)."""
    if pair_ids is None:
        e = effective_from("pairwise", round_id=round_id)
        return Counter(dict(session.connection().execute(e.counts(e.vote.pair_id)).all()))
    ids = sorted(set(pair_ids))
    if not ids:
        return Counter()
    rows = session.connection().execute(_PAIR_EVENTS, {"ids": ids, "round": round_id})
    streams = effective(fold_events(rows))
    return Counter(pair for pair, _r, _k, _t in streams)
