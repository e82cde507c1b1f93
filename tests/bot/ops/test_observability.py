"""Structured logs without secrets; /healthz and /metrics on a real port; metric counting."""

from __future__ import annotations

import io
import json
import logging
import warnings

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from bot.events import Command, Reaction
from bot.ops import observability as obs

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-AbCdEfGhIjKlMnOp",
    "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
    "SLACK_APP_TOKEN": "xapp-1-A0B1C2D3-0123456789-abcdef",
    "DISCORD_TOKEN": "discord-token-value-42-very-long",
    "OPENAI_API_KEY": "sk-test-0123456789abcdefghijklmn",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "SLAM_DATABASE_URL": "postgresql://slam:pg-pass-Xy9@db.internal:5432/slam",
}


def test_secrets_never_reach_the_logs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clean_root: None
) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api/")  # not a secret: kept
    obs.setup_logging("DEBUG")
    log = logging.getLogger("bot.test_ops")
    token, key = SECRETS["SLACK_BOT_TOKEN"], SECRETS["OPENAI_API_KEY"]
    log.info("connecting with %s", token)
    log.warning(f"openai key {key} and aws {SECRETS['AWS_SECRET_ACCESS_KEY']}")
    log.info("db %s via %s", SECRETS["SLAM_DATABASE_URL"], "http://127.0.0.1:9/api/")
    try:
        raise RuntimeError(f"Slack said invalid_auth for {token} / {SECRETS['DISCORD_TOKEN']}")
    except RuntimeError:
        log.exception("request failed")
    log.error("headers", extra={"headers": {"Authorization": f"Bearer {token}"},
                                "signing": SECRETS["SLACK_SIGNING_SECRET"]})  # fmt: skip
    log.info("unknown token shapes too: xoxp-9999-8888-7777-zzzzzz and sk-abcdefghijklmnopqrst")
    logging.getLogger("slack_sdk.web").debug("app token %s", SECRETS["SLACK_APP_TOKEN"])
    warnings.warn(f"deprecated call with {key}", UserWarning, stacklevel=1)
    err = capsys.readouterr().err

    for name, value in SECRETS.items():
        if name == "SLAM_DATABASE_URL":
            value = "pg-pass-Xy9"
        assert value not in err, f"{name} leaked into the logs"
    assert "xoxp-9999" not in err and "sk-abcdefghijklmnopqrst" not in err
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert len(records) == 8
    by_msg = {r["msg"]: r for r in records}
    assert by_msg["connecting with ***"]["level"] == "INFO"
    assert by_msg["connecting with ***"]["logger"] == "bot.test_ops"
    assert "db postgresql://slam:***@db.internal:5432/slam via http://127.0.0.1:9/api/" in by_msg
    failed = by_msg["request failed"]
    assert failed["level"] == "ERROR" and "Traceback" in failed["exc"]
    assert "RuntimeError: Slack said invalid_auth for *** / ***" in failed["exc"]
    assert by_msg["headers"]["headers"] == {"Authorization": "Bearer ***"}
    assert by_msg["headers"]["signing"] == "***"
    assert any("deprecated call with ***" in r["msg"] for r in records)


