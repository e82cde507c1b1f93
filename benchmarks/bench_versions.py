"""What model versions cost the results service: the ratings, the decision and the version
datasets on a database of 100,000 votes over 10 models (SQLite), first with every model at one
version (the ratings read exactly what they read before versions existed), then with one model
re-pulled halfway (half of its answers a second version: the stale pairs are dropped from the
ratings, the version history counts each version's votes and the drift fit runs).

Figures: cold ratings + decision with one version per model; the same with two versions of one
model; the version datasets alone (history, warm-up, drift); the alert check (every condition).
Target: two versions cost at most 1.5x the ratings of one, and the alert check stays under
3 s. The machine is a shared 2-core VM: the load average is printed beside every figure.

    .venv/bin/python benchmarks/bench_versions.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from core.config import SlamConfig  # noqa: E402
from storage.db import make_engine, session_scope  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.repo import ensure_model_version  # noqa: E402
from tests.support.perf_seed import seed  # noqa: E402

TARGET_RATIO, TARGET_CHECK_S = 1.5, 3.0


def timed(label: str, fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    took = time.perf_counter() - t0
    print(f"  {label:44} {took:6.2f} s (load {os.getloadavg()[0]:.2f})")
    return took


def main(n_votes: int = 100_000, n_models: int = 10) -> None:
    from bot.ops.alerts import check
    from evaluation.results import Results

    cfg = SlamConfig()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        t0 = time.perf_counter()
        seeded = seed(engine, n_models=n_models, n_votes=n_votes, n_generations=2000, days=2,
                      sweeps=False, judge=False)  # fmt: skip
        print(f"seeded in {time.perf_counter() - t0:.1f} s")

        def ratings() -> None:
            res = Results(engine, cfg, cache=None)  # cold: nothing kept from a previous run
            assert res.ratings is not None
            _ = res.decision, res.version_history, res.drift

        one = min(timed("one version per model: ratings + decision", ratings) for _ in range(2))
        model = seeded.models[1]  # a candidate, re-pulled halfway
        with session_scope(engine) as s:
            mid = s.connection().execute(text("SELECT id FROM model WHERE name = :n"),
                                         {"n": model}).scalar_one()  # fmt: skip
            v1 = ensure_model_version(s, mid, "1" * 64, "v1", "{}")
            v2 = ensure_model_version(s, mid, "2" * 64, "v2", "{}")
            s.connection().execute(text("UPDATE model_version SET first_seen = :t WHERE id = :v"),
                                   {"t": datetime.now(UTC) - timedelta(days=1), "v": v1})
            s.connection().execute(
                text("UPDATE generation SET model_version_id = CASE WHEN prompt_id % 2 = 0 THEN :a "
                     "ELSE :b END WHERE model_id = :m"), {"a": v1, "b": v2, "m": mid})
        two = min(timed("two versions of one model: ratings + decision", ratings)
                  for _ in range(2))  # fmt: skip
        res = Results(engine, cfg, cache=None)
        n_stale = len(res.stale_pairs)
        history = res.version_history
        drift = res.drift
        counts = [(v.label, v.votes) for vs in history.values() for v in vs]
        print(f"  stale pairs {n_stale}, versions {counts}")
        print(f"  drift: {[d.line() for d in drift]}")
        checked = timed("the alert check (every condition)", lambda: check(engine, cfg))
    ratio = two / one
    ok = ratio <= TARGET_RATIO and checked <= TARGET_CHECK_S
    print(f"summary: two versions {two:.2f} s vs one {one:.2f} s = {ratio:.2f}x "
          f"(target ≤ {TARGET_RATIO}x), alert check {checked:.2f} s (target ≤ "
          f"{TARGET_CHECK_S:g} s): {'OK' if ok else 'OVER'}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5,000 votes over 4 models (seconds)")
    args = ap.parse_args()
    main(5_000, 4) if args.quick else main()
