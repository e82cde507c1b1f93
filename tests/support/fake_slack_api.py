"""A fake Slack Web API: a real HTTP server on 127.0.0.1 that records every call.

Point the bot at it with SLACK_API_URL=<server.api_url>. It implements the methods the bot
uses (auth.test, chat.postMessage, chat.postEphemeral, reactions.add, the files_upload_v2
trio and files.info) closely enough for slack_sdk to be satisfied.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

BOT_USER = "UBOTSLAM"
BOT_ID = "BBOTSLAM"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    body: bytes = b""


@dataclass
class FakeSlack:
    host: str = "127.0.0.1"
    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    reactions: set[tuple[str, str, str]] = field(default_factory=set)
    fail_methods: dict[str, str] = field(default_factory=dict)  # method -> error to return
    socket_url: str | None = None  # what apps.connections.open hands out (Socket Mode)

    def __post_init__(self) -> None:
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/upload/"):
                    fake._record(Call("upload", {"file_id": self.path.rsplit("/", 1)[1]}, None,
                                      body))  # fmt: skip
                    fake.uploads[self.path.rsplit("/", 1)[1]] = body
                    self._send(200, b"OK - %d" % len(body), "text/plain")
                    return
                path, _, query = self.path.partition("?")
                method = path.removeprefix("/api/")
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    params = json.loads(body or b"{}")
                else:
                    params = dict(parse_qsl(body.decode()))
                params |= dict(parse_qsl(query))  # slack_sdk sends some methods' args here
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ") or None
                out = fake._answer(method, params, token)
                self._send(200, json.dumps(out).encode(), "application/json")

            do_GET = do_POST

            def _send(self, status: int, payload: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api/"

    def start(self) -> FakeSlack:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def named(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def _answer(self, method: str, p: dict[str, Any], token: str | None) -> dict[str, Any]:
        self._record(Call(method, p, token))
        if method in self.fail_methods:
            return {"ok": False, "error": self.fail_methods[method]}
        if method == "apps.connections.open":  # Socket Mode: app-level token, a ws url
            if not (token or "").startswith("xapp-") or not self.socket_url:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": self.socket_url}
        if not token or not token.startswith("xoxb-"):
            return {"ok": False, "error": "not_authed"}
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "bot_id": BOT_ID, "team_id": "T0TEAM",
                    "user": "slam", "team": "Test"}  # fmt: skip
        if method in ("chat.postMessage", "chat.postEphemeral"):
            channel = str(p.get("channel", ""))
            if channel.startswith("U"):  # posting to a user id opens the DM with the bot
                channel = "D" + channel[1:]
            ts = f"1700000000.{next(self._ts):06d}"
            ts_key = "message_ts" if method == "chat.postEphemeral" else "ts"
            return {"ok": True, "channel": channel, ts_key: ts,
                    "message": {"text": p.get("text"), "ts": ts}}  # fmt: skip
        if method == "reactions.add":
            key = (str(p.get("channel")), str(p.get("timestamp")), str(p.get("name")))
            with self._lock:
                if key in self.reactions:
                    return {"ok": False, "error": "already_reacted"}
                self.reactions.add(key)
            return {"ok": True}
        if method == "files.getUploadURLExternal":
            fid = f"F{next(self._ts):08d}"
            return {"ok": True, "file_id": fid,
                    "upload_url": f"http://{self.host}:{self.port}/upload/{fid}"}  # fmt: skip
        if method == "files.completeUploadExternal":
            files = p.get("files")
            files = json.loads(files) if isinstance(files, str) else files
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")}
                                          for f in files or []]}  # fmt: skip
        if method == "files.info":
            return {"ok": True, "file": {"id": p.get("file")}}
        return {"ok": False, "error": "unknown_method"}
