"""Charts for `slam report`: each is a function (Results, path) -> PNG path; they read the
results service (evaluation.results) and nothing else.

Importing this package does not import matplotlib; drawing does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.lazy import lazy_exports
from core.registry import Registry

if TYPE_CHECKING:
    # Drawing helpers the report uses (they import matplotlib: on first use only).
    from evaluation.charts._style import figure_size, no_data, png_text, setup
    from evaluation.results import Results

__getattr__ = lazy_exports(__name__, __file__)

ChartFn = Callable[["Results", Path], Path]


@dataclass(frozen=True)
class ChartSpec:
    """A chart: where its drawing function lives, what it shows, what fills it when it has no
    data yet, and the tables it reads (its cache key; `windowed`: the probe window too)."""

    module: str
    function: str
    description: str
    fills: str
    reads: tuple[str, ...]
    windowed: bool = False
    # Results datasets whose values are all the chart draws (with the config): when given, the
    # chart's cache key is a digest of those values rather than the table versions, so a
    # chart of score votes is not redrawn after pairwise votes that left its values unchanged.
    content: tuple[str, ...] = ()


_VOTES = ("vote", "rating_pair", "generation", "model")
_PROBES = ("probe", "model")
_GENS = ("generation", "model")
_JUDGES = ("judge_score", "similarity_score", "generation", "model", "experiment")
_ENERGY = ("gpu_energy",)
_COST = _GENS + _PROBES + _ENERGY  # costs add electricity from the measured energy

# Every chart, in the report's order. A chart is a ChartSpec: its drawing function is imported
# only when it is drawn, so importing this package does not import matplotlib.
CHARTS: Registry[ChartSpec] = Registry("chart")


def _chart(
    name: str,
    module: str,
    description: str,
    fills: str,
    reads: tuple[str, ...],
    *,
    function: str = "",
    windowed: bool = False,
    content: tuple[str, ...] = (),
) -> None:
    """Register a chart drawn by `module.function` (the function is named as the chart)."""
    spec = ChartSpec(module, function or name, description, fills, reads, windowed, content)
    CHARTS.add(name, spec, replace=False)


# fmt: off
_chart("bradley_terry", "quality", "Bradley–Terry ratings from pairwise votes, with intervals",
       "pairwise votes (`/slam rate`)", _VOTES + _COST, windowed=True)
_chart("human_scores", "quality", "human 0–10 scores per model (box plots, mean)",
       "score-mode votes ([chat] score_mode = true)", _VOTES,
       content=("human_scores", "reference"))
_chart("quality_vs_cost", "quality", "quality vs $ per 1K tokens, and the decision",
       "votes and `slam probe`", _VOTES + _COST, windowed=True)
_chart("judge_vs_human", "quality", "automated scores vs human judgement",
       "`slam score` and votes", _VOTES + _JUDGES,
       content=("human_means", "method_scores", "reference"))
_chart("metaeval", "quality", "Jaccard/RBO agreement of each method with humans",
       "`slam score` and votes", _VOTES + _JUDGES, content=("agreement", "human_means"))
_chart("latency", "latency", "per-request latency distribution", "`slam probe`", _PROBES,
       windowed=True)
_chart("tpot", "latency", "per-output-token latency distribution", "`slam probe`", _PROBES,
       windowed=True)
_chart("output_tokens", "latency", "output tokens per response", "`slam generate`", _COST,
       windowed=True)
_chart("hourly_latency", "latency", "24-hour latency profile", "hourly `slam probe`", _PROBES,
       windowed=True)
_chart("sweep", "sweep", "throughput vs latency under load, Pareto frontier", "`slam sweep`",
       _PROBES)
_chart("replicas_pareto", "energy", "replicas × load on one GPU: throughput vs latency, Pareto "
       "front", "`slam sweep --replicas`", _PROBES + _ENERGY)
_chart("tokens_per_joule", "energy", "output tokens per joule of GPU energy vs load",
       "`slam sweep` with GPU telemetry", _PROBES + _ENERGY)
_chart("gpu_load", "energy", "GPU utilization and memory vs load",
       "`slam sweep` with GPU telemetry", _PROBES + _ENERGY)
_chart("cost_per_1k", "cost", "$ per 1K output tokens vs the API", "`slam probe`", _COST,
       windowed=True)
_chart("cost_reduction", "cost", "how many times cheaper than the API", "`slam probe`", _COST,
       windowed=True)
_chart("runtime_fit", "cost", "idealized (contention-free) time per output token",
       "`slam probe` and `slam generate`", _COST, windowed=True)
_chart("summary", "card", "summary card: ratings with intervals, quality vs cost, latency",
       "votes and `slam probe`", _VOTES + _COST, function="summary_card", windowed=True)
# fmt: on

# The report's charts; the summary card is the chat answer's one image (`/slam report`).
# These are the built-in charts, fixed at import; chart_spec/chart_function read the registry.
CHART_NAMES: list[str] = [n for n in CHARTS.names() if n != "summary"]
ALL_CHARTS: list[str] = CHARTS.names()
# Charts of human and judge ratings: the report loads their data on a background thread while
# it draws the others (see evaluation.report.build_report).
RATING_CHARTS: frozenset[str] = frozenset(
    n for n, c in CHARTS.items() if c.module in ("quality", "card")
)
CHART_DESCRIPTIONS: dict[str, str] = {k: v.description for k, v in CHARTS.items()}


def chart_spec(name: str) -> ChartSpec:
    """A chart's spec; an unknown name is a user error (core.registry.UnknownEntry, a
    SlamError) listing the valid ones."""
    return CHARTS.get(name)


def chart_function(name: str) -> ChartFn:
    """The drawing function of a chart; unknown names are a user error listing the valid ones."""
    from importlib import import_module

    spec = chart_spec(name)
    fn: ChartFn = getattr(import_module(f"{__name__}.{spec.module}"), spec.function)
    return fn
