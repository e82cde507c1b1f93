"""The chat adapters' edges under hostile input: malformed Slack signatures, refusals in the
acknowledgement, long unknown subcommands, quick raters in the console, log records once."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.dispatcher import Dispatcher
from bot.platforms.console import rate_in_console
from bot.platforms.slack import build_app, serve_http
from storage.models import Vote
from tests.support.bot_seed import make_config, seed
from tests.support.fake_slack_api import FakeSlack
from tests.support.slack_helpers import FORM, JSON, SECRET, TOKEN, reaction_body, signed, slash_body

ADMIN = "UADMIN"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@asynccontextmanager
async def slack_bot(
    engine: Engine, fake: FakeSlack, port: int, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_API_URL", fake.api_url)
    cfg = make_config(admins=[ADMIN], pairs_per_round=3)
    seed(engine, cfg)
    d = Dispatcher(engine, cfg, salt=b"test-salt")
    runner = await serve_http(await build_app(d), "127.0.0.1", port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        await runner.cleanup()
        await d.aclose()


MALFORMED: dict[str, dict[str, str | bytes]] = {
    "letters as timestamp": {"X-Slack-Request-Timestamp": "abc"},
    "exponent timestamp": {"X-Slack-Request-Timestamp": "1e9"},
    "negative timestamp": {"X-Slack-Request-Timestamp": "-5"},
    "huge timestamp": {"X-Slack-Request-Timestamp": "9" * 400},
    "non-ASCII digits": {"X-Slack-Request-Timestamp": "١٢٣".encode()},
    "non-ASCII signature": {"X-Slack-Signature": "v0=é".encode()},
    "signature without version": {"X-Slack-Signature": "deadbeef"},
    "empty signature": {"X-Slack-Signature": ""},
}


async def test_malformed_signature_headers_are_refused_like_forgeries(
    engine: Engine,
    fake: FakeSlack,
    port: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with slack_bot(engine, fake, port, monkeypatch) as http:
        body = reaction_body("Ev1", "U1", "C0RATINGS", "1.1", "a")
        errors = sample("slam_errors_total", component="slack_bolt") + sample(
            "slam_errors_total", component="bot"
        )
        before = sum(
            sample("slam_rejected_requests_total", reason=r)
            for r in ("malformed_signature", "missing_signature", "bad_signature")
        )
        caplog.set_level(logging.INFO)
        for name, bad in MALFORMED.items():
            merged: dict[str, str | bytes] = {**JSON, **signed(body), **bad}
            headers = [(k.encode(), v if isinstance(v, bytes) else v.encode())
                       for k, v in merged.items()]  # fmt: skip
            resp = await http.post("/slack/events", content=body, headers=headers)
            assert resp.status_code == 401, name
            assert "Traceback" not in resp.text, name
        after = sum(
            sample("slam_rejected_requests_total", reason=r)
            for r in ("malformed_signature", "missing_signature", "bad_signature")
        )
        assert after - before == len(MALFORMED)
        assert errors == sample("slam_errors_total", component="slack_bolt") + sample(
            "slam_errors_total", component="bot"
        )
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not [r for r in caplog.records if r.exc_info or r.exc_text]
        # A well-formed but wrong signature is refused and counted too; a good one works.
        wrong = {**JSON, **signed(body, secret="not-the-secret")}
        assert (await http.post("/slack/events", content=body, headers=wrong)).status_code == 401
        ok = await http.post("/slack/events", content=body, headers={**JSON, **signed(body)})
        assert ok.status_code == 200
    with Session(engine) as s:
        assert s.exec(select(Vote)).all() == []  # nothing was recorded by refused requests


async def test_a_non_admins_slow_admin_command_is_refused_in_the_ack(
    engine: Engine, fake: FakeSlack, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with slack_bot(engine, fake, port, monkeypatch) as http:
        body = slash_body("round start", "U1")
        resp = await http.post("/slack/events", content=body, headers={**FORM, **signed(body)})
        assert resp.status_code == 200
        assert "Working" not in resp.text and "admins only" in resp.text
        # The admin still gets the quick acknowledgement and the work done later.
        body = slash_body("round start", ADMIN)
        resp = await http.post("/slack/events", content=body, headers={**FORM, **signed(body)})
        assert "Working on `round`" in resp.text
        deadline = time.monotonic() + 20
        while len(fake.named("chat.postMessage")) < 4 and time.monotonic() < deadline:
            await _tick()
        posted = [str(c.params) for c in fake.named("chat.postMessage")]
        assert len(posted) >= 4 and not [p for p in posted if "admins only" in p]


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.02)


async def test_unknown_subcommand_echoes_only_a_short_plain_prefix(
    engine: Engine, fake: FakeSlack, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with slack_bot(engine, fake, port, monkeypatch) as http:
        text = "<!channel>`*bold*" + "x" * 2900
        body = slash_body(text, "U1")
        resp = await http.post("/slack/events", content=body, headers={**FORM, **signed(body)})
        assert resp.status_code == 200
        reply = resp.json()["text"]
        assert "Unknown subcommand" in reply
        assert "x" * 30 not in reply and "<!channel>" not in reply and "*bold*" not in reply


async def test_a_quick_rater_in_the_console_rates_the_whole_set(engine: Engine) -> None:
    """Every vote fetches the next pair; that is not 'sending commands too fast'."""
    cfg = make_config(pairs_per_round=24)
    seed(engine, cfg, users=[f"User{i}" for i in range(10)])
    out = io.StringIO()
    summary = await rate_in_console(engine, cfg, ["a"] * 60, out, salt=b"s")
    text = out.getvalue()
    assert "too fast" not in text
    # Every round pair was rated (gold check pairs, if any, come on top), and the console
    # stopped because the set was done, not because the inputs ran out.
    assert summary.recorded >= 24 and len(summary.pairs) >= 24
    assert summary.recorded < 60


async def test_the_console_goes_on_after_a_failing_line(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_config(pairs_per_round=2)
    seed(engine, cfg)
    calls = {"n": 0}
    real = Dispatcher.handle_vote

    async def flaky(self: Dispatcher, vote: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return await real(self, vote)  # type: ignore[arg-type]

    monkeypatch.setattr(Dispatcher, "handle_vote", flaky)
    out = io.StringIO()
    summary = await rate_in_console(engine, cfg, ["a", "a", "b"], out, salt=b"s")
    text = out.getvalue()
    assert "error: RuntimeError: database went away (nothing was recorded" in text
    assert "Traceback" not in text
    assert summary.recorded == 2


def test_log_records_are_printed_once(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI installs a plain console handler (basicConfig); the bot's JSON logging
    replaces it instead of printing every record a second time."""
    from bot.ops.observability import setup_logging
    from slam.cli import _root

    root = logging.getLogger()
    saved = list(root.handlers), root.level
    capturing = getattr(logging, "_warnings_showwarning", None) is not None
    try:
        for h in list(root.handlers):  # a bare process: no handler yet (pytest adds some)
            root.removeHandler(h)
        _root(verbose=False)  # what `slam …` does first
        assert [type(h) for h in root.handlers] == [logging.StreamHandler]
        setup_logging(fmt="json")  # what `slam bot slack|discord` does next
        logging.getLogger("bot.test").warning("only once please")
        err = capsys.readouterr().err
        assert err.count("only once please") == 1, err
        assert '"msg": "only once please"' in err  # and it is the JSON line that stayed
    finally:
        for h in list(root.handlers):
            if h not in saved[0]:
                root.removeHandler(h)
        for h in saved[0]:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(saved[1])
        if not capturing:
            logging.captureWarnings(False)
