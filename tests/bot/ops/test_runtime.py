"""The bot as a process (`slam bot slack --http`): /healthz reports the database and the
scheduler, /metrics counts real votes, the jobs sit in the app's database, logs are JSON."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.support.bot_seed import MODELS
from tests.support.fake_slack_api import FakeSlack
from tests.support.slack_helpers import (
    JSON,
    SECRET,
    TOKEN,
    BotProcess,
    reaction_body,
    signed,
    write_config,
)


def test_bot_process_serves_health_and_metrics_and_schedules_jobs(
    engine: Engine, sqlite_url: str, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLAM_LOG_LEVEL", "DEBUG")  # the chattiest logs must still be clean
    config = write_config(tmp_path / "slam.toml", sqlite_url, MODELS, channel="C0RATINGS")
    fake = FakeSlack().start()
    try:
        bot = BotProcess(tmp_path, config, port, fake.api_url).start()
        try:
            base = f"http://127.0.0.1:{port}"
            hz = httpx.get(f"{base}/healthz", timeout=10)
            assert hz.status_code == 200
            assert hz.json() == {"ok": True, "checks": {"database": "ok", "scheduler": "running"}}
            body = reaction_body("EvOps1", "U123", "C0RATINGS", "1700000000.999999", "a")
            r = httpx.post(f"{base}/slack/events", content=body, headers={**JSON, **signed(body)})
            assert r.status_code == 200
            metrics = httpx.get(f"{base}/metrics", timeout=10).text
            assert 'slam_votes_total{platform="slack",status="not_a_pair"} 1.0' in metrics
            assert "# TYPE slam_job_runs_total counter" in metrics
        finally:
            bot.stop()
    finally:
        fake.stop()
    with engine.connect() as conn:
        jobs = {row[0] for row in conn.execute(text("SELECT id FROM apscheduler_jobs"))}
    assert jobs == {"slam:probe", "slam:generate", "slam:digest"}
    log = (tmp_path / f"bot-{port}.log").read_text()
    assert TOKEN not in log and SECRET not in log
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(r["msg"].startswith("scheduler started") for r in records)
