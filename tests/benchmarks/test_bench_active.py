"""The simulation benchmark runs (quick mode), prints its summary line in the agreed form and
draws its chart; informative pairs + rater quality need fewer votes than round-robin."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_summary_and_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ROOT / "benchmarks" / "bench_active_rating.py"
    spec = importlib.util.spec_from_file_location("bench_active_rating", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_active_rating"] = bench
    spec.loader.exec_module(bench)
    chart = tmp_path / "active.png"
    assert bench.main(["--quick", "--chart", str(chart)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    m = re.fullmatch(r"summary: active ([\d,]+) votes vs round-robin ([\d,]+|inf) "
                     r"\(ratio ([\d.]+)\), error ([\d.]+)% vs ([\d.]+)%; "
                     r"target ratio ≤ 0.5, error ≤ 5%: (OK|OVER)", out[-1])  # fmt: skip
    assert m, out[-1]
    active, rr = (float(g.replace(",", "")) for g in m.group(1, 2))
    assert active < rr and float(m.group(3)) < 1
    assert float(m.group(4)) <= float(m.group(5))
    flagged = re.search(r"raters flagged: (\d+)% of clickers, ([\d.]+)% of careful", "\n".join(out))
    assert flagged and int(flagged.group(1)) >= 50 and float(flagged.group(2)) < 10
    assert chart.read_bytes().startswith(b"\x89PNG") and chart.stat().st_size > 10_000
