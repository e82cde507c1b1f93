"""The one dispatcher every adapter calls, with its middleware chain.

Adapters turn platform input into `Command`/`Vote` events and call `handle_command` /
`handle_vote` (chat reactions go to `handle_reaction`, which reads them as votes in the one
place that does: `ReactionMap.vote`); side effects that need the platform (posting pairs, DMs)
go through the `ChatPort` the adapter passes in (bot.services). Commands get the dispatcher's
`BotServices`, never the dispatcher itself. Middleware runs in order: ignore the bot's own
events, per-rater rate limits, then admin authorization for admin-only commands.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from bot.commands import ADMIN_COMMANDS, run_command
from bot.events import Command, Comment, Reaction, Reply, Vote
from bot.identity import load_salt
from bot.rating import CommentOutcome, VoteOutcome, VoteWriter, names_a_model, record_comment
from bot.services import BotServices, ChatPort
from core.config import SlamConfig
from core.errors import SlamError

log = logging.getLogger(__name__)
Event = Command | Vote
Handler = Callable[[Event], Awaitable[Any]]


class Middleware(Protocol):
    async def __call__(self, event: Event, call_next: Handler) -> Any: ...


@dataclass
class IgnoreSelf:
    """Drop events caused by the bot itself (its seed reactions, its own messages)."""

    self_ids: set[str] = field(default_factory=set)

    async def __call__(self, event: Event, call_next: Handler) -> Any:
        if event.user_id in self.self_ids or f"{event.platform}:{event.user_id}" in self.self_ids:
            return VoteOutcome("self") if isinstance(event, Vote) else None
        return await call_next(event)


class RateLimit:
    """Sliding-window limits per rater: votes per hour (config) and commands per minute."""

    def __init__(
        self,
        votes_per_hour: int,
        commands_per_minute: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limits = {"vote": (votes_per_hour, 3600.0), "cmd": (commands_per_minute, 60.0),
                       "comment": (votes_per_hour, 3600.0)}  # comments: as many as votes
        self.clock = clock
        self._hits: dict[tuple[str, str, str], deque[float]] = defaultdict(deque)

    def allow(self, kind: str, platform: str, user: str) -> bool:
        """Count one event; False when it is over the limit (not counted then)."""
        if not self.would_allow(kind, platform, user):
            return False
        self._hits[(kind, platform, user)].append(self.clock())
        return True

    def would_allow(self, kind: str, platform: str, user: str) -> bool:
        """Whether `allow` would let one more event through now, without counting it."""
        limit, window = self.limits[kind]
        now, hits = self.clock(), self._hits[(kind, platform, user)]
        while hits and hits[0] <= now - window:
            hits.popleft()
        return len(hits) < limit

    async def __call__(self, event: Event, call_next: Handler) -> Any:
        if isinstance(event, Vote):
            if not self.allow("vote", event.platform, event.user_id):
                return VoteOutcome("rate_limited")
        elif not self.allow("cmd", event.platform, event.user_id):
            return Reply("You are sending commands too fast; try again in a minute.", ok=False)
        return await call_next(event)


@dataclass
class AdminOnly:
    """Admin-only commands need the user in `[chat].admins` (ids, optionally `platform:id`)."""

    admins: set[str]
    commands: frozenset[str]

    def is_admin(self, platform: str, user: str) -> bool:
        return user in self.admins or f"{platform}:{user}" in self.admins

    async def __call__(self, event: Event, call_next: Handler) -> Any:
        if (
            isinstance(event, Command)
            and event.name in self.commands
            and not self.is_admin(event.platform, event.user_id)
        ):
            return Reply(
                f"`{event.name}` is for admins only (ask an admin to add you to [chat].admins).",
                ephemeral=True,
                ok=False,
            )
        return await call_next(event)


class Dispatcher:
    """Routes events through the middleware to the commands or the vote writer. What the
    commands share (engine, config, reactions, rater hash...) is `dispatcher.services`."""

    def __init__(
        self,
        engine: Engine,
        cfg: SlamConfig,
        *,
        self_ids: Iterable[str] = (),
        admins: Iterable[str] | None = None,
        salt: bytes | None = None,
        rng: random.Random | None = None,
        report_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        report_builder: Callable[..., Any] | None = None,
    ):
        self.services = BotServices.create(
            engine, cfg, salt=salt if salt is not None else load_salt(), rng=rng,
            report_dir=report_dir, report_builder=report_builder,
        )  # fmt: skip
        self.writer = VoteWriter(engine)
        self.ignore_self = IgnoreSelf(set(self_ids))
        self.auth = AdminOnly(set(cfg.chat.admins if admins is None else admins), ADMIN_COMMANDS)
        self.rate_limit = RateLimit(cfg.chat.votes_per_rater_per_hour, clock=clock)
        self.middleware: list[Middleware] = [self.ignore_self, self.rate_limit, self.auth]

    async def _run(self, event: Event, final: Handler) -> Any:
        async def call(i: int, ev: Event) -> Any:
            if i == len(self.middleware):
                return await final(ev)
            return await self.middleware[i](ev, lambda e: call(i + 1, e))

        return await call(0, event)

    async def handle_command(self, cmd: Command, port: ChatPort) -> Reply | None:
        """Run a `/slam` command; None when the event is ignored (the bot's own)."""

        async def final(ev: Event) -> Reply:
            assert isinstance(ev, Command)
            try:
                return await run_command(self.services, ev, port)
            except SlamError as exc:
                return Reply(str(exc), ok=False, ephemeral=True)
            except Exception:  # never show a traceback in chat; the log has it
                log.exception("command %r failed", ev.text)
                return Reply("Something went wrong running that command; see the bot's log.",
                             ok=False, ephemeral=True)  # fmt: skip

        result: Reply | None = await self._run(cmd, final)
        return result

    async def handle_reaction(self, reaction: Reaction) -> VoteOutcome:
        """Record a chat reaction as a vote; returns after the vote is committed."""
        vote = self.services.reactions.vote(reaction)
        if vote is None:
            return VoteOutcome("not_a_vote")  # cheap exit: most reactions are not votes
        return await self.handle_vote(vote)

    async def handle_vote(self, vote: Vote) -> VoteOutcome:
        """Record a vote (through the middleware: the bot's own, rate limits); returns after
        it is committed."""
        if vote.choice is None and vote.score is None:
            return VoteOutcome("not_a_vote")  # names nothing (a score outside score mode)

        async def final(ev: Event) -> VoteOutcome:
            assert isinstance(ev, Vote)
            return await self.writer.submit(ev, self.services.rater(ev.platform, ev.user_id))

        outcome: VoteOutcome = await self._run(vote, final)
        return outcome

    async def handle_comment(self, comment: Comment) -> CommentOutcome:
        """Store a rater's comment on a pair (the bot's own ignored, rate-limited like votes);
        returns after it is committed."""
        import asyncio

        if comment.user_id in self.ignore_self.self_ids or (
            f"{comment.platform}:{comment.user_id}" in self.ignore_self.self_ids
        ):
            return CommentOutcome("self")
        if not self.rate_limit.allow("comment", comment.platform, comment.user_id):
            return CommentOutcome("rate_limited")
        rater = self.services.rater(comment.platform, comment.user_id)
        out = await asyncio.to_thread(record_comment, self.services.engine, comment, rater)
        if out.counted:  # the pair is blind until its round closes: run the masker over it
            named = await asyncio.to_thread(names_a_model, self.services, out.text)
            out = replace(out, names_model=named)
        return out

    async def aclose(self) -> None:
        await self.writer.aclose()
