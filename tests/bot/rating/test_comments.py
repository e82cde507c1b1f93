"""Raters' comments (issue 20): cleaned, bounded, immutable rows tied to the rater and pair,
edits as new rows until the round closes, redeliveries stored once, rate-limited like votes;
the console's `# …` line after a vote."""

from __future__ import annotations

import io
import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.dispatcher import Dispatcher
from bot.events import Comment
from bot.platforms.console import rate_in_console
from bot.rating.comments import MAX_CHARS, clean
from tests.support.bot_seed import make_config, seed


@given(st.text())
def test_clean_strips_control_characters_and_bounds_the_length(raw: str) -> None:
    out = clean(raw)
    assert len(out) <= MAX_CHARS
    assert all(ch == "\n" or unicodedata.category(ch)[0] != "C" for ch in out)
    assert "\n\n\n" not in out and out == out.strip()
    assert clean(out) == out  # cleaning is idempotent


def test_clean_examples() -> None:
    assert clean("  B invents\x00 a\u200b meeting\r\n\n\n\nreally\t!  ") == (
        "B invents a meeting\n\nreally !")
    assert clean("x" * 5000) == "x" * MAX_CHARS


def rows(engine: Engine) -> list[tuple[int, int, str]]:
    with engine.connect() as c:
        q = text("SELECT pair_id, rater_id, text FROM vote_comment ORDER BY id")
        return [(int(p), int(r), t) for p, r, t in c.execute(q)]


async def test_console_comments_after_a_vote(engine: Engine) -> None:
    cfg = make_config(pairs_per_round=3)
    seed(engine, cfg)
    out = io.StringIO()
    await rate_in_console(engine, cfg, ["b", "# B invents a meeting", "#   ", "a",
                                        "# A ignores\x07 the goal", "# A ignores the goal!"],
                          out, salt=b"s")  # fmt: skip
    saved = rows(engine)
    assert [t for _, _, t in saved] == ["B invents a meeting", "A ignores the goal",
                                        "A ignores the goal!"]  # fmt: skip
    assert saved[0][0] != saved[1][0] and saved[1][0] == saved[2][0]  # the pairs voted on
    assert len({r for _, r, _ in saved}) == 1
    log = out.getvalue()
    assert log.count("Comment saved") == 3 and "That comment is empty" in log
    assert "names a model" not in log


async def test_a_comment_naming_a_model_is_flagged_to_its_author(engine: Engine) -> None:
    cfg = make_config(pairs_per_round=1)
    seed(engine, cfg)
    out = io.StringIO()
    await rate_in_console(engine, cfg, ["a # A reads like Mistral 7B"], out, salt=b"s")
    assert "vote A: recorded" in out.getvalue()  # the vote and its comment on one line
    assert "It names a model" in out.getvalue()
    assert [t for _, _, t in rows(engine)] == ["A reads like Mistral 7B"]  # stored as written


async def test_redelivered_closed_unknown_and_rate_limited(engine: Engine) -> None:
    cfg = make_config(pairs_per_round=2, votes_per_rater_per_hour=3)
    seed(engine, cfg)
    await rate_in_console(engine, cfg, ["b"], io.StringIO(), salt=b"s")
    with engine.connect() as c:
        channel, ref = c.execute(text("SELECT channel, message_ref FROM pair_message "
                                      "ORDER BY id DESC LIMIT 1")).one()  # fmt: skip
    d = Dispatcher(engine, cfg, salt=b"s", self_ids={"bot"})
    try:
        first = await d.handle_comment(Comment("console", "u1", channel, ref, "fine", "e1"))
        again = await d.handle_comment(Comment("console", "u1", channel, ref, "fine", "e1"))
        nowhere = await d.handle_comment(Comment("console", "u1", channel, "nope", "x", "e2"))
        mine = await d.handle_comment(Comment("console", "bot", channel, ref, "x", "e3"))
        over = await d.handle_comment(Comment("console", "u1", channel, ref, "4th", "e4"))
        with engine.begin() as c:
            c.execute(text("UPDATE rating_round SET status = 'closed'"))
        closed = await d.handle_comment(Comment("console", "u2", channel, ref, "late", "e5"))
    finally:
        await d.aclose()
    assert [first.status, again.status, nowhere.status, mine.status, over.status,
            closed.status] == ["recorded", "duplicate", "not_a_pair", "self", "rate_limited",
                               "closed"]  # fmt: skip
    assert [t for _, _, t in rows(engine)] == ["fine"]
