"""What commands and jobs may use, as protocols: the platform port and the bot's services.

Commands take `Services` (the database engine, the config, the reaction map, the rater-id
hash...) and the adapter's `ChatPort`; the Dispatcher provides the first, each platform adapter
the second, so commands never import the dispatcher or a chat SDK.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from bot.events import Posted, Reply
from bot.reactions import ReactionMap
from core.config import SlamConfig


class ChatPort(Protocol):
    """What a platform adapter offers the commands: post a message (to a channel or as a DM)
    and add the bot's seed reactions."""

    platform: str
    unicode_emoji: bool

    async def post(
        self, reply: Reply, *, channel: str | None = None, dm_user: str | None = None
    ) -> Posted: ...

    async def add_reactions(self, posted: Posted, names: list[str]) -> None: ...


class Services(Protocol):
    """The bot's shared state, as commands see it."""

    engine: Engine
    cfg: SlamConfig
    reactions: ReactionMap
    rng: random.Random
    report_dir: Path
    report_builder: Callable[..., Any] | None

    def rater(self, platform: str, user_id: str) -> str: ...
