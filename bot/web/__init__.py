"""The web front: a rating page for raters outside chat and a live dashboard, served by the
bot's own HTTP server. Importing this package imports nothing heavy (aiohttp loads in app).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from bot.web.app import WebFront, WebPort

__getattr__ = lazy_exports(__name__, __file__)
