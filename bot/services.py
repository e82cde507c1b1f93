"""The chat seam: what a platform adapter offers (`ChatPort`, with its declared `Capabilities`)
and what commands and jobs may use of the bot (`Services`).

Commands and scheduled jobs take `Services` (the database engine, the config, the reaction
map, the rater-id hash...) and, to post, the adapter's `ChatPort`. A running bot has one
`BotServices`: the Dispatcher creates it (`dispatcher.services`) and hands it to the commands,
and the scheduler hands the same object to its jobs (bot.ops.jobs.JobRun). Each platform
adapter (Slack, Discord, the console, the web front) provides a port. So commands never import
the dispatcher or a chat SDK, and shared code (the scheduler's notifications, a new round's
posts) asks a port what it can do instead of which platform it is.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from sqlalchemy.engine import Engine

from bot.events import Posted, Reply
from bot.identity import load_salt, rater_hash
from bot.reactions import ReactionMap
from core.config import SlamConfig


@dataclass(frozen=True)
class Capabilities:
    """What a platform can do, declared once per adapter.

    channel: post to a shared channel (a round's pairs, the digest); dms: reach one person
    privately (`/slam rate` sends the pair there); ephemeral: answer in a channel so that only
    the asker sees it; uploads: attach files (charts) to a message; votes: how raters vote —
    'reactions' on the pair's message, 'buttons' on a page, or typed 'text'."""

    channel: bool = True
    dms: bool = True
    ephemeral: bool = False
    uploads: bool = False
    votes: Literal["reactions", "buttons", "text"] = "reactions"


class ChatPort(Protocol):
    """What a platform adapter offers the commands and jobs: post a message (to a channel or as
    a DM), add the bot's seed reactions, answer a command (`send_reply`: privately when the
    reply is ephemeral and the platform can, charts attached when it can upload)."""

    platform: str
    unicode_emoji: bool
    capabilities: Capabilities

    async def post(
        self, reply: Reply, *, channel: str | None = None, dm_user: str | None = None
    ) -> Posted: ...

    async def add_reactions(self, posted: Posted, names: list[str]) -> None: ...

    async def send_reply(self, reply: Reply, channel: str, user: str) -> None: ...


class Services(Protocol):
    """The bot's shared state, as commands and jobs see it."""

    @property
    def engine(self) -> Engine: ...
    @property
    def cfg(self) -> SlamConfig: ...
    @property
    def reactions(self) -> ReactionMap: ...
    @property
    def rng(self) -> random.Random: ...
    @property
    def report_dir(self) -> Path: ...
    @property
    def report_builder(self) -> Callable[..., Any] | None: ...

    def rater(self, platform: str, user_id: str) -> str: ...


@dataclass
class BotServices:
    """The one `Services` object of a running bot (the Dispatcher creates it; `create` builds
    one from an engine and a config, e.g. for `slam schedule run` or a test)."""

    engine: Engine
    cfg: SlamConfig
    reactions: ReactionMap
    # the rater-hash secret; None: read with bot.identity.load_salt when first needed
    salt: bytes | None = field(default=None, repr=False)
    rng: random.Random = field(default_factory=random.Random)
    report_dir: Path = Path(".slam/reports")
    # build_report(engine, cfg, out_dir, only); None = evaluation.report, imported lazily
    report_builder: Callable[..., Any] | None = None

    @classmethod
    def create(
        cls,
        engine: Engine,
        cfg: SlamConfig,
        *,
        salt: bytes | None = None,
        rng: random.Random | None = None,
        report_dir: Path | None = None,
        report_builder: Callable[..., Any] | None = None,
    ) -> BotServices:
        """The services over `engine` and `cfg`, the reaction map read from `[chat]`."""
        return cls(
            engine, cfg, ReactionMap.from_config(cfg.chat), salt, rng or random.Random(),
            report_dir or Path(".slam/reports"), report_builder,
        )  # fmt: skip

    def rater(self, platform: str, user_id: str) -> str:
        """The stored identity of a rater: HMAC-SHA256(salt, "platform:user id")."""
        if self.salt is None:
            self.salt = load_salt()
        return rater_hash(self.salt, platform, user_id)
