"""OpenAI backend with the real `openai` client: against a real llama_cpp.server (llama-cpp-python's
OpenAI-compatible server) on the packaged GGUF, and against a small SSE replay server for what
llama_cpp.server cannot produce (usage chunks, 429 with Retry-After, 5xx, 401)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.config import ModelSpec
from hosting.backends.base import AnswerSchema, GenerationRequest, create_backend
from hosting.backends.openai import PLACEHOLDER_KEY, OpenAIBackend
from hosting.backends.retry import RetryPolicy
from tests.support.fake_ollama import schema_instance
from tests.support.llama_server import running

READY_TIMEOUT_S = 120.0


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture(scope="module")
def llama_server(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama_cpp.server on 127.0.0.1 serving the packaged Gemma GGUF; yields its /v1 URL."""
    with running(gguf_path, tmp_path_factory.mktemp("llama_server")) as (server,):
        yield server.url


def spec_for(host: str, model: str = "gemma3-270m", **kw: Any) -> ModelSpec:
    return ModelSpec(name="gemma3-openai", backend="openai", model=model, host=host, **kw)


@pytest.fixture
async def real(llama_server: str) -> AsyncIterator[OpenAIBackend]:
    b = OpenAIBackend(spec_for(llama_server))
    yield b
    await b.aclose()


PEP = GenerationRequest(
    prompt="Write one warm sentence to start Ana's day.",
    system="You are a kind coach.",
    max_tokens=12,
    temperature=0.0,
    seed=1,
)


async def test_real_server_streams_text_with_ttft(real: OpenAIBackend) -> None:
    gen = await real.generate(PEP)
    assert gen.ok, gen.error
    assert gen.text.strip()
    assert (gen.backend, gen.model) == ("openai", "gemma3-openai")
    assert gen.finish_reason in ("length", "stop")
    assert gen.ttft_s is not None and gen.latency_s is not None
    assert 0 < gen.ttft_s <= gen.latency_s
    # llama-cpp-python 0.3.36's server ignores stream_options.include_usage and sends no usage
    # chunk: the counts stay unknown rather than guessed from the number of chunks.
    assert gen.prompt_tokens is None and gen.output_tokens is None


async def test_real_server_stops_at_max_tokens(real: OpenAIBackend) -> None:
    gen = await real.generate(GenerationRequest(prompt="Tell a long story.", max_tokens=2))
    assert gen.ok, gen.error
    assert gen.finish_reason == "length"
    assert gen.text


async def test_real_server_prompt_over_context_is_an_error(real: OpenAIBackend) -> None:
    gen = await real.generate(GenerationRequest(prompt="word " * 3000, max_tokens=4))
    assert not gen.ok
    assert gen.error == (
        f"openai at {real.base_url} ended the stream without a finish_reason (see the server's "
        "log; a prompt longer than its context does this)"
    )


async def test_real_server_wrong_base_path_is_a_clear_error(llama_server: str) -> None:
    b = OpenAIBackend(spec_for(llama_server.removesuffix("/v1") + "/api"))
    try:
        gen = await b.generate(PEP)
    finally:
        await b.aclose()
    assert gen.error is not None
    assert "has no model 'gemma3-270m' or no chat endpoint (HTTP 404" in gen.error
    assert "usually ending in /v1" in gen.error


async def test_server_down_returns_error_generation(port: int) -> None:
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    host = f"http://127.0.0.1:{port}/v1"
    b = OpenAIBackend(spec_for(host), policy=RetryPolicy(max_retries=2, sleep=record))
    try:
        gen = await b.generate(PEP)
    finally:
        await b.aclose()
    assert gen.error == (
        f"openai at {host} refused the connection (is the server running? check `host` or "
        "OPENAI_BASE_URL) (gave up after 3 attempts)"
    )
    assert len(sleeps) == 2


