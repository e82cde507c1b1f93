"""Latency arithmetic on constructed timings: TPOT/TTFT, percentiles, goodput, Pareto, summaries."""

from __future__ import annotations

import math

import pytest

from evaluation.perf.latency_stats import (
    SLO,
    RequestTiming,
    goodput,
    pareto_frontier,
    percentile,
    percentiles,
    summarize,
    tpot,
    wall_time,
)
from evaluation.perf.probes import local_hour
from evaluation.perf.sweep import parse_sweep_run_id, sweep_run_id


def test_tpot_is_time_after_first_token_over_remaining_tokens() -> None:
    # 2.0 s total, first token at 0.2 s, 10 tokens: 9 inter-token gaps share 1.8 s.
    assert tpot(2.0, 0.2, 10) == pytest.approx(0.2)
    t = RequestTiming(start_s=0.0, latency_s=2.0, ttft_s=0.2, output_tokens=10)
    assert t.tpot_s == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("latency", "ttft", "tokens"),
    [(1.0, 0.5, 1), (1.0, 0.5, 0), (None, 0.5, 10), (1.0, None, 10), (1.0, 0.5, None)],
)
def test_tpot_undefined_below_two_tokens_or_missing_timings(
    latency: float | None, ttft: float | None, tokens: int | None
) -> None:
    assert tpot(latency, ttft, tokens) is None


def test_tpot_never_negative_when_clocks_disagree() -> None:
    # A server-side TTFT slightly above the client latency must not give a negative TPOT.
    assert tpot(1.0, 1.2, 5) == 0.0


def test_percentiles_interpolate_linearly_and_ignore_missing() -> None:
    values = [1.0, 2.0, 3.0, 4.0, None, float("nan")]
    assert percentile(values, 50) == pytest.approx(2.5)
    p = percentiles(values, (0, 50, 90, 100))
    assert p == pytest.approx({0: 1.0, 50: 2.5, 90: 3.7, 100: 4.0})
    assert percentiles([], (50, 90)) == {50: None, 90: None}
    assert percentile([None], 50) is None


def _batch() -> list[RequestTiming]:
    # Four requests over 4 seconds; one slow to first token, one failed.
    return [
        RequestTiming(start_s=0.0, latency_s=1.0, ttft_s=0.1, output_tokens=10),  # TPOT 0.1
        RequestTiming(start_s=1.0, latency_s=1.0, ttft_s=0.8, output_tokens=5),  # TTFT too slow
        RequestTiming(start_s=2.0, latency_s=2.0, ttft_s=0.2, output_tokens=10),  # TPOT 0.2
        RequestTiming(start_s=3.0, latency_s=None, ok=False),
    ]


def test_goodput_counts_requests_meeting_every_slo() -> None:
    timings = _batch()
    assert wall_time(timings) == pytest.approx(4.0)
    slo = SLO(ttft_s=0.5, tpot_s=0.15, e2e_s=5.0)
    rate, frac = goodput(timings, slo)
    assert frac == pytest.approx(1 / 4)  # only the first request meets all three
    assert rate == pytest.approx(1 / 4.0)
    # Loosen TPOT: the third request now counts too; the failure never does.
    rate, frac = goodput(timings, SLO(ttft_s=0.5, tpot_s=0.25))
    assert frac == pytest.approx(2 / 4) and rate == pytest.approx(0.5)
    assert goodput(timings, SLO())[1] == pytest.approx(3 / 4)
    assert goodput(timings, SLO(e2e_s=1.5))[1] == pytest.approx(2 / 4)
    assert goodput([], SLO()) == (0.0, 0.0)


def test_ttft_slo_fails_a_request_without_ttft() -> None:
    t = RequestTiming(start_s=0, latency_s=1.0, ttft_s=None, output_tokens=3)
    assert not SLO(ttft_s=1.0).met(t)
    assert SLO(e2e_s=2.0).met(t)
    assert "TTFT ≤ 500 ms" in SLO(ttft_s=0.5, e2e_s=2).describe()


def test_summarize_throughput_over_wall_time() -> None:
    s = summarize(_batch(), SLO(ttft_s=0.5))
    assert (s.n, s.n_ok) == (4, 3)
    assert s.availability == pytest.approx(0.75)
    assert s.duration_s == pytest.approx(4.0)
    assert s.requests_per_s == pytest.approx(3 / 4.0)
    assert s.output_tokens_per_s == pytest.approx(25 / 4.0)
    assert s.latency[50] == pytest.approx(1.0)
    assert s.ttft[50] == pytest.approx(0.2)
    assert s.tpot[50] == pytest.approx(0.1)  # TPOTs 0.1, 0.05 and 0.2
    assert s.mean_output_tokens == pytest.approx(25 / 3)
    assert s.goodput_fraction == pytest.approx(0.5)


def test_pareto_frontier_keeps_undominated_points() -> None:
    throughput = [10.0, 20.0, 30.0, 25.0, 30.0, float("nan")]
    latency = [1.0, 1.5, 3.0, 4.0, 2.5, 0.1]
    # (25, 4.0) is dominated by (30, 2.5); (30, 3.0) ties on throughput but is slower.
    assert pareto_frontier(throughput, latency) == [0, 1, 4]
    assert pareto_frontier([], []) == []
    assert pareto_frontier([5.0], [math.nan]) == []


def test_probe_hour_uses_the_schedule_time_zone() -> None:
    from datetime import UTC, datetime

    ts = datetime(2024, 7, 1, 22, 30, tzinfo=UTC)
    assert local_hour(ts) == 22
    assert local_hour(ts, "Europe/Berlin") == 0  # CEST is UTC+2
    assert local_hour(ts, "America/New_York") == 18


def test_sweep_run_ids_round_trip() -> None:
    rid = sweep_run_id("sweep-abc123", 2, "c", 4)
    assert rid == "sweep-abc123-x2@c4"
    assert parse_sweep_run_id(rid) == ("sweep-abc123", 2, "c", 4.0)
    assert parse_sweep_run_id(sweep_run_id("sweep-0f", 1, "r", 2.5)) == ("sweep-0f", 1, "r", 2.5)
    assert parse_sweep_run_id("probe-1234") is None
