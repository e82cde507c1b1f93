"""Cost model: self-hosted $ per 1K output tokens vs the paid API, per request and per month.

Self-hosted: an instance costs a fixed $/hour, so its price per token is
    $/hour ÷ (measured output tokens/hour × utilization)
(utilization < 1 because a real host is not saturated around the clock). The API charges per
token from the pricing table. Prices are configuration ([pricing] in slam.toml, dated by
`prices_as_of`), never fetched.

Electricity (optional, for on-premises hardware whose hourly price does not include it):
`[pricing] electricity_per_kwh` and `pue` turn the measured GPU joules per output token into
$ per 1K tokens (evaluation.perf.energy), added to the hardware's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.config import PricingConfig

DAYS_PER_MONTH = 30
HOURS_PER_MONTH = 24 * DAYS_PER_MONTH


def api_cost_per_request(
    prompt_tokens: float, output_tokens: float, pricing: PricingConfig
) -> float:
    """$ for one API request with these token counts."""
    return (
        prompt_tokens / 1000 * pricing.api_input_per_1k
        + output_tokens / 1000 * pricing.api_output_per_1k
    )


def self_hosted_cost_per_1k(
    hourly_usd: float, tokens_per_s: float | None, utilization: float
) -> float | None:
    """$ per 1K output tokens on a dedicated host; None when throughput is unknown.

    A free host (local CPU, $0/hour) costs 0 whatever its speed, so no division happens then.
    """
    if hourly_usd == 0:
        return 0.0
    if not tokens_per_s or tokens_per_s <= 0 or not math.isfinite(tokens_per_s):
        return None
    tokens_per_hour = tokens_per_s * 3600 * utilization
    return hourly_usd / tokens_per_hour * 1000


def monthly_cost(cost_per_request: float, requests_per_day: float) -> float:
    """$ per 30-day month at a steady request rate."""
    return cost_per_request * requests_per_day * DAYS_PER_MONTH


def instances_needed(
    requests_per_day: float,
    output_tokens_per_request: float,
    tokens_per_s: float,
    utilization: float,
) -> int:
    """Dedicated hosts needed to serve the load at the given utilization (at least one)."""
    capacity_per_day = tokens_per_s * 86400 * utilization
    if capacity_per_day <= 0:
        return 1
    return max(1, math.ceil(requests_per_day * output_tokens_per_request / capacity_per_day))


def reduction_factor(api_cost: float | None, self_cost: float | None) -> float | None:
    """How many times cheaper than the API (inf when self-hosting is free; None if unknown)."""
    if api_cost is None or self_cost is None:
        return None
    if self_cost == 0:
        return math.inf
    return api_cost / self_cost


@dataclass(frozen=True)
class ModelCost:
    """One model's cost figures at the configured prices and a request size and load."""

    model: str
    hardware: str
    is_api: bool
    hourly_usd: float | None
    tokens_per_s: float | None  # measured output tokens/s that the price is based on
    throughput_source: str  # "sweep best (x2, c=4)", "probes (single stream)", "pricing table"
    cost_per_1k_output: float | None
    cost_per_request: float | None
    monthly_usd: float | None  # usage-based: cost per request × requests/day × 30
    monthly_dedicated_usd: float | None  # instances needed × $/hour × 720 h (the real floor)
    reduction: float | None  # API cost per request ÷ this model's
    j_per_1k_output: float | None = None  # measured GPU energy per 1K output tokens
    electricity_per_1k: float | None = None  # $ of it at [pricing] electricity_per_kwh × PUE

    @property
    def free(self) -> bool:
        return self.hourly_usd == 0 and not self.is_api and not self.electricity_per_1k

    def label(self) -> str:
        """Human-readable $ per 1K output tokens."""
        if self.free:
            return "free (local CPU)" if self.hardware == "local-cpu" else f"free ({self.hardware})"
        if self.cost_per_1k_output is None:
            return "unknown (no throughput measured)"
        return f"{format_usd(self.cost_per_1k_output)} / 1K tokens"

    def reduction_label(self) -> str:
        if self.reduction is None:
            return "n/a"
        if math.isinf(self.reduction):
            return "free"
        return f"{self.reduction:,.1f}×"


def model_cost(
    *,
    model: str,
    hardware: str,
    pricing: PricingConfig,
    tokens_per_s: float | None,
    throughput_source: str,
    prompt_tokens: float,
    output_tokens: float,
    requests_per_day: float,
    j_per_output_token: float | None = None,
    electricity_per_1k: float | None = None,
) -> ModelCost:
    """All cost figures for one model at an average request of (prompt, output) tokens
    (`electricity_per_1k`: $ of electricity per 1K output tokens, added to the hardware's)."""
    api_request = api_cost_per_request(prompt_tokens, output_tokens, pricing)
    if hardware == "api":
        per_1k_out = api_request / output_tokens * 1000 if output_tokens > 0 else None
        return ModelCost(
            model=model,
            hardware=hardware,
            is_api=True,
            hourly_usd=None,
            tokens_per_s=tokens_per_s,
            throughput_source="pricing table",
            cost_per_1k_output=per_1k_out,
            cost_per_request=api_request,
            monthly_usd=monthly_cost(api_request, requests_per_day),
            monthly_dedicated_usd=None,
            reduction=1.0,
        )
    hourly = pricing.instances.get(hardware)
    if hourly is None:
        per_1k = None
    else:
        per_1k = self_hosted_cost_per_1k(hourly, tokens_per_s, pricing.utilization)
    if per_1k is not None and electricity_per_1k is not None:
        per_1k += electricity_per_1k
    per_request = per_1k * output_tokens / 1000 if per_1k is not None else None
    dedicated = None
    if hourly is not None and tokens_per_s:
        n = instances_needed(requests_per_day, output_tokens, tokens_per_s, pricing.utilization)
        dedicated = n * hourly * HOURS_PER_MONTH
    return ModelCost(
        model=model,
        hardware=hardware,
        is_api=False,
        hourly_usd=hourly,
        tokens_per_s=tokens_per_s,
        throughput_source=throughput_source,
        cost_per_1k_output=per_1k,
        cost_per_request=per_request,
        monthly_usd=monthly_cost(per_request, requests_per_day)
        if per_request is not None
        else None,
        monthly_dedicated_usd=dedicated,
        reduction=reduction_factor(api_request, per_request),
        j_per_1k_output=j_per_output_token * 1000 if j_per_output_token is not None else None,
        electricity_per_1k=electricity_per_1k,
    )


def format_usd(value: float | None) -> str:
    """$1,234.56 for amounts of a dollar or more, 3 significant digits below."""
    if value is None:
        return "n/a"
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.3g}"
