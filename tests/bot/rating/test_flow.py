"""bot.rating.flow over real HTTP on SQLite and PostgreSQL: one rater's concurrent page loads get
one pair (never a 500), and the server, not the client's nonce, decides what a duplicate is."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from storage.models import PairMessage, ProcessedEvent, RatingPair, Vote
from tests.support.bot_seed import make_config, seed
from tests.support.web_helpers import SECRET, WebBot, open_round, start_web


@pytest.fixture
async def bot(any_engine: Engine, port: int, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WebBot]:  # fmt: skip
    monkeypatch.setenv("SLAM_WEB_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    cfg = make_config(pairs_per_round=3)
    seed(any_engine, cfg)
    open_round(any_engine, cfg)
    web = await start_web(any_engine, cfg, port, report_dir=tmp_path / "reports")
    yield web
    await web.aclose()


def count(engine: Engine, model: type, *where: object) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model).where(*where)).one())


def pair_of(html: str) -> str:
    m = re.search(r'<input type="hidden" name="pair" value="(\d+)">', html)
    assert m is not None, html[:500]
    return m.group(1)


def hidden(html: str) -> dict[str, str]:
    form = html[html.index('<form class="vote"'):]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))


async def test_concurrent_loads_of_one_rater_get_the_pair_the_first_stored(
    bot: WebBot, any_engine: Engine
) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as s:
        async with s.get(bot.link("ada"), allow_redirects=False) as r:
            assert r.status == 303
        pairs_before = count(any_engine, RatingPair)

        async def load() -> tuple[int, str]:
            async with s.get(f"{bot.url}/rate") as r:
                return r.status, await r.text()

        pages = await asyncio.gather(*(load() for _ in range(12)))
        assert [st for st, _ in pages] == [200] * 12, [h[:300] for st, h in pages if st != 200]
        shown = {pair_of(h) for _, h in pages}
        assert len(shown) == 1, shown
        assert count(any_engine, PairMessage, PairMessage.platform == "web") == 1
        assert count(any_engine, RatingPair) - pairs_before <= 1

        # Two raters at once still get their own pairs.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s2:
            async with s2.get(bot.link("grace")) as r:
                assert r.status == 200
            got = await asyncio.gather(load(), s2.get(f"{bot.url}/rate"))
            assert got[0][0] == 200 and got[1].status == 200
            got[1].release()
        assert count(any_engine, PairMessage, PairMessage.platform == "web") == 2


async def test_the_server_decides_what_a_duplicate_is(bot: WebBot, any_engine: Engine) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.get(bot.link("linus")) as r:
            fields = hidden(await r.text())

        async def vote(choice: str, v: int) -> str:
            data = {**fields, "choice": choice, "v": str(v)}
            async with s.post(f"{bot.url}/rate/vote", data=data,
                              headers={"Accept": "application/json"}) as r:  # fmt: skip
                return str((await r.json())["status"])

        assert await vote("A", 0) == "recorded"
        # The same vote re-sent with made-up nonces, one by one and all at once: one row.
        assert [await vote("A", v) for v in (1, 77, 123456)] == ["duplicate"] * 3
        burst = await asyncio.gather(*(vote("A", 1000 + v) for v in range(10)))
        assert burst == ["duplicate"] * 10
        assert count(any_engine, Vote) == 1
        # A change of mind is a new row; changing back is another; re-sending it is not.
        assert await vote("tie", 5) == "recorded"
        assert await vote("A", 6) == "recorded"
        assert await vote("A", 7) == "duplicate"
        assert count(any_engine, Vote) == 3
        # Retracting nothing with made-up nonces stores nothing either.
        data = {**fields, "choice": "retract", "current": "B"}
        for v in range(5):
            async with s.post(f"{bot.url}/rate/vote", data={**data, "v": str(v)},
                              headers={"Accept": "application/json"}) as r:  # fmt: skip
                assert (await r.json())["status"] == "ignored"
        assert count(any_engine, Vote) == 3 and count(any_engine, ProcessedEvent) == 0


async def test_a_vote_on_a_closed_round_is_a_409_page_on_the_form_path(
    bot: WebBot, any_engine: Engine
) -> None:
    from bot.rating import rounds
    from storage.db import session_scope

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.get(bot.link("barbara")) as r:
            fields = hidden(await r.text())
        with session_scope(any_engine) as ss:
            rounds.close_round(ss)
        async with s.post(f"{bot.url}/rate/vote", data={**fields, "choice": "B"},
                          allow_redirects=False) as r:  # fmt: skip
            html = await r.text()
            assert r.status == 409 and "This round is closed" in html, html[:300]
            assert "Response A" in html  # still the pair's page, readable
    assert count(any_engine, Vote) == 0 and count(any_engine, ProcessedEvent) == 0


async def test_concurrent_slam_rate_of_one_rater_in_chat_never_fails(any_engine: Engine) -> None:
    import io

    from bot.dispatcher import Dispatcher
    from bot.events import Command
    from bot.platforms.console import ConsolePort

    cfg = make_config(pairs_per_round=3)
    seed(any_engine, cfg)
    open_round(any_engine, cfg)
    d = Dispatcher(any_engine, cfg, salt=b"s")
    port = ConsolePort(io.StringIO())
    replies = await asyncio.gather(*(d.handle_command(Command("console", "u1", "c", "rate"), port)
                                     for _ in range(6)))  # fmt: skip
    texts = [r.plain() if r is not None else "" for r in replies]
    assert all(t.startswith("Sent you pair") for t in texts), texts
    assert len({re.search(r"pair (\d+)", t).group(1) for t in texts}) == 1  # type: ignore[union-attr]
