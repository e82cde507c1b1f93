"""Ollama backend: the official `ollama` AsyncClient, streaming /api/chat.

Records client-measured TTFT (first non-empty content chunk) and total latency beside Ollama's
own final stats (token counts; load/prompt-eval/eval/total durations, ns -> s). Also the
list/pull helpers behind `slam ollama list|pull`. The SDK is imported lazily.

A request's answer schema is sent as `format` (Ollama's structured outputs: a JSON schema,
enforced with a grammar). An Ollama too old for schemas answers HTTP 400 about `format`; that
is remembered for the model and the request is asked again without one.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hosting.backends.base import Generation, GenerationRequest, ServerTimings
from hosting.backends.retry import (
    Retryable,
    RetryPolicy,
    call_with_retries,
    connection_refused,
    is_retryable_status,
)
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
    return host or os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST


async def _remember_retry_after(response: httpx.Response) -> None:
    if response.status_code >= 400:
        _RETRY_AFTER.set(_parse_retry_after(response.headers))


def make_client(host: str, timeout_s: float | None = None) -> Any:
    """An ollama AsyncClient for `host` that records Retry-After on error responses."""
    from ollama import AsyncClient

    return AsyncClient(
        host=host, timeout=timeout_s, event_hooks={"response": [_remember_retry_after]}
    )


class _Failed(Exception):
    """A non-retryable failure, already described for the user."""


class _SchemaRejected(Exception):
    """The server turned the request's `format` (a JSON schema) down."""


def _rejects_format(exc: BaseException) -> bool:
    from ollama import ResponseError

    if not isinstance(exc, ResponseError) or exc.status_code not in (400, 422):
        return False
    text = str(exc.error).lower()
    return any(w in text for w in ("format", "schema", "unmarshal", "grammar"))


def describe_error(exc: BaseException, host: str, model: str, timeout_s: float | None) -> Exception:
    """Map an SDK/transport exception to Retryable (transient) or _Failed (final), with a
    message that names the host and says what to do."""
    import httpx
    from ollama import ResponseError

    if isinstance(exc, ResponseError):
        status, detail = exc.status_code, exc.error
        if status == 404:
            return _Failed(
                f"ollama at {host} has no model '{model}' ({detail}); "
                f"pull it with `slam ollama pull {model}`"
            )
        if is_retryable_status(status):
            return Retryable(
                f"ollama at {host} answered HTTP {status}: {detail}", _RETRY_AFTER.get()
            )
        if status == -1:  # an {"error": ...} line inside a 200 stream
            return _Failed(f"ollama at {host} failed mid-stream: {detail}")
        return _Failed(f"ollama at {host} rejected the request (HTTP {status}): {detail}")
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        limit = f"within {timeout_s:g}s" if timeout_s else "in time"
        return _Failed(f"ollama at {host} did not answer {limit} (raise timeout_s in slam.toml)")
    if isinstance(exc, ConnectionError | httpx.ConnectError):
        what = (
            "refused the connection" if connection_refused(exc) else f"could not be reached ({exc})"
        )
        return Retryable(f"ollama at {host} {what} (is `ollama serve` running? set OLLAMA_HOST)")
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return Retryable(f"ollama at {host} dropped the connection: {exc}")
    return _Failed(f"ollama at {host}: unexpected {type(exc).__name__}: {exc}")


class OllamaBackend:
    """Generate with a model served by Ollama (`model` is the Ollama tag, e.g. 'gemma3:1b')."""

    name = "ollama"

    def __init__(self, spec: ModelSpec, *, policy: RetryPolicy | None = None):
        self.spec = spec
        self.host = ollama_host(spec.host)
        self.policy = policy or RetryPolicy(max_retries=spec.max_retries)
        self._client = make_client(self.host, spec.timeout_s)
        self.schema_ok = True  # False once the server has turned a `format` schema down

    async def generate(self, request: GenerationRequest) -> Generation:
        """Stream one chat completion; failures come back as Generation.error, never raised."""
        while True:
            schema = self.schema_ok and request.answer_schema is not None
            try:
                return await call_with_retries(
                    lambda: self._attempt(request, schema),  # noqa: B023 (awaited here)
                    self.policy,
                )
            except Retryable as exc:
                return self._error(exc.final_message())
            except _SchemaRejected:
                self.schema_ok = False  # remembered for this model: no schema from now on

    async def _attempt(self, request: GenerationRequest, schema: bool = False) -> Generation:
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

        fmt = request.answer_schema.as_dict() if schema and request.answer_schema else None
        parts: list[str] = []
        ttft: float | None = None
        final: Any = None
        _RETRY_AFTER.set(None)
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                stream = await self._client.chat(
                    model=self.spec.model,
                    messages=messages,
                    options=options,
                    stream=True,
                    format=fmt,
                )
                async for chunk in stream:
                    content = chunk.message.content if chunk.message else None
                    if content:
                        if ttft is None:
                            ttft = time.perf_counter() - start
                        parts.append(content)
                    if chunk.done:
                        final = chunk
        except Exception as exc:
            if fmt is not None and _rejects_format(exc):
                raise _SchemaRejected() from exc
            failure = describe_error(exc, self.host, self.spec.model, self.spec.timeout_s)
            if isinstance(failure, Retryable):
                raise failure from exc
            return self._error(str(failure), "".join(parts), ttft, time.perf_counter() - start)
        latency = time.perf_counter() - start
        text = "".join(parts)
        if final is None:
            return self._error(
                f"ollama at {self.host} ended the stream without its final (done) message",
                text,
                ttft,
                latency,
            )
        return Generation(
            text=text.strip(),
            backend=self.name,
            model=self.spec.name,
            prompt_tokens=final.prompt_eval_count,
            output_tokens=final.eval_count,
            ttft_s=ttft,
            latency_s=latency,
            server=server_timings(final),
            finish_reason=final.done_reason,
            structured=fmt is not None,
        )

    def _error(
        self,
        message: str,
        text: str = "",
        ttft: float | None = None,
        latency: float | None = None,
    ) -> Generation:
        return Generation.failure(self.name, self.spec.name, message, text, ttft, latency)

    async def aclose(self) -> None:
        await self._client.close()


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

    failure = describe_error(exc, host, model, None)
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
