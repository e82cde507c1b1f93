"""The daily digest and the scheduler's slot arithmetic on a big database.

Seeds the same database as bench_report.py (30 models, 100,000 votes over ~70 days, 30 days
of hourly probes, 10,000 generations), then times `build_digest` for yesterday cold and warm,
with the three default key charts, and `slot_for` / `next_fire_times` for common crons.
The digest runs once a day in a worker thread, so seconds are fine; the target is ≤ 10 s.

    .venv/bin/python benchmarks/bench_ops_digest.py [--keep DIR] [--quick]
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

from bot.ops.cron import cron_trigger, next_fire_times, slot_for  # noqa: E402
from bot.ops.digest import build_digest, render  # noqa: E402
from core.config import parse_config  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.support.perf_seed import seed  # noqa: E402

TARGET_S = 10.0


def bench_slots() -> None:
    now = datetime(2024, 10, 27, 1, 30, tzinfo=UTC)  # inside Berlin's repeated hour
    print("\nslot arithmetic (Europe/Berlin, mean of 200 calls):")
    for cron in ("* * * * *", "0 * * * *", "0 6 * * *", "30 6 * * 1-5", "0 9 1 1 *"):
        trig = cron_trigger(cron, "Europe/Berlin")
        t0 = time.perf_counter()
        for _ in range(200):
            slot_for(trig, now)
        slot_us = (time.perf_counter() - t0) / 200 * 1e6
        t0 = time.perf_counter()
        for _ in range(200):
            next_fire_times(trig, now, 3)
        nxt_us = (time.perf_counter() - t0) / 200 * 1e6
        print(f"  {cron:14} slot_for {slot_us:8.0f} µs   next 3 fire times {nxt_us:8.0f} µs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", type=Path, help="keep the database in this directory")
    ap.add_argument("--quick", action="store_true",
                    help="a few seconds: 6 models, 5,000 votes, 3 days of probes")
    args = ap.parse_args()
    size = (dict(n_models=6, n_votes=5_000, n_generations=600, days=3, probes_per_hour=2,
                 warmup_per_hour=2) if args.quick else
            dict(n_models=30, n_votes=100_000, n_generations=10_000, days=30,
                 probes_per_hour=10, warmup_per_hour=10))  # fmt: skip
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_digest_"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "bench.db"
    for f in work.glob("bench.db*"):
        f.unlink()
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    t0 = time.perf_counter()
    seeded = seed(engine, **size, score_fraction=0.2, local_cpu=2, now=now)
    print(
        f"seeded {len(seeded.models)} models, {seeded.n_votes:,} votes, {seeded.n_probes:,} "
        f"probes in {time.perf_counter() - t0:.1f} s; load {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    cfg = parse_config({"schedule": {"timezone": "Europe/Berlin"}})
    day = (now - timedelta(days=1)).date()
    times = []
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        digest = build_digest(engine, cfg, day)
        times.append(time.perf_counter() - t0)
        print(
            f"build_digest {label}: {times[-1]:.2f} s "
            f"({digest.votes:,} votes that day, {len(digest.leaderboard)} rated models)"
        )
    t0 = time.perf_counter()
    digest = build_digest(
        engine,
        cfg,
        day,
        charts=("bradley_terry", "latency", "cost_per_1k"),
        out_dir=work / "charts",
    )
    with_charts = time.perf_counter() - t0
    print(f"build_digest with 3 charts: {with_charts:.2f} s ({len(digest.charts)} PNGs)")
    reply = render(digest)
    text = reply.plain()
    print(f"message: {len(text):,} characters, {len(reply.fields)} fields")
    bench_slots()
    engine.dispose()
    verdict = "OK" if max(times) <= TARGET_S else "OVER"
    print(
        f"\nsummary: digest cold {times[0]:.2f} s, warm {times[1]:.2f} s, with charts "
        f"{with_charts:.2f} s (target ≤ {TARGET_S:.0f} s: {verdict})"
    )


if __name__ == "__main__":
    main()
