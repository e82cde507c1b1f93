"""The JSON answer a judge method asks for, built from the method's registered answer shape.

Every backend constrains decoding to this schema where its server can (a llama.cpp grammar
for the embedded model, `response_format` for OpenAI-compatible servers, Ollama's `format`):

    score    {"reasoning": "...", "score": 0..10}          reasoning first, when the method
    verdict  {"reasoning": "...", "verdict": "A"|"B"|"tie"} asks for it (comparer-nr does not)
    index    {"reasoning": "...", "choice": 1..N}

The reasoning string is bounded (`maxLength`) so that a judge always reaches its answer
within the token budget: a budget of B tokens allows at most B - ANSWER_OVERHEAD_TOKENS
characters, and a token is never shorter than one character.
"""

from __future__ import annotations

from typing import Any

from evaluation.auto.judges.parsing import ANSWER_KEYS, REASONING_KEY, VERDICTS
from evaluation.auto.registry import get
from hosting.backends import AnswerSchema

# Tokens the JSON around the reasoning can take: braces, keys, quotes, the answer, EOS.
ANSWER_OVERHEAD_TOKENS = 16
# Two or three sentences: enough, and short enough to keep a CPU judge quick.
MAX_REASONING_CHARS = 400


def reasoning_chars(max_tokens: int) -> int:
    """The longest reasoning (in characters) that still leaves room for the answer."""
    return max(0, min(MAX_REASONING_CHARS, max_tokens - ANSWER_OVERHEAD_TOKENS))


def answer_schema(
    method: str, *, reasoning: bool, n: int | None = None, max_tokens: int = 256
) -> AnswerSchema:
    """The strict JSON schema of one judge method's answer.

    `n` is the number of responses shown (index answers); `max_tokens` the answer budget,
    which bounds the reasoning. Without room for any reasoning it is left out.
    """
    shape = get(method).answer
    if shape is None:
        raise ValueError(f"method {method!r} is not a judge method (it declares no answer)")
    value: dict[str, Any]
    if shape == "score":
        value = {"type": "integer", "enum": list(range(11))}
    elif shape == "verdict":
        value = {"type": "string", "enum": list(VERDICTS)}
    else:
        if n is None or n < 1:
            raise ValueError(f"method {method!r} answers an index: give n >= 1 (got {n})")
        value = {"type": "integer", "enum": list(range(1, n + 1))}
    props: dict[str, Any] = {}
    chars = reasoning_chars(max_tokens)
    if reasoning and chars > 0:
        props[REASONING_KEY] = {"type": "string", "maxLength": chars}
    props[ANSWER_KEYS[shape]] = value
    schema = {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }
    return AnswerSchema(name=f"judge_{method.replace('-', '_')}", schema=schema)