async def test_missing_api_key_for_openai_is_a_clear_error() -> None:
    b = create_backend(ModelSpec(name="gpt4", backend="openai", model="gpt-4"))
    try:
        gen = await b.generate(PEP)
    finally:
        await b.aclose()
    assert gen.error is not None
    assert gen.error.startswith("OPENAI_API_KEY is not set")
    assert "models.gpt4.host" in gen.error


# -- an SSE replay server with the documented chat.completion.chunk shapes ----------------------


@dataclass
class FakeOpenAI:
    chunks: list[str] = field(default_factory=lambda: ["Good", " morning", ", Ana", "!"])
    usage: dict[str, int] | None = field(
        default_factory=lambda: {"prompt_tokens": 31, "completion_tokens": 4, "total_tokens": 35}
    )
    fail: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (status, headers)
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    url: str = ""
    # response_format types answered HTTP 400 the way OpenAI does for a model without them
    reject_formats: set[str] = field(default_factory=set)
    refuse: str | None = None  # a structured-outputs refusal instead of content
    raw_body: tuple[str, bytes] | None = None  # (Content-Type, body) answered with HTTP 200
    bad_event: bool = False  # one SSE event whose data is not JSON
    fingerprint: str | None = None  # the chunks' system_fingerprint


def _sse_chunk(
    choices: list[dict[str, Any]], usage: dict[str, int] | None = None, fp: str | None = None
) -> bytes:
    payload = {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1709272800,
        "model": "gpt-4-0613",
        "system_fingerprint": fp,
        "choices": choices,
        "usage": usage,
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            if fake.fail:
                status, headers = fake.fail.pop(0)
                data = json.dumps(
                    {"error": {"message": f"status {status}", "type": "x", "code": None}}
                ).encode()
                self.send_response(status)
                for k, v in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                return
            fmt = body.get("response_format")
            if fmt and fmt.get("type") in fake.reject_formats:
                data = json.dumps({"error": {
                    "message": f"Invalid parameter: 'response_format' of type '{fmt['type']}' "
                               "is not supported with this model.",
                    "type": "invalid_request_error", "param": "response_format", "code": None,
                }}).encode()  # fmt: skip
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if fake.raw_body is not None:
                ctype, data = fake.raw_body
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            events = [_sse_chunk([{"index": 0, "delta": {"role": "assistant", "content": ""},
                                   "logprobs": None, "finish_reason": None}])]  # fmt: skip
            chunks = fake.chunks
            if fmt and fmt.get("type") == "json_schema":
                schema = fmt["json_schema"]["schema"]
                text = json.dumps(schema_instance(schema, "Specific and warm."))
                chunks = [text[i : i + 5] for i in range(0, len(text), 5)]
            if fake.refuse is not None:
                chunks = []
                events.append(
                    _sse_chunk([{"index": 0, "delta": {"refusal": fake.refuse}, "logprobs": None,
                                 "finish_reason": None}])
                )  # fmt: skip
            if fake.bad_event:
                events.append(b"data: {not json\n\n")
            for text in chunks:
                events.append(
                    _sse_chunk([{"index": 0, "delta": {"content": text}, "logprobs": None,
                                 "finish_reason": None}])
                )  # fmt: skip
            events.append(
                _sse_chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}])
            )
            if fake.usage is not None and body.get("stream_options", {}).get("include_usage"):
                events.append(_sse_chunk([], fake.usage))
            events.append(b"data: [DONE]\n\n")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if fake.fingerprint is not None:
                events = [e.replace(b'"system_fingerprint": null',
                                    f'"system_fingerprint": "{fake.fingerprint}"'.encode())
                          for e in events]  # fmt: skip
            for event in events:
                self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

    return Handler


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
async def replay(fake_openai: FakeOpenAI, sleeps: list[float]) -> AsyncIterator[OpenAIBackend]:
    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    b = OpenAIBackend(spec_for(fake_openai.url), policy=RetryPolicy(max_retries=3, sleep=record))
    yield b
    await b.aclose()


