"""Cost model against hand-computed cases, including the reference study's worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.config import PricingConfig
from evaluation.perf.cost import (
    api_cost_per_request,
    format_usd,
    instances_needed,
    model_cost,
    monthly_cost,
    reduction_factor,
    self_hosted_cost_per_1k,
)
from evaluation.perf.runtime_fit import fit_runtime

GPT4 = PricingConfig()  # the study's figures: $0.03 per 1K input, $0.06 per 1K output


def test_study_worked_example_gpt4_request_and_month() -> None:
    per_request = api_cost_per_request(1000, 1000, GPT4)
    assert per_request == pytest.approx(0.09)
    assert monthly_cost(per_request, 1000) == pytest.approx(2700.0)


def test_self_hosted_price_per_1k_tokens() -> None:
    # g4dn.xlarge $0.526/h at 50 tokens/s and 80% utilization: 144,000 tokens/hour.
    assert self_hosted_cost_per_1k(0.526, 50.0, 0.8) == pytest.approx(0.526 / 144_000 * 1000)
    assert self_hosted_cost_per_1k(0.526, 50.0, 1.0) == pytest.approx(0.526 / 180_000 * 1000)
    # Unknown or zero throughput is unknown cost, never a division error.
    assert self_hosted_cost_per_1k(0.526, None, 0.8) is None
    assert self_hosted_cost_per_1k(0.526, 0.0, 0.8) is None
    # A free host is free however slow it is (even with no measurement).
    assert self_hosted_cost_per_1k(0.0, None, 0.8) == 0.0
    assert self_hosted_cost_per_1k(0.0, 0.0, 0.8) == 0.0


def test_reduction_and_instances() -> None:
    assert reduction_factor(0.09, 0.003) == pytest.approx(30.0)
    assert math.isinf(reduction_factor(0.09, 0.0) or 0)
    assert reduction_factor(None, 0.01) is None
    # 1,000 requests × 200 tokens/day vs 10 tok/s × 86,400 s × 0.8 = 691,200 tokens/day.
    assert instances_needed(1000, 200, 10.0, 0.8) == 1
    assert instances_needed(10_000, 200, 10.0, 0.8) == 3  # 2,000,000 / 691,200 = 2.9 -> 3


def test_model_cost_self_hosted_hand_computed() -> None:
    c = model_cost(
        model="llama3",
        hardware="g4dn.xlarge",
        pricing=GPT4,
        tokens_per_s=50.0,
        throughput_source="probes",
        prompt_tokens=1000,
        output_tokens=1000,
        requests_per_day=1000,
    )
    per_1k = 0.526 / 144_000 * 1000  # $0.003653 per 1K output tokens
    assert c.cost_per_1k_output == pytest.approx(per_1k)
    assert c.cost_per_request == pytest.approx(per_1k)  # 1K output tokens per request
    assert c.monthly_usd == pytest.approx(per_1k * 1000 * 30)
    assert c.reduction == pytest.approx(0.09 / per_1k)
    # 1,000 × 1,000 tokens/day fit in one host (50 × 86,400 × 0.8 = 3.46M): $0.526 × 720 h.
    assert c.monthly_dedicated_usd == pytest.approx(0.526 * 720)
    assert c.label() == "$0.00365 / 1K tokens"
    assert c.reduction_label() == "24.6×"


def test_model_cost_api_and_free_local_cpu() -> None:
    api = model_cost(
        model="gpt-4", hardware="api", pricing=GPT4, tokens_per_s=None,
        throughput_source="", prompt_tokens=1000, output_tokens=1000, requests_per_day=1000,
    )  # fmt: skip
    assert api.is_api and api.cost_per_request == pytest.approx(0.09)
    assert api.cost_per_1k_output == pytest.approx(0.09)  # includes the input-token price
    assert api.monthly_usd == pytest.approx(2700.0)
    local = model_cost(
        model="gemma", hardware="local-cpu", pricing=GPT4, tokens_per_s=None,
        throughput_source="not measured", prompt_tokens=1000, output_tokens=1000,
        requests_per_day=1000,
    )  # fmt: skip
    assert local.free and local.cost_per_1k_output == 0.0
    assert local.label() == "free (local CPU)"
    assert local.reduction_label() == "free"
    assert local.monthly_usd == 0.0


def test_unpriced_or_unmeasured_model_is_unknown_not_an_error() -> None:
    c = model_cost(
        model="x", hardware="g4dn.xlarge", pricing=GPT4, tokens_per_s=None,
        throughput_source="not measured", prompt_tokens=100, output_tokens=100,
        requests_per_day=10,
    )  # fmt: skip
    assert c.cost_per_1k_output is None and c.reduction is None
    assert c.label() == "unknown (no throughput measured)"
    assert c.reduction_label() == "n/a"


def test_format_usd() -> None:
    assert format_usd(2700) == "$2,700.00"
    assert format_usd(0.0036529) == "$0.00365"
    assert format_usd(0) == "$0"
    assert format_usd(None) == "n/a"


def test_runtime_fit_recovers_coefficients_despite_outliers() -> None:
    rng = np.random.default_rng(1)
    n = 400
    p = rng.integers(50, 500, n).astype(float)
    o = rng.integers(10, 300, n).astype(float)
    y = 0.3 + 0.0005 * p + 0.02 * o + rng.normal(0, 0.01, n)
    y[:20] *= 5  # contention spikes: a least-squares fit would be dragged up
    fit = fit_runtime("m", p, o, y)
    assert fit is not None
    assert fit.a_s == pytest.approx(0.3, abs=0.05)
    assert fit.b_s_per_prompt_token == pytest.approx(0.0005, abs=0.0001)
    assert fit.c_s_per_output_token == pytest.approx(0.02, rel=0.03)
    assert fit.n == n
    # Contention-free price: $0.526/h × 0.02 s/token → $0.00292 per 1K output tokens.
    assert fit.cost_per_1k_output(0.526) == pytest.approx(0.526 / 3600 * 20, rel=0.03)
    assert fit.cost_per_1k_output(None) is None
    assert fit.predict(100, 100) == pytest.approx(0.3 + 0.05 + 2.0, rel=0.05)


def test_runtime_fit_clean_data_is_a_good_fit_and_constant_prompt_is_noted() -> None:
    o = np.arange(10, 110, dtype=float)
    p = np.full_like(o, 180.0)
    fit = fit_runtime("m", p, o, 0.5 + 0.03 * o)
    assert fit is not None and fit.r2 > 0.999 and fit.quality == "good"
    assert fit.b_s_per_prompt_token == 0.0 and "prompt length never varied" in fit.note
    assert fit.c_s_per_output_token == pytest.approx(0.03, rel=1e-3)
    assert fit_runtime("m", p[:2], o[:2], o[:2]) is None  # too few points
