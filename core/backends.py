"""The names of the model backends, so the configuration can check a model's `backend`
without importing the backends (or their SDKs).

A backend registers a name and either a factory or `'module:attr'` to import lazily;
`hosting.backends.base.create_backend` resolves it. The kernel only keeps the table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Target = str | Callable[[Any], Any]

_REGISTRY: dict[str, Target] = {
    "llamacpp": "hosting.backends.llamacpp:LlamaCppBackend",
    "ollama": "hosting.backends.ollama:OllamaBackend",
    "openai": "hosting.backends.openai:OpenAIBackend",
}


def register(name: str, target: Target) -> None:
    """Register a backend by name: a factory, or 'module:attr' to import lazily."""
    _REGISTRY[name] = target


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def backend_target(name: str) -> Target | None:
    return _REGISTRY.get(name)
