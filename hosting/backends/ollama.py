"""Ollama backend: the official `ollama` AsyncClient, streaming /api/chat (an HttpBackend:
hosting.backends.http has the retry loop, failures as data and the schema fallback).

Records client-measured TTFT (first non-empty content chunk) and total latency beside Ollama's
own final stats (token counts; load/prompt-eval/eval/total durations, ns -> s). Also the
list/pull helpers behind `slam ollama list|pull`. The SDK is imported lazily.

A request's answer schema is sent as `format` (Ollama's structured outputs: a JSON schema,
enforced with a grammar). An Ollama too old for schemas answers HTTP 400 about `format`; that
is remembered for the model and the request is asked again without one.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from core.env import environment
from hosting.backends import http
from hosting.backends.base import Generation, GenerationRequest, ServerTimings
from hosting.backends.http import Ending, Failed, HttpBackend, Stream
from hosting.backends.identity import ModelIdentity, ollama_identity, ollama_tag
from hosting.backends.retry import Retryable, RetryPolicy
from hosting.backends.retry import parse_retry_after as _parse_retry_after

if TYPE_CHECKING:
    import httpx

    from core.config import ModelSpec

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
_NS = 1e9

# ollama's ResponseError drops the HTTP headers, so an httpx response hook keeps Retry-After
# here. A context variable, because concurrent requests run in separate tasks.
_RETRY_AFTER: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "ollama_retry_after", default=None
)


def ollama_host(host: str | None = None) -> str:
    """The Ollama endpoint: explicit host, else $OLLAMA_HOST, else the local default."""
    return host or environment().ollama_host or DEFAULT_OLLAMA_HOST


async def _remember_retry_after(response: httpx.Response) -> None:
    if response.status_code >= 400:
        _RETRY_AFTER.set(_parse_retry_after(response.headers))


def make_client(host: str, timeout_s: float | None = None) -> Any:
    """An ollama AsyncClient for `host` that records Retry-After on error responses."""
    from ollama import AsyncClient

    return AsyncClient(
        host=host, timeout=timeout_s, event_hooks={"response": [_remember_retry_after]}
    )


def _rejects_format(exc: BaseException) -> bool:
    from ollama import ResponseError

    if not isinstance(exc, ResponseError) or exc.status_code not in (400, 422):
        return False
    text = str(exc.error).lower()
    return any(w in text for w in ("format", "schema", "unmarshal", "grammar"))


def describe_error(
    exc: BaseException, where: str, model: str, timeout_s: float | None
) -> Exception:
    """Map an SDK/transport exception to Retryable (transient) or Failed (final), with a
    message that names the host (`where`: "ollama at <host>") and says what to do."""
    import httpx
    from ollama import ResponseError

    if isinstance(exc, ResponseError):
        status, detail = exc.status_code, exc.error
        if status == 404:
            return Failed(
                f"{where} has no model '{model}' ({detail}); "
                f"pull it with `slam ollama pull {model}`"
            )
        if status == -1:  # an {"error": ...} line inside a 200 stream
            return Failed(f"{where} failed mid-stream: {detail}")
        return http.http_status(where, status, detail, _RETRY_AFTER.get())
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return http.timed_out(where, timeout_s)
    if isinstance(exc, ConnectionError | httpx.ConnectError):
        hint = "is `ollama serve` running? set OLLAMA_HOST"
        return http.unreachable(where, exc, hint, say_why=True)
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return Retryable(f"{where} dropped the connection: {exc}")
    return http.unexpected(where, exc)


OllamaSchema = Literal["format", "none"]


class OllamaBackend(HttpBackend[OllamaSchema]):
    """Generate with a model served by Ollama (`model` is the Ollama tag, e.g. 'gemma3:1b')."""

    name = "ollama"
    schema_ladder = ("format", "none")  # the schema as `format`, else none
    unfinished = "{where} ended the stream without its final (done) message"
    describe_error = staticmethod(describe_error)
    rejects_schema = staticmethod(_rejects_format)

    def __init__(self, spec: ModelSpec, *, policy: RetryPolicy | None = None):
        super().__init__(spec, policy=policy)
        self.host = ollama_host(spec.host)
        self.where = f"ollama at {self.host}"
        self._client = make_client(self.host, spec.timeout_s)
        self._identity: ModelIdentity | None = None
        self._looked_up = False

    async def identity(self) -> ModelIdentity | None:
        """The tag's digest and details from /api/tags, asked once per backend (a run): a tag
        re-pulled later is seen by the next run. A failed lookup is no identity, never an error
        (the request itself reports an unreachable host)."""
        if not self._looked_up:
            self._looked_up = True
            try:
                listing = await self._client.list()
            except Exception:
                return None
            wanted = ollama_tag(self.spec.model)
            for m in listing.models:
                if ollama_tag(m.model or "") == wanted:
                    self._identity = ollama_identity(m)
                    break
        return self._identity

    async def generate(self, request: GenerationRequest) -> Generation:
        """As HttpBackend.generate, with the identity of the tag that answered."""
        identity = await self.identity()
        gen = await super().generate(request)
        return replace(gen, identity=identity) if gen.ok and identity is not None else gen

    @property
    def schema_ok(self) -> bool:
        """False once the server has turned a `format` schema down (remembered for the model)."""
        return self.schema_mode != "none"

    async def _stream(self, request: GenerationRequest, mode: OllamaSchema, out: Stream) -> Ending:
        messages = [{"role": "user", "content": request.prompt}]
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        options: dict[str, Any] = {
            "temperature": request.temperature,
            "num_predict": request.max_tokens,
        }
        if request.seed is not None:
            options["seed"] = request.seed
        if request.stop:
            options["stop"] = list(request.stop)
        schema = request.answer_schema
        fmt = schema.as_dict() if mode == "format" and schema is not None else None
        ending = Ending(complete=False)  # until the final (done) message
        _RETRY_AFTER.set(None)
        stream = await self._client.chat(
            model=self.spec.model, messages=messages, options=options, stream=True, format=fmt
        )
        async for chunk in stream:
            content = chunk.message.content if chunk.message else None
            if content:
                out.add(content)
            if chunk.done:
                ending = Ending(
                    finish_reason=chunk.done_reason,
                    prompt_tokens=chunk.prompt_eval_count,
                    output_tokens=chunk.eval_count,
                    server=server_timings(chunk),
                )
        return ending


def server_timings(final: Any) -> ServerTimings:
    """Ollama's nanosecond durations from the final stream message, in seconds."""

    def seconds(ns: int | None) -> float | None:
        return None if ns is None else ns / _NS

    return ServerTimings(
        load_s=seconds(final.load_duration),
        prompt_eval_s=seconds(final.prompt_eval_duration),
        eval_s=seconds(final.eval_duration),
        total_s=seconds(final.total_duration),
    )


