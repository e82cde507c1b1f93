"""The shared shape of the HTTP backends (Ollama, OpenAI-compatible servers): one streamed
request per attempt, the one retry policy around it, failures as data, and the answer schema
asked in the best form the server accepts.

A subclass says how to call its SDK and read the stream into a `Stream` (`_stream`, which
returns how it ended: an `Ending`) and how to read the SDK's errors (`describe_error`,
`rejects_schema`); it imports its SDK lazily. The base does the rest, the same way for every server:

- retries: hosting.backends.retry's policy (the SDKs' own retries are off), transient failures
  being the `Retryable` that `_describe` returns;
- failures: any exception becomes a Generation with `error` and whatever text had streamed;
- answer schemas: `schema_ladder` lists the forms of a schema the backend can send, best first,
  ending in the form that sends none. A server that turns a form down is asked again with the
  next one, and the form it accepted is remembered for the model (`schema_mode`), so the
  detection costs one request.

The helpers below word the failures every server shares (timeouts, unreachable hosts, HTTP
statuses) once, so every backend says them the same way.
"""

from __future__ import annotations

import asyncio
import functools
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from hosting.backends.base import Generation, GenerationRequest, ServerTimings
from hosting.backends.identity import ModelIdentity
from hosting.backends.retry import (
    Retryable,
    RetryPolicy,
    call_with_retries,
    connection_refused,
    is_retryable_status,
)

if TYPE_CHECKING:
    from core.config import ModelSpec

M = TypeVar("M", bound=str)  # a backend's schema forms (a Literal of its ladder)


class Failed(Exception):
    """A non-retryable failure, already described for the user."""


class SchemaRejected(Exception):
    """The server turned the request's answer schema down: try the next form."""


@dataclass
class Stream:
    """What one streamed answer has collected: its content so far, and when it started."""

    start: float = field(default_factory=time.perf_counter)
    parts: list[str] = field(default_factory=list)
    ttft: float | None = None  # client-measured: at the first non-empty content

    def add(self, content: str) -> None:
        if self.ttft is None:
            self.ttft = time.perf_counter() - self.start
        self.parts.append(content)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


@dataclass(frozen=True)
class Ending:
    """How a stream ended: what the server said of the answer, or `complete=False` when the
    stream stopped before its last message (then the Generation is an `unfinished` error)."""

    complete: bool = True
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    server: ServerTimings = field(default_factory=ServerTimings)
    fallback_text: str = ""  # the answer when no content streamed (OpenAI's refusal)
    identity: ModelIdentity | None = None  # the model the server says answered


class HttpBackend(ABC, Generic[M]):
    """A model behind an HTTP API, streamed through its official SDK client."""

    name: ClassVar[str]
    schema_ladder: tuple[M, ...]  # the forms of an answer schema, best first; last sends none
    unfinished: ClassVar[str]  # the error of a stream that stopped early ({where}: the server)
    where: str  # "<backend> at <endpoint>", how messages name the server
    _client: Any  # the SDK's async client (closed by aclose)

    def __init__(self, spec: ModelSpec, *, policy: RetryPolicy | None = None):
        self.spec = spec
        self.policy = policy or RetryPolicy(max_retries=spec.max_retries)
        self.schema_mode: M = self.schema_ladder[0]  # the first form this server accepts
        self._config_error: str | None = None  # set when no request can succeed

    # -- the SDK's side -------------------------------------------------------------------------
    @abstractmethod
    async def _stream(self, request: GenerationRequest, mode: M, out: Stream) -> Ending:
        """Send `request` (its answer schema in form `mode`) and read the stream into `out`;
        return how the stream ended."""

    @staticmethod
    @abstractmethod
    def describe_error(
        exc: BaseException, where: str, model: str, timeout_s: float | None
    ) -> Exception:
        """An SDK/transport exception as Retryable (transient) or Failed (final), worded for
        the user."""

    @staticmethod
    @abstractmethod
    def rejects_schema(exc: BaseException) -> bool:
        """Is this the server refusing the answer schema (not the request as a whole)?"""

    # -- the shared loop ------------------------------------------------------------------------
    async def generate(self, request: GenerationRequest) -> Generation:
        """Stream one chat completion; failures come back as Generation.error, never raised."""
        if self._config_error:
            return self._error(self._config_error)
        while True:
            mode = self.schema_mode if request.answer_schema is not None else self._no_schema
            try:
                return await call_with_retries(
                    functools.partial(self._attempt, request, mode), self.policy
                )
            except Retryable as exc:
                return self._error(exc.final_message())
            except SchemaRejected:
                # Remembered: later requests start from the form the server accepts.
                ladder = self.schema_ladder
                later = ladder[ladder.index(mode) + 1]
                self.schema_mode = max(self.schema_mode, later, key=ladder.index)

    @property
    def _no_schema(self) -> M:
        return self.schema_ladder[-1]

    async def _attempt(self, request: GenerationRequest, mode: M) -> Generation:
        structured = mode != self._no_schema
        out = Stream()
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                end = await self._stream(request, mode, out)
        except Exception as exc:
            if structured and self.rejects_schema(exc):
                raise SchemaRejected() from exc
            failure = (
                exc
                if isinstance(exc, Failed)
                else self.describe_error(exc, self.where, self.spec.model, self.spec.timeout_s)
            )
            if isinstance(failure, Retryable):
                raise failure from exc
            return self._error(str(failure), out.text, out.ttft, out.elapsed())
        latency = out.elapsed()
        text = out.text or end.fallback_text
        if not end.complete:
            return self._error(self.unfinished.format(where=self.where), text, out.ttft, latency)
        return Generation(
            text=text.strip(),
            backend=self.name,
            model=self.spec.name,
            prompt_tokens=end.prompt_tokens,
            output_tokens=end.output_tokens,
            ttft_s=out.ttft,
            latency_s=latency,
            server=end.server,
            finish_reason=end.finish_reason,
            structured=structured,
            identity=end.identity,
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


# -- failures every server words the same way ---------------------------------------------------
def timed_out(where: str, timeout_s: float | None) -> Failed:
    limit = f"within {timeout_s:g}s" if timeout_s else "in time"
    return Failed(f"{where} did not answer {limit} (raise timeout_s in slam.toml)")


def unreachable(where: str, exc: BaseException, hint: str, *, say_why: bool = False) -> Retryable:
    """A connection that failed: refused (nothing listens), or not reached (`say_why`: and why)."""
    if connection_refused(exc):
        what = "refused the connection"
    else:
        what = f"could not be reached ({exc})" if say_why else "could not be reached"
    return Retryable(f"{where} {what} ({hint})")


def http_status(where: str, status: int, detail: str, retry_after: float | None) -> Exception:
    """An HTTP error status no backend-specific rule took: transient (429, 408, 5xx: retried,
    after `retry_after` if the server said) or the request rejected."""
    if is_retryable_status(status):
        return Retryable(f"{where} answered HTTP {status}: {detail}", retry_after)
    return Failed(f"{where} rejected the request (HTTP {status}): {detail}")


def unexpected(where: str, exc: BaseException) -> Failed:
    return Failed(f"{where}: unexpected {type(exc).__name__}: {exc}")
