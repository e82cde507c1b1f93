"""Which exact model answered: a `ModelIdentity` travels with every Generation.

A configured model (`[[models]]`, one name) can change under the bot: an Ollama tag re-pulled
with a new digest, an API alias (`gpt-4`) moved to a new snapshot or fingerprint, a GGUF file
replaced. Each backend says what it knows of the model that served a request:

- Ollama: the tag's digest and its details (format, family, parameter size, quantization), as
  `/api/tags` reports them (`ollama_identity`);
- OpenAI-compatible servers: the response's `model` and `system_fingerprint`
  (`openai_identity`);
- the embedded llama.cpp: the GGUF file's sha256, computed once per (path, mtime, size)
  (`gguf_identity`);
- imported answers: what their file says (`imported_identity`: its `model` and
  `system_fingerprint`).

The identity's `key` (a sha256 of what identifies it, not of the informational details) is
what storage keeps as one `model_version` per model; a new key is a new version.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelIdentity:
    """What identifies the model that answered (`kind`, `value`) and what is known about it."""

    kind: str  # "ollama-digest" | "openai" | "gguf-sha256" | "imported"
    value: str  # the digest, "model|fingerprint", the file hash
    details: Mapping[str, Any] = field(default_factory=dict)  # quantization, family, size...

    @property
    def key(self) -> str:
        """A stable hash of what identifies the version (64 hex characters)."""
        return hashlib.sha256(f"{self.kind}\n{self.value}".encode()).hexdigest()

    @property
    def label(self) -> str:
        """A short name for people: the first 12 characters of the digest or fingerprint."""
        value = self.value.removeprefix("sha256:")
        if self.kind in ("openai", "imported"):
            model, _, fp = value.partition("|")
            return f"{model} {fp[:16]}".strip() if fp else model
        return value[:12]

    def details_json(self) -> str:
        return json.dumps({"kind": self.kind, "value": self.value, **self.details},
                          sort_keys=True, default=str)  # fmt: skip


def ollama_identity(tag: Mapping[str, Any] | Any) -> ModelIdentity | None:
    """The identity of one `/api/tags` entry (a dict, or the ollama SDK's ListResponse.Model)."""

    def get(obj: Any, name: str) -> Any:
        return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)

    digest = get(tag, "digest")
    if not digest:
        return None
    details = get(tag, "details") or {}
    info = {k: get(details, k) for k in ("format", "family", "parameter_size",
                                         "quantization_level")}  # fmt: skip
    info = {k: v for k, v in info.items() if v}
    if "quantization_level" in info:
        info["quantization"] = info.pop("quantization_level")
    info["tag"] = get(tag, "model") or get(tag, "name")
    return ModelIdentity("ollama-digest", str(digest).removeprefix("sha256:"), info)


def ollama_tag(model: str) -> str:
    """The tag Ollama lists a model under (no tag means `:latest`)."""
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"


def openai_identity(model: str | None, fingerprint: str | None) -> ModelIdentity | None:
    """The identity an OpenAI-compatible response states: its served `model` and
    `system_fingerprint` (None when it states neither)."""
    if not model and not fingerprint:
        return None
    details = {k: v for k, v in (("model", model), ("system_fingerprint", fingerprint)) if v}
    return ModelIdentity("openai", f"{model or ''}|{fingerprint or ''}", details)


def imported_identity(meta: Mapping[str, Any]) -> ModelIdentity | None:
    """The identity an imported answer's file states (its `model`, `system_fingerprint`)."""
    model, fp = meta.get("model"), meta.get("system_fingerprint")
    if not model and not fp:
        return None
    details = {k: v for k, v in (("model", model), ("system_fingerprint", fp)) if v}
    return ModelIdentity("imported", f"{model or ''}|{fp or ''}", details)


_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
    """The sha256 of a file, cached by (path, mtime, size): a replaced file is hashed again."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
    with _HASH_LOCK:
        known = _HASHES.get(key)
    if known is not None:
        return known
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    with _HASH_LOCK:
        _HASHES[key] = digest
    return digest


def gguf_identity(path: Path, quantization: str | None = None) -> ModelIdentity | None:
    """The identity of a GGUF file (its sha256); None when it cannot be read."""
    try:
        digest = file_sha256(path)
    except OSError:
        return None
    details: dict[str, Any] = {"file": Path(path).name, "size_bytes": os.path.getsize(path)}
    if quantization:
        details["quantization"] = quantization
    return ModelIdentity("gguf-sha256", digest, details)