@dataclass(frozen=True)
class OllamaModel:
    """One installed model, as /api/tags reports it."""

    name: str
    size_bytes: int | None
    parameter_size: str | None
    quantization: str | None
    modified: str | None


@dataclass(frozen=True)
class PullProgress:
    """One line of /api/pull's progress stream."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


def _user_error(exc: BaseException, host: str, model: str = "") -> Exception:
    from core.errors import SlamError

    failure = describe_error(exc, f"ollama at {host}", model, None)
    return SlamError(failure.message if isinstance(failure, Retryable) else str(failure))


async def list_models(host: str | None = None) -> list[OllamaModel]:
    """Models installed at the Ollama host; a SlamError with a clear message if unreachable."""
    host = ollama_host(host)
    client = make_client(host)
    try:
        listing = await client.list()
    except Exception as exc:
        raise _user_error(exc, host) from None
    finally:
        await client.close()
    out = []
    for m in listing.models:
        details = m.details
        out.append(
            OllamaModel(
                name=m.model or "?",
                size_bytes=int(m.size) if m.size is not None else None,
                parameter_size=details.parameter_size if details else None,
                quantization=details.quantization_level if details else None,
                modified=m.modified_at.strftime("%Y-%m-%d %H:%M") if m.modified_at else None,
            )
        )
    return out


async def pull_model(model: str, host: str | None = None) -> AsyncIterator[PullProgress]:
    """Pull `model` at the host, yielding its progress stream; SlamError on failure."""
    host = ollama_host(host)
    client = make_client(host)
    try:
        stream = await client.pull(model, stream=True)
        async for p in stream:
            yield PullProgress(
                status=p.status or "", digest=p.digest, total=p.total, completed=p.completed
            )
    except Exception as exc:
        from ollama import ResponseError

        if isinstance(exc, ResponseError) and exc.status_code in (-1, 404, 500):
            from core.errors import SlamError

            raise SlamError(
                f"ollama at {host} could not pull '{model}': {exc.error} "
                "(check the name at https://ollama.com/library)"
            ) from None
        raise _user_error(exc, host, model) from None
    finally:
        await client.close()
