"""Performance: latency probes (`slam probe`), load sweeps (`slam sweep`), latency arithmetic
(percentiles, TTFT, TPOT, goodput, Pareto), the GPU energy of a batch (`energy`), when a level is
over-saturated (`saturation`), the SLO search (`slo_search`), the cost model against the paid
API and the idealized runtime fit. A new latency statistic goes in `latency_stats`; a new price
rule in `cost`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from evaluation.perf.cost import ModelCost, api_cost_per_request, format_usd, model_cost
    from evaluation.perf.energy import (
        LevelEnergy,
        electricity_cost_per_1k,
        energy_row,
        level_energy,
    )
    from evaluation.perf.latency_stats import (
        SLO,
        RequestTiming,
        pareto_frontier,
        percentiles,
        summarize,
    )
    from evaluation.perf.probes import run_probes
    from evaluation.perf.runtime_fit import RuntimeFit, fit_runtime
    from evaluation.perf.saturation import SaturationDetector
    from evaluation.perf.slo_search import SloSearch, bisect_slo
    from evaluation.perf.sweep import (
        DEFAULT_SLO,
        SweepLevel,
        consecutive_ports,
        parse_sweep_run_id,
        run_sweep,
        throughput_axis,
    )

__getattr__ = lazy_exports(__name__, __file__)