def test_text_format_and_other_handlers_are_redacted_too(
    monkeypatch: pytest.MonkeyPatch, clean_root: None
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", SECRETS["DISCORD_TOKEN"])
    other = io.StringIO()
    pre_existing = logging.StreamHandler(other)  # e.g. a handler a library installed first
    logging.getLogger().addHandler(pre_existing)
    mine = io.StringIO()
    obs.setup_logging("INFO", fmt="text", stream=mine)
    obs.setup_logging("INFO", fmt="text", stream=mine)  # twice: still one handler of ours
    logging.getLogger("bot").info("token=%s", SECRETS["DISCORD_TOKEN"])
    assert mine.getvalue().count("token=***") == 1
    assert other.getvalue().strip() == "token=***"
    assert SECRETS["DISCORD_TOKEN"] not in mine.getvalue() + other.getvalue()


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_middleware_counts_votes_and_commands(engine: Engine) -> None:
    from bot.dispatcher import Dispatcher
    from bot.platforms.console import ConsolePort
    from tests.support.bot_seed import make_config

    cfg = make_config()
    d = Dispatcher(engine, cfg, salt=b"test-salt")
    d.middleware.insert(0, obs.MetricsMiddleware())
    before = (
        value("slam_votes_total", platform="console", status="not_a_pair"),
        value("slam_commands_total", command="help", outcome="ok"),
        value("slam_commands_total", command="unknown", outcome="refused"),
    )
    try:
        out = await d.handle_reaction(
            Reaction("console", "u1", "C1", "no-such-message", "a", True, "ev-1")
        )
        assert out.status == "not_a_pair"
        port = ConsolePort(io.StringIO())
        ok = await d.handle_command(Command("console", "u1", "C1", "help"), port)
        assert ok is not None and ok.ok
        bad = await d.handle_command(Command("console", "u1", "C1", "frobnicate-xyz"), port)
        assert bad is not None and not bad.ok
    finally:
        await d.aclose()
    after = (
        value("slam_votes_total", platform="console", status="not_a_pair"),
        value("slam_commands_total", command="help", outcome="ok"),
        value("slam_commands_total", command="unknown", outcome="refused"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]


async def test_healthz_and_metrics_on_a_real_port(engine: Engine, port: int) -> None:
    obs.observe_probe("ops-test-model", 0.3, True)
    obs.observe_probe("ops-test-model", None, False)
    obs.record_generation("ops-test-model", ok=True)
    health = obs.Health().add("database", obs.database_check(engine))
    runner = await obs.serve_ops("127.0.0.1", port, health)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            hz = await client.get("/healthz")
            assert hz.status_code == 200
            assert hz.json() == {"ok": True, "checks": {"database": "ok"}}
            m = await client.get("/metrics")
            assert m.status_code == 200
            assert m.headers["content-type"].startswith("text/plain")
            text = m.text
            for name in ("slam_votes_total", "slam_commands_total", "slam_generations_total",
                         "slam_probes_total", "slam_probe_latency_seconds", "slam_errors_total",
                         "slam_job_runs_total", "slam_job_duration_seconds"):  # fmt: skip
                assert f"# TYPE {name.removesuffix('_total')}" in text, name
            assert 'slam_probe_latency_seconds_bucket{le="0.5",model="ops-test-model"}' in text
            assert 'slam_probes_total{model="ops-test-model",outcome="error"}' in text
            assert 'slam_generations_total{model="ops-test-model",outcome="ok"}' in text
    finally:
        await runner.cleanup()


async def test_failing_check_answers_503_without_secrets(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRETS["OPENAI_API_KEY"])

    async def upstream() -> str:
        raise ConnectionError(f"refused for key {SECRETS['OPENAI_API_KEY']}")

    def scheduler_stopped() -> str:
        raise RuntimeError("scheduler is not running")

    health = obs.Health().add("upstream", upstream).add("scheduler", scheduler_stopped)
    runner = await obs.serve_ops("127.0.0.1", port, health)
    try:
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        await runner.cleanup()
    assert r.status_code == 503
    assert r.json() == {
        "ok": False,
        "checks": {
            "upstream": "failed: ConnectionError: refused for key ***",
            "scheduler": "failed: RuntimeError: scheduler is not running",
        },
    }


async def test_metrics_mount_next_to_an_existing_healthz(port: int) -> None:
    """The Slack HTTP app already answers /healthz: mount only /metrics there."""
    from aiohttp import web

    async def own_health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True, "from": "slack app"})

    app = web.Application()
    app.router.add_get("/healthz", own_health)
    obs.add_routes(app, healthz=False)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).json()["from"] == "slack app"
            m = await client.get("/metrics")
            assert m.status_code == 200 and "slam_votes_total" in m.text
    finally:
        await runner.cleanup()


def test_error_logs_are_counted(clean_root: None) -> None:
    obs.setup_logging("INFO", stream=io.StringIO())
    before = value("slam_errors_total", component="evaluation")
    logging.getLogger("evaluation.perf.probes").error("probe store failed")
    logging.getLogger("evaluation.perf.probes").warning("only a warning")
    assert value("slam_errors_total", component="evaluation") - before == 1