async def test_usage_chunk_gives_token_counts(
    replay: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    gen = await replay.generate(PEP)
    assert gen.ok, gen.error
    assert gen.text == "Good morning, Ana!"
    assert (gen.prompt_tokens, gen.output_tokens, gen.finish_reason) == (31, 4, "stop")
    assert gen.ttft_s is not None and gen.latency_s is not None and gen.ttft_s <= gen.latency_s
    headers, body = fake_openai.requests[-1]
    assert headers["authorization"] == f"Bearer {PLACEHOLDER_KEY}"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0] == {"role": "system", "content": "You are a kind coach."}
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (12, 0.0, 1)
    assert "stop" not in body


async def test_no_usage_means_unknown_counts(
    replay: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.usage = None
    gen = await replay.generate(GenerationRequest(prompt="hi", stop=("\n",)))
    assert gen.ok and gen.prompt_tokens is None and gen.output_tokens is None
    body = fake_openai.requests[-1][1]
    assert body["stop"] == ["\n"] and "seed" not in body


async def test_api_key_from_env(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.url)
    b = create_backend(ModelSpec(name="gpt4", backend="openai", model="gpt-4"))
    try:
        gen = await b.generate(PEP)
    finally:
        await b.aclose()
    assert gen.ok, gen.error
    assert fake_openai.requests[-1][0]["authorization"] == "Bearer sk-test-123"


async def test_429_then_5xx_are_retried_honouring_retry_after(
    replay: OpenAIBackend, fake_openai: FakeOpenAI, sleeps: list[float]
) -> None:
    fake_openai.fail = [(429, {"Retry-After": "0"}), (503, {"Retry-After": "3"}), (500, {})]
    gen = await replay.generate(PEP)
    assert gen.ok, gen.error
    assert sleeps[:2] == [0.0, 3.0]
    assert len(sleeps) == 3 and sleeps[2] > 0  # no Retry-After: exponential backoff
    assert len(fake_openai.requests) == 4  # the SDK's own retries are off


async def test_persistent_500_returns_error_generation(
    replay: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail = [(500, {})] * 10
    gen = await replay.generate(PEP)
    assert gen.error == (
        f"openai at {fake_openai.url} answered HTTP 500: status 500 (gave up after 4 attempts)"
    )
    assert len(fake_openai.requests) == 4


async def test_401_is_not_retried_and_names_the_key(
    replay: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail = [(401, {})]
    gen = await replay.generate(PEP)
    assert gen.error is not None
    assert "rejected the API key (HTTP 401" in gen.error and "OPENAI_API_KEY" in gen.error
    assert len(fake_openai.requests) == 1


# -- structured outputs: response_format ------------------------------------------------------

SCHEMA = AnswerSchema(
    name="judge_pairwise",
    schema={
        "type": "object",
        "properties": {
            "reasoning": {"type": "string", "maxLength": 48},
            "verdict": {"type": "string", "enum": ["A", "B", "tie"]},
        },
        "required": ["reasoning", "verdict"],
        "additionalProperties": False,
    },
)
JUDGE = GenerationRequest(prompt="Which is better?", max_tokens=64, temperature=0.0,
                          answer_schema=SCHEMA)  # fmt: skip


async def test_answer_schema_goes_out_as_strict_structured_outputs(
    replay: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    gen = await replay.generate(JUDGE)
    assert gen.ok, gen.error
    assert gen.structured
    fmt = fake_openai.requests[-1][1]["response_format"]
    # OpenAI's documented shape; strict mode takes no maxLength, so it is left out
    strict = SCHEMA.as_dict()
    del strict["properties"]["reasoning"]["maxLength"]
    assert fmt == {
        "type": "json_schema",
        "json_schema": {"name": "judge_pairwise", "schema": strict, "strict": True},
    }
    assert json.loads(gen.text) == {"reasoning": "Specific and warm.", "verdict": "tie"}
    assert "response_format" not in (await _plain(replay, fake_openai))


async def _plain(backend: OpenAIBackend, fake: FakeOpenAI) -> dict[str, Any]:
    gen = await backend.generate(PEP)
    assert gen.ok and not gen.structured
    body: dict[str, Any] = fake.requests[-1][1]
    return body


async def test_a_server_without_structured_outputs_is_detected_once(
    replay: OpenAIBackend, fake_openai: FakeOpenAI, sleeps: list[float]
) -> None:
    fake_openai.reject_formats = {"json_schema", "json_object"}
    gen = await replay.generate(JUDGE)
    assert gen.ok, gen.error
    assert not gen.structured and gen.text == "Good morning, Ana!"
    sent = [body.get("response_format", {}).get("type") for _, body in fake_openai.requests]
    assert sent == ["json_schema", "json_object", None]
    assert sleeps == []  # a rejected format is not retried with backoff
    assert replay.schema_mode == "none"
    await replay.generate(JUDGE)
    assert "response_format" not in fake_openai.requests[-1][1]  # remembered
    assert len(fake_openai.requests) == 4


async def test_structured_refusal_is_kept_as_the_answer(
    replay: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.refuse = "I can't help with that."
    gen = await replay.generate(JUDGE)
    assert gen.ok and gen.structured and gen.text == "I can't help with that."


async def test_html_instead_of_an_event_stream_says_so(
    replay: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.raw_body = ("text/html; charset=utf-8", b"<html><body>Welcome to nginx!</body>")
    gen = await replay.generate(PEP)
    assert gen.error == (
        f"openai at {fake_openai.url} answered HTTP 200 with text/html; charset=utf-8 instead "
        "of an event stream ('<html><body>Welcome to nginx!</body>'); is `host` an "
        "OpenAI-compatible API base URL (usually ending in /v1)?"
    )
    assert "finish_reason" not in gen.error and len(fake_openai.requests) == 1


async def test_invalid_json_in_the_stream_says_so(
    replay: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.bad_event = True
    gen = await replay.generate(PEP)
    assert gen.error is not None
    assert gen.error.startswith(
        f"openai at {fake_openai.url} sent a stream event that is not valid JSON ("
    )
    assert "'{not json'" in gen.error and "finish_reason" not in gen.error


async def test_real_server_answers_under_the_schema(llama_server: str) -> None:
    """llama-cpp-python's server (0.3.36) refuses OpenAI's json_schema form (HTTP 500) and
    takes llama.cpp's {"type": "json_object", "schema": ...}, which it turns into a grammar."""
    b = OpenAIBackend(spec_for(llama_server))
    try:
        gen = await b.generate(JUDGE)
        assert gen.ok, gen.error
        assert gen.structured and b.schema_mode == "json_object"
        answer = json.loads(gen.text)
        assert list(answer) == ["reasoning", "verdict"]
        assert answer["verdict"] in ("A", "B", "tie") and len(answer["reasoning"]) <= 48
        again = await b.generate(JUDGE)
        assert again.ok and again.structured and json.loads(again.text)["verdict"] in (
            "A", "B", "tie",
        )  # fmt: skip
    finally:
        await b.aclose()


async def test_the_served_model_and_fingerprint_identify_the_version(
    replay: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fingerprint = "fp_44709d6fcb"
    a = await replay.generate(PEP)
    fake_openai.fingerprint = "fp_9b0abffe81"
    b = await replay.generate(PEP)
    assert a.identity is not None and b.identity is not None
    assert a.identity.details == {"model": "gpt-4-0613", "system_fingerprint": "fp_44709d6fcb"}
    assert a.identity.label == "gpt-4-0613 fp_44709d6fcb"
    assert b.identity.key != a.identity.key  # the alias moved: a new version


async def test_no_fingerprint_still_names_the_served_model(replay: OpenAIBackend) -> None:
    gen = await replay.generate(PEP)
    assert gen.identity is not None and gen.identity.value == "gpt-4-0613|"
