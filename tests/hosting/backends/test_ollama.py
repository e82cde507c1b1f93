"""Ollama backend and `slam ollama` against a fake Ollama server on 127.0.0.1 (the wire is
fake, the official `ollama` client is real)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
import typer
from typer.testing import CliRunner

from core.config import ModelSpec
from core.errors import SlamError
from hosting.backends.base import AnswerSchema, GenerationRequest, create_backend
from hosting.backends.ollama import OllamaBackend, list_models, pull_model
from hosting.backends.retry import RetryPolicy
from hosting.cli import register
from tests.support.fake_ollama import DIGEST, FINAL_STATS, LAYERS, FakeOllama


class RecordingSleep:
    """Stands in for asyncio.sleep in the retry policy: records waits, never sleeps."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


def spec_for(host: str, model: str = "gemma3:270m", max_retries: int = 3) -> ModelSpec:
    return ModelSpec(
        name="gemma3-ollama", backend="ollama", model=model, host=host, max_retries=max_retries
    )


@pytest.fixture
async def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def backend(fake: FakeOllama, sleeps: RecordingSleep) -> AsyncIterator[OllamaBackend]:
    b = OllamaBackend(spec_for(fake.url), policy=RetryPolicy(max_retries=3, sleep=sleeps))
    yield b
    await b.aclose()


REQ = GenerationRequest(prompt="Write my pep talk.", system="Be warm.", max_tokens=64, seed=7)


async def test_streamed_text_is_assembled_with_ollama_stats(
    backend: OllamaBackend, fake: FakeOllama
) -> None:
    gen = await backend.generate(REQ)
    assert gen.ok, gen.error
    assert gen.text == "Good morning, Ana! You did it."
    assert (gen.backend, gen.model, gen.finish_reason) == ("ollama", "gemma3-ollama", "stop")
    assert gen.prompt_tokens == FINAL_STATS["prompt_eval_count"]
    assert gen.output_tokens == FINAL_STATS["eval_count"]
    assert gen.ttft_s is not None and gen.latency_s is not None
    assert 0 < gen.ttft_s <= gen.latency_s


async def test_server_timings_are_converted_from_nanoseconds(backend: OllamaBackend) -> None:
    gen = await backend.generate(REQ)
    assert gen.server.load_s == 0.001334875
    assert gen.server.prompt_eval_s == 0.342546
    assert gen.server.eval_s == 4.535599
    assert gen.server.total_s == 4.883583458


async def test_request_carries_messages_and_options(
    backend: OllamaBackend, fake: FakeOllama
) -> None:
    await backend.generate(
        GenerationRequest(prompt="hi", system="sys", max_tokens=12, temperature=0.2, seed=3,
                          stop=("\n\n",))
    )  # fmt: skip
    method, path, body = fake.requests[-1]
    assert (method, path) == ("POST", "/api/chat")
    assert body["model"] == "gemma3:270m" and body["stream"] is True
    assert body["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
    ]
    assert body["options"] == {"temperature": 0.2, "num_predict": 12, "seed": 3, "stop": ["\n\n"]}


async def test_no_system_message_when_none_and_no_seed(
    backend: OllamaBackend, fake: FakeOllama
) -> None:
    await backend.generate(GenerationRequest(prompt="hi"))
    body = fake.requests[-1][2]
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert "seed" not in body["options"] and "stop" not in body["options"]


async def test_500_is_retried_then_succeeds(
    backend: OllamaBackend, fake: FakeOllama, sleeps: RecordingSleep
) -> None:
    fake.fail_times = 2
    gen = await backend.generate(REQ)
    assert gen.ok, gen.error
    assert gen.text.startswith("Good morning")
    assert len(sleeps.waits) == 2
    assert all(w > 0 for w in sleeps.waits)  # exponential backoff, not Retry-After
    assert sum(1 for _, path, _ in fake.requests if path == "/api/chat") == 3


async def test_persistent_500_returns_error_generation(
    backend: OllamaBackend, fake: FakeOllama, sleeps: RecordingSleep
) -> None:
    fake.fail_times = 100
    gen = await backend.generate(REQ)
    assert not gen.ok
    assert gen.text == ""
    assert (
        gen.error
        == f"ollama at {fake.url} answered HTTP 500: server busy (gave up after 4 attempts)"
    )
    assert len(sleeps.waits) == 3


