"""Which telemetry source reads the GPU a model runs on, by the same rules that reach the model.

- `[telemetry].source = "auto"` (the default): a model served from another machine (an Ollama
  or OpenAI-compatible server whose host is not this one) is read through dcgm-exporter on that
  host, `http://<the model's host>:<dcgm_port>/metrics`, as the g4dn host's user data starts it;
  a model on this machine (embedded llama.cpp, a local server) through NVML.
- `"nvml"` or `"dcgm"` force one (`dcgm_url` names the exporter's page explicitly);
- `"off"`, or a model on the paid API (`hardware = "api"`): no telemetry.

A machine without a GPU is said once per process and source ("no GPU telemetry: ..."), not
per probe: callers get None and carry on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from core.config import ModelSpec, SlamConfig
    from hosting.telemetry.sample import TelemetrySource

log = logging.getLogger(__name__)
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}
_SAID: set[str] = set()


def say_no_telemetry(key: str, why: str) -> None:
    """Log "no GPU telemetry" once per key for the life of the process."""
    if key in _SAID:
        return
    _SAID.add(key)
    log.warning("no GPU telemetry (%s): energy is not measured", why)


def model_endpoint(spec: ModelSpec) -> str | None:
    """The URL the model's backend talks to, or None for an embedded model."""
    from core.env import environment

    if spec.backend == "llamacpp":
        return None
    if spec.backend == "ollama":
        from hosting.backends import ollama_host

        return ollama_host(spec.host)
    return spec.host or environment().openai_base_url or None


def dcgm_url_for(endpoint: str, port: int) -> str:
    """dcgm-exporter's page on the host serving `endpoint` (scheme and host kept)."""
    url = httpx.URL(endpoint if "://" in endpoint else f"http://{endpoint}")
    return str(url.copy_with(port=port, path="/metrics", query=None, fragment=None))


def is_local(endpoint: str | None) -> bool:
    if endpoint is None:
        return True
    url = httpx.URL(endpoint if "://" in endpoint else f"http://{endpoint}")
    return url.host in LOCAL_HOSTS


def telemetry_for(spec: ModelSpec, cfg: SlamConfig) -> TelemetrySource | None:
    """The source reading the GPU `spec` runs on, or None (and a one-time log line why)."""
    from hosting.telemetry.dcgm import DcgmSource
    from hosting.telemetry.nvml import NvmlSource

    tcfg = cfg.telemetry
    if tcfg.source == "off" or spec.hardware == "api":
        return None
    endpoint = model_endpoint(spec)
    kind = tcfg.source
    if kind == "auto":
        kind = "dcgm" if tcfg.dcgm_url or not is_local(endpoint) else "nvml"
    source: TelemetrySource
    if kind == "dcgm":
        url = tcfg.dcgm_url or dcgm_url_for(endpoint or "http://127.0.0.1", tcfg.dcgm_port)
        source = DcgmSource(url)
    else:
        source = NvmlSource()
    if source.read() is None:
        problem = getattr(source, "problem", None) or "no reading"
        say_no_telemetry(source.describe(), problem)
        source.close()
        return None
    return source
