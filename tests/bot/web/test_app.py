"""The web front over real HTTP on 127.0.0.1: invite links, the rating flow with the chat's vote
rules, CSRF and security headers, every bad input a clear 4xx, the dashboard's numbers, the
`/slam invite` command and the `slam web` CLI."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from yarl import URL

from bot.events import Command
from bot.rating.invites import TokenError, Tokens
from core.config import SlamConfig
from storage.models import Vote
from tests.support.bot_seed import effective_votes, make_config, seed
from tests.support.web_helpers import SECRET, WebBot, has_model_word, open_round, start_web

TEXTS = {"mistral-7b-q4/Ada": "As Mistral, I know you will shine, Ada.",
         "gpt-4/Grace": "I am GPT-4 and I say: ship it, Grace."}  # fmt: skip


@pytest.fixture
def cfg() -> SlamConfig:
    return make_config(pairs_per_round=3, admins=["boss"])


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


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def form_of(html: str) -> dict[str, str]:
    """The hidden fields of the page's first vote form."""
    form = html[html.index('<form class="vote"'):]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))


async def get(s: aiohttp.ClientSession, url: str) -> tuple[int, str, Any]:
    async with s.get(url) as r:
        return r.status, await r.text(), r.headers


async def post(s: aiohttp.ClientSession, url: str, data: dict[str, str],
               **headers: str) -> tuple[int, str]:  # fmt: skip
    async with s.post(url, data=data, headers=headers, allow_redirects=False) as r:
        return r.status, r.headers.get("Location", "") or await r.text()


async def raw_get(url: str, path: bytes, header: bytes) -> bytes:
    """A request with bytes no HTTP client library would send; the status line."""
    import asyncio

    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n")
    await writer.drain()
    line = await reader.readline()
    writer.close()
    return line


def stored(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(Vote)).one())