@pytest.mark.parametrize(("retry_after", "expected_wait"), [("0", 0.0), ("2", 2.0)])
async def test_429_honours_retry_after(
    backend: OllamaBackend,
    fake: FakeOllama,
    sleeps: RecordingSleep,
    retry_after: str,
    expected_wait: float,
) -> None:
    fake.fail_times, fake.fail_status, fake.retry_after = 1, 429, retry_after
    gen = await backend.generate(REQ)
    assert gen.ok, gen.error
    assert sleeps.waits == [expected_wait]


async def test_unknown_model_suggests_pull(fake: FakeOllama) -> None:
    b = OllamaBackend(spec_for(fake.url, model="llama9:1t"))
    try:
        gen = await b.generate(REQ)
    finally:
        await b.aclose()
    assert not gen.ok
    assert gen.error is not None
    assert "no model 'llama9:1t'" in gen.error
    assert "slam ollama pull llama9:1t" in gen.error
    assert fake.url in gen.error


async def test_host_down_returns_helpful_error(port: int) -> None:
    sleeps = RecordingSleep()
    host = f"http://127.0.0.1:{port}"  # nothing listens on a fresh free port
    b = OllamaBackend(spec_for(host), policy=RetryPolicy(max_retries=1, sleep=sleeps))
    try:
        gen = await b.generate(REQ)
    finally:
        await b.aclose()
    assert not gen.ok
    assert gen.error == (
        f"ollama at {host} refused the connection (is `ollama serve` running? set OLLAMA_HOST)"
        " (gave up after 2 attempts)"
    )
    assert len(sleeps.waits) == 1


