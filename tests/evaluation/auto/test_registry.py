"""The methods registry: every judge method and similarity metric declares its range, its
direction and whether it needs the reference; adding a metric is one registered function,
and the meta-evaluation reads the direction from the registry."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from evaluation.auto import registry
from evaluation.auto.corpus import load_corpus
from evaluation.auto.judges.tasks import judge_methods
from evaluation.auto.metaeval import meta_evaluate
from evaluation.auto.registry import all_methods, get
from evaluation.auto.similarity import check_metrics, run_similarity, similarity_metrics
from storage.db import session_scope
from storage.models import SimilarityScore
from tests.support.eval_seed import seed_generations


def test_every_builtin_method_declares_its_metadata() -> None:
    methods = all_methods()
    assert set(judge_methods()) | set(similarity_metrics()) <= set(methods)
    for name in judge_methods():
        info = methods[name]
        assert info.kind == "judge" and info.answer in ("score", "verdict", "index"), name
    for name in similarity_metrics():
        info = methods[name]
        assert info.kind == "similarity" and info.needs_reference and info.compute, name
    for info in methods.values():
        assert info.lo < info.hi and info.description
    assert get("comparer").needs_reference and not get("scorer").needs_reference
    assert (get("scorer").lo, get("scorer").hi) == (0, 10)
    # Stored names with a judge or an embedding model resolve to their method.
    assert get("scorer@gpt-4").name == "scorer" and get("sbert:all-mpnet").name == "sbert"
    with pytest.raises(KeyError, match="unknown method 'nope'"):
        get("nope")


@pytest.fixture
def jaccard_metric() -> Iterator[str]:
    """A metric added by one registered function (removed again after the test)."""

    @registry.similarity_metric("word-jaccard", "Jaccard overlap of the word sets")
    def word_jaccard(pairs: Sequence[tuple[Any, Any]], ctx: Any) -> np.ndarray:
        out = []
        for cand, ref in pairs:
            a, b = set(cand.text.lower().split()), set(ref.text.lower().split())
            out.append(len(a & b) / len(a | b) if a | b else 1.0)
        return np.array(out)

    yield "word-jaccard"
    registry.METHOD_INFO.remove("word-jaccard")


def test_a_metric_is_one_registered_function(engine: Engine, jaccard_metric: str) -> None:
    seed_generations(
        engine,
        {"ref": ["a b c d", "x y"], "cand": ["a b c e", "p q"]},
        reference="ref",
    )
    assert check_metrics([jaccard_metric]) == [jaccard_metric]
    with session_scope(engine) as s:
        corpus = load_corpus(s, "daily-pep-talk")
    run = run_similarity(engine, corpus, [jaccard_metric])
    assert run.computed == {jaccard_metric: 2}
    with session_scope(engine) as s:
        values = sorted(
            v for v in s.exec(
                select(SimilarityScore.value).where(SimilarityScore.metric == jaccard_metric)
            )
        )  # fmt: skip
    assert values == pytest.approx([0.0, 3 / 5])


def test_meta_evaluation_reads_the_direction(jaccard_metric: str) -> None:
    human = {"m1": 9.0, "m2": 5.0, "m3": 1.0}
    distances = {"m1": 0.1, "m2": 0.5, "m3": 0.9}  # small = close to the reference = good
    registry.register(
        registry.MethodInfo("distance", "similarity", "a distance", 0, 1, higher_is_better=False)
    )
    try:
        (lower_better,) = meta_evaluate({"distance": distances}, human, k=1)
        (assumed_higher,) = meta_evaluate({jaccard_metric: distances}, human, k=1)
    finally:
        registry.METHOD_INFO.remove("distance")
    assert lower_better.spearman == pytest.approx(1.0) and lower_better.jaccard == 1.0
    assert assumed_higher.spearman == pytest.approx(-1.0) and assumed_higher.jaccard == 0.0


def test_a_method_cannot_be_registered_twice_differently() -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.MethodInfo("scorer", "judge", "other", 0, 1))
    with pytest.raises(ValueError, match="empty"):
        registry.register(registry.MethodInfo("flat", "judge", "x", 1, 1))
