"""Discord adapter with dpytest: commands, embeds, reaction votes (raw events, uncached
messages too), removals, chart attachments, and the `/slam` application command tree."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import discord
import discord.ext.test as dpytest
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.dispatcher import Dispatcher
from bot.platforms.discord import SlamDiscordClient
from storage.models import PairMessage
from tests.bot.platforms.test_slack import fake_report_builder
from tests.support.bot_seed import MODELS, effective_votes, make_config, seed

CHANNEL = "slam-ratings"


@pytest.fixture(autouse=True)
def reaction_type_patch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """dpytest 0.7.0 builds reaction payloads without discord.py 2.7's required `type`."""
    from discord.state import ConnectionState

    for name in ("parse_message_reaction_add", "parse_message_reaction_remove"):
        original = getattr(ConnectionState, name)

        def patched(self: Any, data: dict[str, Any], _orig: Any = original) -> None:
            data.setdefault("type", 0)
            _orig(self, data)

        monkeypatch.setattr(ConnectionState, name, patched)
    yield


@pytest.fixture
async def client(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SlamDiscordClient]:
    monkeypatch.chdir(tmp_path)  # dpytest writes attachments (dpytest_N.dat) into the cwd
    cfg = make_config(channel=CHANNEL, pairs_per_round=3)
    seed(engine, cfg, texts={"mistral-7b-q4/Ada": "As Mistral, I know you will shine, Ada."})
    d = Dispatcher(engine, cfg, salt=b"discord-salt", report_builder=fake_report_builder,
                   report_dir=tmp_path / "reports")  # fmt: skip
    intents = discord.Intents.default()
    intents.members = True  # dpytest keeps its fake members in the member cache
    c = SlamDiscordClient(d, text_commands=True, intents=intents)
    c.sync_commands = False
    await c._async_setup_hook()
    dpytest.configure(c, guilds=1, text_channels=[CHANNEL, "general"],
                      members=["alice", "bob", "admin"])  # fmt: skip
    d.auth.admins.add(str(dpytest.get_config().members[2].id))
    assert c.user is not None
    d.ignore_self.self_ids.add(str(c.user.id))
    yield c
    await dpytest.empty_queue()
    await d.aclose()


def members() -> list[discord.Member]:
    return list(dpytest.get_config().members)


def sent() -> list[discord.Message]:
    out = []
    while not dpytest.sent_queue.empty():
        out.append(dpytest.get_message())
    return out


def pair_messages(engine: Engine) -> list[PairMessage]:
    with Session(engine) as s:
        return list(s.exec(select(PairMessage)).all())


async def start_round(client: SlamDiscordClient) -> list[discord.Message]:
    admin = members()[2]
    general = dpytest.get_config().channels[1]
    await dpytest.message("!slam round start", channel=general, member=admin)
    msgs = sent()
    pairs = [m for m in msgs if m.embeds and (m.embeds[0].title or "").startswith("Pair")]
    assert len(pairs) == 3
    assert any("Round 1 is open" in (m.content or "") for m in msgs)
    return pairs


async def test_round_posts_blind_embeds_with_seed_reactions(
    client: SlamDiscordClient, engine: Engine
) -> None:
    pairs = await start_round(client)
    banned = {str(m[k]).lower() for m in MODELS for k in ("name", "model")} | {"mistral", "gemma"}
    for msg in pairs:
        assert msg.channel.name == CHANNEL  # type: ignore[union-attr]
        embed = msg.embeds[0]
        text = str(embed.to_dict()).lower()
        assert [f.name for f in embed.fields] == ["Response A", "Response B"]
        assert not [b for b in banned if b in text], text
        assert {str(r.emoji) for r in msg.reactions} == {"🅰️", "🅱️", "🤝", "👎"}
    # The bot's seed reactions did not vote.
    with Session(engine) as s:
        assert effective_votes(s) == {}


async def test_reaction_votes_change_retract_and_ignore_others(
    client: SlamDiscordClient, engine: Engine
) -> None:
    pairs = await start_round(client)
    alice, bob, _ = members()
    msg = pairs[0]
    await dpytest.add_reaction(alice, msg, "🅰️")
    await dpytest.add_reaction(bob, msg, "🤝")
    await dpytest.add_reaction(alice, msg, "🅱️")  # last reaction wins
    await dpytest.remove_reaction(alice, msg, "🅰️")  # stale removal: B stays
    with Session(engine) as s:
        assert sorted(str(v.choice) for v in effective_votes(s).values()) == ["B", "tie"]
    await dpytest.remove_reaction(bob, msg, "🤝")  # retracts
    # Uncached message (e.g. after a restart): raw events still count.
    client._connection._messages.clear()  # type: ignore[union-attr]
    await dpytest.add_reaction(bob, pairs[1], "👎")
    # Not a vote emoji, and a message that is not a pair.
    await dpytest.add_reaction(bob, pairs[1], "🎉")
    other = await dpytest.message("hello", channel=dpytest.get_config().channels[0], member=bob)
    await dpytest.add_reaction(alice, other, "🅰️")
    with Session(engine) as s:
        got = sorted((v.pair_id, str(v.choice)) for v in effective_votes(s).values())
    ids = {m.message_ref: m.pair_id for m in pair_messages(engine)}
    assert got == sorted([(ids[str(msg.id)], "B"), (ids[str(pairs[1].id)], "both_bad")])


