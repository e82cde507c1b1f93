"""Similarity metrics: BLEU equals nltk's own, TF-IDF/SBERT cosines behave, SEM-BLEU is the mean,
embeddings are computed once per text, OpenAI embeddings over a local fake of the wire."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.config import EvaluationConfig
from core.errors import SlamError
from evaluation.auto.corpus import load_corpus
from evaluation.auto.embeddings import SentenceTransformerEncoder, cosine_rows, embed_cached
from evaluation.auto.similarity import bleu, run_similarity, tfidf_cosines, tokenize
from storage.db import session_scope
from storage.models import EmbeddingCache, SimilarityScore
from tests.support.eval_seed import seed_generations

REF = "Great job finishing the budget review yesterday, Maya. Today, focus on the launch plan."
PARA = "Well done on the budget review yesterday, Maya! Today your focus is the launch plan."
OFF = "The mitochondria is the powerhouse of the cell and photosynthesis needs light."

BLEU_PAIRS = [
    (
        "it is a guide to action which ensures that the military always obeys the commands of "
        "the party",
        "it is a guide to action that ensures that the military will forever heed party commands",
    ),
    ("the cat is on the mat", "there is a cat on the mat"),
    ("the quick brown fox jumps over the lazy dog", "the quick brown fox jumps over the lazy dog"),
    ("completely different words here", "nothing in common at all"),
]


@pytest.mark.parametrize(("hyp", "ref"), BLEU_PAIRS)
def test_bleu_equals_nltk(hyp: str, ref: str) -> None:
    expected = sentence_bleu(
        [ref.split()], hyp.split(), smoothing_function=SmoothingFunction().method1
    )
    assert bleu(hyp, ref) == pytest.approx(expected, abs=1e-12)


def test_bleu_edge_cases_and_tokenizer() -> None:
    assert bleu(REF, REF) == pytest.approx(1.0)
    assert bleu("", REF) == 0.0 and bleu(REF, "") == 0.0
    assert tokenize("Hi, Maya! It's 9:30.") == ["hi", ",", "maya", "!", "it", "'", "s", "9", ":",
                                                 "30", "."]  # fmt: skip
    assert bleu(PARA, REF) > bleu(OFF, REF)


def test_tfidf_cosine_equals_scikit_learn_on_the_distinct_corpus() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    corpus = [REF, PARA, OFF, "Good morning! Coffee first, then the quarterly plan."]
    v = tfidf_cosines([REF, PARA, OFF], [REF, REF, REF], corpus=corpus)
    # Independent reference: scikit-learn's own vectorizer and cosine, fitted on the corpus.
    ref = TfidfVectorizer(analyzer=lambda t: tokenize(t)).fit(corpus)
    want = cosine_similarity(ref.transform([REF, PARA, OFF]), ref.transform([REF]))[:, 0]
    assert v == pytest.approx(want, abs=1e-12)
    assert v[0] == pytest.approx(1.0) and v[1] > v[2]


def test_tfidf_value_does_not_depend_on_its_batch() -> None:
    corpus = [REF, PARA, OFF]
    alone = tfidf_cosines([PARA], [REF], corpus=corpus)[0]
    batch = tfidf_cosines([PARA, OFF, REF, PARA], [REF, REF, REF, OFF], corpus=corpus)
    assert batch[0] == pytest.approx(alone, abs=1e-15)
    # A text appearing many times in the corpus (a reference paired with every candidate)
    # counts once in the idf.
    assert tfidf_cosines([PARA], [REF], corpus=corpus + [REF] * 5)[0] == pytest.approx(alone)


@pytest.fixture(scope="module")
def sbert() -> SentenceTransformerEncoder:
    """The packaged all-MiniLM-L6-v2, loaded once for the module (a few seconds)."""
    enc = SentenceTransformerEncoder()
    enc.encode(["warm up"])
    return enc


class Counting:
    """Wraps a real encoder and counts the texts it was asked to encode."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.label = inner.label
        self.encoded: list[str] = []

    def encode(self, texts: list[str], progress: Any = None) -> Any:
        self.encoded.extend(texts)
        return self.inner.encode(texts, progress)


def test_sbert_cosines(sbert: SentenceTransformerEncoder) -> None:
    e = sbert.encode([REF, REF, PARA, OFF])
    cos = cosine_rows(e[[0, 0, 0]], e[[1, 2, 3]])
    assert cos[0] == pytest.approx(1.0, abs=1e-5)
    assert cos[1] > 0.7 and cos[2] < 0.3 and cos[1] - cos[2] > 0.5


def test_embeddings_once_per_text_and_cached(
    engine: Engine, sbert: SentenceTransformerEncoder
) -> None:
    enc = Counting(sbert)
    first = embed_cached(engine, enc, [REF, PARA, REF, OFF, PARA])
    assert sorted(enc.encoded) == sorted([REF, PARA, OFF])  # duplicates encoded once
    np.testing.assert_allclose(first[0], first[2])
    second = embed_cached(engine, enc, [OFF, REF])
    assert len(enc.encoded) == 3  # nothing new to encode
    np.testing.assert_allclose(second[0], first[3], rtol=1e-6)
    with session_scope(engine) as s:
        rows = s.exec(select(EmbeddingCache)).all()
    assert len(rows) == 3 and {r.dim for r in rows} == {384}


