"""Similarity of each candidate response to the reference model's response to the same prompt,
day and sample: TF-IDF cosine, SBERT cosine, BLEU, SEM-BLEU, OpenAI embeddings, QA embeddings.

Values are stored once per (metric, generation, reference generation); re-running computes only
what is missing, and embeddings come from the content-hash cache.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from core.config import EvaluationConfig
from core.env import environment
from evaluation.auto import registry
from evaluation.auto.corpus import Corpus, GenRow
from evaluation.auto.embeddings import (
    BUILTIN_SBERT,
    Encoder,
    OpenAIEncoder,
    cosine_rows,
    embed_cached,
)
from evaluation.auto.onnx_encoder import sentence_encoder
from evaluation.auto.registry import similarity_metric
from storage.db import session_scope
from storage.models import SimilarityScore
from storage.repo import try_insert

_TOKEN = re.compile(r"\w+|[^\w\s]")
Pair = tuple[GenRow, GenRow]  # (candidate, reference)


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks: offline, no punkt data needed."""
    return _TOKEN.findall(text.lower())


def bleu(candidate: str, reference: str) -> float:
    """Sentence BLEU-4 of candidate against reference, with nltk's smoothing method 1."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    hyp, ref = tokenize(candidate), tokenize(reference)
    if not hyp or not ref:
        return 0.0
    return float(sentence_bleu([ref], hyp, smoothing_function=SmoothingFunction().method1))


def tfidf_vectorizer(corpus: Sequence[str]) -> Any:
    """A TF-IDF vectorizer whose idf is fitted once on the corpus's distinct texts.

    Each text counts once however many pairs it is in, so a pair's value depends on the
    corpus, never on which other pairs are scored in the same run.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(tokenizer=tokenize, token_pattern=None, lowercase=False)
    vec.fit(sorted(set(corpus)))
    return vec


def tfidf_cosines(
    candidates: Sequence[str], references: Sequence[str], corpus: Sequence[str]
) -> NDArray[np.float64]:
    """Cosine of TF-IDF vectors (idf fitted on the corpus's distinct texts) for each
    (candidate, reference)."""
    return _tfidf_rows(tfidf_vectorizer(corpus), candidates, references)


def _tfidf_rows(
    vec: Any, candidates: Sequence[str], references: Sequence[str]
) -> NDArray[np.float64]:
    a = vec.transform(candidates)
    b = vec.transform(references)
    # Rows are L2-normalised, so the cosine is the row-wise dot product.
    return np.asarray(a.multiply(b).sum(axis=1), dtype=np.float64).ravel()


def metric_name(metric: str, settings: EvaluationConfig) -> str:
    """The stored metric name: a non-default embedding model gets its own name."""
    model = {"sbert": settings.sbert_model, "qa": settings.qa_model}.get(metric)
    if model is not None and model != BUILTIN_SBERT:
        return f"{metric}:{model}"[:64]
    if metric == "openai" and settings.openai_embedding_model != "text-embedding-3-small":
        return f"openai:{settings.openai_embedding_model}"[:64]
    return metric


@dataclass
class SimilarityRun:
    computed: dict[str, int] = field(default_factory=dict)
    cached: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def similarity_metrics() -> tuple[str, ...]:
    """Every registered similarity metric, in registration order (read now, never frozen)."""
    return registry.names("similarity")


def check_metrics(metrics: list[str]) -> list[str]:
    return registry.checked(metrics, similarity_metrics(), "similarity metric(s)")


class _Embedder:
    """Embedding cosines per encoder, each text embedded once (and cached)."""

    def __init__(self, engine: Engine, progress: Callable[[str, int], None] | None):
        self.engine = engine
        self.progress = progress

    def cosines(self, encoder: Encoder, pairs: Sequence[Pair], what: str) -> NDArray[np.float64]:
        if not pairs:
            return np.zeros(0)
        texts = [c.text for c, _ in pairs] + [r.text for _, r in pairs]
        report = self.progress
        tick = (lambda n: report(what, n)) if report is not None else None
        emb = embed_cached(self.engine, encoder, texts, tick)
        return cosine_rows(emb[: len(pairs)], emb[len(pairs) :])


@dataclass
class MetricContext:
    """What a metric function may use: the corpus's texts, the settings, the embedder, and
    the stored name of the metric being computed (embedding models make their own names)."""

    corpus_texts: list[str]
    settings: EvaluationConfig
    embedder: _Embedder
    name: str = ""
    _memo: dict[str, Any] = field(default_factory=dict)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def sbert(self) -> Encoder:
        s = self.settings
        return self.once(
            "sbert",
            lambda: sentence_encoder(s.sbert_model, s.embedding_batch_size, s.sbert_backend),
        )


