"""The embedded llama.cpp backend really generates from the packaged GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ModelSpec
from core.errors import SlamError
from hosting.base import GenerationRequest, backend_names, create_backend
from hosting.gguf import gemma_turns


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
