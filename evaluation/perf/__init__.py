"""Performance: latency probes (`slam probe`), load sweeps (`slam sweep`), latency arithmetic
(percentiles, TTFT, TPOT, goodput, Pareto), the cost model against the paid API and the
idealized runtime fit. A new latency statistic goes in `latency_stats`; a new price rule in
`cost`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from evaluation.perf.cost import ModelCost, api_cost_per_request, format_usd, model_cost
    from evaluation.perf.latency_stats import (
        SLO,
        RequestTiming,
        pareto_frontier,
        percentiles,
        summarize,
    )
    from evaluation.perf.probes import run_probes
    from evaluation.perf.runtime_fit import RuntimeFit, fit_runtime
    from evaluation.perf.sweep import (
        DEFAULT_SLO,
        SweepLevel,
        parse_sweep_run_id,
        run_sweep,
        throughput_axis,
    )

# The wing's public surface: name -> the module that defines it (imported on first use).
EXPORTS = {
    "DEFAULT_SLO": "sweep",
    "ModelCost": "cost",
    "RequestTiming": "latency_stats",
    "RuntimeFit": "runtime_fit",
    "SLO": "latency_stats",
    "SweepLevel": "sweep",
    "api_cost_per_request": "cost",
    "fit_runtime": "runtime_fit",
    "format_usd": "cost",
    "model_cost": "cost",
    "pareto_frontier": "latency_stats",
    "parse_sweep_run_id": "sweep",
    "percentiles": "latency_stats",
    "run_probes": "probes",
    "run_sweep": "sweep",
    "summarize": "latency_stats",
    "throughput_axis": "sweep",
}
__getattr__ = lazy_exports(__name__, EXPORTS)
__all__ = [
    "DEFAULT_SLO",
    "SLO",
    "ModelCost",
    "RequestTiming",
    "RuntimeFit",
    "SweepLevel",
    "api_cost_per_request",
    "fit_runtime",
    "format_usd",
    "model_cost",
    "pareto_frontier",
    "parse_sweep_run_id",
    "percentiles",
    "run_probes",
    "run_sweep",
    "summarize",
    "throughput_axis",
]
