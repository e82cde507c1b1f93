"""Every benchmark runs in its quick mode (`--quick`, a few seconds) as a user runs it, in its own
process, so a refactor that breaks a benchmark fails the tests; its last line is the
`summary: …` line and says OK or OVER against the benchmark's targets (a shared machine may be
OVER on a quick run: the figure is not asserted, the benchmark's correctness checks are —
a benchmark exits non-zero when what it measures went wrong, e.g. a vote stored twice)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
SUMMARY = re.compile(r"summary: .*\b(OK|OVER)\b.*")


def test_every_benchmark_is_listed() -> None:
    assert len(BENCHMARKS) >= 12, [p.name for p in BENCHMARKS]
    for path in BENCHMARKS:
        assert "--quick" in path.read_text(encoding="utf-8"), f"{path.name} has no --quick mode"


@pytest.mark.parametrize("path", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_quick_mode_prints_a_verdict(path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SLAM_CACHE_DIR": str(tmp_path / "cache"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
    env.pop("SLAM_DATABASE_URL", None)
    done = subprocess.run([sys.executable, str(path), "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    assert lines, done.stderr[-2000:]
    assert SUMMARY.fullmatch(lines[-1]), lines[-1]