async def test_commands_status_report_attachments_and_admin_only(
    client: SlamDiscordClient, engine: Engine
) -> None:
    alice = members()[0]
    await dpytest.message("!slam round start", member=alice)
    (refusal,) = sent()
    assert "admins only" in (refusal.content or "")
    await start_round(client)
    await dpytest.message("!slam status", member=alice)
    (status,) = sent()
    assert status.embeds[0].title == "Rating status"
    assert any(f.name == "Pairs" and f.value == "3" for f in status.embeds[0].fields)
    await dpytest.message("!slam report", member=alice)
    (report,) = sent()
    # `/slam report` answers with the summary card (`report CHART` or `all` give more).
    assert sorted(a.filename for a in report.attachments) == ["summary.png"]
    await dpytest.message("!slam bogus", member=alice)
    (usage,) = sent()
    assert "Unknown subcommand `bogus`" in (usage.content or "")


async def test_rate_sends_the_pair_as_a_dm(client: SlamDiscordClient, engine: Engine) -> None:
    await start_round(client)
    bob = members()[1]
    await dpytest.message("!slam rate", member=bob)
    msgs = sent()
    dm = next(m for m in msgs if isinstance(m.channel, discord.DMChannel))
    assert dm.embeds[0].fields[0].name == "Response A"
    assert any("Sent you pair" in (m.content or "") for m in msgs)
    (record,) = [m for m in pair_messages(engine) if m.rater_id is not None]
    assert record.message_ref == str(dm.id)
    await dpytest.add_reaction(bob, dm, "🅰️")
    with Session(engine) as s:
        (vote,) = effective_votes(s).values()
    assert vote.pair_id == record.pair_id and vote.choice == "A"


def test_the_command_tree_mirrors_the_subcommands(engine: Engine) -> None:
    from bot.commands import COMMANDS

    d = Dispatcher(engine, make_config(), salt=b"s")
    c = SlamDiscordClient(d)
    (group,) = c.tree.get_commands()
    assert group.name == "slam"
    assert isinstance(group, discord.app_commands.Group)
    assert sorted(cmd.name for cmd in group.commands) == sorted(COMMANDS)