@similarity_metric("tfidf", "cosine of TF-IDF vectors (idf from the corpus's distinct texts)")
def _tfidf(pairs: Sequence[Pair], ctx: MetricContext) -> NDArray[np.float64]:
    vec = ctx.once("tfidf", lambda: tfidf_vectorizer(ctx.corpus_texts))
    return _tfidf_rows(vec, [c.text for c, _ in pairs], [r.text for _, r in pairs])


@similarity_metric("bleu", "sentence BLEU-4 against the reference (smoothing method 1)")
def _bleu(pairs: Sequence[Pair], ctx: MetricContext) -> NDArray[np.float64]:
    return np.array([bleu(c.text, r.text) for c, r in pairs], dtype=np.float64)


@similarity_metric("sbert", "cosine of SBERT sentence embeddings", lo=-1.0)
def _sbert(pairs: Sequence[Pair], ctx: MetricContext) -> NDArray[np.float64]:
    return ctx.embedder.cosines(ctx.sbert(), pairs, ctx.name)


@similarity_metric("sem-bleu", "mean of the SBERT cosine and BLEU", lo=-0.5)
def _sem_bleu(pairs: Sequence[Pair], ctx: MetricContext) -> NDArray[np.float64]:
    return (ctx.embedder.cosines(ctx.sbert(), pairs, ctx.name) + _bleu(pairs, ctx)) / 2.0


@similarity_metric("openai", "cosine of OpenAI embeddings (needs OPENAI_API_KEY)", lo=-1.0)
def _openai(pairs: Sequence[Pair], ctx: MetricContext) -> NDArray[np.float64]:
    env = environment()
    enc = OpenAIEncoder(
        ctx.settings.openai_embedding_model,
        api_key=env.openai_api_key,
        base_url=env.openai_base_url,
    )
    return ctx.embedder.cosines(enc, pairs, ctx.name)


@similarity_metric("qa", "cosine in the question-answer embedding slot", lo=-1.0)
def _qa(pairs: Sequence[Pair], ctx: MetricContext) -> NDArray[np.float64]:
    s = ctx.settings
    qa = sentence_encoder(s.qa_model, s.embedding_batch_size, s.sbert_backend)
    return ctx.embedder.cosines(qa, pairs, ctx.name)


def run_similarity(
    engine: Engine,
    corpus: Corpus,
    metrics: list[str],
    settings: EvaluationConfig | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> SimilarityRun:
    """Compute and store every missing similarity value for the requested metrics."""
    metrics = check_metrics(metrics)
    settings = settings or EvaluationConfig()
    run = SimilarityRun()
    if corpus.reference_model is None:
        run.notes.append(
            "similarity skipped: no reference model (set reference = true on one [[models]])"
        )
        return run
    pairs = corpus.candidate_pairs()
    if "openai" in metrics and not environment().openai_api_key:
        metrics = [m for m in metrics if m != "openai"]
        run.notes.append("openai embeddings skipped: OPENAI_API_KEY is not set")
    names = {m: metric_name(m, settings) for m in metrics}
    with session_scope(engine) as s:
        have = set(
            s.exec(
                select(
                    SimilarityScore.metric,
                    SimilarityScore.generation_id,
                    SimilarityScore.reference_generation_id,
                ).where(SimilarityScore.metric.in_(list(names.values())))  # type: ignore[attr-defined]
            ).all()
        )
    ctx = MetricContext(
        corpus_texts=[g.text for g in corpus.generations.values()],
        settings=settings,
        embedder=_Embedder(engine, progress),
    )
    for metric in metrics:
        name = names[metric]
        todo = [(c, r) for c, r in pairs if (name, c.id, r.id) not in have]
        run.cached[name] = len(pairs) - len(todo)
        if not todo:
            run.computed[name] = 0
            continue
        ctx.name = name
        compute = registry.get(metric).compute
        assert compute is not None
        values = np.asarray(compute(todo, ctx), dtype=np.float64)
        _store(engine, name, todo, values)
        run.computed[name] = len(todo)
    return run


def _store(engine: Engine, metric: str, pairs: list[Pair], values: NDArray[np.float64]) -> None:
    rows = [
        SimilarityScore(
            metric=metric, generation_id=c.id, reference_generation_id=r.id, value=float(v)
        )
        for (c, r), v in zip(pairs, values, strict=True)
    ]
    try:
        with session_scope(engine) as s:
            s.add_all(rows)
    except IntegrityError:  # another run stored some meanwhile: add only what is missing
        with session_scope(engine) as s:
            for row in rows:
                try_insert(s, SimilarityScore.model_validate(row.model_dump(exclude={"id"})))
