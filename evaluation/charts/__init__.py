"""Charts for `slam report`: each is a function (Results, path) -> PNG path; they read the
results service (evaluation.results.service) and nothing else.

Importing this package does not import matplotlib; drawing does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evaluation.results.service import Results

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
_COST = _GENS + _PROBES

# The report's order.
_CHARTS: dict[str, ChartSpec] = {
    "bradley_terry": ChartSpec(
        "quality", "bradley_terry", "Bradley–Terry ratings from pairwise votes, with intervals",
        "pairwise votes (`/slam rate`)", _VOTES + _COST, windowed=True,
    ),
    "human_scores": ChartSpec(
        "quality", "human_scores", "human 0–10 scores per model (box plots, mean)",
        "score-mode votes ([chat] score_mode = true)", _VOTES,
        content=("human_scores", "reference"),
    ),
    "quality_vs_cost": ChartSpec(
        "quality", "quality_vs_cost", "quality vs $ per 1K tokens, and the decision",
        "votes and `slam probe`", _VOTES + _COST, windowed=True,
    ),
    "judge_vs_human": ChartSpec(
        "quality", "judge_vs_human", "automated scores vs human judgement",
        "`slam score` and votes", _VOTES + _JUDGES,
        content=("human_means", "method_scores", "reference"),
    ),
    "metaeval": ChartSpec(
        "quality", "metaeval", "Jaccard/RBO agreement of each method with humans",
        "`slam score` and votes", _VOTES + _JUDGES,
        content=("agreement", "human_means"),
    ),
    "latency": ChartSpec(
        "latency", "latency", "per-request latency distribution", "`slam probe`", _PROBES,
        windowed=True,
    ),
    "tpot": ChartSpec(
        "latency", "tpot", "per-output-token latency distribution", "`slam probe`", _PROBES,
        windowed=True,
    ),
    "output_tokens": ChartSpec(
        "latency", "output_tokens", "output tokens per response", "`slam generate`",
        _COST, windowed=True,
    ),
    "hourly_latency": ChartSpec(
        "latency", "hourly_latency", "24-hour latency profile", "hourly `slam probe`", _PROBES,
        windowed=True,
    ),
    "sweep": ChartSpec(
        "sweep", "sweep", "throughput vs latency under load, Pareto frontier", "`slam sweep`",
        _PROBES,
    ),
    "cost_per_1k": ChartSpec(
        "cost", "cost_per_1k", "$ per 1K output tokens vs the API", "`slam probe`", _COST,
        windowed=True,
    ),
    "cost_reduction": ChartSpec(
        "cost", "cost_reduction", "how many times cheaper than the API", "`slam probe`",
        _COST, windowed=True,
    ),
    "runtime_fit": ChartSpec(
        "cost", "runtime_fit", "idealized (contention-free) time per output token",
        "`slam probe` and `slam generate`", _COST, windowed=True,
    ),
    "summary": ChartSpec(
        "card", "summary_card", "summary card: ratings with intervals, quality vs cost, latency",
        "votes and `slam probe`", _VOTES + _COST, windowed=True,
    ),
}  # fmt: skip

# The report's charts; the summary card is the chat answer's one image (`/slam report`).
CHART_NAMES: list[str] = [n for n in _CHARTS if n != "summary"]
ALL_CHARTS: list[str] = list(_CHARTS)
# Charts of human and judge ratings: the report loads their data on a background thread while
# it draws the others (see evaluation.report.build_report).
RATING_CHARTS: frozenset[str] = frozenset(
    n for n, c in _CHARTS.items() if c.module in ("quality", "card")
)
CHART_DESCRIPTIONS: dict[str, str] = {k: v.description for k, v in _CHARTS.items()}


def chart_spec(name: str) -> ChartSpec:
    return _CHARTS[name]


def chart_function(name: str) -> ChartFn:
    """The drawing function of a chart; unknown names are a user error listing the valid ones."""
    from importlib import import_module

    from core.errors import SlamError

    if name not in _CHARTS:
        raise SlamError(f"unknown chart '{name}'; expected one of: {', '.join(ALL_CHARTS)}")
    spec = _CHARTS[name]
    fn: ChartFn = getattr(import_module(f"{__name__}.{spec.module}"), spec.function)
    return fn
