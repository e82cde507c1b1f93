"""OpenAI backend: the official `openai` AsyncOpenAI client, streaming chat completions (an
HttpBackend: hosting.backends.http has the retry loop, failures as data and the schema ladder).

Serves the reference (GPT-4 family) and any OpenAI-compatible server (vLLM, llama.cpp server)
via `host` or OPENAI_BASE_URL. Streams with `include_usage` so TTFT is client-measured and
token counts come from the server; a server that sends no usage leaves the counts None.
The SDK is imported lazily; its own retries are off (hosting.backends.retry is the one policy).

A request's answer schema goes out as OpenAI's structured outputs (`response_format`
json_schema, strict). A server that turns that down (HTTP 400/422 about response_format) is
asked once more with llama.cpp's form (`{"type": "json_object", "schema": ...}`, which
llama-cpp-python's server turns into a grammar), and then without a schema; the first form
the server accepts is remembered for this model, so the detection costs one request.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from core.env import environment
from hosting.backends import http
from hosting.backends.base import AnswerSchema, GenerationRequest
from hosting.backends.http import Ending, Failed, HttpBackend, Stream
from hosting.backends.identity import openai_identity
from hosting.backends.retry import RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    from core.config import ModelSpec

DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
# A local OpenAI-compatible server usually wants no key, but the SDK refuses to start without one.
PLACEHOLDER_KEY = "sk-no-key"
_MAX_DETAIL = 300  # some servers put a traceback in the error message
_MAX_BODY = 120  # how much of an unexpected (e.g. HTML) body an error quotes
SchemaMode = Literal["json_schema", "json_object", "none"]
_SCHEMA_LADDER: tuple[SchemaMode, ...] = ("json_schema", "json_object", "none")
# JSON Schema keywords OpenAI's strict mode does not accept; the schema is sent without them.
_NOT_STRICT = ("maxLength", "minLength")


def strict_schema(schema: AnswerSchema) -> dict[str, Any]:
    """The answer schema in the subset OpenAI's strict structured outputs accept."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in _NOT_STRICT}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    out: dict[str, Any] = strip(schema.as_dict())
    return out


def response_format(schema: AnswerSchema, mode: SchemaMode) -> dict[str, Any] | None:
    """The `response_format` body field for an answer schema in one of the accepted forms."""
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": schema.name, "schema": strict_schema(schema), "strict": True},
        }
    if mode == "json_object":  # llama.cpp servers: JSON mode constrained by a schema
        return {"type": "json_object", "schema": schema.as_dict()}
    return None


def _rejects_schema(exc: BaseException) -> bool:
    """Is this error the server refusing the response_format (not the request as a whole)?"""
    import openai

    if not isinstance(exc, openai.APIStatusError):
        return False
    text = f"{_detail(exc)} {getattr(exc, 'body', '')}".lower()
    if exc.status_code in (400, 415, 422):
        return any(w in text for w in ("response_format", "json_schema", "json_object", "schema"))
    # llama-cpp-python's server reports its request validation as HTTP 500
    return exc.status_code == 500 and "response_format" in text


def _detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    text = body.get("message") if isinstance(body, dict) else None
    text = str(text or getattr(exc, "message", None) or exc).strip()
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "…"


def describe_error(
    exc: BaseException, where: str, model: str, timeout_s: float | None
) -> Exception:
    """Map an SDK exception to Retryable (transient) or Failed (final), naming the endpoint."""
    import openai

    if isinstance(exc, json.JSONDecodeError):
        return Failed(
            f"{where} sent a stream event that is not valid JSON ({exc.msg} at {exc.pos}: "
            f"{exc.doc[:_MAX_BODY]!r}); is it an OpenAI-compatible server?"
        )
    if isinstance(exc, TimeoutError | openai.APITimeoutError):
        return http.timed_out(where, timeout_s)
    if isinstance(exc, openai.APIConnectionError):
        hint = "is the server running? check `host` or OPENAI_BASE_URL"
        return http.unreachable(where, exc, hint)
    if isinstance(exc, openai.APIStatusError):
        status, detail = exc.status_code, _detail(exc)
        if status == 401:
            return Failed(f"{where} rejected the API key (HTTP 401: {detail}); set OPENAI_API_KEY")
        if status == 404:
            return Failed(
                f"{where} has no model '{model}' or no chat endpoint (HTTP 404: {detail}); "
                "check `model`, and that `host` is the API base URL (usually ending in /v1)"
            )
        return http.http_status(where, status, detail, parse_retry_after(exc.response.headers))
    return http.unexpected(where, exc)


