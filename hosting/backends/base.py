"""The one backend contract: `async generate(request) -> Generation`.

A Generation is typed and carries text, token counts and timings (client-measured TTFT and
total, plus whatever the server reports), or an error. Backends never raise for a failed
request: the error is data, so a run never crashes on one bad model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from core.backends import BACKENDS, backend_names
from core.errors import SlamError
from hosting.backends.identity import ModelIdentity

if TYPE_CHECKING:
    from core.config import ModelSpec

__all__ = ["AnswerSchema", "backend_names", "create_backend", "register"]


@dataclass(frozen=True)
class AnswerSchema:
    """The JSON shape an answer must have, asked with the backend's own constrained decoding
    (a llama.cpp grammar, Ollama's `format`, OpenAI's strict `response_format`).

    `schema` is a JSON Schema object in the subset all three accept (objects with every
    property required and no others, strings, integers, enums), plus `maxLength` on strings,
    which a backend whose API does not take it drops. Property order is the answer's order.
    """

    name: str  # [a-zA-Z0-9_-]{1,64}, as OpenAI requires
    schema: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """A deep, mutable copy of the schema (safe to hand to an SDK)."""
        out: dict[str, Any] = json.loads(self.to_json())
        return out

    def to_json(self) -> str:
        return json.dumps(self.schema, ensure_ascii=False)


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. `prompt` is the user turn; backends apply their own chat format.

    With `answer_schema`, the backend constrains decoding to that JSON shape when its server
    can; a server that rejects schemas is detected once per model, remembered, and then asked
    without one (the Generation's `structured` says which happened).
    """

    prompt: str
    system: str | None = None
    max_tokens: int = 160
    temperature: float = 0.7
    seed: int | None = None
    stop: tuple[str, ...] = ()
    answer_schema: AnswerSchema | None = None


@dataclass(frozen=True)
class ServerTimings:
    """Durations the server reports about itself (Ollama's load/prompt_eval/eval/total)."""

    load_s: float | None = None
    prompt_eval_s: float | None = None
    eval_s: float | None = None
    total_s: float | None = None


@dataclass(frozen=True)
class Generation:
    """The result of one request: text and measurements, or an error (then text may be partial)."""

    text: str
    backend: str
    model: str
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    ttft_s: float | None = None
    latency_s: float | None = None
    server: ServerTimings = field(default_factory=ServerTimings)
    error: str | None = None
    finish_reason: str | None = None
    structured: bool = False  # decoded under the request's answer_schema
    identity: ModelIdentity | None = None  # which exact model answered (hosting.backends.identity)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first: (latency - TTFT) / (output tokens - 1)."""
        return tpot(self.latency_s, self.ttft_s, self.output_tokens)

    @property
    def tokens_per_s(self) -> float | None:
        if not self.output_tokens or not self.latency_s:
            return None
        return self.output_tokens / self.latency_s

    def measurements(self) -> dict[str, object]:
        """The columns a stored Generation or Probe row keeps of this result."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "ttft_s": self.ttft_s,
            "latency_s": self.latency_s,
            "tpot_s": self.tpot_s,
            "server_load_s": self.server.load_s,
            "server_prompt_eval_s": self.server.prompt_eval_s,
            "server_eval_s": self.server.eval_s,
            "server_total_s": self.server.total_s,
            "error": self.error,
        }

    def with_error(self, error: str) -> Generation:
        return replace(self, error=error)

    @classmethod
    def failure(
        cls,
        backend: str,
        model: str,
        error: str,
        text: str = "",
        ttft_s: float | None = None,
        latency_s: float | None = None,
        prompt_tokens: int | None = None,
    ) -> Generation:
        """A failed request as data; `text` keeps whatever was streamed before the failure."""
        return cls(
            text=text,
            backend=backend,
            model=model,
            ttft_s=ttft_s,
            latency_s=latency_s,
            prompt_tokens=prompt_tokens,
            error=error,
        )


def tpot(latency_s: float | None, ttft_s: float | None, output_tokens: int | None) -> float | None:
    """Per-output-token latency; None when it is undefined (fewer than 2 tokens)."""
    if latency_s is None or ttft_s is None or output_tokens is None or output_tokens < 2:
        return None
    return max(latency_s - ttft_s, 0.0) / (output_tokens - 1)


@runtime_checkable
class Backend(Protocol):
    """A model server (or in-process model) that answers GenerationRequests."""

    name: str

    async def generate(self, request: GenerationRequest) -> Generation: ...

    async def aclose(self) -> None: ...


BackendFactory = Callable[["ModelSpec"], Backend]


def register(name: str, target: str | BackendFactory) -> None:
    """Register a backend by name: a factory, or 'module:attr' to import lazily. It goes in the
    kernel's registry (core.backends.BACKENDS), so the configuration accepts the name too."""
    BACKENDS.add(name, target)


def create_backend(spec: ModelSpec) -> Backend:
    """Instantiate the backend for a configured model (importing its module on first use)."""
    if spec.backend not in BACKENDS:
        raise SlamError(
            f"model '{spec.name}': unknown backend '{spec.backend}'; "
            f"expected one of {backend_names()}"
        )
    backend: Backend = BACKENDS.get(spec.backend)(spec)
    return backend
