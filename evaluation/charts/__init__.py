"""Charts for `slam report`: each is a function (Results, path) -> PNG path; they read the
results service (evaluation.results) and nothing else.

Importing this package does not import matplotlib; drawing does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evaluation.results import Results

ChartFn = Callable[["Results", Path], Path]

# name -> (module, function, one-line description). Order is the report's order.
_CHARTS: dict[str, tuple[str, str, str]] = {
    "bradley_terry": (
        "quality",
        "bradley_terry",
        "Bradley–Terry ratings from pairwise votes, 95% CI",
    ),
    "human_scores": ("quality", "human_scores", "human 0–10 scores per model (box plots, mean)"),
    "quality_vs_cost": (
        "quality",
        "quality_vs_cost",
        "quality vs $ per 1K tokens, cheapest good-enough pick",
    ),
    "judge_vs_human": ("quality", "judge_vs_human", "automated scores vs human judgement"),
    "metaeval": ("quality", "metaeval", "Jaccard/RBO agreement of each method with humans"),
    "latency": ("latency", "latency", "per-request latency distribution"),
    "tpot": ("latency", "tpot", "per-output-token latency distribution"),
    "output_tokens": ("latency", "output_tokens", "output tokens per response"),
    "hourly_latency": ("latency", "hourly_latency", "24-hour latency profile"),
    "sweep": ("sweep", "sweep", "throughput vs latency under load, Pareto frontier"),
    "cost_per_1k": ("cost", "cost_per_1k", "$ per 1K output tokens vs the API"),
    "cost_reduction": ("cost", "cost_reduction", "how many times cheaper than the API"),
    "runtime_fit": ("cost", "runtime_fit", "idealized (contention-free) time per output token"),
}

CHART_NAMES: list[str] = list(_CHARTS)
# Charts of human and judge ratings: the report loads their data on a background thread while
# it draws the others (see evaluation.report.build_report).
RATING_CHARTS: frozenset[str] = frozenset(n for n, c in _CHARTS.items() if c[0] == "quality")
CHART_DESCRIPTIONS: dict[str, str] = {k: v[2] for k, v in _CHARTS.items()}


def chart_function(name: str) -> ChartFn:
    """The drawing function of a chart; unknown names are a user error listing the valid ones."""
    from importlib import import_module

    from core.errors import SlamError

    if name not in _CHARTS:
        raise SlamError(f"unknown chart '{name}'; expected one of: {', '.join(CHART_NAMES)}")
    module, attr, _ = _CHARTS[name]
    fn: ChartFn = getattr(import_module(f"{__name__}.{module}"), attr)
    return fn
