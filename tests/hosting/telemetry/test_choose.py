"""Which source reads a model's GPU: dcgm-exporter on a remote host, NVML locally, none for the
API; a machine without a GPU says so once."""

from __future__ import annotations

import logging
import sys

import pytest

from core.config import SlamConfig, parse_config
from hosting.telemetry import DcgmSource, NvmlSource, dcgm_url_for, telemetry_for
from hosting.telemetry.choose import _SAID
from tests.support.fake_dcgm import FakeDcgm
from tests.support.fake_nvml import FakeNvml


def cfg(host: str | None, backend: str = "ollama", **telemetry: object) -> SlamConfig:
    model: dict[str, object] = {
        "name": "m",
        "backend": backend,
        "model": "gemma3:270m",
        "hardware": "g4dn.xlarge",
    }
    if host:
        model["host"] = host
    return parse_config({"models": [model], "telemetry": telemetry})


def test_the_exporter_sits_next_to_ollama() -> None:
    assert dcgm_url_for("http://10.0.0.5:11434", 9400) == "http://10.0.0.5:9400/metrics"
    assert dcgm_url_for("10.0.0.5:11435/", 9400) == "http://10.0.0.5:9400/metrics"


def test_a_remote_model_reads_dcgm_and_a_local_one_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeDcgm() as fake:
        c = cfg("http://ip-172-31-5-17.ec2.internal:11434", dcgm_url=fake.url)
        src = telemetry_for(c.models[0], c)
        assert isinstance(src, DcgmSource) and src.url == fake.url
        src.close()
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    c = cfg("http://127.0.0.1:11434")
    assert isinstance(telemetry_for(c.models[0], c), NvmlSource)
    c = cfg(None, source="off")
    assert telemetry_for(c.models[0], c) is None


def test_the_api_has_no_telemetry() -> None:
    c = parse_config({"models": [{"name": "gpt", "backend": "openai", "model": "gpt-4",
                                  "hardware": "api", "reference": True}]})  # fmt: skip
    assert telemetry_for(c.models[0], c) is None


def test_no_gpu_is_said_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import pynvml

    monkeypatch.setitem(
        sys.modules, "pynvml", FakeNvml(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    )
    _SAID.discard("NVML on this machine")
    c = cfg("http://localhost:11434")
    with caplog.at_level(logging.WARNING, logger="hosting.telemetry.choose"):
        for _ in range(3):
            assert telemetry_for(c.models[0], c) is None
    said = [r.getMessage() for r in caplog.records if "no GPU telemetry" in r.getMessage()]
    assert len(said) == 1 and "NVML Shared Library Not Found" in said[0]
