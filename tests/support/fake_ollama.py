"""A fake Ollama server: a real HTTP server on 127.0.0.1 replaying payloads of the shape the
Ollama API documents (docs/api.md): /api/tags, /api/pull (NDJSON progress), /api/chat and
/api/generate (NDJSON streams ending with done=true and the final stats).

Configurable failures: the first `fail_times` chat/generate requests answer `fail_status`
(500, or 429 with `retry_after`), unknown models answer 404 like Ollama does.

Structured outputs (Ollama >= 0.5): a request whose `format` is a JSON schema is answered with
JSON content in that schema, streamed in pieces; `reject_format` plays an older Ollama, which
answers such a request HTTP 400 because it expects `format` to be a string.

Run standalone (used by the benchmark): `python tests/support/fake_ollama.py --port 11500`.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CREATED_AT = "2024-03-01T06:00:00.123456789Z"
DIGEST = "sha256:aeda25e63ebd698fab8638ffb778e68bed908b960d39d0becc650fa981609d25"
LAYERS = [
    (DIGEST, 815_319_791),
    ("sha256:e0a42594d802e5d31cdc786deb4823edb8adff66094d49de8fffe976d753e348", 358),
]

# Final stats as Ollama reports them: token counts and durations in nanoseconds.
FINAL_STATS = {
    "total_duration": 4_883_583_458,
    "load_duration": 1_334_875,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 342_546_000,
    "eval_count": 7,
    "eval_duration": 4_535_599_000,
}


@dataclass
class FakeOllama:
    """State and behaviour of the fake; `requests` records (method, path, json body)."""

    models: list[str] = field(default_factory=lambda: ["gemma3:270m", "qwen2.5:0.5b"])
    pullable: list[str] = field(default_factory=lambda: ["gemma3:270m", "qwen2.5:0.5b"])
    chunks: list[str] = field(
        default_factory=lambda: ["Good", " morning", ", Ana", "!", " You", " did", " it."]
    )
    stats: dict[str, int] = field(default_factory=lambda: dict(FINAL_STATS))
    done_reason: str = "stop"
    fail_times: int = 0
    fail_status: int = 500
    retry_after: str | None = None
    truncate: bool = False  # end the stream before the final done=true message
    error_mid_stream: str | None = None  # send {"error": ...} after the chunks, as Ollama does
    # Report the real time spent handling the request as total_duration (like Ollama does),
    # so a benchmark can subtract it from client-measured latency.
    measure_total: bool = False
    reject_format: bool = False  # an Ollama older than 0.5: a schema in `format` is a 400
    structured_reasoning: str = "Warm, and it names today's focus."
    # a tag's digest in /api/tags (default DIGEST): change it to play a re-pulled model
    digests: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "call start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, port: int = 0) -> FakeOllama:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take_failure(self) -> bool:
        """Whether this request should fail (consumes one of `fail_times`)."""
        with self._lock:
            if self.fail_times > 0:
                self.fail_times -= 1
                return True
            return False


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOllama
    protocol_version = "HTTP/1.1"  # keep-alive + chunked streams, like the real server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        return

    def setup(self) -> None:
        super().setup()
        # Like Ollama's Go server: no Nagle delay between the small NDJSON lines of a stream.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing --------------------------------------------------------------------------
    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, lines: list[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in lines:
            data = json.dumps(line).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    # -- routes ----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self.fake.requests.append(("GET", self.path, None))
        if self.path == "/api/tags":
            self._json(200, {"models": [_tag(name, self.fake.digests.get(name, DIGEST[7:]))
                                    for name in self.fake.models]})
        elif self.path == "/api/version":
            self._json(200, {"version": "0.6.3"})
        else:
            self._json(404, {"error": "404 page not found"})

    def do_POST(self) -> None:
        started_ns = time.perf_counter_ns()
        body = self._body() or {}
        self.fake.requests.append(("POST", self.path, body))
        if self.path == "/api/pull":
            self._pull(body.get("model", ""))
            return
        if self.path not in ("/api/chat", "/api/generate"):
            self._json(404, {"error": "404 page not found"})
            return
        if self.fake.take_failure():
            headers = {"Retry-After": self.fake.retry_after} if self.fake.retry_after else {}
            self._json(self.fake.fail_status, {"error": "server busy"}, headers)
            return
        model = body.get("model", "")
        if model not in self.fake.models:
            self._json(404, {"error": f'model "{model}" not found, try pulling it first'})
            return
        schema = body.get("format")
        if isinstance(schema, dict) and self.fake.reject_format:
            self._json(
                400,
                {"error": "json: cannot unmarshal object into Go struct field "
                          "ChatRequest.format of type string"},
            )  # fmt: skip
            return
        chat = self.path == "/api/chat"
        pieces = self.fake.chunks
        if isinstance(schema, dict):
            text = json.dumps(schema_instance(schema, self.fake.structured_reasoning))
            pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
        lines = [_chunk(model, text, chat) for text in pieces]
        final = _chunk(model, "", chat) | {"done": True, "done_reason": self.fake.done_reason}
        final |= self.fake.stats
        if self.fake.measure_total:
            final["total_duration"] = time.perf_counter_ns() - started_ns
        if not chat:
            final["context"] = [1, 2, 3]
        if body.get("stream", True) is False:
            final["message" if chat else "response"] = (
                {"role": "assistant", "content": "".join(self.fake.chunks)}
                if chat
                else "".join(self.fake.chunks)
            )
            self._json(200, final)
            return
        if self.fake.error_mid_stream:
            self._stream([*lines, {"error": self.fake.error_mid_stream}])
        elif self.fake.truncate:
            self._stream(lines)
        else:
            self._stream([*lines, final])

    def _pull(self, model: str) -> None:
        if model not in self.fake.pullable:
            # Ollama reports registry failures as an error line in the stream.
            self._stream(
                [
                    {"status": "pulling manifest"},
                    {"error": "pull model manifest: file does not exist"},
                ]
            )
            return
        lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        for digest, total in LAYERS:
            for completed in (0, total // 3, 2 * total // 3, total):
                lines.append(
                    {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total,
                     "completed": completed}
                )  # fmt: skip
        lines += [
            {"status": "verifying sha256 digest"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]
        with self.fake._lock:
            if model not in self.fake.models:
                self.fake.models.append(model)
        self._stream(lines)


def schema_instance(schema: dict[str, Any], text: str) -> Any:
    """A value of a JSON schema, as a server decoding under it produces: an object's
    properties in order, a string's `text` (cut to maxLength), an enum's last value."""
    if "enum" in schema:
        return schema["enum"][-1]
    kind = schema.get("type")
    if kind == "object":
        return {k: schema_instance(v, text) for k, v in schema.get("properties", {}).items()}
    if kind == "string":
        return text[: schema.get("maxLength", len(text))]
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    return None


def _chunk(model: str, text: str, chat: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "created_at": CREATED_AT, "done": False}
    if chat:
        out["message"] = {"role": "assistant", "content": text}
    else:
        out["response"] = text
    return out


def _tag(name: str, digest: str = DIGEST[7:]) -> dict[str, Any]:
    family = name.split(":")[0].rstrip("0123456789.")
    return {
        "name": name,
        "model": name,
        "modified_at": "2024-03-01T06:00:00.123456789-07:00",
        "size": 291_548_160,
        "digest": digest,
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": "268.10M",
            "quantization_level": "Q8_0",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    fake = FakeOllama().start(args.port)
    print(fake.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