def seed(engine: Engine) -> dict[tuple[str, int], int]:
    return seed_generations(
        engine,
        {"ref": [REF, OFF], "para": [PARA, OFF], "off": [OFF, REF], "broken": [PARA, PARA]},
        reference="ref",
        errors={"broken": 0},
    )


def stored(engine: Engine) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    with session_scope(engine) as s:
        for r in s.exec(select(SimilarityScore)).all():
            out.setdefault(r.metric, {})[r.generation_id] = r.value
    return out


def test_run_similarity_end_to_end(
    any_engine: Engine, sbert: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = any_engine
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    gens = seed(engine)
    with session_scope(engine) as s:
        corpus = load_corpus(s, "daily-pep-talk")
    metrics = ["tfidf", "sbert", "bleu", "sem-bleu", "qa", "openai"]
    run = run_similarity(engine, corpus, metrics)
    assert run.notes == ["openai embeddings skipped: OPENAI_API_KEY is not set"]
    # candidates: para×2, off×2, broken×1 (its prompt-0 generation failed and is not scored)
    assert run.computed == {m: 5 for m in ["tfidf", "sbert", "bleu", "sem-bleu", "qa"]}
    v = stored(engine)
    para0, off0 = gens[("para", 0)], gens[("off", 0)]
    assert gens[("broken", 0)] not in v["sbert"]
    assert v["sbert"][gens[("para", 1)]] == pytest.approx(1.0, abs=1e-5)  # identical texts
    assert v["tfidf"][gens[("para", 1)]] == pytest.approx(1.0)
    for metric in ("tfidf", "sbert", "bleu", "sem-bleu"):
        assert v[metric][para0] > v[metric][off0], metric
    for gid in v["sem-bleu"]:
        assert v["sem-bleu"][gid] == pytest.approx((v["sbert"][gid] + v["bleu"][gid]) / 2)
    assert v["qa"] == pytest.approx(v["sbert"])  # the slot defaults to the same packaged model
    again = run_similarity(engine, corpus, metrics)
    assert sum(again.computed.values()) == 0 and again.cached["sbert"] == 5


def test_similarity_without_reference_and_bad_names(engine: Engine) -> None:
    seed_generations(engine, {"a": [REF], "b": [PARA]})
    with session_scope(engine) as s:
        corpus = load_corpus(s, "daily-pep-talk")
    run = run_similarity(engine, corpus, ["bleu"])
    assert "no reference model" in run.notes[0] and run.computed == {}
    with pytest.raises(SlamError, match="unknown similarity metric"):
        run_similarity(engine, corpus, ["rouge"])


def test_unloadable_embedding_model_is_a_clear_error(engine: Engine) -> None:
    seed_generations(engine, {"ref": [REF], "b": [PARA]}, reference="ref")
    with session_scope(engine) as s:
        corpus = load_corpus(s, "daily-pep-talk")
    settings = EvaluationConfig(qa_model="/nonexistent/qa-model")
    with pytest.raises(SlamError, match="cannot load sentence-transformers model"):
        run_similarity(engine, corpus, ["qa"], settings)


def _fake_vector(text: str, dim: int = 64) -> list[float]:
    """Bag-of-words hashing: identical texts give identical vectors, unrelated ones differ."""
    v = np.zeros(dim)
    for tok in tokenize(text):
        v[int(hashlib.sha256(tok.encode()).hexdigest(), 16) % dim] += 1.0
    return v.tolist()


@pytest.fixture
def fake_openai(port: int) -> Iterator[dict[str, Any]]:
    """A local stand-in for the OpenAI embeddings endpoint (the wire, not the SDK)."""
    seen: dict[str, Any] = {"requests": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen["requests"].append({"path": self.path, "auth": self.headers["Authorization"],
                                     "body": body})  # fmt: skip
            data = [
                {"object": "embedding", "index": i, "embedding": _fake_vector(t)}
                for i, t in enumerate(body["input"])
            ]
            usage = {"prompt_tokens": 1, "total_tokens": 1}
            reply = {"object": "list", "data": data, "model": body["model"], "usage": usage}
            payload = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen["url"] = f"http://127.0.0.1:{port}/v1"
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_openai_embeddings_over_the_wire(
    engine: Engine, fake_openai: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai["url"])
    gens = seed(engine)
    with session_scope(engine) as s:
        corpus = load_corpus(s, "daily-pep-talk")
    run = run_similarity(engine, corpus, ["openai"])
    assert run.notes == [] and run.computed == {"openai": 5}
    (req,) = fake_openai["requests"]  # one batched request, each distinct text once
    assert req["path"] == "/v1/embeddings" and req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "text-embedding-3-small"
    assert sorted(req["body"]["input"]) == sorted({REF, PARA, OFF})
    v = stored(engine)["openai"]
    assert v[gens[("para", 1)]] == pytest.approx(1.0) and v[gens[("para", 0)]] > v[gens[("off", 0)]]
    run_similarity(engine, corpus, ["openai"])
    assert len(fake_openai["requests"]) == 1  # cached: no second call
