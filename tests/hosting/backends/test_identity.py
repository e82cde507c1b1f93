"""Model identities: the GGUF hash is cached by (path, mtime, size) and changes with the file;
keys depend on what identifies a version, not on its informational details."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hosting.backends.identity import (
    ModelIdentity,
    file_sha256,
    gguf_identity,
    imported_identity,
    ollama_identity,
    ollama_tag,
    openai_identity,
)


def test_gguf_hash_is_the_files_sha256_and_follows_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"\x00" * 5000)
    first = gguf_identity(path, "Q8_0")
    assert first is not None
    assert first.value == hashlib.sha256(path.read_bytes()).hexdigest()
    assert first.details == {"file": "model.gguf", "size_bytes": 5004, "quantization": "Q8_0"}
    path.write_bytes(b"GGUF" + b"\x01" * 5000)  # same size, new content and mtime
    st_ = path.stat()
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000))
    second = gguf_identity(path)
    assert second is not None and second.value != first.value
    assert second.value == hashlib.sha256(path.read_bytes()).hexdigest()


def test_gguf_hash_is_cached_by_path_mtime_and_size(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"abc")
    before = file_sha256(path)
    st_ = path.stat()
    path.write_bytes(b"xyz")  # same size; restore the mtime: the cache answers
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    assert file_sha256(path) == before


def test_a_missing_gguf_has_no_identity(tmp_path: Path) -> None:
    assert gguf_identity(tmp_path / "nope.gguf") is None


def test_ollama_identity_reads_a_tags_entry() -> None:
    ident = ollama_identity(
        {
            "model": "gemma3:1b",
            "digest": "abc123def4567890",
            "details": {"family": "gemma3", "quantization_level": "Q4_K_M"},
        }
    )
    assert ident == ModelIdentity("ollama-digest", "abc123def4567890",
                                  {"family": "gemma3", "quantization": "Q4_K_M",
                                   "tag": "gemma3:1b"})  # fmt: skip
    assert ident.label == "abc123def456"
    assert ollama_identity({"model": "x"}) is None
    assert ollama_tag("gemma3") == "gemma3:latest" and ollama_tag("a/b:1b") == "a/b:1b"


def test_openai_and_imported_identities() -> None:
    assert openai_identity(None, None) is None
    assert imported_identity({}) is None
    api = openai_identity("gpt-4-0613", "fp_1")
    imp = imported_identity({"model": "gpt-4-0613", "system_fingerprint": "fp_1"})
    assert api is not None and imp is not None
    assert api.value == imp.value and api.kind != imp.kind


@given(
    st.text(max_size=30), st.text(max_size=30), st.dictionaries(st.text(max_size=5), st.integers())
)
def test_key_depends_only_on_kind_and_value(kind: str, value: str, details: dict[str, int]) -> None:
    a, b = ModelIdentity(kind, value), ModelIdentity(kind, value, details)
    assert a.key == b.key and len(a.key) == 64
    assert ModelIdentity(kind + "x", value).key != a.key


def test_the_embedded_backend_names_its_gguf_file_version(tmp_path: Path) -> None:
    from core.config import ModelSpec
    from hosting.backends.llamacpp import LlamaCppBackend

    path = tmp_path / "team.gguf"
    path.write_bytes(b"GGUF-v1")
    spec = ModelSpec(name="team", backend="llamacpp", model=str(path), quantization="Q4_K_M")
    backend = LlamaCppBackend(spec)
    first = backend.identity()
    assert first is not None and first.details["quantization"] == "Q4_K_M"
    path.write_bytes(b"GGUF-v2-replaced")  # the file is replaced: a new version
    second = backend.identity()
    assert second is not None and second.key != first.key
    assert second.value == hashlib.sha256(b"GGUF-v2-replaced").hexdigest()
