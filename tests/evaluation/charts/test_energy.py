"""The replication and energy charts draw what the sweeps measured, and say when nothing was."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from core.config import parse_config
from evaluation.charts import CHART_NAMES, chart_function
from evaluation.charts._style import has_data
from evaluation.results import Results
from tests.support.energy_seed import level_figures, seed_energy_sweeps

CFG = parse_config({"models": [{"name": "gemma3-1b", "backend": "ollama", "model": "gemma3:1b",
                                "hardware": "g4dn.xlarge"}]})  # fmt: skip
CHARTS = ("replicas_pareto", "tokens_per_joule", "gpu_load")


def test_the_charts_are_registered() -> None:
    assert set(CHARTS) <= set(CHART_NAMES)


def test_charts_from_replicated_sweeps(engine: Engine, tmp_path: Path) -> None:
    seed_energy_sweeps(engine, CFG.models[0])
    data = Results(engine, CFG, cache=None)
    assert [(s.replicas, len(s.levels)) for s in data.sweeps] == [(1, 4), (2, 4)]
    x2c8 = data.sweeps[1].levels[3]
    latency, util, watts, _ = level_figures(2, 8)
    assert x2c8.energy is not None and x2c8.energy.util_pct == util
    # tokens per joule = tokens / (watts × duration): 16 × 40 / (watts × 2 × latency)
    assert x2c8.energy.tokens_per_joule is not None
    assert abs(x2c8.energy.tokens_per_joule - 16 * 40 / (watts * 2 * latency)) < 1e-9
    for name in CHARTS:
        png = chart_function(name)(data, tmp_path / f"{name}.png")
        assert has_data(png), name


def test_no_sweep_says_so(engine: Engine, tmp_path: Path) -> None:
    data = Results(engine, CFG, cache=None)
    for name in CHARTS:
        assert not has_data(chart_function(name)(data, tmp_path / f"{name}.png")), name