def pairwise(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return sorted(str(v.choice) for v in effective_votes(s).values() if v.kind == "pairwise")


async def test_a_rater_with_only_a_link_rates_the_whole_round(bot: WebBot, engine: Engine) -> None:
    async with client() as s:
        status, html, _headers = await get(s, bot.link("ada"))
        assert status == 200 and "Which response is better?" in html
        assert "0 of 3 rated" in html
        done, votes = 0, 0
        while "You have rated all" not in html:
            votes += 1
            assert votes <= 6, "the round never ends"
            fields = form_of(html)
            status, where = await post(s, f"{bot.url}/rate/vote", {**fields, "choice": "A"})
            assert status == 303 and where.startswith("/rate?"), where
            status, html, _ = await get(s, bot.url + where)
            assert "Saved: A is better." in html
            assert has_model_word(html) is None, has_model_word(html)
            now = int(m.group(1)) if (m := re.search(r"(\d) of 3 rated", html)) else 3
            assert now >= done  # a gold (quality-check) pair does not count toward the set
            done = now
        assert "You have rated all 3 pair(s)" in html
    assert stored(engine) == votes  # one stored vote per click (gold pairs included)


async def test_double_submit_change_and_retract(bot: WebBot, engine: Engine) -> None:
    async with client() as s:
        _, html, _ = await get(s, bot.link("grace"))
        fields = form_of(html)
        first = await post(s, f"{bot.url}/rate/vote", {**fields, "choice": "B"})
        again = await post(s, f"{bot.url}/rate/vote", {**fields, "choice": "B"})
        assert first[0] == again[0] == 303 and "s=duplicate" in again[1]
        assert stored(engine) == 1
        pair = fields["pair"]
        _, html, _ = await get(s, f"{bot.url}/rate/pair/{pair}")
        assert 'value="B" aria-pressed="true"' in html and "Retract my vote" in html
        change = form_of(html)
        await post(s, f"{bot.url}/rate/vote", {**change, "choice": "tie"})
        assert pairwise(engine) == ["tie"]
        _, html, _ = await get(s, f"{bot.url}/rate/pair/{pair}")
        retract = form_of(html)
        status, where = await post(s, f"{bot.url}/rate/vote",
                                   {**retract, "choice": "retract"})  # fmt: skip
        assert status == 303 and "s=retracted" in where
        assert pairwise(engine) == []
        # The retracted pair is the next one again.
        _, html, _ = await get(s, f"{bot.url}/rate")
        assert form_of(html)["pair"] == pair
        # JSON answers for scripts and the benchmark.
        async with s.post(f"{bot.url}/rate/vote", data={**form_of(html), "choice": "A"},
                          headers={"Accept": "application/json"}) as r:  # fmt: skip
            assert r.status == 200 and (await r.json())["status"] == "recorded"
    assert stored(engine) == 4  # B, tie, the retraction, A: the duplicate was not stored


async def test_tokens_forged_expired_revoked_and_missing_get_a_403_page(
    bot: WebBot, engine: Engine
) -> None:
    good = bot.link("linus")
    token = good.rsplit("/", 1)[1]
    body, sig = token.split(".")
    forged = f"{body}.{sig[:-2]}{'AA' if not sig.endswith('AA') else 'BB'}"
    expired, _ = Tokens(SECRET.encode(), engine, clock=lambda: time.time() - 86400 * 30).issue(
        "rate", "linus", 1)  # fmt: skip
    other_secret, _ = Tokens(b"another-secret-entirely-0123456789").issue("rate", "linus", 1)
    async with client() as s:
        for bad, words in [(forged, "not valid"), (expired, "expired"),
                           (other_secret, "not valid"), ("x" * 5000, "not valid"),
                           ("%00%ff..", "not valid"), ("a.b", "not valid")]:  # fmt: skip
            status, html, headers = await get(s, f"{bot.url}/r/{bad}")
            assert status == 403 and words in html, (bad[:20], html[:300])
            assert "Traceback" not in html
            assert "unsafe-inline" not in headers["Content-Security-Policy"]
        status, html, _ = await get(s, f"{bot.url}/rate")
        assert status == 403 and "You need a personal link" in html
        viewer = bot.link("linus", "view")
        status, html, _ = await get(s, viewer.replace("/d/", "/r/"))
        assert status == 403 and "another page" in html
        # Revocation: the link stops working, also for a browser that already has it.
        assert (await get(s, good))[0] == 200
        bot.tokens.revoke("rate", "linus")
        bot.runtime.web.tokens._read_at = -1e18  # type: ignore[union-attr] (skip the TTL)
        status, html, _ = await get(s, f"{bot.url}/rate")
        assert status == 403 and "revoked" in html
        fresh = bot.link("linus")
        assert (await get(s, fresh))[0] == 200


def test_token_verification_never_raises_on_junk() -> None:
    t = Tokens(b"k" * 32)
    for junk in ["", ".", "..", "a.b.c", "€.€", "====.====", "e30.e30", "x" * 700]:
        with pytest.raises(TokenError):
            t.verify(junk, "rate")


async def test_csrf_origin_and_bad_inputs_get_clear_errors(bot: WebBot, engine: Engine) -> None:
    async with client() as s:
        _, html, _ = await get(s, bot.link("barbara"))
        fields = form_of(html)
        url = f"{bot.url}/rate/vote"
        cases = [
            ({**fields, "csrf": "nope", "choice": "A"}, {}, 403, "This form has expired"),
            ({k: v for k, v in fields.items() if k != "csrf"} | {"choice": "A"}, {}, 403,
             "This form has expired"),
            ({**fields, "choice": "A"}, {"Origin": "https://evil.example"}, 403, "Cross-site"),
            ({**fields, "choice": "A"}, {"Sec-Fetch-Site": "cross-site"}, 403, "Cross-site"),
            ({**fields, "choice": "Z"}, {}, 400, "a vote is one of"),
            ({**fields, "pair": "abc", "choice": "A"}, {}, 400, "Expected a number for pair"),
            ({**fields, "pair": "9" * 30, "choice": "A"}, {}, 400, "Expected a number"),
            ({**fields, "v": "-1", "choice": "A"}, {}, 400, "Expected a number for v"),
            ({**fields, "choice": "A", "junk": "x" * 500}, {}, 400, "Unexpected value"),
            ({**fields, "target": "C", "score": "3"}, {}, 400, "a score is 0 to 10"),
        ]  # fmt: skip
        for data, headers, code, words in cases:
            status, text = await post(s, url, data, **headers)
            assert status == code and words in text, (data, headers, status, text[:400])
        # Not a pair shown to this rater: a 404 on the form path too, with a readable page.
        status, text = await post(s, url, {**fields, "pair": "9999", "choice": "A"})
        assert status == 404 and "That pair was not shown to you." in text, text[:300]
        async with s.post(url, data={**fields, "pair": "9999", "choice": "A"},
                          headers={"Accept": "application/json"}) as r:  # fmt: skip
            assert r.status == 404 and (await r.json())["status"] == "not_a_pair"
        status, html, _ = await get(s, f"{bot.url}/rate/pair/9999")
        assert status == 404 and "not shown to you" in html
        # A status line's query is codes only; odd digits are ignored, never a 500.
        for query in ("s=recorded&c=A&p=%C2%B9", "s=recorded&c=A&p=" + "9" * 40):
            status, html, _ = await get(s, f"{bot.url}/rate?{query}")
            assert status == 200 and "Saved: A is better." in html, query
        # Not a form; a garbage cookie; an unknown page; a wrong method.
        async with s.post(url, json={"choice": "A"}) as r:
            assert r.status == 400 and "Expected a form" in await r.text()
        async with s.get(url) as r:
            assert r.status == 405 and "does not accept" in await r.text()
        status, html, headers = await get(s, f"{bot.url}/nope")
        assert status == 404 and "There is nothing here" in html
        assert headers["X-Content-Type-Options"] == "nosniff"
    for cookie in (b"slam_rater=\x01\xff;;==;", b'slam_rater="a.b"', b"slam_rater=" + b"9" * 900):
        status_line = await raw_get(bot.url, b"/rate/pair/1", b"Cookie: " + cookie)
        assert status_line.split()[1] in (b"400", b"403"), status_line
    assert stored(engine) == 0


async def test_security_headers_on_every_page(bot: WebBot) -> None:
    async with client() as s:
        for path in ("/", "/static/style.css", "/static/rate.js", "/healthz", "/rate"):
            async with s.get(bot.url + path) as r:
                csp = r.headers["Content-Security-Policy"]
                assert "default-src 'none'" in csp and "unsafe-inline" not in csp
                assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
                assert r.headers["Referrer-Policy"] == "same-origin"
                assert r.headers["X-Frame-Options"] == "DENY"
        status, _, _headers = await get(s, bot.link("ada"))
        assert status == 200
        cookie = s.cookie_jar.filter_cookies(URL(bot.url))
        assert "slam_rater" in cookie
        async with s.get(bot.link("ada"), allow_redirects=False) as r:
            set_cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie


async def test_web_votes_obey_the_rate_limit_and_closed_rounds(
    engine: Engine, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLAM_WEB_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    cfg = make_config(pairs_per_round=3, votes_per_rater_per_hour=2)
    seed(engine, cfg)
    open_round(engine, cfg)
    bot = await start_web(engine, cfg, port)
    try:
        async with client() as s:
            _, html, _ = await get(s, bot.link("ada"))
            statuses = []
            for choice in ("A", "B"):
                _, where = await post(s, f"{bot.url}/rate/vote",
                                      {**form_of(html), "choice": choice})  # fmt: skip
                statuses.append(re.search(r"s=(\w+)", where).group(1))  # type: ignore[union-attr]
                _, html, _ = await get(s, bot.url + where)
            assert statuses == ["recorded", "recorded"]
            # Refused: a 429 on the form path too, the pair's page saying why.
            pair = form_of(html)["pair"]
            status, html = await post(s, f"{bot.url}/rate/vote", {**form_of(html), "choice": "tie"})
            assert status == 429 and "voting too fast" in html
            assert form_of(html)["pair"] == pair
            from bot.rating import rounds
            from storage.db import session_scope

            with session_scope(engine) as ss:
                rounds.close_round(ss)
            status, html = await post(s, f"{bot.url}/rate/vote", {**form_of(html), "choice": "A"})
            assert status == 429 and "Response A" in html  # the limit is checked first
            _, html, _ = await get(s, f"{bot.url}/rate")
            assert "No rating round is open" in html
    finally:
        await bot.aclose()


async def test_dashboard_shows_the_numbers_of_slam_report(bot: WebBot, engine: Engine,
                                                          cfg: SlamConfig) -> None:  # fmt: skip
    from evaluation.results.leaderboard import ratings_caption, summary_text
    from evaluation.results.service import Results

    async with client() as s:
        status, html, _ = await get(s, f"{bot.url}/dashboard")
        assert status == 403
        assert (await get(s, bot.link("pat", "view")))[0] == 200
        _, rate_html, _ = await get(s, bot.link("ada"))
        await post(s, f"{bot.url}/rate/vote", {**form_of(rate_html), "choice": "B"})
        status, html, _ = await get(s, f"{bot.url}/dashboard")
        assert status == 200 and 'id="chart-summary"' in html
        results = Results(engine, cfg)
        text = summary_text(results.leaderboard, results.decision)
        html = unescape(html)
        assert results.decision.text() in html and results.decision.text() in text
        assert ratings_caption(results.ratings) in html
        for row in results.leaderboard:
            assert row.quality_text().replace("[", "") in html.replace("[", "")
            assert row.quality_text() in text
        async with s.get(f"{bot.url}/dashboard/state") as r:
            state = await r.json()
        assert state["caption"] == ratings_caption(results.ratings)
        assert state["decision"] == results.decision.text()
        # the report's leaderboard cells, the style-controlled column included (filled in on
        # both by the same rule: a rating or "needs more votes")
        from evaluation.results import HEADERS, cells, with_style

        styled = with_style(results.leaderboard, results.style_ratings)
        assert state["rows"] == [cells(i, r) for i, r in enumerate(styled, 1)]
        col = HEADERS.index("style-controlled")
        rated = [row[col] for row, r in zip(state["rows"], styled, strict=True) if r.rating]
        assert rated and all(rated), state["rows"]
        async with s.get(f"{bot.url}/dashboard/state?since={state['version']}") as r:
            assert r.status == 204
        async with s.get(f"{bot.url}/dashboard/chart/summary.png") as r:
            assert r.status == 200 and (await r.read())[:4] == b"\x89PNG"
        async with s.get(f"{bot.url}/dashboard/chart/../../etc/passwd") as r:
            assert r.status == 404
        # A rater's cookie does not open the dashboard; a viewer's does not vote.
        async with client() as rater:
            await get(rater, bot.link("ada"))
            assert (await get(rater, f"{bot.url}/dashboard"))[0] == 403


async def test_slam_invite_is_admin_only_and_its_link_works(bot: WebBot, engine: Engine) -> None:
    import io

    from bot.platforms.console import ConsolePort

    port = ConsolePort(io.StringIO())
    d = bot.dispatcher
    refused = await d.handle_command(Command("slack", "someone", "C1", "invite ada"), port)
    assert refused is not None and "admins only" in refused.text
    bad = await d.handle_command(Command("slack", "boss", "C1", "invite"), port)
    assert bad is not None and not bad.ok and "Usage" in bad.text
    bad = await d.handle_command(Command("slack", "boss", "C1", "invite 'a b'"), port)
    assert bad is not None and not bad.ok and "a name is" in bad.text
    reply = await d.handle_command(Command("slack", "boss", "C1", "invite ada"), port)
    assert reply is not None and reply.ok and reply.ephemeral
    path = re.search(r"(/r/\S+)", reply.text).group(1)  # type: ignore[union-attr]
    async with client() as s:
        status, html, _ = await get(s, bot.url + path)
        assert status == 200 and "Response A" in html
    viewer = await d.handle_command(Command("slack", "boss", "C1", "invite pat viewer"), port)
    assert viewer is not None and "/d/" in viewer.text


async def test_report_links_to_the_dashboard_when_public_url_is_set(
    engine: Engine, tmp_path: Path
) -> None:
    import io
    from types import SimpleNamespace

    from bot.dispatcher import Dispatcher
    from bot.platforms.console import ConsolePort
    from core.config import parse_config
    from tests.support.bot_seed import MODELS

    def fake_report_builder(*_: Any) -> Any:
        return SimpleNamespace(charts={}, summary_text="Decision: keep the reference.")

    cfg = parse_config({"models": MODELS, "web": {"public_url": "https://slam.example.com/"}},
                       "<t>")  # fmt: skip
    d = Dispatcher(engine, cfg, salt=b"s", report_builder=fake_report_builder,
                   report_dir=tmp_path)  # fmt: skip
    reply = await d.handle_command(Command("console", "u", "c", "report"),
                                   ConsolePort(io.StringIO()))  # fmt: skip
    assert reply is not None and "Live dashboard: https://slam.example.com/dashboard" in reply.text
    plain = Dispatcher(engine, make_config(), salt=b"s", report_builder=fake_report_builder,
                       report_dir=tmp_path)  # fmt: skip
    reply = await plain.handle_command(Command("console", "u", "c", "report"),
                                       ConsolePort(io.StringIO()))  # fmt: skip
    assert reply is not None and "dashboard" not in reply.text
    await d.aclose()
    await plain.aclose()


def test_slam_web_invite_and_revoke_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from typer.testing import CliRunner

    from slam.cli import _register_all, app, main
    from tests.support.bot_seed import MODELS
    from tests.support.slack_helpers import write_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLAM_WEB_SECRET", SECRET)
    cfg_path = write_config(tmp_path / "slam.toml", f"sqlite:///{tmp_path / 's.db'}", MODELS)
    _register_all()
    out = CliRunner().invoke(app, ["web", "invite", "ada", "-c", str(cfg_path)])
    assert out.exit_code == 0, out.output
    token = out.stdout.strip().splitlines()[0].rsplit("/r/", 1)[1]
    Tokens(SECRET.encode()).verify(token, "rate")
    capsys.readouterr()
    assert main(["web", "invite", "bad name!", "-c", str(cfg_path)]) != 0
    err = capsys.readouterr().err
    assert "a name is" in err and "Traceback" not in err
    out = CliRunner().invoke(app, ["web", "revoke", "ada", "-c", str(cfg_path)])
    assert out.exit_code == 0, out.output
    from storage.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(TokenError, match="revoked"):
        Tokens(SECRET.encode(), engine).verify(token, "rate")


async def test_score_mode_scores_each_response_on_the_page(
    engine: Engine, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLAM_WEB_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    cfg = make_config(pairs_per_round=3, score_mode=True)
    seed(engine, cfg)
    open_round(engine, cfg)
    bot = await start_web(engine, cfg, port)
    try:
        async with client() as s:
            _, html, _ = await get(s, bot.link("ada"))
            assert "Score response A on its own" in html
            assert 'aria-label="Score response B: 10 of 10"' in html
            fields = form_of(html)
            status, where = await post(s, f"{bot.url}/rate/vote",
                                       {**fields, "target": "A", "score": "7"})  # fmt: skip
            assert status == 303 and "s=recorded" in where
            _, html, _ = await get(s, bot.url + where)
            assert "now 7" in html
            status, where = await post(s, f"{bot.url}/rate/vote", {**form_of(html), "choice": "B"})
            assert where.startswith(f"/rate/pair/{fields['pair']}?")  # stays to score B too
            _, html, _ = await get(s, bot.url + where)
            assert 'href="/rate">Next pair</a>' in html
        with Session(engine) as ss:
            votes = effective_votes(ss).values()
            got = sorted((v.kind, v.target, v.score, v.choice) for v in votes)
        assert got == [("pairwise", None, None, "B"), ("score", "A", 7.0, None)]
    finally:
        await bot.aclose()


def test_same_origin_accepts_the_host_or_the_public_url_only() -> None:
    from aiohttp.test_utils import make_mocked_request

    from bot.web.app import _same_origin

    def req(**headers: str) -> Any:
        return make_mocked_request("POST", "/rate/vote", headers={"Host": "127.0.0.1:3000",
                                                                  **headers})  # fmt: skip

    public = "https://slam.example.com"
    assert _same_origin(req())  # no browser headers: the CSRF token decides
    assert _same_origin(req(Origin="http://127.0.0.1:3000"))
    assert _same_origin(req(Origin="https://slam.example.com"), public)  # behind a proxy
    assert not _same_origin(req(Origin="https://slam.example.com"))
    assert not _same_origin(req(Origin="https://evil.example"), public)
    assert not _same_origin(req(Origin="null"))
    assert _same_origin(req(Origin="null", **{"Sec-Fetch-Site": "same-origin"}))
    assert not _same_origin(req(**{"Sec-Fetch-Site": "same-site"}), public)
    assert not _same_origin(req(Origin="http://[bad"), public)


async def test_dashboard_switches_between_features(
    engine: Engine, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two features: a switcher of plain links, `?feature=F` on the page, its state and
    its charts; an unknown feature is a clear 404; the rating page names no feature."""
    from tests.support.bot_seed import SUPPORT, seed_feature, two_feature_config

    monkeypatch.setenv("SLAM_WEB_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    cfg = two_feature_config(tmp_path, pairs_per_round=2)
    seed(engine, cfg)
    seed_feature(engine, cfg)
    open_round(engine, cfg)
    web = await start_web(engine, cfg, port, report_dir=tmp_path / "reports")
    pep = cfg.experiment.name
    try:
        async with client() as s:
            assert (await get(s, web.link("pat", "view")))[0] == 200
            status, html, _ = await get(s, f"{web.url}/dashboard")
            assert status == 200 and '<nav class="features" aria-label="Features">' in html
            assert f'<a href="/dashboard?feature={SUPPORT}">{SUPPORT}</a>' in html
            assert f'<a href="/dashboard?feature={pep}" aria-current="page">{pep}</a>' in html
            assert f'data-feature="{pep}"' in html and "<script>" not in html
            status, html, _ = await get(s, f"{web.url}/dashboard?feature={SUPPORT}")
            assert status == 200 and f'data-feature="{SUPPORT}"' in html
            assert f'href="/dashboard?feature={SUPPORT}" aria-current="page"' in html
            async with s.get(f"{web.url}/dashboard/state?feature={SUPPORT}") as r:
                state = await r.json()
            assert state["feature"] == SUPPORT and state["features"] == [pep, SUPPORT]
            chart = next(c["url"] for c in state["charts"] if c["name"] == "summary")
            assert chart.endswith(f"&feature={SUPPORT}")
            async with s.get(f"{web.url}{chart}") as r:
                assert r.status == 200 and (await r.read())[:4] == b"\x89PNG"
            status, html, _ = await get(s, f"{web.url}/dashboard?feature=nope")
            assert status == 404 and "No such feature" in html and SUPPORT in html
            async with s.get(f"{web.url}/dashboard/state?feature=nope") as r:
                assert r.status == 404
        async with client() as rater:
            _, html, _ = await get(rater, web.link("ada"))
            assert 'class="vote"' in html
            assert SUPPORT not in html and pep not in html
    finally:
        await web.aclose()


async def test_one_feature_has_no_switcher(bot: WebBot) -> None:
    async with client() as s:
        await get(s, bot.link("pat", "view"))
        status, html, _ = await get(s, f"{bot.url}/dashboard")
        assert status == 200 and "nav class=\"features\"" not in html
        assert "data-feature" not in html
