"""Similarity of each candidate response to the reference model's response to the same prompt,
day and sample: TF-IDF cosine, SBERT cosine, BLEU, SEM-BLEU, OpenAI embeddings, QA embeddings.

Values are stored once per (metric, generation, reference generation); re-running computes only
what is missing, and embeddings come from the content-hash cache.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from evaluation.corpus import Corpus, GenRow
from evaluation.embeddings import (
    BUILTIN_SBERT,
    Encoder,
    OpenAIEncoder,
    SentenceTransformerEncoder,
    cosine_rows,
    embed_cached,
)
from slam.config import EvaluationConfig
from slam.errors import SlamError
from storage.db import session_scope
from storage.models import SimilarityScore
from storage.repo import try_insert

METRICS = ("tfidf", "sbert", "bleu", "sem-bleu", "openai", "qa")
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


def tfidf_cosines(
    candidates: Sequence[str], references: Sequence[str], corpus: Sequence[str]
) -> NDArray[np.float64]:
    """Cosine of TF-IDF vectors (idf fitted on `corpus`) for each (candidate, reference)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(tokenizer=tokenize, token_pattern=None, lowercase=False)
    vec.fit(list(corpus) + list(candidates) + list(references))
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


def check_metrics(metrics: list[str]) -> list[str]:
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise SlamError(f"unknown similarity metric(s) {bad}; expected any of {', '.join(METRICS)}")
    return list(dict.fromkeys(metrics))


class _Embedder:
    """Embedding cosines per encoder, each text embedded once (and cached)."""

    def __init__(self, engine: Engine, progress: Callable[[str, int], None] | None):
        self.engine = engine
        self.progress = progress

    def cosines(self, encoder: Encoder, pairs: list[Pair], what: str) -> NDArray[np.float64]:
        if not pairs:
            return np.zeros(0)
        texts = [c.text for c, _ in pairs] + [r.text for _, r in pairs]
        report = self.progress
        tick = (lambda n: report(what, n)) if report is not None else None
        emb = embed_cached(self.engine, encoder, texts, tick)
        return cosine_rows(emb[: len(pairs)], emb[len(pairs) :])


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
    if "openai" in metrics and not os.environ.get("OPENAI_API_KEY"):
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
    emb = _Embedder(engine, progress)
    sbert = SentenceTransformerEncoder(settings.sbert_model, settings.embedding_batch_size)
    all_texts = [g.text for g in corpus.generations.values()]
    for metric in metrics:
        name = names[metric]
        todo = [(c, r) for c, r in pairs if (name, c.id, r.id) not in have]
        run.cached[name] = len(pairs) - len(todo)
        if not todo:
            run.computed[name] = 0
            continue
        if metric == "tfidf":
            values = tfidf_cosines([c.text for c, _ in todo], [r.text for _, r in todo], all_texts)
        elif metric == "bleu":
            values = np.array([bleu(c.text, r.text) for c, r in todo])
        elif metric == "sbert":
            values = emb.cosines(sbert, todo, name)
        elif metric == "sem-bleu":
            b = np.array([bleu(c.text, r.text) for c, r in todo])
            values = (emb.cosines(sbert, todo, name) + b) / 2.0
        elif metric == "qa":
            qa = SentenceTransformerEncoder(settings.qa_model, settings.embedding_batch_size)
            values = emb.cosines(qa, todo, name)
        else:  # openai
            enc = OpenAIEncoder(
                settings.openai_embedding_model,
                api_key=os.environ.get("OPENAI_API_KEY"),
                base_url=os.environ.get("OPENAI_BASE_URL"),
            )
            values = emb.cosines(enc, todo, name)
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