class OpenAIBackend(HttpBackend[SchemaMode]):
    """Generate with the OpenAI API or an OpenAI-compatible server (`model` is its model id)."""

    name = "openai"
    schema_ladder = _SCHEMA_LADDER
    # e.g. llama.cpp's server drops the stream when the prompt overflows its context.
    unfinished = (
        "{where} ended the stream without a finish_reason (see the server's log; "
        "a prompt longer than its context does this)"
    )
    describe_error = staticmethod(describe_error)
    rejects_schema = staticmethod(_rejects_schema)

    def __init__(self, spec: ModelSpec, *, policy: RetryPolicy | None = None):
        from openai import AsyncOpenAI

        super().__init__(spec, policy=policy)
        env = environment()
        base_url = spec.host or env.openai_base_url or None
        api_key = env.openai_api_key
        self.base_url = (base_url or DEFAULT_OPENAI_URL).rstrip("/")
        if not api_key:
            if base_url is None:
                self._config_error = (
                    f"OPENAI_API_KEY is not set: export it to use the OpenAI API, or point "
                    f"models.{spec.name}.host (or OPENAI_BASE_URL) at an OpenAI-compatible server"
                )
            api_key = PLACEHOLDER_KEY
        self._client = AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=spec.timeout_s, max_retries=0
        )
        self.where = f"openai at {self.base_url}"

    async def _stream(self, request: GenerationRequest, mode: SchemaMode, out: Stream) -> Ending:
        from openai import omit

        messages: list[Any] = [{"role": "user", "content": request.prompt}]
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        fmt: Any = None  # the SDK types it as a TypedDict union; we build the documented dict
        if request.answer_schema is not None and mode != "none":
            fmt = response_format(request.answer_schema, mode)
        refusal: list[str] = []
        finish: str | None = None
        usage: Any = None
        served: tuple[str | None, str | None] = (None, None)  # (model, system_fingerprint)
        stream = await self._client.chat.completions.create(
            model=self.spec.model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            seed=request.seed if request.seed is not None else omit,
            stop=list(request.stop) if request.stop else omit,
            response_format=fmt if fmt is not None else omit,
        )
        async with stream:
            await self._check_event_stream(stream.response)
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                fingerprint = getattr(chunk, "system_fingerprint", None)
                if getattr(chunk, "model", None) or fingerprint:
                    served = (chunk.model or served[0], fingerprint or served[1])
                if not chunk.choices:  # the usage chunk has no choices
                    continue
                choice = chunk.choices[0]
                if choice.delta and choice.delta.content:
                    out.add(choice.delta.content)
                said_no = getattr(choice.delta, "refusal", None) if choice.delta else None
                if said_no:
                    refusal.append(str(said_no))  # structured outputs' refusal
                if choice.finish_reason:
                    finish = choice.finish_reason
        return Ending(
            complete=finish is not None,
            finish_reason=finish,
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            output_tokens=usage.completion_tokens if usage is not None else None,
            fallback_text="".join(refusal),  # a refusal is the answer, kept verbatim
            identity=openai_identity(*served),
        )

    async def _check_event_stream(self, response: Any) -> None:
        """A streamed chat completion is an event stream: anything else (an HTML page from a
        proxy or a web server, a plain JSON body) is described as what it is."""
        ctype = response.headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() == "text/event-stream":
            return
        body = (await response.aread()).decode("utf-8", errors="replace").strip()
        snippet = " ".join(body.split())[:_MAX_BODY]
        raise Failed(
            f"{self.where} answered HTTP {response.status_code} with "
            f"{ctype or 'no Content-Type'} instead of an event stream ({snippet!r}); is `host` "
            "an OpenAI-compatible API base URL (usually ending in /v1)?"
        )
