"""The ONNX encoder benchmark runs in quick mode and ends with its summary line in the agreed
form; the quality figures it reports meet the targets (the speed figure is the benchmark's,
never a test's: the machine is shared)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_summary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLAM_CACHE_DIR", str(tmp_path))  # its own export, from scratch
    path = ROOT / "benchmarks" / "bench_similarity_encoder.py"
    spec = importlib.util.spec_from_file_location("bench_similarity_encoder", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_similarity_encoder"] = bench
    spec.loader.exec_module(bench)
    from evaluation.auto import onnx_encoder

    monkeypatch.setattr(onnx_encoder, "_RUNNERS", {})
    bench.main(24, 1)
    out = capsys.readouterr().out.strip().splitlines()
    m = re.fullmatch(r"summary: (OK|OVER): ONNX ([\d.]+)x PyTorch \(target >= 2x\), cosines "
                     r"within ([\d.e+-]+) \(<= 0.02\), Spearman ([\d.]+) \(>= 0.99\), "
                     r"24 responses, load [\d.]+", out[-1])  # fmt: skip
    assert m, out[-1]
    assert float(m.group(2)) > 0
    assert float(m.group(3)) <= 1e-5 and float(m.group(4)) >= 0.99
    assert list(tmp_path.glob("onnx/all-MiniLM-L6-v2-*.onnx"))  # exported into the cache
