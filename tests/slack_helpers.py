"""Signed Slack requests for the bot tests and the benchmark (what Slack itself sends)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

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
