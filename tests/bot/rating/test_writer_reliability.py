"""Kill the bot (HTTP mode, its own process) mid-stream and restart it: every vote that was
acknowledged with HTTP 200 is stored, and redelivering everything counts each vote once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from storage.models import Vote
from tests.support.bot_seed import MODELS, make_config, seed
from tests.support.fake_slack_api import FakeSlack
from tests.support.slack_helpers import (
    JSON,
    BotProcess,
    prepare_round,
    reaction_body,
    signed,
    write_config,
)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


def stored_keys(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return list(s.exec(select(Vote.event_key)).all())


async def send_all(
    url: str, bodies: list[str], kill_after: int | None = None, bot: BotProcess | None = None
) -> set[str]:
    """Send concurrently; returns the event ids acknowledged with 200. With `kill_after`,
    SIGKILL the bot as soon as that many were acknowledged (requests in flight then fail)."""
    acked: set[str] = set()
    sem = asyncio.Semaphore(16)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

        async def one(body: str) -> None:
            async with sem:
                try:
                    async with http.post(url, data=body.encode(),
                                         headers={**JSON, **signed(body)}) as r:  # fmt: skip
                        await r.read()
                        if r.status == 200:
                            acked.add(json.loads(body)["event_id"])
                except (TimeoutError, aiohttp.ClientError):
                    return  # not acknowledged: Slack would retry it later
            if kill_after is not None and bot is not None and len(acked) >= kill_after:
                bot.kill()

        await asyncio.gather(*(one(b) for b in bodies))
    return acked


async def test_acknowledged_votes_survive_a_crash(
    engine: Engine, sqlite_url: str, fake: FakeSlack, port: int, tmp_path: Path
) -> None:
    cfg = make_config(pairs_per_round=10)
    seed(engine, cfg, users=[f"User{i}" for i in range(5)])
    refs = prepare_round(engine, cfg, 10)
    config = write_config(tmp_path / "slam.toml", sqlite_url, MODELS, channel="C0RATINGS",
                          votes_per_rater_per_hour=1000)  # fmt: skip
    bodies = [
        reaction_body(f"Ev{r:03d}{ts[-3:]}", f"U{r:03d}", ch, ts, ("a", "b", "handshake")[r % 3])
        for r in range(60)
        for ch, ts in refs
    ]
    bot = BotProcess(tmp_path, config, port, fake.api_url).start()
    try:
        acked = await send_all(bot.url, bodies, kill_after=150, bot=bot)
        assert bot.proc is not None and bot.proc.poll() is not None, "the bot was not killed"
    finally:
        bot.stop()
    assert 150 <= len(acked) < len(bodies)
    keys = set(stored_keys(engine))
    missing = {e for e in acked if f"slack:{e}" not in keys}
    assert not missing, f"{len(missing)} acknowledged votes lost"

    # Restart; Slack redelivers everything it has no 200 for (and we resend the rest too).
    bot = BotProcess(tmp_path, config, port, fake.api_url).start()
    try:
        again = await send_all(bot.url, bodies)
    finally:
        bot.stop()
    assert len(again) == len(bodies)
    keys_list = stored_keys(engine)
    assert len(keys_list) == len(bodies) == len(set(keys_list))
