"""A round's pairs, kept per process and read incrementally: every page load scans the open
round's pairs (the round grows a pair per page in a new rater's hand), so re-reading them all
costs ~2 ms per 1,000 pairs per page. Pairs are immutable rows, so this process keeps the rows it
has read and each page asks only `count(*), max(id)` of the round (one indexed aggregate), then
the rows with a higher id. When the count does not add up (a transaction committed a lower id
after a higher one was read, as PostgreSQL's sequences allow), the round is read again in full:
the rows are always exactly the committed ones the statement sees.

Only committed rows enter the shared state: a session that has flushed pairs of its own (not
committed yet) reads the round in full, unshared (`mark_new_pairs` notes such a session), so a
rolled-back pair never lingers.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, NamedTuple

from sqlalchemy import bindparam, event, func
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from storage.models import RatingPair

_PT = RatingPair.__table__  # type: ignore[attr-defined]
_COLS = (_PT.c.id, _PT.c.kind, _PT.c.generation_a_id, _PT.c.generation_b_id,
         _PT.c.a_was_first_choice, _PT.c.round_id, _PT.c.masked)  # fmt: skip
_ALL = core_select(*_COLS).where(_PT.c.round_id == bindparam("round")).order_by(_PT.c.id)
_AFTER = (core_select(*_COLS)
          .where(_PT.c.round_id == bindparam("round"), _PT.c.id > bindparam("last"))
          .order_by(_PT.c.id))  # fmt: skip
_SHAPE = core_select(func.count(), func.max(_PT.c.id)).where(_PT.c.round_id == bindparam("round"))
_FLAG = "slam_new_pairs"


class PairRow(NamedTuple):
    """What the selection reads of a round's pair (a Core row, not an ORM object: a round
    holds a pair per rater and page, and every page scans them)."""

    id: int
    kind: str
    generation_a_id: int
    generation_b_id: int
    a_was_first_choice: bool
    round_id: int = 0
    masked: bool = False

    @property
    def generations(self) -> frozenset[int]:
        return frozenset((self.generation_a_id, self.generation_b_id))

    def shown(self) -> RatingPair:
        """The pair as a rater is shown it, without reading it again: a copy tied to no
        session holding the columns that never change once a pair is drawn (a rater's pair
        has no gold answer or decoy). Its channel message and reveal flag are not read."""
        if self.kind == "gold":
            raise ValueError("a gold pair's decoy is not in the index: read the pair")
        return RatingPair.model_construct(  # not validated (these are stored values), and
            id=self.id, round_id=self.round_id, kind=self.kind,  # no ORM state: never added
            generation_a_id=self.generation_a_id, generation_b_id=self.generation_b_id,
            a_was_first_choice=self.a_was_first_choice, masked=self.masked)


class _Rows(NamedTuple):
    rows: tuple[PairRow, ...]
    last: int


_CACHE: weakref.WeakKeyDictionary[Engine, dict[int, _Rows]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
reads = {"full": 0, "incremental": 0, "unchanged": 0}  # how pages read (tests, benchmarks)


def _full(conn: Any, round_id: int) -> tuple[PairRow, ...]:
    reads["full"] += 1
    return tuple(PairRow._make(r) for r in conn.execute(_ALL, {"round": round_id}))


def round_pairs(session: Session, round_id: int) -> tuple[PairRow, ...]:
    """The round's pairs in id order, as this session's transaction sees them."""
    session.flush()
    conn = session.connection()
    if session.info.get(_FLAG):  # pairs of its own, not committed: never shared
        return _full(conn, round_id)
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    with _LOCK:
        cached = _CACHE.setdefault(engine, {}).get(round_id)
    count, last = conn.execute(_SHAPE, {"round": round_id}).one()
    count, last = int(count or 0), int(last or 0)
    if cached is not None and len(cached.rows) == count and cached.last == last:
        reads["unchanged"] += 1
        return cached.rows
    rows: tuple[PairRow, ...] | None = None
    if cached is not None and cached.last <= last:
        more = tuple(PairRow._make(r) for r in conn.execute(
            _AFTER, {"round": round_id, "last": cached.last}))  # fmt: skip
        if len(cached.rows) + len(more) == count:
            reads["incremental"] += 1
            rows = cached.rows + more
    if rows is None:
        rows = _full(conn, round_id)
    with _LOCK:
        _CACHE.setdefault(engine, {})[round_id] = _Rows(rows, rows[-1].id if rows else 0)
    return rows


@event.listens_for(OrmSession, "after_flush")
def mark_new_pairs(session: OrmSession, _ctx: Any) -> None:
    """Note a session whose transaction holds pairs it has not committed yet."""
    if any(isinstance(o, RatingPair) for o in session.new):
        session.info[_FLAG] = True


@event.listens_for(OrmSession, "after_commit")
@event.listens_for(OrmSession, "after_soft_rollback")
def _clear(session: OrmSession, *_: Any) -> None:
    session.info.pop(_FLAG, None)


Groups = dict[tuple[int, int], list[tuple[frozenset[int], PairRow]]]


class Grouped(NamedTuple):
    """A round's model pairs for one set of answers: (lower model id, higher) -> its pairs
    (gold pairs and pairs of other answers left out) and the round's pairs seen so far."""

    rows: tuple[PairRow, ...]
    by_models: Groups


_GROUPED: dict[tuple[int, int], tuple[Any, Grouped]] = {}


def by_models(round_id: int, rows: tuple[PairRow, ...], model_of: dict[int, int],
              owner: Any) -> Groups:
    """`rows` grouped by model pair, each with its generation pair (`model_of`: generation
    id -> model id of the answers `owner` holds; kept while `owner` is the same object,
    extended as the round grows)."""
    key = (round_id, id(owner))
    with _LOCK:
        got = _GROUPED.get(key)
    done: tuple[PairRow, ...] = ()
    groups: Groups = {}
    if got is not None and got[0] is owner:
        old = got[1]
        n = len(old.rows)
        if n <= len(rows) and (n == 0 or rows[n - 1] == old.rows[-1]):
            if n == len(rows):
                return old.by_models
            done, groups = old.rows, {k: list(v) for k, v in old.by_models.items()}
    for p in rows[len(done):]:
        a, b = model_of.get(p.generation_a_id), model_of.get(p.generation_b_id)
        if p.kind == "gold" or a is None or b is None:
            continue
        groups.setdefault((min(a, b), max(a, b)), []).append((p.generations, p))
    with _LOCK:
        if len(_GROUPED) > 64:
            _GROUPED.clear()
        _GROUPED[key] = (owner, Grouped(rows, groups))
    return groups