async def test_registry_builds_the_backend_and_env_host(
    fake: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", fake.url)
    spec = ModelSpec(name="g", backend="ollama", model="qwen2.5:0.5b")
    b = create_backend(spec)
    try:
        assert isinstance(b, OllamaBackend)
        assert b.host == fake.url
        gen = await b.generate(GenerationRequest(prompt="hi", max_tokens=8))
    finally:
        await b.aclose()
    assert gen.ok, gen.error
    assert fake.requests[-1][2]["model"] == "qwen2.5:0.5b"


async def test_stream_without_done_message_is_an_error(
    backend: OllamaBackend, fake: FakeOllama
) -> None:
    fake.truncate = True
    gen = await backend.generate(REQ)
    assert gen.error == f"ollama at {fake.url} ended the stream without its final (done) message"
    assert gen.text == "Good morning, Ana! You did it."  # partial text is kept
    assert gen.prompt_tokens is None


async def test_error_line_mid_stream_keeps_partial_text(
    backend: OllamaBackend, fake: FakeOllama, sleeps: RecordingSleep
) -> None:
    fake.error_mid_stream = "out of memory"
    gen = await backend.generate(REQ)
    assert gen.error == f"ollama at {fake.url} failed mid-stream: out of memory"
    assert gen.text.startswith("Good morning")
    assert sleeps.waits == []  # not a transient failure: no retry


async def test_list_models(fake: FakeOllama) -> None:
    models = await list_models(fake.url)
    assert [m.name for m in models] == ["gemma3:270m", "qwen2.5:0.5b"]
    assert models[0].quantization == "Q8_0" and models[0].size_bytes == 291_548_160


async def test_pull_progress_reaches_100_percent(fake: FakeOllama) -> None:
    events = [p async for p in pull_model("qwen2.5:0.5b", fake.url)]
    assert events[0].status == "pulling manifest"
    assert events[-1].status == "success"
    final: dict[str, tuple[int, int]] = {}
    for p in events:
        if p.digest and p.total:
            final[p.digest] = (p.completed or 0, p.total)
    assert final == {digest: (total, total) for digest, total in LAYERS}


async def test_pull_unknown_model_is_a_clear_error(fake: FakeOllama) -> None:
    with pytest.raises(SlamError, match=r"could not pull 'nope:1b': pull model manifest"):
        async for _ in pull_model("nope:1b", fake.url):
            pass


async def test_list_host_down_is_a_clear_error(port: int) -> None:
    with pytest.raises(SlamError, match=r"refused the connection \(is `ollama serve` running"):
        await list_models(f"http://127.0.0.1:{port}")


def cli_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # keeps `ollama` a subcommand group
        pass

    register(app)
    return app


def test_cli_list_prints_models(fake: FakeOllama) -> None:
    result = CliRunner().invoke(cli_app(), ["ollama", "list", "--host", fake.url])
    assert result.exit_code == 0, result.output
    assert "gemma3:270m" in result.output and "qwen2.5:0.5b" in result.output
    assert "291.5 MB" in result.output


def test_cli_list_uses_ollama_host_env(fake: FakeOllama) -> None:
    result = CliRunner().invoke(cli_app(), ["ollama", "list"], env={"OLLAMA_HOST": fake.url})
    assert result.exit_code == 0, result.output
    assert "gemma3:270m" in result.output


def test_cli_pull_shows_progress_and_success(fake: FakeOllama) -> None:
    fake.models = []
    result = CliRunner().invoke(cli_app(), ["ollama", "pull", "gemma3:270m", "--host", fake.url])
    assert result.exit_code == 0, result.output
    assert "100.0%" in result.output
    assert "pulled gemma3:270m: success" in result.output
    assert fake.models == ["gemma3:270m"]


def test_slam_main_reports_unreachable_host(port: int, capsys: pytest.CaptureFixture[str]) -> None:
    from slam.cli import main

    code = main(["ollama", "list", "--host", f"http://127.0.0.1:{port}"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"ollama at http://127.0.0.1:{port} refused the connection" in err
    assert "Traceback" not in err


# -- structured outputs: `format` with a JSON schema ------------------------------------------

SCHEMA = AnswerSchema(
    name="judge_scorer",
    schema={
        "type": "object",
        "properties": {
            "reasoning": {"type": "string", "maxLength": 20},
            "score": {"type": "integer", "enum": list(range(11))},
        },
        "required": ["reasoning", "score"],
        "additionalProperties": False,
    },
)
JUDGE = GenerationRequest(prompt="Rate it.", max_tokens=64, temperature=0.0, answer_schema=SCHEMA)


async def test_answer_schema_is_sent_as_format(backend: OllamaBackend, fake: FakeOllama) -> None:
    gen = await backend.generate(JUDGE)
    assert gen.ok, gen.error
    assert gen.structured
    body = fake.requests[-1][2]
    assert body["format"] == SCHEMA.as_dict()  # Ollama's documented structured-outputs field
    assert json.loads(gen.text) == {"reasoning": "Warm, and it names t", "score": 10}
    plain = await backend.generate(REQ)
    assert not plain.structured and "format" not in fake.requests[-1][2]


async def test_old_ollama_rejecting_a_schema_is_asked_again_and_remembered(
    backend: OllamaBackend, fake: FakeOllama, sleeps: RecordingSleep
) -> None:
    fake.reject_format = True
    gen = await backend.generate(JUDGE)
    assert gen.ok, gen.error
    assert not gen.structured and gen.text == "Good morning, Ana! You did it."
    chats = [body for _, path, body in fake.requests if path == "/api/chat"]
    assert [("format" in b) for b in chats] == [True, False]  # once with, then without
    assert sleeps.waits == []  # a rejected schema is not a transient failure
    again = await backend.generate(JUDGE)
    assert again.ok and not again.structured
    chats = [body for _, path, body in fake.requests if path == "/api/chat"]
    assert len(chats) == 3 and "format" not in chats[-1]  # remembered: not sent again


async def test_the_tags_digest_and_details_identify_the_model(fake: FakeOllama) -> None:
    """Each run asks /api/tags once; a re-pulled tag (a new digest) is a new identity."""
    first = OllamaBackend(spec_for(fake.url))
    try:
        a = await first.generate(REQ)
        b = await first.generate(REQ)
    finally:
        await first.aclose()
    assert a.identity is not None and a.identity == b.identity
    assert a.identity.kind == "ollama-digest"
    assert a.identity.value == DIGEST.removeprefix("sha256:")
    assert a.identity.details["quantization"] == "Q8_0"
    assert a.identity.details["parameter_size"] == "268.10M"
    assert sum(1 for m, p, _ in fake.requests if (m, p) == ("GET", "/api/tags")) == 1
    fake.digests["gemma3:270m"] = "0" * 64
    second = OllamaBackend(spec_for(fake.url))
    try:
        c = await second.generate(REQ)
    finally:
        await second.aclose()
    assert c.identity is not None and c.identity.value == "0" * 64
    assert c.identity.key != a.identity.key


async def test_a_tag_missing_from_the_listing_has_no_identity(fake: FakeOllama) -> None:
    fake.models.remove("qwen2.5:0.5b")
    b = OllamaBackend(spec_for(fake.url, model="qwen2.5:0.5b"))
    try:
        gen = await b.generate(REQ)
    finally:
        await b.aclose()
    assert not gen.ok and gen.identity is None and "pull it" in (gen.error or "")
