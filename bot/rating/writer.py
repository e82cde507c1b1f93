"""Vote recording: every adapter's `bot.events.Vote` becomes an immutable `Vote` row,
committed before the platform event is acknowledged.

A vote names the message it was cast on; the writer maps the message to its pair in one batched
lookup: a pair's message takes the vote's pairwise `choice`, a response's score message
(`pair_message.target`) its `score`. Which vote counts is defined once, in
evaluation.human.votes (one effective vote per rater per pair, per response in score mode;
events in id order; the latest 'add' wins; a removal retracts the choice it names). The writer
folds the stored events with that module's `fold_events`, and stores a removal only when it
retracts the rater's current vote (removing 🅰️ after switching to 🅱️ changes nothing), so
every reader computes the same votes the writer acknowledged. The server decides what a
duplicate is: an 'add' of the choice (or score) the rater already has is "duplicate" and
stored nowhere, whatever its event key says, so one row is stored per change of mind and a
client cannot multiply rows by re-sending a vote with made-up keys. Every other event key
is stored (as the vote's `event_key` or, for a removal that retracts nothing or a vote on a
closed round from a platform that redelivers events, a `ProcessedEvent`), so a redelivered
event is recognised and never counted twice.

Rater ids are HMAC-SHA256(salt, "platform:user id"). The salt is a secret kept apart from the
database (env `SLAM_RATER_SALT`, else a random one generated once into `.slam/rater_salt`,
mode 0600), so a copy of the database alone cannot be matched against a workspace's member
list. Changing the salt makes returning raters look new; their past votes stay valid.

One writer task per event loop takes whatever events are waiting and writes them in one
transaction (group commit), which keeps SQLite fast under a burst of concurrent reactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from bot.events import Vote
from core.errors import short
from evaluation.human import fold, fold_events
from storage.db import begin_write
from storage.models import PairMessage, ProcessedEvent, Rater, RatingPair, RatingRound, utcnow
from storage.models import Vote as VoteRow

log = logging.getLogger(__name__)


def _table(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


@dataclass(frozen=True)
class VoteOutcome:
    """What happened to one vote: recorded, duplicate, ignored (a removal that retracts
    nothing), not_a_pair, not_a_vote, closed (round closed) or rate_limited."""

    status: str
    pair_id: int | None = None
    choice: str | None = None

    @property
    def counted(self) -> bool:
        return self.status == "recorded"


@dataclass(frozen=True)
class _Item:
    vote: Vote
    rater_hash: str


class VoteWriter:
    """Serializes vote writes; `submit` returns once the vote is committed."""

    def __init__(self, engine: Engine, max_batch: int = 500):
        self.engine = engine
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[_Item, asyncio.Future[VoteOutcome]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._messages: dict[tuple[str, str, str], tuple[int, int, str | None]] = {}
        self._raters: dict[tuple[str, str], int] = {}
        self.batches = 0

    async def submit(self, vote: Vote, rater_hash: str) -> VoteOutcome:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._task is None or self._task.get_loop() is not loop:
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._run(self._queue))
        fut: asyncio.Future[VoteOutcome] = loop.create_future()
        await self._queue.put((_Item(vote, rater_hash), fut))
        return await fut

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, queue: asyncio.Queue[tuple[_Item, asyncio.Future[VoteOutcome]]]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                outcomes = await asyncio.to_thread(self.write_batch, [i for i, _ in batch])
            except Exception as exc:  # the events were not committed: fail them (no ack)
                self._raters.clear()
                # Each submitter gets the exception and reports it (the adapter's one line,
                # Slack's retry); the traceback is for debugging only.
                log.warning("vote batch of %d failed: %s", len(batch), short(str(exc), 200),
                            exc_info=log.isEnabledFor(logging.DEBUG))  # fmt: skip
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), out in zip(batch, outcomes, strict=True):
                if not fut.done():
                    fut.set_result(out)

    def write_batch(self, items: list[_Item]) -> list[VoteOutcome]:
        """Write a batch in one transaction; on a unique-key race, fall back to one by one."""
        self.batches += 1
        try:
            with self.engine.begin() as conn:
                begin_write(conn)  # SQLite: the reads below see what this batch commits onto
                return self._write(conn, items)
        except IntegrityError:
            self._raters.clear()  # ids created in the rolled-back transaction are gone
            if len(items) == 1:  # another replica stored this event key first
                return [VoteOutcome("duplicate")]
            return [out for item in items for out in self.write_batch([item])]
        except Exception:
            self._raters.clear()
            raise

    def _lookup_messages(self, conn: Connection, items: list[_Item]) -> None:
        missing = {(i.vote.platform, i.vote.channel, i.vote.message_ref)
                   for i in items} - self._messages.keys()  # fmt: skip
        if not missing:
            return
        pm, rp = _table(PairMessage), _table(RatingPair)
        rows = conn.execute(
            select(pm.c.platform, pm.c.channel, pm.c.message_ref, pm.c.pair_id,
                   rp.c.round_id, pm.c.target)
            .join(rp, rp.c.id == pm.c.pair_id)
            .where(pm.c.message_ref.in_(sorted({m[2] for m in missing})))
        ).all()  # fmt: skip
        for plat, chan, ref, pair_id, round_id, target in rows:
            # Only hits are cached: a message may become a pair message later.
            self._messages[(plat, chan, ref)] = (pair_id, round_id, target)

    def _rater_ids(self, conn: Connection, platform_hashes: set[tuple[str, str]]) -> None:
        missing = platform_hashes - self._raters.keys()
        if not missing:
            return
        rt = _table(Rater)

        def load() -> None:
            q = select(rt.c.id, rt.c.platform, rt.c.user_hash).where(
                rt.c.user_hash.in_(sorted(h for _, h in missing))
            )
            for rid, plat, h in conn.execute(q).all():
                if (plat, h) in missing:
                    self._raters[(plat, h)] = rid

        load()
        new = missing - self._raters.keys()
        if new:
            now = utcnow()
            conn.execute(insert(rt), [{"platform": p, "user_hash": h, "created_at": now}
                                      for p, h in sorted(new)])  # fmt: skip
            load()

    def _write(self, conn: Connection, items: list[_Item]) -> list[VoteOutcome]:
        """Bulk reads, decisions in memory in arrival order, bulk inserts: ~7 statements per
        batch instead of several per vote."""
        vt, pe, rr = _table(VoteRow), _table(ProcessedEvent), _table(RatingRound)
        self._lookup_messages(conn, items)
        out: list[VoteOutcome | None] = [None] * len(items)
        todo: list[tuple[int, _Item, int, int, str | None, str | None, int | None]] = []
        for n, item in enumerate(items):
            v = item.vote
            where = self._messages.get((v.platform, v.channel, v.message_ref))
            if where is None:
                out[n] = VoteOutcome("not_a_pair")
                continue
            pair_id, round_id, target = where
            # the message decides: a pair's message takes a choice, a score message a score
            choice, score = (v.choice, None) if target is None else (None, v.score)
            if choice is None and score is None:
                out[n] = VoteOutcome("not_a_vote", pair_id)
                continue
            todo.append((n, item, pair_id, round_id, target, choice, score))
        if not todo:
            return [o or VoteOutcome("not_a_pair") for o in out]
        rounds = {t[3] for t in todo}
        q_open = select(rr.c.id).where(rr.c.id.in_(rounds), rr.c.status == "open")
        open_rounds = set(conn.execute(q_open).scalars())
        self._rater_ids(conn, {(t[1].vote.platform, t[1].rater_hash) for t in todo})
        pair_ids = {t[2] for t in todo}
        rater_ids = {self._raters[(t[1].vote.platform, t[1].rater_hash)] for t in todo}
        # Another replica may be writing the same raters' votes: lock their rows (PostgreSQL;
        # on SQLite, `begin_write` holds the database's write lock already), in id order so
        # two batches never deadlock, so the current votes read below are still current when
        # this batch commits, and so are the event keys read after them.
        rt = _table(Rater)
        conn.execute(
            select(rt.c.id)
            .where(rt.c.id.in_(sorted(rater_ids)))
            .order_by(rt.c.id)
            .with_for_update()
        ).all()
        # Which events are stored already: read under the raters' locks, so an event another
        # replica stored while this one waited is seen here (a duplicate, not re-judged).
        keys = sorted({t[1].vote.event_key for t in todo})
        seen = set(conn.execute(select(vt.c.event_key).where(vt.c.event_key.in_(keys))).scalars())
        seen |= set(conn.execute(select(pe.c.event_id).where(pe.c.event_id.in_(keys))).scalars())
        latest = fold_events(conn.execute(
            select(vt.c.id, vt.c.pair_id, vt.c.rater_id, vt.c.kind, vt.c.action, vt.c.choice,
                   vt.c.target, vt.c.score)
            .where(vt.c.pair_id.in_(pair_ids), vt.c.rater_id.in_(rater_ids))
            .order_by(vt.c.id)
        ).all())  # fmt: skip
        votes, processed = [], []
        now = utcnow()
        for n, item, pair_id, round_id, target, choice, score in todo:
            r = item.vote
            if r.event_key in seen:
                out[n] = VoteOutcome("duplicate", pair_id, choice)
                continue
            seen.add(r.event_key)
            if round_id not in open_rounds:
                if r.replayable:
                    processed.append({"platform": r.platform, "event_id": r.event_key,
                                      "created_at": now})  # fmt: skip
                out[n] = VoteOutcome("closed", pair_id, choice)
                continue
            rater_id = self._raters[(r.platform, item.rater_hash)]
            kind = "pairwise" if target is None else "score"
            key = (pair_id, rater_id, kind, target)
            current = latest.get(key)
            action = "add" if r.added else "remove"
            after = fold(current, action, choice, score)
            if not r.added and after == current:  # retracts nothing: never stored as a vote
                if r.replayable:
                    processed.append({"platform": r.platform, "event_id": r.event_key,
                                      "created_at": now})  # fmt: skip
                out[n] = VoteOutcome("ignored", pair_id, choice)
                continue
            if r.added and after == current:  # the vote the rater has already: nothing new
                out[n] = VoteOutcome("duplicate", pair_id, choice)
                continue
            if after is None:
                latest.pop(key, None)
            else:
                latest[key] = after
            votes.append({"pair_id": pair_id, "rater_id": rater_id, "kind": kind,
                          "action": action, "choice": choice, "target": target,
                          "score": score, "event_key": r.event_key, "created_at": now})  # fmt: skip
            out[n] = VoteOutcome("recorded", pair_id, choice)
        if votes:
            conn.execute(insert(vt), votes)
        if processed:
            conn.execute(insert(pe), processed)
        return [o or VoteOutcome("not_a_pair") for o in out]
