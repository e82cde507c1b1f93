"""The SBERT encoder on ONNX Runtime against PyTorch (sentence-transformers), on N responses.

Targets (issue 21): ONNX encodes N = 2,000 pep-talk-sized responses at least 2x as fast as
PyTorch, with cosines over pairs within 0.02 of PyTorch's and a Spearman correlation of at
least 0.99. Both run on the same texts, alternating chunk by chunk, best of R rounds (the
machine is shared); the export (once per cache) is timed apart. With the `onnx` package
installed, a dynamically quantized int8 model is measured too (it would be kept only if it met
the same quality targets; it does not: see the README).

Usage: python benchmarks/bench_similarity_encoder.py [--quick] [N] [ROUNDS]
       (default N = 2000, 2 rounds; --quick: N = 64, 1 round, a few seconds)
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

import numpy as np

from evaluation.auto import onnx_encoder
from evaluation.auto.embeddings import (
    BUILTIN_SBERT,
    SentenceTransformerEncoder,
    cosine_rows,
    load_sentence_transformer,
)
from evaluation.auto.onnx_encoder import OnnxSentenceEncoder, onnx_runner

WORDS = ["finish", "report", "gym", "walk", "journal", "budget", "review", "launch", "plan",
         "inbox", "meeting", "team", "focus", "goal", "week", "morning", "coffee", "stretch",
         "read", "write", "call", "client", "design", "code", "test", "ship", "celebrate",
         "rest", "energy", "proud", "progress", "steady", "calm", "bold", "clear", "kind",
         "brave"]  # fmt: skip
SPEEDUP, COS_TOL, SPEARMAN = 2.0, 0.02, 0.99
CHUNK = 256


def pep_talk(rng: random.Random) -> str:
    """Four sentences of 10–16 words: the size of the feature's responses."""
    return " ".join(" ".join(rng.choices(WORDS, k=rng.randint(10, 16))).capitalize() + "."
                    for _ in range(4))  # fmt: skip


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def quality(vecs: np.ndarray, base: np.ndarray, rng: random.Random) -> tuple[float, float]:
    """Max |Δ cosine| and Spearman over random pairs of responses, against `base`."""
    n = len(vecs)
    i = np.array([rng.randrange(n) for _ in range(4 * n)])
    j = np.array([rng.randrange(n) for _ in range(4 * n)])
    got, want = cosine_rows(vecs[i], vecs[j]), cosine_rows(base[i], base[j])
    return float(np.max(np.abs(got - want))), spearman(got, want)


def int8_encoder(fp32: Path, out: Path) -> Any:
    """A dynamically quantized copy of the exported model, or None without the onnx package."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return None
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
    except ImportError:
        return None
    runner = onnx_runner(BUILTIN_SBERT)
    assert runner is not None
    q = onnx_encoder._Runner.__new__(onnx_encoder._Runner)
    q.__dict__.update(runner.__dict__)
    q.session = onnx_encoder._session(out)
    return q


def main(n: int, rounds: int) -> None:
    rng = random.Random(0)
    texts = [pep_talk(rng) for _ in range(n)]
    load0 = os.getloadavg()[0]
    st = load_sentence_transformer(BUILTIN_SBERT)
    st.encode(texts[:32], batch_size=32, show_progress_bar=False)  # warm threads and kernels
    t0 = time.perf_counter()
    runner = onnx_runner(BUILTIN_SBERT)
    setup = time.perf_counter() - t0
    if runner is None:
        print("summary: OVER: the ONNX model could not be exported or loaded (see the log)")
        return
    onnx = OnnxSentenceEncoder(BUILTIN_SBERT)
    onnx.encode(texts[:32])
    torch_enc = SentenceTransformerEncoder(BUILTIN_SBERT)
    # The host is shared: the two alternate chunk by chunk (CHUNK texts each), so both meet
    # the same load; each round's total per encoder is the sum over its chunks, best round kept.
    t_torch = t_onnx = float("inf")
    base = np.zeros((n, 384), dtype=np.float32)
    got = np.zeros_like(base)
    for _ in range(rounds):
        sums = [0.0, 0.0]
        for k in range(0, n, CHUNK):
            part = texts[k : k + CHUNK]
            t0 = time.perf_counter()
            base[k : k + CHUNK] = torch_enc.encode(part)
            t1 = time.perf_counter()
            got[k : k + CHUNK] = onnx.encode(part)
            sums[0] += t1 - t0
            sums[1] += time.perf_counter() - t1
        t_torch, t_onnx = min(t_torch, sums[0]), min(t_onnx, sums[1])
    diff, rho = quality(got, base, random.Random(1))
    load1 = os.getloadavg()[0]
    speed = t_torch / t_onnx
    print(f"{n} responses, best of {rounds}; load average {load0:.2f} -> {load1:.2f} "
          f"on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"ONNX model ready in {setup:.2f} s (export once per cache, then a load: "
          f"{onnx_encoder.model_cache_dir()})")  # fmt: skip
    print(f"PyTorch (sentence-transformers): {t_torch:7.2f} s  ({n / t_torch:6.1f} texts/s)")
    print(f"ONNX Runtime, float32:           {t_onnx:7.2f} s  ({n / t_onnx:6.1f} texts/s)  "
          f"{speed:.2f}x; cosines max |diff| {diff:.1e}, Spearman {rho:.5f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        paths = sorted(onnx_encoder.model_cache_dir().glob("all-MiniLM-L6-v2-*.onnx"))
        q = int8_encoder(paths[-1], Path(tmp) / "int8.onnx") if paths else None
        if q is None:
            print("ONNX Runtime, int8 (dynamic):    not measured: quantize_dynamic needs the "
                  "onnx package, not a dependency")  # fmt: skip
        else:
            order = sorted(range(n), key=lambda k: -len(texts[k]))
            t0 = time.perf_counter()
            qv = np.zeros_like(got)
            for k in range(0, n, 32):
                idx = order[k : k + 32]
                qv[idx] = q.run([texts[m] for m in idx])
            t_q = time.perf_counter() - t0
            qd, qr = quality(qv, base, random.Random(1))
            holds = qd <= COS_TOL and qr >= SPEARMAN
            print(f"ONNX Runtime, int8 (dynamic):    {t_q:7.2f} s  ({n / t_q:6.1f} texts/s)  "
                  f"{t_torch / t_q:.2f}x; cosines max |diff| {qd:.1e}, Spearman {qr:.5f} -> "
                  f"{'holds' if holds else 'does NOT hold the quality targets'}")  # fmt: skip
    ok = speed >= SPEEDUP and diff <= COS_TOL and rho >= SPEARMAN
    print(f"summary: {'OK' if ok else 'OVER'}: ONNX {speed:.2f}x PyTorch (target >= {SPEEDUP:g}x),"
          f" cosines within {diff:.1e} (<= {COS_TOL}), Spearman {rho:.4f} (>= {SPEARMAN}), "
          f"{n} responses, load {load1:.2f}")  # fmt: skip


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--quick"]
    quick = "--quick" in sys.argv[1:]
    main(int(args[0]) if args else (64 if quick else 2000),
         int(args[1]) if len(args) > 1 else (1 if quick else 2))  # fmt: skip
