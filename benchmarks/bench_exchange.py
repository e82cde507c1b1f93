"""Data in and out (issue 20): import 20,000 Chatbot Arena battles into a fresh SQLite
database, import them again (all duplicates), then export the votes as Parquet (with the
vote-rule flags) and as Arena battles.

Targets on the 2-core machine: import <= 2 ms per battle, a re-import (nothing new) and each
export <= 0.3 ms per row. Figures and the per-row ratios, then a `summary:` line.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import parse_config
from core.features import feature
from evaluation.exchange import ExportRequest, Pseudonyms, export_data, import_battles
from storage.db import make_engine
from storage.migrate import upgrade

IMPORT_MS, ROW_MS = 2.0, 0.3


def battles(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    strength = {f"m{k}": rng.gauss(0, 1) for k in range(8)}
    models = sorted(strength)
    out = []
    for i in range(n):
        a, b = rng.sample(models, 2)
        q = f"q{i % 1000}"
        p = 1 / (1 + math.exp(strength[b] - strength[a]))
        out.append({
            "question_id": q, "model_a": a, "model_b": b,
            "winner": rng.choice(["tie", "tie (bothbad)"]) if rng.random() < 0.1
            else "model_a" if rng.random() < p else "model_b",
            "judge": f"arena_user_{i % 400}", "anony": True, "tstamp": 1.7e9 + i,
            "conversation_a": [{"role": "user", "content": f"question {q}"},
                               {"role": "assistant", "content": f"{a} answers {q}"}],
            "conversation_b": [{"role": "user", "content": f"question {q}"},
                               {"role": "assistant", "content": f"{b} answers {q}"}],
        })  # fmt: skip
    return out


def main(n: int = 20_000) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-exchange-") as tmp:
        run(Path(tmp), n)


def run(tmp: Path, n: int) -> None:
    engine = make_engine(f"sqlite:///{tmp / 'bench.db'}")
    upgrade(engine)
    cfg = parse_config({"models": [{"name": "m0", "backend": "ollama", "model": "m0:1b",
                                    "reference": True}]})  # fmt: skip
    feat = feature(cfg)
    path = tmp / "battles.jsonl"
    path.write_text("".join(json.dumps(b) + "\n" for b in battles(n)))
    size_mb = path.stat().st_size / 1e6
    names = Pseudonyms(b"bench")
    figures: dict[str, float] = {}
    t0 = time.perf_counter()
    res = import_battles(engine, cfg, feat, path)
    figures["import"] = time.perf_counter() - t0
    assert res.stored == n, res.summary()
    t0 = time.perf_counter()
    again = import_battles(engine, cfg, feat, path)
    figures["re-import"] = time.perf_counter() - t0
    assert again.duplicates == n and again.stored == 0
    for fmt in ("parquet", "arena"):
        t0 = time.perf_counter()
        exp = export_data(engine, cfg, ExportRequest("votes", fmt), names)
        figures[f"export {fmt}"] = time.perf_counter() - t0
        assert (len(exp.battles or []) if fmt == "arena" else len(exp.rows)) == n
    print(f"battles={n:,} file={size_mb:.1f} MB answers={res.generations:,}")
    verdicts = []
    for what, seconds in figures.items():
        per = seconds / n * 1000
        target = IMPORT_MS if what == "import" else ROW_MS
        ok = per <= target
        verdicts.append(ok)
        print(f"{what}: {seconds:.2f} s = {per:.3f} ms per row (target <= {target} ms) -> "
              f"{'OK' if ok else 'SLOW'}")  # fmt: skip
    per_import = figures["import"] / n * 1000
    print(f"summary: import {per_import:.2f} ms/battle ({per_import / IMPORT_MS:.2f} of target), "
          f"exports {max(figures['export parquet'], figures['export arena']) / n * 1000:.3f} "
          f"ms/row; {'OK' if all(verdicts) else 'OVER'}")  # fmt: skip
    engine.dispose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--battles", type=int, default=20_000, help="battles to import and export")
    ap.add_argument("--quick", action="store_true", help="1,000 battles (seconds)")
    args = ap.parse_args()
    main(1_000 if args.quick else args.battles)
