"""Real llama_cpp.server processes (llama-cpp-python's OpenAI-compatible server) for tests.

Each binds 127.0.0.1 on a free port, serves the packaged Gemma GGUF and is stopped afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port

READY_TIMEOUT_S = 120.0


@dataclass
class LlamaServer:
    url: str  # the /v1 base URL
    log: Path
    proc: subprocess.Popen[bytes]

    def requests_served(self) -> int:
        """Chat requests in the server's access log."""
        return self.log.read_text(errors="replace").count("POST /v1/chat/completions")


def start(gguf: Path, log: Path, n_threads: int = 2, extra: Sequence[str] = ()) -> LlamaServer:
    """Start one server (not yet ready: call `wait_ready`)."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
        "--chat_format", "gemma",  # the packaged GGUF has no chat template
        "--n_threads", str(n_threads), "--verbose", "False", *extra,
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    return LlamaServer(f"http://127.0.0.1:{port}/v1", log, proc)


def wait_ready(server: LlamaServer) -> None:
    """Poll /v1/models until the server answers (bounded); fail with its log otherwise."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if server.proc.poll() is not None:
            pytest.fail(
                f"llama_cpp.server exited ({server.proc.returncode}): {server.log.read_text()}"
            )
        try:
            if httpx.get(f"{server.url}/models", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"llama_cpp.server not ready in {READY_TIMEOUT_S}s: {server.log}")
        time.sleep(0.1)  # readiness poll interval


def stop(servers: Sequence[LlamaServer]) -> None:
    for s in servers:
        s.proc.terminate()
    for s in servers:
        try:
            s.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            s.proc.wait()


@contextmanager
def running(gguf: Path, log_dir: Path, n: int = 1, **kw: object) -> Iterator[list[LlamaServer]]:
    """`n` ready servers, stopped on exit."""
    servers = [start(gguf, log_dir / f"server{i}.log", **kw) for i in range(n)]  # type: ignore[arg-type]
    try:
        for s in servers:
            wait_ready(s)
        yield servers
    finally:
        stop(servers)
