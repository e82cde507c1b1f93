"""The registry of model backends, kept in the kernel so the configuration can check a model's
`backend` name without importing the backends (or their SDKs).

Each built-in backend is a lazy `'module:attr'` entry: its module, and so its SDK, is imported
only when `hosting.backends.base.create_backend` first builds one. A test or a plugin adds its
own with `hosting.backends.base.register(name, factory)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.registry import Registry

# A factory takes the model's ModelSpec and returns a hosting.backends.base.Backend (the kernel
# names neither: they live above it).
BackendFactory = Callable[[Any], Any]

BACKENDS: Registry[BackendFactory] = Registry("backend")
BACKENDS.add("llamacpp", "hosting.backends.llamacpp:LlamaCppBackend")
BACKENDS.add("ollama", "hosting.backends.ollama:OllamaBackend")
BACKENDS.add("openai", "hosting.backends.openai:OpenAIBackend")


def backend_names() -> list[str]:
    """Every registered backend name, sorted (as configuration errors list them)."""
    return sorted(BACKENDS.names())
