"""Vote recording: reactions become immutable `Vote` rows, committed before the platform
event is acknowledged.

Rules: one effective vote per rater per pair (per response in score mode): the latest event
wins and a removal retracts it. A removal is stored only when it retracts the rater's current
vote (removing 🅰️ after switching to 🅱️ changes nothing), so "latest event wins" stays true
for every reader. Every event key is stored (as the vote's `event_key` or a `ProcessedEvent`),
so a redelivered event is recognised and never counted twice.

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
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.events import Reaction
from bot.reactions import ReactionMap
from storage.db import session_scope
from storage.models import PairMessage, ProcessedEvent, Rater, RatingPair, RatingRound
from storage.models import Vote as VoteRow

log = logging.getLogger(__name__)
DEFAULT_SALT_FILE = Path(".slam/rater_salt")


def load_salt(env: Mapping[str, str] | None = None, path: Path | None = None) -> bytes:
    """The rater-hash salt: `SLAM_RATER_SALT`, else a file (created once, private)."""
    env = os.environ if env is None else env
    if env.get("SLAM_RATER_SALT"):
        return env["SLAM_RATER_SALT"].encode()
    path = path or Path(env.get("SLAM_RATER_SALT_FILE") or DEFAULT_SALT_FILE)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            log.warning("generated a rater salt in %s; set SLAM_RATER_SALT in production", path)
    return path.read_text().strip().encode()


def rater_hash(salt: bytes, platform: str, user_id: str) -> str:
    return hmac.new(salt, f"{platform}:{user_id}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class VoteOutcome:
    """What happened to one reaction: recorded, duplicate, ignored (a removal that retracts
    nothing), not_a_pair, not_a_vote, closed (round closed) or rate_limited."""

    status: str
    pair_id: int | None = None
    choice: str | None = None

    @property
    def counted(self) -> bool:
        return self.status == "recorded"


@dataclass(frozen=True)
class _Item:
    reaction: Reaction
    rater_hash: str


class VoteWriter:
    """Serializes vote writes; `submit` returns once the vote is committed."""

    def __init__(self, engine: Engine, reactions: ReactionMap, max_batch: int = 500):
        self.engine = engine
        self.reactions = reactions
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[_Item, asyncio.Future[VoteOutcome]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._messages: dict[tuple[str, str, str], tuple[int, int, str | None]] = {}
        self._raters: dict[tuple[str, str], int] = {}
        self.batches = 0

    async def submit(self, reaction: Reaction, rater_hash: str) -> VoteOutcome:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._task is None or self._task.get_loop() is not loop:
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._run(self._queue))
        fut: asyncio.Future[VoteOutcome] = loop.create_future()
        await self._queue.put((_Item(reaction, rater_hash), fut))
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
                log.exception("vote batch of %d failed", len(batch))
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
            with session_scope(self.engine) as s:
                return [self._write_one(s, i) for i in items]
        except IntegrityError:
            # Another replica wrote one of these event keys first: redo each alone.
            self._raters.clear()  # ids created in the rolled-back transaction are gone
            out = []
            for item in items:
                try:
                    with session_scope(self.engine) as s:
                        out.append(self._write_one(s, item))
                except IntegrityError:
                    out.append(VoteOutcome("duplicate"))
            return out

    def _message(self, s: Session, r: Reaction) -> tuple[int, int, str | None] | None:
        key = (r.platform, r.channel, r.message_ref)
        hit = self._messages.get(key)
        if hit is None:
            row = s.exec(
                select(PairMessage.pair_id, RatingPair.round_id, PairMessage.target)
                .join(RatingPair, col(RatingPair.id) == PairMessage.pair_id)
                .where(
                    PairMessage.platform == r.platform,
                    PairMessage.channel == r.channel,
                    PairMessage.message_ref == r.message_ref,
                )
            ).first()
            if row is None:
                return None  # not cached: the message may become a pair message later
            hit = self._messages[key] = (row[0], row[1], row[2])
        return hit

    def _rater_id(self, s: Session, platform: str, user_hash: str) -> int:
        key = (platform, user_hash)
        if key not in self._raters:
            q = select(Rater).where(Rater.platform == platform, Rater.user_hash == user_hash)
            rater = s.exec(q).first()
            if rater is None:
                rater = Rater(platform=platform, user_hash=user_hash)
                s.add(rater)
                s.flush()
            assert rater.id is not None
            self._raters[key] = rater.id
        return self._raters[key]

    def _seen(self, s: Session, r: Reaction) -> bool:
        if s.exec(select(VoteRow.id).where(VoteRow.event_key == r.event_key)).first():
            return True
        q = select(ProcessedEvent.id).where(
            ProcessedEvent.platform == r.platform, ProcessedEvent.event_id == r.event_key
        )
        return s.exec(q).first() is not None

    def _write_one(self, s: Session, item: _Item) -> VoteOutcome:
        r = item.reaction
        where = self._message(s, r)
        if where is None:
            return VoteOutcome("not_a_pair")
        pair_id, round_id, target = where
        if target is None:
            choice, score = self.reactions.pairwise(r.reaction), None
            if choice is None:
                return VoteOutcome("not_a_vote", pair_id)
        else:
            choice, score = None, self.reactions.score(r.reaction)
            if score is None:
                return VoteOutcome("not_a_vote", pair_id)
        if self._seen(s, r):
            return VoteOutcome("duplicate", pair_id, choice)
        rnd = s.get(RatingRound, round_id)
        if rnd is None or rnd.status != "open":
            s.add(ProcessedEvent(platform=r.platform, event_id=r.event_key))
            return VoteOutcome("closed", pair_id, choice)
        rater_id = self._rater_id(s, r.platform, item.rater_hash)
        kind = "pairwise" if target is None else "score"
        current = s.exec(
            select(VoteRow)
            .where(VoteRow.pair_id == pair_id, VoteRow.rater_id == rater_id)
            .where(VoteRow.kind == kind, VoteRow.target == target)
            .order_by(col(VoteRow.id).desc())
            .limit(1)
        ).first()
        if not r.added and (
            current is None
            or current.action == "remove"
            or (current.choice, current.score) != (choice, score)
        ):
            s.add(ProcessedEvent(platform=r.platform, event_id=r.event_key))
            return VoteOutcome("ignored", pair_id, choice)
        s.add(
            VoteRow(
                pair_id=pair_id,
                rater_id=rater_id,
                kind=kind,
                action="add" if r.added else "remove",
                choice=choice,
                target=target,
                score=score,
                event_key=r.event_key,
            )
        )
        s.flush()
        return VoteOutcome("recorded", pair_id, choice)


def effective_votes(
    session: Session, round_id: int | None = None
) -> dict[tuple[int, int, str, str | None], VoteRow]:
    """(pair, rater, kind, target) -> the rater's current vote, folding events in order."""
    q = select(VoteRow).order_by(col(VoteRow.id))
    if round_id is not None:
        q = q.join(RatingPair, col(RatingPair.id) == VoteRow.pair_id).where(
            RatingPair.round_id == round_id
        )
    state: dict[tuple[int, int, str, str | None], VoteRow] = {}
    for v in session.exec(q).all():
        key = (v.pair_id, v.rater_id, v.kind, v.target)
        if v.action == "add":
            state[key] = v
        else:
            state.pop(key, None)
    return state
