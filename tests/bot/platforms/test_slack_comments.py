"""Comments in Slack (issue 20): a thread reply under a pair's message, sent as a signed event
into the real Bolt app, is the rater's comment (stored once, confirmed ephemerally); an edit is
a new row; replies under other messages and the bot's own are left alone; `/slam reveal`
shows them once the round is closed."""

from __future__ import annotations

from sqlalchemy import text

from tests.bot.platforms.test_slack import (  # noqa: F401  (fixtures)
    Bot,
    bot,
    fake,
    open_round,
    slack_env,
)
from tests.support.slack_helpers import JSON, message_body, signed


async def send(b: Bot, body: str) -> None:
    resp = await b.http.post("/slack/events", content=body, headers={**JSON, **signed(body)})
    assert resp.status_code == 200


def comments(b: Bot) -> list[tuple[int, str]]:
    with b.engine.connect() as c:
        q = text("SELECT pair_id, text FROM vote_comment ORDER BY id")
        return [(int(p), t) for p, t in c.execute(q)]


async def test_thread_replies_on_a_pair_are_comments(bot: Bot) -> None:  # noqa: F811
    msgs = await open_round(bot)
    pair = msgs[0]
    await send(bot, message_body("EvC1", "U1", pair.channel, "B invents a meeting",
                                 pair.message_ref))  # fmt: skip
    await bot.until(lambda: comments(bot), "the comment")
    await send(bot, message_body("EvC1", "U1", pair.channel, "B invents a meeting",
                                 pair.message_ref))  # redelivered  # fmt: skip
    await send(bot, message_body("EvC2", "U2", pair.channel, "lunch?", "1700000000.000100"))
    await send(bot, message_body("EvC3", "UBOTSLAM", pair.channel, "seed", pair.message_ref,
                                 bot=True))  # fmt: skip
    await send(bot, message_body("EvC4", "U1", pair.channel, "B invents a meeting on Friday",
                                 pair.message_ref, edited=True))  # fmt: skip
    await bot.until(lambda: len(comments(bot)) == 2, "the edit")
    assert comments(bot) == [(pair.pair_id, "B invents a meeting"),
                             (pair.pair_id, "B invents a meeting on Friday")]  # fmt: skip
    confirms = [c for c in bot.fake.named("chat.postEphemeral")
                if "Comment saved" in str(c.params)]  # fmt: skip
    assert len(confirms) == 2  # the redelivery, the other thread and the bot: silent
    assert all(c.params.get("thread_ts") == pair.message_ref for c in confirms)
    # Blind until the round closes; then the reveal shows what raters said.
    resp = await bot.slash(f"reveal {pair.pair_id}")
    assert "still open" in resp.text and "Friday" not in resp.text
    await bot.slash("round close")
    await bot.until(lambda: any("closed" in str(c.params)
                                for c in bot.fake.named("chat.postMessage")), "close")  # fmt: skip
    resp = await bot.slash(f"reveal {pair.pair_id}")
    assert "Comments (1)" in resp.text and "B invents a meeting on Friday" in resp.text
    # After the close, a new comment is refused (and said so).
    await send(bot, message_body("EvC5", "U1", pair.channel, "late", pair.message_ref))
    ephemeral = bot.fake.named
    await bot.until(lambda: any("round is closed" in str(c.params)
                                for c in ephemeral("chat.postEphemeral")), "refusal")  # fmt: skip
    assert len(comments(bot)) == 2
