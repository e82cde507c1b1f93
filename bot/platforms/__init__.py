"""The chat platforms: Slack (Bolt), Discord (discord.py) and the console. Each translates its
payloads into the neutral events of `bot.events` and renders `Reply` back; a new platform is
one module here with a `ChatPort` and its declared `Capabilities`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from bot.platforms.console import rate_in_console
    from bot.platforms.discord import run_discord
    from bot.platforms.slack import run_slack

__getattr__ = lazy_exports(__name__, __file__)
