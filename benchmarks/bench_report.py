"""`slam report` on a big database: 100,000 votes, 30 models, 30 days of hourly probes
(10 warm-up + 10 measured requests per model and hour) and 10,000 generations.

Target: all charts + HTML in <= 5 s on this machine. Prints the seeding time, per-chart and
per-dataset times for a cold run (first in the process: imports matplotlib and scipy) and
warm ones (--warm-runs, best counts), and the wall time of the `slam report` command as a user
would run it. Load average is printed too: on the shared 2-CPU host another busy process
makes every figure slower (the report uses a second thread for the ratings).

    .venv/bin/python benchmarks/bench_report.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import Engine  # noqa: E402

from core.config import SlamConfig  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.perf_seed import seed  # noqa: E402

TARGET_S = 5.0


def _report(engine: Engine, out: Path, label: str) -> float:
    from evaluation.report import build_report

    t0 = time.perf_counter()
    res = build_report(engine, SlamConfig(), out)
    total = time.perf_counter() - t0
    load = os.getloadavg()[0]
    print(f"\n{label}: build_report total {total:.2f} s (load average {load:.2f})")
    charts = {k[6:]: v for k, v in res.timings.items() if k.startswith("chart:")}
    data = {k[5:]: v for k, v in res.timings.items() if k.startswith("data:") and "CPU" not in k}
    print(
        "  per chart, report order (includes loading the data it is first to need; the "
        "rating charts* are drawn last, while Bradley–Terry loads on a background thread):"
    )
    from evaluation.charts import RATING_CHARTS

    for name, secs in charts.items():
        star = "*" if name in RATING_CHARTS else " "
        print(f"    {name + star:17} {secs:6.3f} s")
    print(f"    {'sum of charts':17} {sum(charts.values()):6.3f} s")
    print("  datasets (inside the times above; bt† runs on the background thread):")
    for name, secs in data.items():
        dagger = "†" if name == "bt" else " "
        print(f"    {name + dagger:17} {secs:6.3f} s")
    for k in ("leaderboard", "html+md"):
        print(f"  {k:19} {res.timings[k]:6.3f} s")
    main_cpu = res.timings.get("main thread CPU", 0.0)
    bg_cpu = res.timings.get("data:prefetch thread CPU", 0.0)
    print(
        f"  CPU time: main thread {main_cpu:.2f} s, ratings thread {bg_cpu:.2f} s "
        "(on an otherwise idle host the wall time is about the larger plus GIL waits)"
    )
    votes = data.get("bt", 0.0) + data.get("human_scores", 0.0)
    print(f"  human votes (Bradley–Terry load + fit, human scores): {votes:.2f} s")
    print(f"  recommendation: {res.recommendation[:110]}…")
    return total


def _seed(engine: Engine, db: Path) -> None:
    t0 = time.perf_counter()
    seeded = seed(
        engine, n_models=30, n_votes=100_000, n_generations=10_000, days=30,
        probes_per_hour=10, warmup_per_hour=10, score_fraction=0.2, local_cpu=2,
    )  # fmt: skip
    print(
        f"seeded {len(seeded.models)} models, {seeded.n_votes:,} votes, {seeded.n_probes:,} "
        f"probes, {seeded.n_generations:,} generations in {time.perf_counter() - t0:.1f} s "
        f"({db.stat().st_size / 1e6:.0f} MB)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", type=Path, help="keep the database and report in this directory")
    ap.add_argument("--reuse", action="store_true", help="reuse the database in --keep if present")
    ap.add_argument(
        "--warm-runs", type=int, default=2, help="warm reports to time (the best one counts)"
    )
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_report_"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "bench.db"
    url = f"sqlite:///{db}"
    if args.reuse and db.exists():
        engine = make_engine(url)
        print(f"reusing {db} ({db.stat().st_size / 1e6:.0f} MB)")
    else:
        for f in work.glob("bench.db*"):
            f.unlink()
        engine = make_engine(url)
        upgrade(engine)
        _seed(engine, db)
    print(f"load average before the runs: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    cold = _report(engine, work / "cold", "cold (first report in this process)")
    warm = min(
        _report(engine, work / "warm", f"warm run {i + 1} (same process)")
        for i in range(args.warm_runs)
    )
    engine.dispose()
    toml = work / "slam.toml"
    toml.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "slam.cli", "report", "-c", str(toml), "--out", str(work / "cli")],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    cli = time.perf_counter() - t0
    print(f"\n`slam report` command, wall time including interpreter start: {cli:.2f} s")
    print(f"load average after the runs: {os.getloadavg()[0]:.2f}")
    verdict = "OK" if min(cold, warm) <= TARGET_S else "OVER"
    print(
        f"\nsummary: cold {cold:.2f} s, best warm {warm:.2f} s, CLI {cli:.2f} s "
        f"(target ≤ {TARGET_S:.0f} s: {verdict})"
    )


if __name__ == "__main__":
    main()
