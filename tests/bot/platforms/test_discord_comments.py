"""Comments in Discord (issue 20), under dpytest: a reply to a pair's message is the rater's
comment (a 📝 reaction says it was saved); replies to other messages and the bot's own are
left alone; after the round closes a reply says so and nothing is stored."""

from __future__ import annotations

from typing import Any

import discord
import discord.ext.test as dpytest
from discord.ext.test import backend, factories
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.platforms.discord import SlamDiscordClient
from tests.bot.platforms.test_discord import (  # noqa: F401  (fixtures)
    client,
    members,
    reaction_type_patch,
    sent,
    start_round,
)


async def reply(content: str, member: discord.Member, to: discord.Message) -> discord.Message:
    """What Discord sends for a reply: a message with a `message_reference` (dpytest has no
    helper for it)."""
    channel: Any = to.channel
    make: Any = factories.make_message_dict  # its stubs want a Member's BaseUser
    data: dict[str, Any] = make(channel, member, content=content, type=19)
    data["message_reference"] = {"message_id": to.id, "channel_id": channel.id,
                                 "guild_id": channel.guild.id}  # fmt: skip
    state: Any = backend.get_state()
    state.parse_message_create(data)
    await dpytest.run_all_events()
    found = state._get_message(data["id"])
    assert found is not None
    return found


def comments(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as c:
        q = text("SELECT pair_id, text FROM vote_comment ORDER BY id")
        return [(int(p), t) for p, t in c.execute(q)]


async def test_a_reply_to_a_pair_is_a_comment(client: SlamDiscordClient, engine: Engine) -> None:  # noqa: F811
    pairs = await start_round(client)
    alice = members()[0]
    mine = await reply("B invents a meeting", alice, pairs[0])
    other = await dpytest.message("hello", channel=pairs[0].channel, member=alice)
    await reply("nice", alice, other)  # a reply to something else: conversation
    saved = comments(engine)
    assert [t for _, t in saved] == ["B invents a meeting"]
    with engine.connect() as c:
        pm = c.execute(text("SELECT pair_id FROM pair_message WHERE message_ref = :r"),
                       {"r": str(pairs[0].id)}).scalar()  # fmt: skip
    assert saved[0][0] == pm
    assert any(str(r.emoji) == "📝" for r in mine.reactions)
    sent()  # drop what was sent so far
    with engine.begin() as c:
        c.execute(text("UPDATE rating_round SET status = 'closed'"))
    await reply("late", alice, pairs[1])
    assert any("round is closed" in (m.content or "") for m in sent())
    assert len(comments(engine)) == 1
