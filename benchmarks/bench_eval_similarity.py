"""SBERT similarity of N responses against their references, three ways:

1. bare `SentenceTransformer.encode` of the same distinct texts (the floor);
2. `run_similarity` with an empty embedding cache (target: within 1.2x of the bare encode);
3. `run_similarity` again with a warm cache (target: >= 20x faster than the cold run).

Usage: python benchmarks/bench_eval_similarity.py [N] [--quick]
(default N = 2000; ~14 texts/s on 2 cores; --quick: 100, one round)
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sqlmodel import delete

from core.config import EvaluationConfig
from evaluation.auto.corpus import load_corpus
from evaluation.auto.embeddings import SentenceTransformerEncoder, load_sentence_transformer
from evaluation.auto.similarity import run_similarity
from storage.db import session_scope
from storage.migrate import open_database
from storage.models import EmbeddingCache, SimilarityScore

# The overhead measured is over the bare PyTorch encode (the ONNX encoder, the default:
# benchmarks/bench_similarity_encoder.py)
TORCH = EvaluationConfig(sbert_backend="torch")
WORDS = [
    "finish",
    "report",
    "gym",
    "walk",
    "journal",
    "budget",
    "review",
    "launch",
    "plan",
    "inbox",
    "meeting",
    "team",
    "focus",
    "goal",
    "week",
    "morning",
    "coffee",
    "stretch",
    "read",
    "write",
    "call",
    "client",
    "design",
    "code",
    "test",
    "ship",
    "celebrate",
    "rest",
    "energy",
    "proud",
    "progress",
    "steady",
    "calm",
    "bold",
    "clear",
    "kind",
    "brave",
]


def pep_talk(rng: random.Random) -> str:
    sentences = []
    for _ in range(4):
        words = rng.choices(WORDS, k=rng.randint(10, 16))
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def seed(url: str, n: int) -> None:
    import hashlib
    from datetime import date

    from core.config import ModelSpec
    from storage import repo
    from storage.models import Generation

    engine = open_database(url)
    rng = random.Random(0)
    n_prompts = max(1, n // 20)
    n_models = -(-n // n_prompts)
    with session_scope(engine) as s:
        exp = repo.ensure_experiment(s, "daily-pep-talk", "{name}")
        models = [
            repo.ensure_model(
                s,
                ModelSpec(name=f"m{k}", backend="llamacpp", model="x", reference=k == 0),
            )
            for k in range(n_models + 1)
        ]
        made = 0
        for p in range(n_prompts):
            uc = repo.ensure_user_context(s, f"u{p}", f"U{p}", {})
            text = f"prompt {p}"
            pr = repo.ensure_prompt(
                s, exp.id, uc.id, text, hashlib.sha256(text.encode()).hexdigest()
            )  # type: ignore[arg-type]
            for k, m in enumerate(models):
                if k > 0 and made >= n:
                    break
                made += k > 0
                s.add(
                    Generation(
                        experiment_id=exp.id, prompt_id=pr.id, model_id=m.id,  # type: ignore[arg-type]
                        run_date=date(2024, 3, 1), backend="llamacpp", text=pep_talk(rng),
                    )
                )  # fmt: skip
    engine.dispose()


def main(n: int, rounds: int = 2) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        seed(url, n)
        engine = open_database(url)
        with session_scope(engine) as s:
            corpus = load_corpus(s, "daily-pep-talk")
        pairs = corpus.candidate_pairs()
        texts = list(dict.fromkeys([c.text for c, _ in pairs] + [r.text for _, r in pairs]))
        st = load_sentence_transformer(SentenceTransformerEncoder().model)
        st.encode(texts[:32], batch_size=32)  # warm up threads and kernels

        # The machine is shared with other work: interleave bare and cold runs and keep the
        # fastest of each; also time the encoder inside the cold run (overhead = total/encoder).
        inner = {"s": 0.0}
        original = SentenceTransformerEncoder.encode

        def timed(self: SentenceTransformerEncoder, batch: list[str], progress: Any = None) -> Any:
            t = time.perf_counter()
            try:
                return original(self, batch, progress)
            finally:
                inner["s"] += time.perf_counter() - t

        SentenceTransformerEncoder.encode = timed  # type: ignore[method-assign]
        bare = cold = overhead = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            st.encode(texts, batch_size=32, convert_to_numpy=True)
            bare = min(bare, time.perf_counter() - t0)
            with session_scope(engine) as s:
                s.exec(delete(SimilarityScore))  # type: ignore[call-overload]
                s.exec(delete(EmbeddingCache))  # type: ignore[call-overload]
            inner["s"] = 0.0
            t0 = time.perf_counter()
            run_similarity(engine, corpus, ["sbert"], TORCH)
            took = time.perf_counter() - t0
            cold = min(cold, took)
            overhead = min(overhead, took / inner["s"])

        with session_scope(engine) as s:
            s.exec(delete(SimilarityScore))  # type: ignore[call-overload]
        t0 = time.perf_counter()
        run_similarity(engine, corpus, ["sbert"], TORCH)
        warm = time.perf_counter() - t0
        engine.dispose()

    print(f"{len(pairs)} responses vs references, {len(texts)} distinct texts, best of {rounds}")
    print(f"bare SentenceTransformer.encode: {bare:7.2f} s  ({len(texts) / bare:6.1f} texts/s)")
    print(
        f"run_similarity, cold cache:      {cold:7.2f} s  ({cold / bare:.2f}x bare; target <= 1.2x)"
        f" -> {'OK' if cold <= 1.2 * bare else 'SLOW'}"
    )
    print(f"  of which outside the encoder: {100 * (overhead - 1):.1f}% (total / encoder time)")
    print(
        f"run_similarity, warm cache:      {warm:7.2f} s  ({cold / warm:.0f}x faster than cold;"
        f" target >= 20x) -> {'OK' if cold / warm >= 20 else 'SLOW'}"
    )
    ok = cold <= 1.2 * bare and cold / warm >= 20
    print(f"summary: similarity of {len(pairs)} responses: cold {cold / bare:.2f}x the bare "
          f"encode, warm {cold / warm:.0f}x faster than cold (targets ≤ 1.2x, ≥ 20x: "
          f"{'OK' if ok else 'OVER'})")


if __name__ == "__main__":
    quick = "--quick" in sys.argv[1:]  # a few seconds: 100 responses, one round
    args = [a for a in sys.argv[1:] if a != "--quick"]
    main(int(args[0]) if args else (100 if quick else 2000), rounds=1 if quick else 2)
