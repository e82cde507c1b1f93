"""A running web front on 127.0.0.1 for the web tests and the benchmark: the bot's own HTTP
server (bot.ops.runtime) with a seeded database and an open round."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from bot.dispatcher import Dispatcher
from bot.ops.runtime import AdapterRuntime
from bot.rating.invites import Tokens
from core.config import SlamConfig
from storage.db import session_scope

SECRET = "web-test-secret-0123456789abcdef"
MODEL_WORDS = ("gpt-4", "gpt", "mistral", "gemma", "openai", "ollama", "llamacpp")


@dataclass
class WebBot:
    url: str
    runtime: AdapterRuntime
    dispatcher: Dispatcher
    tokens: Tokens

    def link(self, name: str, role: str = "rate", days: float = 1) -> str:
        token, _ = self.tokens.issue(role, name, days)  # type: ignore[arg-type]
        return f"{self.url}/{'r' if role == 'rate' else 'd'}/{token}"

    async def aclose(self) -> None:
        await self.runtime.aclose()


def open_round(engine: Engine, cfg: SlamConfig, seed: int = 3) -> int:
    from bot.rating import rounds

    with session_scope(engine) as s:
        rnd, _ = rounds.start_round(s, cfg, random.Random(seed))
        assert rnd.id is not None
        return rnd.id


async def start_web(engine: Engine, cfg: SlamConfig, port: int, **kw: Any) -> WebBot:
    """Needs SLAM_WEB_SECRET=SECRET in the environment (the front loads it like the bot)."""
    d = Dispatcher(engine, cfg, salt=b"web-salt", **kw)
    rt = AdapterRuntime(d, host="127.0.0.1", port=port, scheduler=False, web=True)
    await rt.serve()
    assert rt.web is not None
    rt.web.poll_ms = 1000
    return WebBot(f"http://127.0.0.1:{port}", rt, d, Tokens(SECRET.encode(), engine))


def has_model_word(text: str) -> str | None:
    low = text.lower()
    return next((w for w in MODEL_WORDS if w in low), None)
