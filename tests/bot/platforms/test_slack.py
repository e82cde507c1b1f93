"""Slack end to end over real HTTP: the Bolt app on 127.0.0.1, a fake Slack Web API."""

from __future__ import annotations

import asyncio
import struct
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from bot.dispatcher import Dispatcher
from bot.platforms.slack import build_app, serve_http
from core.errors import SlamError
from storage.models import PairMessage, ProcessedEvent, Rater, RatingPair, Vote
from tests.support.bot_seed import MODELS, effective_votes, make_config, seed
from tests.support.fake_slack_api import BOT_USER, FakeSlack
from tests.support.slack_helpers import (
    FORM,
    JSON,
    SECRET,
    TOKEN,
    reaction_body,
    signed,
    slash_body,
)

ADMIN = "UADMIN"


def png(path: Path) -> Path:
    """A tiny valid PNG (what a chart file is, as far as the upload is concerned)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = zlib.compress(b"\x00\xff\x00\x00")
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw)
                     + chunk(b"IEND", b""))  # fmt: skip
    return path


class Report:
    def __init__(self, charts: dict[str, Path]):
        self.charts, self.summary_text = charts, "Quality vs cost: ok"
        self.leaderboard: list[Any] = []


def fake_report_builder(engine: Engine, cfg: Any, out_dir: Path, only: list[str] | None) -> Report:
    out_dir.mkdir(parents=True, exist_ok=True)
    names = only or ["ratings", "latency"]
    return Report({n: png(out_dir / f"{n}.png") for n in names})


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
def slack_env(fake: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_API_URL", fake.api_url)


class Bot:
    def __init__(self, http: httpx.AsyncClient, engine: Engine, fake: FakeSlack):
        self.http, self.engine, self.fake = http, engine, fake

    async def slash(self, text: str, user: str = ADMIN) -> httpx.Response:
        body = slash_body(text, user)
        return await self.http.post("/slack/events", content=body, headers={**FORM, **signed(body)})

    async def react(self, event_id: str, ts: str, reaction: str, user: str = "U1",
                    added: bool = True, channel: str = "C0RATINGS",
                    retry: int | None = None) -> httpx.Response:  # fmt: skip
        body = reaction_body(event_id, user, channel, ts, reaction, added)
        headers = {**JSON, **signed(body)}
        if retry is not None:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.http.post("/slack/events", content=body, headers=headers)

    def votes(self) -> list[Vote]:
        with Session(self.engine) as s:
            return list(s.exec(select(Vote).order_by(Vote.id)).all())  # type: ignore[arg-type]

    def pair_messages(self) -> list[PairMessage]:
        with Session(self.engine) as s:
            return list(s.exec(select(PairMessage).order_by(PairMessage.id)).all())  # type: ignore[arg-type]

    async def until(self, cond: Callable[[], Any], what: str) -> None:
        """Wait for background (lazy listener) work: poll the condition, bounded."""
        deadline = time.monotonic() + 20
        while not cond():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def start_bot(engine: Engine, fake: FakeSlack, port: int, **chat: Any) -> AsyncIterator[Bot]:
    cfg = make_config(admins=[ADMIN], pairs_per_round=3, **chat)
    texts = {
        "mistral-7b-q4/Ada": "As Mistral, I believe in you, Ada!",
        "gemma3-270m-q4_k_m/Grace": "I am Gemma, and you can do it.",
    }
    seed(engine, cfg, texts=texts)
    d = Dispatcher(engine, cfg, salt=b"test-salt", report_builder=fake_report_builder,
                   report_dir=Path(str(engine.url.database)).parent / "reports")  # fmt: skip
    app = await build_app(d)
    runner = await serve_http(app, "127.0.0.1", port)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        yield Bot(http, engine, fake)
    await runner.cleanup()
    await d.aclose()


@pytest.fixture
async def bot(engine: Engine, fake: FakeSlack, slack_env: None, port: int) -> AsyncIterator[Bot]:
    async with start_bot(engine, fake, port) as b:
        yield b


async def open_round(bot: Bot) -> list[PairMessage]:
    resp = await bot.slash("round start")
    assert resp.status_code == 200 and "Working" in resp.text
    await bot.until(lambda: len(bot.fake.named("chat.postMessage")) >= 4, "pairs and the reply")
    msgs = bot.pair_messages()
    assert len(msgs) == 3
    return msgs


async def test_help_and_unknown_subcommand_answer_in_the_ack(bot: Bot) -> None:
    resp = await bot.slash("help", user="U1")
    assert resp.status_code == 200
    assert "/slam round start|close" in resp.json()["text"] or "round start" in resp.text
    resp = await bot.slash("frobnicate", user="U1")
    assert "Unknown subcommand `frobnicate`" in resp.text and "/slam rate" in resp.text
    resp = await bot.slash("reveal", user=ADMIN)
    assert "Give one pair number" in resp.text


async def test_round_start_posts_blind_pairs_with_seed_reactions(bot: Bot) -> None:
    msgs = await open_round(bot)
    posts = bot.fake.named("chat.postMessage")
    pair_posts = [c for c in posts if c.params.get("channel") == "C0RATINGS"]
    assert len(pair_posts) == 3
    banned = {str(m[k]).lower() for m in MODELS for k in ("name", "model")}
    banned |= {"mistral", "gemma", "gpt"}
    for call in pair_posts:
        text = str(call.params).lower()
        assert "response a" in text and "response b" in text
        assert not [b for b in banned if b in text], f"model name leaked: {text}"
    # Every pair message got the four seed reactions, all by the bot.
    seeds = bot.fake.named("reactions.add")
    assert len(seeds) == 12
    assert {c.params["name"] for c in seeds} == {"a", "b", "handshake", "-1"}
    assert {m.message_ref for m in msgs} == {c.params["timestamp"] for c in seeds}
    # The admin's reply lands in the channel the command came from.
    assert any(c.params.get("channel") == "C0CMD" and "Round 1 is open" in str(c.params)
               for c in posts)  # fmt: skip
    # The bot's own seed reactions arrive as events: they are ignored.
    for i, m in enumerate(msgs):
        resp = await bot.react(f"EvSeed{i}", m.message_ref, "a", user=BOT_USER)
        assert resp.status_code == 200
    assert bot.votes() == []


async def test_non_admin_cannot_start_a_round(bot: Bot) -> None:
    resp = await bot.slash("round start", user="U1")
    # Refused in the acknowledgement itself (an ephemeral reply), before any work starts.
    assert resp.status_code == 200 and "admins only" in resp.text
    assert "Working on" not in resp.text
    assert bot.pair_messages() == []


async def test_votes_are_counted_exactly_once(bot: Bot) -> None:
    msgs = await open_round(bot)
    ts = msgs[0].message_ref
    assert (await bot.react("Ev1", ts, "a")).status_code == 200
    # Slack retries the same event id: stored once.
    for n in (1, 2):
        assert (await bot.react("Ev1", ts, "a", retry=n)).status_code == 200
    assert [(v.choice, v.action) for v in bot.votes()] == [("A", "add")]
    # Changing the vote: the last reaction wins.
    await bot.react("Ev2", ts, "b")
    # Removing the old reaction does not retract the new vote.
    await bot.react("Ev3", ts, "a", added=False)
    with Session(bot.engine) as s:
        eff = effective_votes(s)
        assert [v.choice for v in eff.values()] == ["B"]
        assert s.exec(select(func.count()).select_from(ProcessedEvent)).one() == 1
    # Removing the current reaction retracts it (and its retry changes nothing more).
    await bot.react("Ev4", ts, "b", added=False)
    await bot.react("Ev4", ts, "b", added=False, retry=1)
    with Session(bot.engine) as s:
        assert effective_votes(s) == {}
    assert [(v.choice, v.action) for v in bot.votes()] == [
        ("A", "add"), ("B", "add"), ("B", "remove")]  # fmt: skip
    # Unrelated messages, non-vote emoji, skin tones: nothing / the same vote.
    await bot.react("Ev5", "1699999999.000001", "a")
    await bot.react("Ev6", ts, "tada")
    await bot.react("Ev7", msgs[1].message_ref, "-1::skin-tone-3", user="U2")
    await bot.react("Ev8", msgs[1].message_ref, "handshake", user="U3")
    with Session(bot.engine) as s:
        eff = effective_votes(s)
        assert sorted(str(v.choice) for v in eff.values()) == ["both_bad", "tie"]
        # Raters are stored as salted hashes only.
        hashes = [r.user_hash for r in s.exec(select(Rater)).all()]
        assert len(hashes) == 3 and not any(u in h for h in hashes for u in ("U1", "U2", "U3"))


async def test_bad_signatures_get_401_and_change_nothing(bot: Bot) -> None:
    msgs = await open_round(bot)
    calls_before = len(bot.fake.calls)
    body = reaction_body("EvX", "U9", "C0RATINGS", msgs[0].message_ref, "a")
    cases = {
        "unsigned": {},
        "wrong secret": signed(body, secret="not-the-secret"),
        "stale": signed(body, ts=int(time.time()) - 3600),
        "tampered": signed(body.replace('"a"', '"b"')),
    }
    for name, headers in cases.items():
        resp = await bot.http.post("/slack/events", content=body, headers={**JSON, **headers})
        assert resp.status_code == 401, name
    slash = slash_body("round close", ADMIN)
    resp = await bot.http.post("/slack/events", content=slash,
                               headers={**FORM, **signed(slash, secret="nope")})  # fmt: skip
    assert resp.status_code == 401
    assert bot.votes() == []
    assert len(bot.fake.calls) == calls_before
    with Session(bot.engine) as s:
        assert s.exec(select(func.count()).select_from(Rater)).one() == 0


async def test_report_uploads_charts_in_a_thread(bot: Bot) -> None:
    resp = await bot.slash("report", user="U1")
    assert resp.status_code == 200 and "Working on `report`" in resp.text
    await bot.until(lambda: bot.fake.named("files.completeUploadExternal"), "the upload")
    summary = [c for c in bot.fake.named("chat.postMessage") if "Quality vs cost" in str(c.params)]
    assert len(summary) == 1
    # One summary card in the thread; charts without data are listed, not uploaded.
    urls = bot.fake.named("files.getUploadURLExternal")
    assert [c.params["filename"] for c in urls] == ["summary.png"]
    uploads = bot.fake.named("upload")
    assert len(uploads) == 1 and uploads[0].body.startswith(b"\x89PNG")
    done = bot.fake.named("files.completeUploadExternal")[0].params
    assert done["channel_id"] == "C0CMD"
    assert done["thread_ts"].startswith("1700000000.")  # the summary message's ts
    resp = await bot.slash("report nosuchchart nope", user="U1")
    await bot.until(lambda: bot.fake.named("chat.postEphemeral"), "the usage reply")
    assert "Give `all` or one chart name" in str(bot.fake.named("chat.postEphemeral")[-1].params)


async def test_rate_sends_a_dm_and_dm_reactions_vote(bot: Bot) -> None:
    await open_round(bot)
    await bot.slash("rate", user="U5")
    await bot.until(lambda: [m for m in bot.pair_messages() if m.rater_id], "the DM")
    dm = next(m for m in bot.pair_messages() if m.rater_id)
    assert dm.channel == "D5"
    await bot.react("EvDM1", dm.message_ref, "b", user="U5", channel="D5")
    with Session(bot.engine) as s:
        (vote,) = effective_votes(s).values()
        assert vote.pair_id == dm.pair_id and vote.choice == "B"
    # Status is anonymous: counts only.
    resp = await bot.slash("status", user="U1")
    text = resp.text
    assert "Raters" in text and "U5" not in text and "1 pairwise" in text


async def test_reveal_only_after_the_round_closes(bot: Bot) -> None:
    msgs = await open_round(bot)
    resp = await bot.slash(f"reveal {msgs[0].pair_id}")
    assert "still open" in resp.text
    await bot.slash("round close")
    await bot.until(lambda: any("closed" in str(c.params)
                                for c in bot.fake.named("chat.postMessage")), "close")  # fmt: skip
    resp = await bot.slash(f"reveal {msgs[0].pair_id}")
    with Session(bot.engine) as s:
        pair = s.get(RatingPair, msgs[0].pair_id)
        assert pair is not None and pair.revealed
    assert "A was *" in resp.text
    # Votes after the close are not counted.
    await bot.react("EvLate", msgs[0].message_ref, "a")
    assert bot.votes() == []
    # A gold pair (a rater check) is revealed as such, without model names or the decoy.
    with Session(bot.engine) as s:
        gold = s.get(RatingPair, msgs[1].pair_id)
        assert gold is not None
        gold.kind, gold.gold_answer, gold.decoy = "gold", "A", "truncated"
        s.add(gold)
        s.commit()
    resp = await bot.slash(f"reveal {msgs[1].pair_id}")
    assert "was a quality check" in resp.text and "never counted" in resp.text
    assert "A was *" not in resp.text and "truncated" not in resp.text


async def test_score_mode_keycaps_score_each_response(
    engine: Engine, fake: FakeSlack, slack_env: None, port: int
) -> None:
    async with start_bot(engine, fake, port, score_mode=True) as bot:
        await bot.slash("round start")
        await bot.until(lambda: len(bot.pair_messages()) >= 9, "pairs and score prompts")
        by_target = {m.target: m for m in bot.pair_messages() if m.pair_id == 1}
        await bot.react("EvS1", by_target["A"].message_ref, "seven")
        await bot.react("EvS2", by_target["B"].message_ref, "keycap_ten")
        await bot.react("EvS3", by_target["B"].message_ref, "a")  # not a score: ignored
        await bot.react("EvS4", by_target[None].message_ref, "a")
        with Session(engine) as s:
            got = {(v.kind, v.target, v.score, v.choice) for v in effective_votes(s).values()}
        assert got == {("score", "A", 7, None), ("score", "B", 10, None),
                       ("pairwise", None, None, "A")}  # fmt: skip


async def test_missing_secrets_name_the_variable(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    d = Dispatcher(engine, make_config(), salt=b"s")
    with pytest.raises(SlamError, match="SLACK_BOT_TOKEN is not set"):
        await build_app(d)
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    with pytest.raises(SlamError, match="SLACK_SIGNING_SECRET is not set"):
        await build_app(d)


async def test_socket_mode_acks_after_the_vote_is_committed(
    engine: Engine, fake: FakeSlack, slack_env: None, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Socket Mode over a real websocket: apps.connections.open on the fake API hands out a
    ws:// url on 127.0.0.1 where the test plays Slack: it sends envelopes, reads the acks."""
    import json

    from aiohttp import WSMsgType, web

    from bot.platforms.slack import socket_handler
    from tests.support.slack_helpers import prepare_round

    cfg = make_config()
    seed(engine, cfg)
    (channel, ts), *_ = prepare_round(engine, cfg, 3)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-test")
    fake.socket_url = f"ws://127.0.0.1:{port}/link"
    acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def link(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1})

        async def pump() -> None:
            while True:
                await ws.send_json(await outbox.get())

        task = asyncio.create_task(pump())
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await acks.put(json.loads(msg.data))
        task.cancel()
        return ws

    app = web.Application()
    app.router.add_get("/link", link)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    d = Dispatcher(engine, cfg, salt=b"s")
    handler = await socket_handler(d)
    await handler.connect_async()
    try:
        for n, reaction in enumerate(["a", "b"]):
            body = json.loads(reaction_body(f"EvSock{n}", "U7", channel, ts, reaction))
            await outbox.put({"envelope_id": f"env{n}", "type": "events_api", "payload": body,
                              "accepts_response_payload": False, "retry_attempt": 0})  # fmt: skip
            ack = await asyncio.wait_for(acks.get(), 20)
            assert ack["envelope_id"] == f"env{n}"
            with Session(engine) as s:  # committed before the ack was sent
                assert [v.choice for v in effective_votes(s).values()] == [reaction.upper()]
        await outbox.put({"envelope_id": "env9", "type": "slash_commands",
                          "payload": {"command": "/slam", "text": "help", "user_id": "U7",
                                      "channel_id": "C1"},
                          "accepts_response_payload": True})  # fmt: skip
        ack = await asyncio.wait_for(acks.get(), 20)
        assert "round start" in json.dumps(ack["payload"])
    finally:
        await handler.close_async()
        await runner.cleanup()
        await d.aclose()
    assert fake.named("apps.connections.open")[0].token == "xapp-test"


