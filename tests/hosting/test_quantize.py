"""`slam quantize` makes real lower-bit GGUF variants with llama.cpp's quantizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ModelSpec
from core.errors import SlamError
from hosting.backends.base import GenerationRequest, create_backend
from hosting.quantize import normalize_quant, quantize, variant_path


async def test_q2_k_variant_is_a_different_loadable_model(gguf_path: Path, tmp_path: Path) -> None:
    out = quantize(gguf_path, "q2_k", tmp_path)
    assert out.name == "gemma-3-270m-q2_k.gguf"
    assert out.read_bytes()[:4] == b"GGUF"
    assert out.stat().st_size < gguf_path.stat().st_size
    assert not list(tmp_path.glob("*.partial"))
    mtime = out.stat().st_mtime_ns
    assert quantize(gguf_path, "Q2_K", tmp_path) == out  # existing variant is reused
    assert out.stat().st_mtime_ns == mtime
    spec = ModelSpec(name="q2", backend="llamacpp", model=str(out))
    gen = await create_backend(spec).generate(GenerationRequest(prompt="Hello", max_tokens=4))
    assert gen.ok and gen.output_tokens


def test_quant_names() -> None:
    assert normalize_quant("q3_k") == "Q3_K_M"
    assert normalize_quant(" Q2_K ") == "Q2_K"
    with pytest.raises(SlamError, match="unknown quantization type 'Q1'; expected one of"):
        normalize_quant("Q1")


@pytest.mark.parametrize(
    ("source", "variant"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct-q2_k.gguf"),
        ("gemma-3-270m-Q4_K_M.gguf", "gemma-3-270m-q2_k.gguf"),
        ("mistral-7b_IQ2_XS.gguf", "mistral-7b-q2_k.gguf"),
        ("llama-3-8b.BF16.gguf", "llama-3-8b-q2_k.gguf"),
        ("qwen2-7b-instruct.gguf", "qwen2-7b-instruct-q2_k.gguf"),  # no label: kept whole
        ("Q4_0.gguf", "Q4_0-q2_k.gguf"),  # a stem that is only a label stays a name
    ],
)
def test_a_variant_drops_its_sources_quantization_label(source: str, variant: str) -> None:
    assert variant_path(Path(source), "Q2_K", Path("out")) == Path("out") / variant


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(SlamError, match="GGUF file not found"):
        quantize(tmp_path / "x.gguf", "Q2_K", tmp_path)
