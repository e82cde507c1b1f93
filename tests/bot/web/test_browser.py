"""The web front in a real browser: Playwright driving Debian's chromium (`make test` installs it
with scripts/ensure_chromium.sh). A rater on a phone-sized page rates a whole round by click and
by keyboard; a double click stores one vote; bad links get a 403 page; no model name reaches
the browser (DOM or any response); the dashboard shows a new vote; the static HTML report
opens with no broken image. Screenshots at 390 and 1280 px go to $SLAM_SCREENSHOTS (or the
test's temp folder)."""

from __future__ import annotations

import contextlib
import os
import random
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from bot.events import Reaction
from bot.rating.invites import Tokens
from core.config import SlamConfig
from storage.db import session_scope
from storage.models import Vote
from tests.support.bot_seed import make_config, seed
from tests.support.web_helpers import SECRET, WebBot, has_model_word, open_round, start_web

CHROMIUM = os.environ.get("SLAM_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
TEXTS = {"mistral-7b-q4/Ada": "As Mistral, I know you will shine, Ada.",
         "gpt-4/Grace": "I am GPT-4 and I say: ship it, Grace.",
         "gemma3-270m-q4_k_m/Linus": "Gemma here! Linus, keep your rituals."}  # fmt: skip


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("playwright is not installed: make test installs it (pip install -e .[dev])")
    if not Path(CHROMIUM).exists():
        why = f"{CHROMIUM} is missing: run scripts/ensure_chromium.sh (make test does)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        await b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("SLAM_SCREENSHOTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def cfg() -> SlamConfig:
    return make_config(pairs_per_round=3)


@pytest.fixture
async def bot(engine: Engine, cfg: SlamConfig, port: int, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WebBot]:  # fmt: skip
    monkeypatch.setenv("SLAM_WEB_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    seed(engine, cfg, texts=TEXTS)
    open_round(engine, cfg)
    web = await start_web(engine, cfg, port, report_dir=tmp_path / "reports")
    yield web
    await web.aclose()


class Recorder:
    """Every response body the page received, and console errors (CSP violations too)."""

    def __init__(self, page: Any):
        self.bodies: list[tuple[str, str]] = []
        self.errors: list[str] = []
        page.on("response", self._response)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    async def _response(self, response: Any) -> None:
        ctype = response.headers.get("content-type", "")
        if response.status in (301, 302, 303) or "image" in ctype:
            return
        with contextlib.suppress(Exception):  # a page navigated away from: no body to read
            self.bodies.append((response.url, await response.text()))


def last_vote_was_gold(engine: Engine) -> bool:
    from storage.models import RatingPair

    with Session(engine) as s:
        vote = s.exec(select(Vote).order_by(Vote.id.desc())).first()  # type: ignore[union-attr]
        pair = s.get(RatingPair, vote.pair_id) if vote else None
        return bool(pair is not None and getattr(pair, "kind", "") == "gold")


def stored(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(Vote)).one())


async def wait_for(pred: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pred():
            return
        await __import__("asyncio").sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_phone_rates_a_whole_round_by_click_and_keyboard(
    browser: Any, bot: WebBot, engine: Engine, shots: Path
) -> None:
    ctx = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                    has_touch=True)  # fmt: skip
    page = await ctx.new_page()
    rec = Recorder(page)
    response = await page.goto(bot.link("ada"))
    assert response is not None and response.status == 200
    assert page.url.endswith("/rate")
    await page.screenshot(path=str(shots / "rate-390.png"), full_page=True)
    # Accessible names, keyboard hints, a page that fits a phone without sideways scrolling.
    for name in ("A is better", "B is better", "Tie", "Both bad"):
        assert await page.get_by_role("button", name=re.compile(name)).count() == 1
    assert await page.get_by_role("progressbar").count() == 1
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # First vote by tapping, then by keys.
    await page.get_by_role("button", name=re.compile("A is better")).click()
    await page.get_by_text("Saved: A is better.").wait_for()
    keys = iter(["b", "t", "x", "a", "b", "t"])
    while await page.get_by_text("You have rated all").count() == 0:
        key = next(keys)
        await page.keyboard.press(key)
        label = {"a": "A is better", "b": "B is better", "t": "Tie", "x": "Both bad"}[key]
        await page.get_by_text(f"Saved: {label}.").wait_for()
    await page.screenshot(path=str(shots / "rate-done-390.png"), full_page=True)
    # Change the last vote from the link under the status line, then retract it with U.
    await page.get_by_role("link", name="Change or retract it").click()
    assert await page.get_by_role("button", name=re.compile("Retract my vote")).count() == 1
    before = stored(engine)
    await page.keyboard.press("u")
    await page.get_by_text("Your vote was retracted.").wait_for()
    assert stored(engine) == before + 1
    # Nothing in the DOM or in any response names a model.
    html = await page.content()
    assert has_model_word(html) is None, has_model_word(html)
    leaks = [(u, w) for u, body in rec.bodies if (w := has_model_word(body))]
    assert leaks == [], leaks
    assert rec.errors == [], rec.errors  # no CSP violation, no script error
    await ctx.close()
    desk = await browser.new_context(viewport=DESKTOP)
    page = await desk.new_page()
    await page.goto(bot.link("grace"))
    await page.screenshot(path=str(shots / "rate-1280.png"), full_page=True)
    await desk.close()


async def test_a_double_click_stores_one_vote(browser: Any, bot: WebBot, engine: Engine) -> None:
    ctx = await browser.new_context(viewport=PHONE)
    page = await ctx.new_page()
    await page.goto(bot.link("barbara"))
    pair = await page.locator('input[name="pair"]').first.get_attribute("value")
    await page.get_by_role("button", name=re.compile("B is better")).dblclick()
    await page.get_by_text("Saved: B is better.").wait_for()
    assert stored(engine) == 1
    await page.goto(f"{bot.url}/rate/pair/{pair}")
    pressed = page.get_by_role("button", name=re.compile("B is better"))
    assert await pressed.get_attribute("aria-pressed") == "true"
    await ctx.close()


async def test_expired_forged_and_missing_links_get_a_403_page(
    browser: Any, bot: WebBot, engine: Engine
) -> None:
    expired, _ = Tokens(SECRET.encode(), engine, clock=lambda: time.time() - 86400 * 30).issue(
        "rate", "ada", 1)  # fmt: skip
    good = bot.link("ada").rsplit("/", 1)[1]
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    ctx = await browser.new_context(viewport=PHONE)
    page = await ctx.new_page()
    for url, text in [(f"{bot.url}/r/{expired}", "This link has expired"),
                      (f"{bot.url}/r/{forged}", "This link is not valid"),
                      (f"{bot.url}/rate", "You need a personal link"),
                      (f"{bot.url}/dashboard", "You need a personal link")]:  # fmt: skip
        response = await page.goto(url)
        assert response is not None and response.status == 403
        assert await page.get_by_role("heading", name=text).count() == 1
    await ctx.close()


async def cast_votes(engine: Engine, cfg: SlamConfig, raters: int = 6, seed_: int = 5) -> None:
    """Channel votes from a few raters (through the real vote writer), so charts have data."""
    from bot.dispatcher import Dispatcher
    from bot.rating import rounds

    with session_scope(engine) as s:
        rnd = rounds.open_round(s)
        assert rnd is not None and rnd.id is not None
        pairs = rounds.round_pairs(s, rnd.id)
        for p in pairs:
            rounds.record_message(s, p, "slack", "C0RATINGS", f"17.{p.id}")
        ids = [p.id for p in pairs]
    rng = random.Random(seed_)

    d = Dispatcher(engine, cfg, salt=b"s")
    for r in range(raters):
        for pid in ids:
            name = rng.choice(["a", "a", "b", "handshake"])
            await d.handle_reaction(Reaction("slack", f"U{r}", "C0RATINGS", f"17.{pid}",
                                             name, True, f"e{r}.{pid}"))  # fmt: skip
    await d.aclose()


async def test_the_dashboard_shows_a_new_vote(
    browser: Any, bot: WebBot, engine: Engine, cfg: SlamConfig, shots: Path
) -> None:
    await cast_votes(engine, cfg)
    viewer = await browser.new_context(viewport=DESKTOP)
    page = await viewer.new_page()
    rec = Recorder(page)
    response = await page.goto(bot.link("pat", "view"))
    assert response is not None and response.status == 200 and page.url.endswith("/dashboard")
    caption = page.locator("#caption")
    before = await caption.text_content() or ""
    n_before = int(re.search(r"from (\d+) pairwise votes", before).group(1))  # type: ignore[union-attr]
    await wait_for(lambda: page.evaluate(
        "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"),
        "every chart to load")  # fmt: skip
    await page.screenshot(path=str(shots / "dashboard-1280.png"), full_page=True)
    # A rater votes in another browser; the open dashboard shows it without a reload.
    rater = await browser.new_context(viewport=PHONE)
    rpage = await rater.new_page()
    await rpage.goto(bot.link("newcomer"))
    while True:  # a gold (quality-check) pair is not counted in the ratings: vote on
        await rpage.get_by_role("button", name=re.compile("A is better")).click()
        await rpage.get_by_text("Saved: A is better.").wait_for()
        if not last_vote_was_gold(engine):
            break
    await rater.close()

    async def updated() -> bool:
        text = await caption.text_content() or ""
        return f"from {n_before + 1} pairwise votes" in text

    await wait_for(updated, "the dashboard to show the new vote")
    assert rec.errors == [], rec.errors
    phone = await browser.new_context(viewport=PHONE, device_scale_factor=2)
    ppage = await phone.new_page()
    await ppage.goto(bot.link("pat", "view"))
    await ppage.screenshot(path=str(shots / "dashboard-390.png"), full_page=True)
    await phone.close()
    await viewer.close()


async def test_the_static_report_opens_with_no_broken_image(
    browser: Any, bot: WebBot, engine: Engine, cfg: SlamConfig, tmp_path: Path, shots: Path
) -> None:
    import asyncio

    from evaluation.report import build_report

    await cast_votes(engine, cfg)
    res = await asyncio.to_thread(build_report, engine, cfg, tmp_path / "report")
    ctx = await browser.new_context(viewport=DESKTOP)
    page = await ctx.new_page()
    rec = Recorder(page)
    await page.goto(res.html_path.resolve().as_uri())
    images = await page.evaluate(
        "Array.from(document.images).map(i => [i.getAttribute('src').slice(0, 60), "
        "i.complete && i.naturalWidth > 0])")  # fmt: skip
    assert images, "the report has no images"
    broken = [src for src, ok in images if not ok]
    assert broken == [], broken
    assert rec.errors == [], rec.errors
    await page.screenshot(path=str(shots / "report-1280.png"))
    await ctx.close()


# Every visible text node's font size, and every box that clips or scrolls its content: a box
# whose content overflows must scroll (overflow auto/scroll) and be described by a visible
# hint (aria-describedby); a box that clips overflowing content (hidden/clip) is a failure.
LAYOUT_JS = """() => {
  const small = [], clipped = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || !n.textContent.trim()) continue;
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || cs.visibility === 'hidden') continue;
    if (el.closest('.skip')) continue;  // the skip link sits off-screen until focused
    const px = parseFloat(cs.fontSize);
    if (px < 11) small.push(`${px}px: ${n.textContent.trim().slice(0, 40)}`);
  }
  for (const el of document.querySelectorAll('body *')) {
    const cs = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const over = el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1;
    if (!over) continue;
    const ox = cs.overflowX, oy = cs.overflowY;
    const what = `${el.tagName.toLowerCase()}.${el.className}`;
    if ([ox, oy].some(o => o === 'hidden' || o === 'clip')) {
      clipped.push(`${what} clips`);
      continue;
    }
    if ([ox, oy].some(o => o === 'auto' || o === 'scroll')) {
      const hint = document.getElementById(el.getAttribute('aria-describedby') || '');
      const hr = hint && hint.getBoundingClientRect();
      if (!hint || !hr.width || !hr.height) clipped.push(`${what} scrolls with no visible hint`);
    }
  }
  return {small, clipped,
          wide: document.documentElement.scrollWidth > window.innerWidth};
}"""


async def test_the_dashboard_on_a_phone_is_cards_and_charts_that_fit(
    browser: Any, bot: WebBot, engine: Engine, cfg: SlamConfig, shots: Path
) -> None:
    """At 390×844 the leaderboard is one card per model (rating with interval, decision,
    votes, cost up front; the rest behind "More"), no text is under 11 CSS px, nothing is cut
    off or scrolls without a visible hint, the page never scrolls sideways, charts are as
    wide as the screen and a tap opens one full size. A new vote redraws the cards."""
    from evaluation.results import HEADERS, Results, cells

    await cast_votes(engine, cfg)
    ctx = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                    has_touch=True)  # fmt: skip
    page = await ctx.new_page()
    rec = Recorder(page)
    response = await page.goto(bot.link("pat", "view"))
    assert response is not None and response.status == 200
    for img in await page.locator("img").all():  # lazy images load once scrolled to
        await img.scroll_into_view_if_needed()
    await wait_for(lambda: page.evaluate(
        "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"),
        "every chart to load")  # fmt: skip
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(shots / "dashboard-cards-390.png"), full_page=True)
    # The cards, not the table; each with the table's own cells.
    assert not await page.locator(".table-wrap").is_visible()
    results = Results(engine, cfg)
    rows = [cells(i, r) for i, r in enumerate(results.leaderboard, 1)]
    cards = page.locator("#board-cards > li.card")
    assert await cards.count() == len(rows) >= 3
    for k, row in enumerate(rows):
        card = cards.nth(k)
        assert await card.locator("h3").text_content() == f"{row[0]}. {row[1]}"
        shown = dict(zip(await card.locator("dl.main dt").all_text_contents(),
                         await card.locator("dl.main dd").all_text_contents(), strict=True))
        assert list(shown) == ["quality", "decision", "votes", "$ per 1K output"]
        for h, v in shown.items():
            assert v == row[HEADERS.index(h)]
        assert re.match(r"^\d+\*? \[", shown["quality"]), shown  # a rating with its interval
        more = card.locator("details dl")
        assert not await more.is_visible()
    first = cards.nth(0)
    await first.locator("summary").tap()
    assert await first.locator("details dl").is_visible()
    assert "p50 latency" in await first.locator("details dt").all_text_contents()
    layout = await page.evaluate(LAYOUT_JS)
    assert layout["small"] == [] and layout["clipped"] == [], layout
    assert layout["wide"] is False
    # Charts as wide as the screen: the phone's own renditions where there is one (their 11 pt
    # labels at least 11 CSS px wide: 11 pt at 240 dpi, scaled to the shown width); a tap
    # opens the full-size PNG.
    from bot.web.dashboard import PHONE_CHARTS, PHONE_SIZE

    shown = await page.evaluate("Array.from(document.images).map(i => [i.id, i.currentSrc, "
                                "i.getBoundingClientRect().width, i.naturalWidth])")  # fmt: skip
    assert shown and all(PHONE["width"] * 0.85 <= w <= PHONE["width"] for _, _, w, _ in shown)
    phone = {i.removeprefix("chart-"): (w, n) for i, src, w, n in shown if ".phone.png" in src}
    assert set(phone) == set(PHONE_CHARTS), shown
    for w, n in phone.values():
        assert n == PHONE_SIZE[0] * PHONE_SIZE[2]
        assert 11 * PHONE_SIZE[2] / 72 * w / n >= 11  # the smallest label, in CSS px
    await page.screenshot(path=str(shots / "dashboard-charts-390.png"), full_page=True)
    async with ctx.expect_page() as opened:
        await page.locator("a.chart").first.tap()
    png = await opened.value
    await png.wait_for_load_state()
    assert "/dashboard/chart/" in png.url and png.url.split("?")[0].endswith(".png")
    assert await png.evaluate("document.images.length === 1 && "
                              "document.images[0].naturalWidth === 1200")  # fmt: skip
    await png.close()
    # A vote elsewhere: the polled state redraws the cards (dashboard.js builds the same ones).
    before = await cards.nth(0).locator("dl.main dd").nth(2).text_content()
    n_votes = sum(int(r[HEADERS.index("votes")] or 0) for r in rows)
    rater = await browser.new_context(viewport=PHONE)
    rpage = await rater.new_page()
    await rpage.goto(bot.link("newcomer"))
    while True:
        await rpage.get_by_role("button", name=re.compile("A is better")).click()
        await rpage.get_by_text("Saved: A is better.").wait_for()
        if not last_vote_was_gold(engine):
            break
    await rater.close()

    async def redrawn() -> bool:
        texts = await page.locator("#board-cards dl.main dd").all_text_contents()
        return sum(int(t) for t in texts[2::4] if t.isdigit()) > n_votes

    await wait_for(redrawn, "the cards to show the new vote")
    assert before is not None
    assert await page.evaluate(LAYOUT_JS) == {"small": [], "clipped": [], "wide": False}
    assert rec.errors == [], rec.errors  # no CSP violation, no script error
    await ctx.close()
    # On a desktop the table stays, and scrolls only with its hint showing.
    desk = await browser.new_context(viewport=DESKTOP)
    dpage = await desk.new_page()
    await dpage.goto(bot.link("pat", "view"))
    assert await dpage.locator(".table-wrap").is_visible()
    assert not await dpage.locator("#board-cards").is_visible()
    layout = await dpage.evaluate(LAYOUT_JS)
    assert layout["clipped"] == [] and layout["small"] == [], layout
    await desk.close()
