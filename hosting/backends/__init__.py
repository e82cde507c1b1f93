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
    from hosting.backends.identity import (
        ModelIdentity,
        file_sha256,
        gguf_identity,
        imported_identity,
        ollama_identity,
        openai_identity,
    )
    from hosting.backends.llama_logs import configure_openmp, route_llama_logs
    from hosting.backends.ollama import list_models, ollama_host, pull_model

__getattr__ = lazy_exports(__name__, __file__)
