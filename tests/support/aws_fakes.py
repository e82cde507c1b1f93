"""Test doubles on the wire for the AWS host tests: moto's real server and a fake Ollama.

Both bind 127.0.0.1 on a free port and are stopped by their context managers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

FAKE_KEY_ID = "AKIASLAMTESTKEY00001"
FAKE_SECRET = "slam-TEST-secret-Zm9vYmFyYmF6cXV4-never-log-me"


@contextmanager
def moto_server(port: int) -> Iterator[str]:
    """moto's real HTTP server (all services) on 127.0.0.1:`port`; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def reset_moto(url: str) -> None:
    httpx.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()


def aws_env(mp: pytest.MonkeyPatch, url: str, tmp_dir: str) -> None:
    """Fake credentials in the environment, every client pointed at moto, nothing else read."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION"):
        mp.delenv(var, raising=False)
    mp.setenv("AWS_ENDPOINT_URL", url)
    mp.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    mp.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Never read the developer's files, and never probe the instance metadata service.
    mp.setenv("AWS_CONFIG_FILE", f"{tmp_dir}/aws-config-none")
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", f"{tmp_dir}/aws-credentials-none")
    mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
    mp.delenv("SLAM_DATABASE_URL", raising=False)


@dataclass
class FakeOllama:
    """Answers GET /api/tags; lists `models` only after `ready_after` requests."""

    models: list[str]
    ready_after: int = 0
    status: int = 200
    requests: int = 0
    paths: list[str] = field(default_factory=list)
    url: str = ""


@contextmanager
def fake_ollama(port: int, fake: FakeOllama) -> Iterator[FakeOllama]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests += 1
            fake.paths.append(self.path)
            if self.path not in ("/api/tags", "/healthz"):
                self.send_error(404)
                return
            listed = fake.models if fake.requests > fake.ready_after else []
            body = json.dumps({"models": [{"name": m, "model": m} for m in listed]}).encode()
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
