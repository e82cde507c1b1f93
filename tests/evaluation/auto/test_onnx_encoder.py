"""evaluation.auto.onnx_encoder: the packaged SBERT model exported once to ONNX and run with
ONNX Runtime gives PyTorch's cosines (within 0.02, Spearman ≥ 0.99 over pairs; in fact to
float precision), is exported once per cache, and falls back to PyTorch, saying so, when a
model cannot be exported."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from core.config import EvaluationConfig, parse_config
from core.errors import SlamError
from evaluation.auto import onnx_encoder
from evaluation.auto.embeddings import (
    BUILTIN_SBERT,
    SentenceTransformerEncoder,
    cosine_rows,
    sentence_transformer_source,
)
from evaluation.auto.onnx_encoder import OnnxSentenceEncoder, sentence_encoder

# A fixed set: pep talks and their paraphrases, unrelated texts, markdown, one word, an empty
# string and one text past the model's 256-token limit (truncated alike on both).
TEXTS = [
    "Good morning, Ada! Finish the quarterly report before lunch, then take your walk.",
    "Morning Ada: wrap up the quarterly report by noon and go for your walk after.",
    "Today, Linus, review the pull requests and keep your journaling ritual going.",
    "Linus, look over the open PRs today and don't skip writing in your journal.",
    "Grace, your weekly goal is to ship the billing fix; you are two tasks away.",
    "The billing fix is nearly done, Grace: two tasks left to reach this week's goal.",
    "Bananas are a good source of potassium.",
    "The train to the coast leaves at nine from platform four.",
    "# Plan\n\n- **Write** the design doc\n- Call the client\n- Stretch at 3 pm",
    "## Today\n1. design doc\n2. client call\n3. stretch",
    "Rest.",
    "",
    "Keep going, you are doing great. " * 80,
    "Focus on one thing at a time and celebrate the small wins along the way.",
    "Steady progress beats bursts of effort: one task, then the next, then a break.",
    "Il fait beau aujourd'hui, profitez-en pour marcher un peu.",
]


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One export for this module's tests, in its own cache folder; no runner from before."""
    base = tmp_path_factory.getbasetemp() / "onnx-cache"
    monkeypatch.setenv("SLAM_CACHE_DIR", str(base))
    monkeypatch.setattr(onnx_encoder, "_RUNNERS", {})
    return base / "onnx"


def _pairs() -> tuple[list[str], list[str]]:
    a = [t for i, t in enumerate(TEXTS) for _ in TEXTS[i + 1 :]]
    b = [u for i, _ in enumerate(TEXTS) for u in TEXTS[i + 1 :]]
    return a, b


def test_onnx_cosines_match_pytorch(cache: Path) -> None:
    torch_vecs = SentenceTransformerEncoder(BUILTIN_SBERT).encode(TEXTS)
    onnx = OnnxSentenceEncoder(BUILTIN_SBERT, batch_size=4)  # several batches, other paddings
    onnx_vecs = onnx.encode(TEXTS)
    assert onnx_encoder._RUNNERS[BUILTIN_SBERT] is not None, "fell back to PyTorch"
    assert onnx_vecs.shape == torch_vecs.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(onnx_vecs, axis=1), 1.0, atol=1e-5)  # Normalize kept
    a, b = _pairs()
    where = {t: i for i, t in enumerate(TEXTS)}
    ia, ib = [where[t] for t in a], [where[t] for t in b]
    want = cosine_rows(torch_vecs[ia], torch_vecs[ib])
    got = cosine_rows(onnx_vecs[ia], onnx_vecs[ib])
    assert len(got) == 120
    assert float(np.max(np.abs(got - want))) <= 0.02  # the tolerance...
    assert float(np.max(np.abs(got - want))) <= 1e-5  # ...float32 is in fact exact
    assert spearmanr(got, want).statistic >= 0.99
    # paraphrases are closer than unrelated texts, on both (the ranking that matters)
    assert got[a.index(TEXTS[0])] > got[a.index(TEXTS[0]) + 5]
    # the same label: cached vectors of either backend serve the other
    assert onnx.label == SentenceTransformerEncoder(BUILTIN_SBERT).label == "all-MiniLM-L6-v2"


def test_exported_once_into_the_cache(cache: Path) -> None:
    OnnxSentenceEncoder().encode(["first"])
    files = sorted(cache.glob("*.onnx"))
    assert [f.name.split("-")[:3] for f in files] == [["all", "MiniLM", "L6"]]
    stamp = files[0].stat().st_mtime_ns
    # a new process (no runner in memory) loads the file rather than exporting again
    onnx_encoder._RUNNERS.clear()
    calls: list[Path] = []
    original = onnx_encoder.export_model
    onnx_encoder.export_model = lambda *a: calls.append(a[2])  # type: ignore[assignment]
    try:
        OnnxSentenceEncoder().encode(["second"])
    finally:
        onnx_encoder.export_model = original
    assert calls == [] and files[0].stat().st_mtime_ns == stamp
    assert not list(cache.glob(".*.tmp"))  # no half-written file left behind


def test_a_model_that_cannot_be_exported_falls_back_to_pytorch(
    cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A copy of the packaged model whose pooling is the max over tokens: not exported.
    src = Path(sentence_transformer_source(BUILTIN_SBERT))
    model = tmp_path / "max-pooled"
    shutil.copytree(src, model, ignore=shutil.ignore_patterns("*.safetensors"))
    (model / "model.safetensors").symlink_to(src / "model.safetensors")
    pool = model / "1_Pooling" / "config.json"
    cfg = json.loads(pool.read_text())
    cfg.update(pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)
    pool.write_text(json.dumps(cfg))
    with caplog.at_level(logging.WARNING, logger="evaluation.auto.onnx_encoder"):
        got = OnnxSentenceEncoder(str(model)).encode(TEXTS[:3])
    assert "cannot be exported" in caplog.text and "using PyTorch" in caplog.text
    assert "not the mean of the tokens" in caplog.text
    want = SentenceTransformerEncoder(str(model)).encode(TEXTS[:3])
    assert np.allclose(got, want, atol=1e-6)
    assert not list(cache.glob("max-pooled*"))


def test_an_export_that_fails_falls_back_to_pytorch(
    cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("the exported model differs from PyTorch by 3.0e-01")

    monkeypatch.setattr(onnx_encoder, "export_model", broken)
    monkeypatch.setenv("SLAM_CACHE_DIR", str(cache.parent / "empty"))
    with caplog.at_level(logging.WARNING, logger="evaluation.auto.onnx_encoder"):
        got = OnnxSentenceEncoder().encode(TEXTS[:2])
    assert "could not be exported or loaded (RuntimeError" in caplog.text
    assert np.allclose(got, SentenceTransformerEncoder().encode(TEXTS[:2]), atol=1e-6)
    assert onnx_encoder._RUNNERS[BUILTIN_SBERT] is None  # said once, not per call


def test_the_backend_is_an_evaluation_option() -> None:
    assert EvaluationConfig().sbert_backend == "onnx"
    assert isinstance(sentence_encoder(BUILTIN_SBERT, 32, "onnx"), OnnxSentenceEncoder)
    assert isinstance(sentence_encoder(BUILTIN_SBERT, 32, "torch"), SentenceTransformerEncoder)
    cfg = parse_config({"evaluation": {"sbert_backend": "torch"}})
    assert cfg.evaluation.sbert_backend == "torch"
    with pytest.raises(SlamError, match="sbert_backend"):
        parse_config({"evaluation": {"sbert_backend": "openvino"}})
