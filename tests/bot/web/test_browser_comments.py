"""The rating page's comment field in a real browser (issue 20): typed under the buttons (the
keyboard shortcuts stay out of the way), sent with the vote, stored once as the rater's
comment on that pair, confirmed, and never echoed: nothing on the page names a model."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.bot.web.test_browser import (  # noqa: F401  (fixtures)
    Recorder,
    bot,
    browser,
    cfg,
    stored,
)
from tests.support.web_helpers import WebBot, has_model_word


def comments(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as c:
        q = text("SELECT pair_id, text FROM vote_comment ORDER BY id")
        return [(int(p), t) for p, t in c.execute(q)]


async def test_a_comment_goes_with_the_vote(browser: Any, bot: WebBot, engine: Engine) -> None:  # noqa: F811
    ctx = await browser.new_context(viewport={"width": 390, "height": 844})
    page = await ctx.new_page()
    rec = Recorder(page)
    await page.goto(bot.link("ada"))
    field = page.get_by_label(re.compile("Why\\?"))
    assert await field.count() == 1
    await field.fill("")
    await field.press_sequentially("B is better: A invents a meeting (Mistral?)")
    assert stored(engine) == 0  # the a, b, t, x typed in the field are not votes
    pair = int(await page.locator("input[name=pair]").get_attribute("value") or 0)
    await page.get_by_role("button", name=re.compile("B is better")).click()
    await page.get_by_text("Saved: B is better. Comment saved").wait_for()
    assert comments(engine) == [(pair, "B is better: A invents a meeting (Mistral?)")]
    assert stored(engine) == 1
    # The next pair's field is empty, and nothing the browser received names a model.
    assert await page.get_by_label(re.compile("Why\\?")).input_value() == ""
    html = await page.content()
    assert has_model_word(html) is None, has_model_word(html)
    assert [(u, w) for u, body in rec.bodies if (w := has_model_word(body))] == []
    assert rec.errors == [], rec.errors
    await ctx.close()
