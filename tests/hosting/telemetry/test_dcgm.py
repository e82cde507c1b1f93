"""dcgm-exporter's page, parsed and read over HTTP from a local replay (tests/support/fake_dcgm):
the documented format, a counter reset, a missing field, an exporter that fails."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hosting.telemetry import DcgmSource, energy_window, parse_dcgm_metrics
from tests.support.fake_dcgm import FakeDcgm, FakeGpu, render_page


def test_the_documented_page_parses_per_gpu() -> None:
    gpus = [FakeGpu(watts=27.5, util=42, fb_used_mib=1536, energy_mj=5_000_000),
            FakeGpu(watts=60, util=99, fb_used_mib=8000, energy_mj=7_000)]  # fmt: skip
    s = parse_dcgm_metrics(render_page(gpus), at=3.0)
    assert s.at == 3.0 and s.source == "dcgm" and [g.index for g in s.gpus] == [0, 1]
    g0 = s.gpus[0]
    assert (g0.energy_j, g0.power_w, g0.util_pct, g0.memory_used_mib) == (5000.0, 27.5, 42, 1536)
    assert g0.name == "Tesla T4" and s.gpus[1].energy_j == 7.0


def test_a_missing_field_is_none() -> None:
    s = parse_dcgm_metrics(render_page([FakeGpu()], {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"}))
    assert s.gpus[0].energy_j is None and s.gpus[0].power_w == 70.0


def test_text_that_is_not_prometheus_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_dcgm_metrics("DCGM_FI_DEV_POWER_USAGE{gpu=0 oops\n")


@given(st.lists(st.tuples(st.floats(0, 400), st.integers(0, 100), st.integers(0, 80000),
                          st.integers(0, 2**53)), min_size=1, max_size=4))  # fmt: skip
def test_render_then_parse_gives_the_values_back(
    values: list[tuple[float, int, int, int]],
) -> None:
    gpus = [FakeGpu(watts=w, util=u, fb_used_mib=m, fb_total_mib=m + 1, energy_mj=e)
            for w, u, m, e in values]  # fmt: skip
    s = parse_dcgm_metrics(render_page(gpus))
    assert [(g.power_w, g.util_pct, g.memory_used_mib) for g in s.gpus] == [
        (pytest.approx(w), u, m) for w, u, m, _ in values
    ]
    assert [g.energy_j for g in s.gpus] == [pytest.approx(e / 1000) for *_, e in values]


def test_reading_the_replay_over_http_with_a_reset() -> None:
    clock = iter([0.0, 10.0, 20.0])
    with FakeDcgm(gpus=[FakeGpu(watts=50.0)]) as fake:
        src = DcgmSource(fake.url, clock=lambda: next(clock))
        first = src.read()
        fake.advance(10)
        second = src.read()  # +500 J
        fake.reset(0)  # the exporter restarts with the driver: the counter starts at 0
        fake.advance(10)
        third = src.read()  # 0 + 500 J since the reset
        src.close()
    assert first is not None and second is not None and third is not None
    w = energy_window([first, second, third])
    assert w is not None and w.joules == pytest.approx(1000.0) and w.resets == 1
    assert w.mean_watts == pytest.approx(50.0) and fake.scrapes == 3


def test_an_unreachable_or_failing_exporter_reads_none_and_says_why() -> None:
    with FakeDcgm() as fake:
        fake.status = 500
        src = DcgmSource(fake.url)
        assert src.read() is None and "HTTP 500" in (src.problem or "")
        fake.status = 200
        fake.missing = {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_POWER_USAGE",
                        "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"}  # fmt: skip
        assert src.read() is None and "publishes none" in (src.problem or "")
        src.close()
        url = fake.url
    gone = DcgmSource(url, timeout_s=1.0)
    assert gone.read() is None and "did not answer" in (gone.problem or "")
    gone.close()
