"""Signed Slack requests for the bot tests and the benchmark (what Slack itself sends)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.engine import Engine

from core.config import SlamConfig
from storage.db import session_scope

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"


def signed(body: str, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    sig: str = SignatureVerifier(secret).generate_signature(timestamp=str(ts), body=body) or ""
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig}


def slash_body(text: str, user: str = "U1", channel: str = "C0CMD") -> str:
    return urlencode({
        "command": "/slam", "text": text, "user_id": user, "channel_id": channel,
        "team_id": "T0TEAM", "response_url": "http://127.0.0.1:9/unused", "trigger_id": "t1",
    })  # fmt: skip


def reaction_body(
    event_id: str, user: str, channel: str, ts: str, reaction: str, added: bool = True
) -> str:
    event: dict[str, Any] = {
        "type": "reaction_added" if added else "reaction_removed",
        "user": user, "reaction": reaction, "item_user": "UBOTSLAM",
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": f"{time.time():.6f}",
    }  # fmt: skip
    return json.dumps({
        "token": "legacy", "team_id": "T0TEAM", "api_app_id": "A0APP", "event": event,
        "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0TEAM", "user_id": "UBOTSLAM", "is_bot": True}],
    })  # fmt: skip


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


# --- the bot as a separate process (`slam bot slack --http`), for reliability and load ---

REPO = Path(__file__).resolve().parents[2]


def write_config(path: Path, db_url: str, models: list[dict[str, Any]], **chat: Any) -> Path:
    """A slam.toml with the given models and [chat] settings."""

    def val(v: Any) -> str:
        return json.dumps(v) if not isinstance(v, bool) else str(v).lower()

    lines = ["[database]", f"url = {val(db_url)}", "", "[chat]"]
    lines += [f"{k} = {val(v)}" for k, v in chat.items()]
    for m in models:
        lines += ["", "[[models]]", *(f"{k} = {val(v)}" for k, v in m.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def prepare_round(engine: Engine, cfg: SlamConfig, pairs: int) -> list[tuple[str, str]]:
    """Open a round of `pairs` pairs and record them as posted in C0RATINGS."""
    from bot.rating import rounds

    refs = []
    with session_scope(engine) as s:
        _, made = rounds.start_round(s, cfg, random.Random(7), n=pairs)
        for i, pair in enumerate(made):
            ts = f"1700000000.{i + 1:06d}"
            rounds.record_message(s, pair, "slack", "C0RATINGS", ts)
            refs.append(("C0RATINGS", ts))
    return refs


class BotProcess:
    """`slam bot slack --http` in a subprocess on 127.0.0.1."""

    def __init__(self, workdir: Path, config: Path, port: int, api_url: str):
        self.workdir, self.config, self.port, self.api_url = workdir, config, port, api_url
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def start(self, timeout: float = 60) -> BotProcess:
        env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_URL": self.api_url, "SLAM_RATER_SALT": "bench-salt"}  # fmt: skip
        env.pop("SLAM_DATABASE_URL", None)
        cmd = [sys.executable, "-m", "slam.cli", "bot", "slack", "--http", "--host", "127.0.0.1",
               "--port", str(self.port), "--config", str(self.config)]  # fmt: skip
        self.log = open(self.workdir / f"bot-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"bot exited: {(self.workdir / f'bot-{self.port}.log').read_text()}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("bot did not become ready")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flushing — a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def message_body(event_id: str, user: str, channel: str, text: str, thread_ts: str | None,
                 ts: str | None = None, edited: bool = False, bot: bool = False) -> str:
    """A `message` event as Slack sends it: a thread reply when `thread_ts` is set, its edit
    (`message_changed`, the new message inside) when `edited`; `bot`: the bot's own."""
    ts = ts or f"{time.time():.6f}"
    msg: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts,
                           "channel": channel}  # fmt: skip
    if thread_ts:
        msg["thread_ts"] = thread_ts
    if bot:
        msg["bot_id"] = "B0BOT"
    event: dict[str, Any] = (
        {"type": "message", "subtype": "message_changed", "channel": channel, "message": msg,
         "event_ts": f"{time.time():.6f}", "ts": f"{time.time():.6f}"}
        if edited else {**msg, "event_ts": ts}
    )  # fmt: skip
    return json.dumps({
        "token": "legacy", "team_id": "T0TEAM", "api_app_id": "A0APP", "event": event,
        "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0TEAM", "user_id": "UBOTSLAM", "is_bot": True}],
    })  # fmt: skip