class FakeDiscordAPI:
    """The slice of Discord's HTTP API that interaction responses use, on 127.0.0.1."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any], list[str]]] = []

    async def handle(self, request: Any) -> Any:
        import json

        from aiohttp import web

        payload: dict[str, Any] = {}
        files: list[str] = []
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                elif part.filename:
                    files.append(part.filename)
                    await part.read()
        elif request.can_read_body:
            payload = await request.json()
        self.calls.append((request.method, request.path, payload, files))

        def reply(obj: dict[str, Any]) -> web.Response:
            # discord.py parses JSON only for exactly "application/json" (no charset).
            return web.Response(body=json.dumps(obj).encode(),
                                headers={"Content-Type": "application/json"})  # fmt: skip

        if request.path.endswith("/callback"):  # with_response=true: the callback resource
            return reply({"interaction": {"id": "77", "type": 2,
                                                      "response_message_loading": True},
                                      "resource": {"type": payload.get("type", 5)}})  # fmt: skip
        return reply({"id": "5", "channel_id": "1", "type": 0, "content": "",
                                  "attachments": [], "embeds": [], "mentions": [],
                                  "mention_roles": [], "pinned": False, "tts": False,
                                  "mention_everyone": False, "timestamp": "2024-05-01T00:00:00",
                                  "edited_timestamp": None, "flags": 0,
                                  "author": {"id": "9", "username": "slam",
                                             "discriminator": "0", "avatar": None}})  # fmt: skip


async def test_slash_command_interaction_defers_then_follows_up_with_charts(
    client: SlamDiscordClient, engine: Engine, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiohttp
    from aiohttp import web

    api = FakeDiscordAPI()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    session = aiohttp.ClientSession()
    client.http._HTTPClient__session = session  # type: ignore[attr-defined]
    try:
        guild = dpytest.get_config().guilds[0]
        alice = members()[0]

        def interaction(sub: str, options: list[dict[str, Any]]) -> Any:
            data = {
                "id": "77", "application_id": "88", "type": 2, "token": "itok", "version": 1,
                "channel_id": str(dpytest.get_config().channels[0].id), "guild_id": str(guild.id),
                "member": {"user": {"id": str(alice.id), "username": "alice",
                                    "discriminator": "0001", "avatar": None},
                           "roles": [], "joined_at": "2024-01-01T00:00:00", "deaf": False,
                           "mute": False, "permissions": "0", "flags": 0},
                "data": {"id": "99", "name": "slam", "type": 1,
                         "options": [{"name": sub, "type": 1, "options": options}]},
                "locale": "en-US", "guild_locale": "en-US", "app_permissions": "0",
                "entitlements": [], "authorizing_integration_owners": {},
                "attachment_size_limit": 8_000_000,
            }  # fmt: skip
            return discord.Interaction(data=data, state=client._connection)  # type: ignore[arg-type]

        await client.tree._call(interaction("report", [{"name": "chart", "type": 3,
                                                        "value": "bradley_terry"}]))  # fmt: skip
        await client.tree._call(interaction("round", [{"name": "action", "type": 3,
                                                       "value": "start"}]))  # fmt: skip
    finally:
        await session.close()
        await runner.cleanup()
    paths = [(m, p) for m, p, _, _ in api.calls]
    assert paths[0] == ("POST", "/api/v10/interactions/77/itok/callback")
    assert api.calls[0][2]["type"] == 5  # deferred: the 3-second deadline is met at once
    followups = [c for c in api.calls if c[1] == "/api/v10/webhooks/88/itok"]
    assert len(followups) == 2
    assert followups[0][3] == ["bradley_terry.png"]  # the chart is attached
    assert "admins only" in followups[1][2]["content"]
    assert pair_messages(engine) == []


def test_the_command_tree_takes_its_parameters_from_the_specs(engine: Engine) -> None:
    from bot.commands import COMMANDS

    c = SlamDiscordClient(Dispatcher(engine, make_config(), salt=b"s"))
    (group,) = c.tree.get_commands()
    assert isinstance(group, discord.app_commands.Group)
    subs = {cmd.name: cmd for cmd in group.commands}
    for name, spec in COMMANDS.items():
        params = {p.name: p for p in subs[name].parameters}  # type: ignore[union-attr]
        assert list(params) == [p.name for p in spec.params], name
        for p in spec.params:
            assert params[p.name].required == p.required
            assert [ch.value for ch in params[p.name].choices] == list(p.choices)
    assert subs["reveal"].parameters[0].type == discord.AppCommandOptionType.integer  # type: ignore[union-attr]
    assert "(admin)" in subs["invite"].description


class _Refused:
    """What discord.py reads off an HTTP response it turns into an HTTPException."""

    status = 413
    reason = "Payload Too Large"


async def test_refused_attachments_still_answer_and_a_failed_vote_logs_one_line(
    client: SlamDiscordClient, engine: Engine, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    pairs = await start_round(client)
    alice = members()[0]
    real = client.http.send_message

    async def refuse_files(*args: Any, **kwargs: Any) -> Any:  # Discord's 413 on the wire
        params = kwargs.get("params")
        if params is not None and params.files:
            raise discord.HTTPException(_Refused(), {"message": "Request entity too large"})
        # dpytest's fake reads `channel` from its caller's frame: be that caller faithfully.
        channel = sys._getframe(1).f_locals.get("channel")  # noqa: F841
        return await real(*args, **kwargs)

    monkeypatch.setattr(client.http, "send_message", refuse_files)
    await dpytest.message("!slam report", member=alice)
    (report,) = sent()
    assert report.attachments == []
    assert "1 chart(s) could not be attached: 413" in (report.content or "")
    assert "attachment(s) refused" in caplog.text
    # A vote the database cannot take: one log line naming it, no traceback from discord.py.
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("DROP TABLE vote"))
    caplog.clear()
    await dpytest.add_reaction(alice, pairs[0], "🅰️")
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "was NOT recorded" in errors[0].getMessage()
    assert not errors[0].exc_info


async def test_alerts_are_posted_once_and_listed_on_discord(
    client: SlamDiscordClient, engine: Engine
) -> None:
    from datetime import UTC, datetime, timedelta

    from bot.ops.alerts import post_alerts
    from bot.ops.jobs import JobRun, chat_notifier
    from storage.db import session_scope
    from storage.models import HostRecord

    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    with session_scope(engine) as s:
        s.add(HostRecord(instance_id="i-0disc", instance_type="g4dn.xlarge", region="us-east-1",
                         state="ready", expires_at=now - timedelta(minutes=1)))  # fmt: skip
    notify = chat_notifier(client.port, CHANNEL)
    run = JobRun(client.dispatcher.services, notify, clock=lambda: now)
    assert len(await post_alerts(run)) == 1
    assert await post_alerts(run) == []
    (msg,) = sent()
    shown = (msg.content or "") + "".join((e.description or "") for e in msg.embeds)
    assert "🔴 host i-0disc (g4dn.xlarge) is past its TTL" in shown
    await dpytest.message("!slam alerts", member=members()[0])
    (listing,) = sent()
    body = (listing.content or "") + "".join((e.description or "") for e in listing.embeds)
    assert "[host] host i-0disc" in body
    with session_scope(engine) as s:
        (host,) = s.exec(select(HostRecord)).all()
        host.terminated_at = now
        s.add(host)
    assert [c.phase for c in await post_alerts(run)] == ["clear"]
    (cleared,) = sent()
    text = (cleared.content or "") + "".join((e.description or "") for e in cleared.embeds)
    assert "✅ Cleared: host i-0disc" in text