async def test_a_slow_command_over_the_rate_limit_is_refused_in_the_ack(bot: Bot) -> None:
    for _ in range(20):  # the per-minute command budget
        assert "too fast" not in (await bot.slash("help", user="U7")).text
    resp = await bot.slash("report", user="U7")
    assert "too fast" in resp.text and "Working on" not in resp.text
    # Nothing was started for it (no upload, no answer in the channel), and others still work.
    assert not bot.fake.named("files.getUploadURLExternal")
    assert "Working on `report`" in (await bot.slash("report", user="U8")).text


async def test_alerts_are_posted_once_to_the_alerts_channel_and_listed(
    bot: Bot, engine: Engine, fake: FakeSlack
) -> None:
    from datetime import UTC, datetime, timedelta

    from slack_sdk.web.async_client import AsyncWebClient

    from bot.ops.alerts import post_alerts
    from bot.ops.jobs import JobRun, chat_notifier
    from bot.platforms.slack import SlackPort, api_base_url
    from bot.services import BotServices
    from storage.db import session_scope
    from storage.models import HostRecord

    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    with session_scope(engine) as s:
        s.add(HostRecord(instance_id="i-0slack", instance_type="g4dn.xlarge", region="us-east-1",
                         state="ready", expires_at=now - timedelta(hours=1)))  # fmt: skip
    cfg = make_config(admins=[ADMIN])
    port = SlackPort(AsyncWebClient(token=TOKEN, base_url=api_base_url()))
    run = JobRun(BotServices.create(engine, cfg), chat_notifier(port, "C0ADMIN"),
                 alerts=chat_notifier(port, "C0ALERTS"), clock=lambda: now)  # fmt: skip
    assert len(await post_alerts(run)) == 1
    assert await post_alerts(run) == []  # checked again: not posted twice

    def alert_posts() -> list[Any]:
        return [c for c in fake.named("chat.postMessage") if "i-0slack" in str(c.params)]

    (posted,) = alert_posts()
    assert posted.params["channel"] == "C0ALERTS"
    assert "past its TTL" in str(posted.params)
    resp = await bot.slash("alerts", user="U1")
    assert "[host] host i-0slack (g4dn.xlarge) is past its TTL" in resp.text
    with session_scope(engine) as s:
        (host,) = s.exec(select(HostRecord)).all()
        host.terminated_at, host.state = now, "terminated"
        s.add(host)
    assert [c.phase for c in await post_alerts(run)] == ["clear"]
    assert "Cleared: host i-0slack" in str(alert_posts()[-1].params)
    assert "No open alerts" in (await bot.slash("alerts", user="U1")).text
