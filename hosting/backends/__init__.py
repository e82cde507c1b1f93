"""Model backends behind one contract, `async generate(request) -> Generation` (`base`): the
embedded llama.cpp (`llamacpp`), Ollama (`ollama`) and OpenAI-compatible servers (`openai`),
the HTTP backends sharing `http`, with one retry policy (`retry`). A new backend is a module
here registered by name in `core.backends.BACKENDS`; its SDK is imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from hosting.backends.base import (
        AnswerSchema,
        Backend,
        Generation,
        GenerationRequest,
        create_backend,
        tpot,
    )
    from hosting.backends.gguf import is_base_builtin, resolve_model_path
    from hosting.backends.llama_logs import configure_openmp, route_llama_logs
    from hosting.backends.ollama import list_models, ollama_host, pull_model

# The wing's public surface: name -> the module that defines it (imported on first use).
EXPORTS = {
    "AnswerSchema": "base",
    "Backend": "base",
    "Generation": "base",
    "GenerationRequest": "base",
    "configure_openmp": "llama_logs",
    "create_backend": "base",
    "is_base_builtin": "gguf",
    "list_models": "ollama",
    "ollama_host": "ollama",
    "pull_model": "ollama",
    "resolve_model_path": "gguf",
    "route_llama_logs": "llama_logs",
    "tpot": "base",
}
__getattr__ = lazy_exports(__name__, EXPORTS)
__all__ = [
    "AnswerSchema",
    "Backend",
    "Generation",
    "GenerationRequest",
    "configure_openmp",
    "create_backend",
    "is_base_builtin",
    "list_models",
    "ollama_host",
    "pull_model",
    "resolve_model_path",
    "route_llama_logs",
    "tpot",
]
