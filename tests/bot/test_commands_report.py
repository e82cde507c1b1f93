"""`/slam report` answers with what helps: the decision, the leaderboard text and one summary
card; charts without data are listed with what fills them, never uploaded; `report all` and
`report CHART` give more. The real report over the Slack HTTP path (real Bolt, signed
requests, a fake Slack Web API), on Discord (dpytest) and on the console."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.dispatcher import Dispatcher
from bot.platforms.slack import build_app, serve_http
from core.config import SlamConfig
from evaluation.charts._style import png_text
from evaluation.results.service import Results
from storage.db import session_scope
from storage.models import Generation, ModelRecord, Probe
from tests.support.bot_seed import make_config, seed
from tests.support.eval_seed import rater, seed_pair, seed_round, vote
from tests.support.fake_slack_api import FakeSlack
from tests.support.slack_helpers import FORM, SECRET, TOKEN, signed, slash_body


def seed_results(engine: Engine, cfg: SlamConfig) -> None:
    """Generations, 60 pairwise votes and latency probes of two models: ratings, cost and
    latency have data; judges, human scores and sweeps do not."""
    seed(engine, cfg)
    with session_scope(engine) as s:
        gens: dict[str, list[int]] = {}
        names = {m.id: m.name for m in s.exec(select(ModelRecord)).all()}
        for g in s.exec(select(Generation)).all():
            assert g.id is not None
            gens.setdefault(names[g.model_id], []).append(g.id)
        now = datetime.now(UTC)
        for name in ("mistral-7b-q4", "gemma3-270m-q4_k_m"):
            mid = next(k for k, v in names.items() if v == name)
            for i in range(12):
                s.add(Probe(model_id=mid, run_id="r1", hour=(now.hour + i) % 24,
                            started_at=now - timedelta(hours=i), latency_s=1.0 + i / 10,
                            ttft_s=0.2, tpot_s=0.02, output_tokens=60,
                            prompt_tokens=100))  # fmt: skip
    rnd = seed_round(engine)
    rng = random.Random(5)
    raters = [rater(engine, f"r{i}") for i in range(6)]
    models = list(gens)
    for _ in range(60):
        a, b = rng.sample(models, 2)
        pair = seed_pair(engine, rng.choice(gens[a]), rng.choice(gens[b]), rnd)
        vote(engine, pair, rng.choice(raters), rng.choice(["A", "B", "tie"]))


# --- Slack over HTTP -------------------------------------------------------------------------
@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@asynccontextmanager
async def slack_bot(
    engine: Engine, fake: FakeSlack, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_API_URL", fake.api_url)
    cfg = make_config()
    seed_results(engine, cfg)
    d = Dispatcher(engine, cfg, salt=b"s", report_dir=tmp_path / "reports")
    app = await build_app(d)
    runner = await serve_http(app, "127.0.0.1", port)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        yield http
    await runner.cleanup()
    await d.aclose()


async def _slash(http: httpx.AsyncClient, text: str) -> None:
    body = slash_body(text, "U1")
    resp = await http.post("/slack/events", content=body, headers={**FORM, **signed(body)})
    assert resp.status_code == 200 and "Working on `report`" in resp.text


async def _wait(fake: FakeSlack, n_messages: int) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + 60
    while len(fake.named("chat.postMessage")) < n_messages or (
        len(fake.named("files.completeUploadExternal")) < n_messages
    ):
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the report answer")
        await asyncio.sleep(0.05)


async def test_slack_report_answer_is_the_decision_the_leaderboard_and_one_card(
    engine: Engine, fake: FakeSlack, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with slack_bot(engine, fake, port, tmp_path, monkeypatch) as http:
        decision = Results(engine, make_config()).decision
        await _slash(http, "report")
        await _wait(fake, 1)
        text = str(fake.named("chat.postMessage")[0].params)
        assert decision.headline[:60] in text and "Leaderboard" in text
        assert "Not measured yet: judge and similarity scores (`slam score`)" in text
        assert "`/slam report all`" in text
        uploads = fake.named("files.getUploadURLExternal")
        assert [c.params["filename"] for c in uploads] == ["summary.png"]
        (card,) = fake.named("upload")
        meta = png_text(card.body)
        assert meta["Decision"] == decision.kind and meta["Headline"] == decision.headline

        await _slash(http, "report all")
        await _wait(fake, 2)
        names = sorted(c.params["filename"] for c in fake.named("files.getUploadURLExternal")[1:])
        # Charts with data are uploaded; the empty ones are named with what fills them.
        assert {"bradley_terry.png", "latency.png", "quality_vs_cost.png"} <= set(names)
        assert not {"sweep.png", "judge_vs_human.png", "human_scores.png"} & set(names)
        text = str(fake.named("chat.postMessage")[1].params)
        assert "No data yet: " in text and "sweep (`slam sweep`)" in text
        for upload in fake.named("upload")[1:]:
            assert not png_text(upload.body)["Description"].startswith("no data")

        await _slash(http, "report latency")
        await _wait(fake, 3)
        last = fake.named("files.getUploadURLExternal")[-1].params["filename"]
        assert last == "latency.png"


# --- console -----------------------------------------------------------------------------------
def test_console_report_prints_the_answer_and_the_card_path(engine: Engine, tmp_path: Path) -> None:
    import asyncio

    from bot.events import Command
    from bot.platforms.console import ConsolePort

    cfg = make_config()
    seed_results(engine, cfg)
    d = Dispatcher(engine, cfg, salt=b"s", report_dir=tmp_path / "reports")
    out = io.StringIO()
    port = ConsolePort(out)

    async def run() -> Any:
        reply = await d.handle_command(Command("console", "u", "c", "report"), port)
        assert reply is not None
        await port.post(reply)
        return reply

    reply = asyncio.run(run())
    printed = out.getvalue()
    assert Results(engine, cfg).decision.headline[:60] in printed
    (card,) = reply.files.values()
    assert card.name == "summary.png" and card.exists() and str(card) in printed
    # Typed commands print Reply.plain(): the same full path, not a bare file name.
    assert f"[chart summary: {card}]" in reply.plain() and card.is_absolute()


# --- Discord -----------------------------------------------------------------------------------
async def test_discord_report_attaches_only_the_card(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import discord
    import discord.ext.test as dpytest

    from bot.platforms.discord import SlamDiscordClient

    monkeypatch.chdir(tmp_path)
    cfg = make_config(channel="slam-ratings")
    seed_results(engine, cfg)
    d = Dispatcher(engine, cfg, salt=b"d", report_dir=tmp_path / "reports")
    intents = discord.Intents.default()
    intents.members = True
    c = SlamDiscordClient(d, text_commands=True, intents=intents)
    c.sync_commands = False
    await c._async_setup_hook()
    dpytest.configure(c, guilds=1, text_channels=["slam-ratings"], members=["alice"])
    try:
        await dpytest.message("!slam report", member=dpytest.get_config().members[0])
        msgs = []
        while not dpytest.sent_queue.empty():
            msgs.append(dpytest.get_message())
        report = msgs[-1]
        assert [a.filename for a in report.attachments] == ["summary.png"]
    finally:
        await dpytest.empty_queue()
        await d.aclose()
