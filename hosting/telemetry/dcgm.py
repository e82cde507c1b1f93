"""GPU readings from NVIDIA's dcgm-exporter on the GPU host: its Prometheus text (port 9400,
`/metrics`), one sample per GPU labelled `gpu="0"`, `gpu="1"`, ...

The fields read (dcgm-exporter's default counters):
- `DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`: energy since boot, mJ (a counter);
- `DCGM_FI_DEV_POWER_USAGE`: power draw, W;
- `DCGM_FI_DEV_GPU_UTIL`: utilization, %;
- `DCGM_FI_DEV_FB_USED`: frame buffer memory used, MiB.
A field the exporter does not publish (a custom counters file, an older GPU) is None; the page
is parsed with prometheus_client's text parser. `read()` never raises: an unreachable
exporter or a page that does not parse reads as None and says why in `problem`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from hosting.telemetry.sample import GpuReading, GpuSample

FIELDS = {
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": ("energy_j", 1e-3),
    "DCGM_FI_DEV_POWER_USAGE": ("power_w", 1.0),
    "DCGM_FI_DEV_GPU_UTIL": ("util_pct", 1.0),
    "DCGM_FI_DEV_FB_USED": ("memory_used_mib", 1.0),
}
DEFAULT_PORT = 9400


def parse_dcgm_metrics(text: str, at: float = 0.0) -> GpuSample:
    """The GPUs of one metrics page. Raises ValueError for text that is not Prometheus'
    exposition format; GPUs are the `gpu` labels of the fields read (other metrics ignored)."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[int, dict[str, float]] = {}
    names: dict[int, str] = {}
    for family in text_string_to_metric_families(text):
        # The parser names a counter's samples `<name>_total` (OpenMetrics); the family keeps
        # the exporter's name.
        spec = FIELDS.get(family.name)
        if spec is None:
            continue
        for s in family.samples:
            if s.name not in (family.name, f"{family.name}_total"):
                continue
            try:
                idx = int(s.labels.get("gpu", "0"))
            except ValueError:
                continue
            attr, scale = spec
            values.setdefault(idx, {})[attr] = float(s.value) * scale
            if "modelName" in s.labels:
                names[idx] = s.labels["modelName"]
    gpus = tuple(GpuReading(index=i, name=names.get(i), **values[i]) for i in sorted(values))
    return GpuSample(at=at, gpus=gpus, source="dcgm")


class DcgmSource:
    """Reads dcgm-exporter's page at `url` (e.g. http://10.0.0.5:9400/metrics)."""

    name = "dcgm"

    def __init__(
        self,
        url: str,
        timeout_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ):
        self.url = url
        self.problem: str | None = None
        self._clock = clock
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def read(self) -> GpuSample | None:
        try:
            response = self._client.get(self.url)
            response.raise_for_status()
            at = self._clock()
            sample = parse_dcgm_metrics(response.text, at)
        except httpx.HTTPStatusError as exc:
            self.problem = f"dcgm-exporter at {self.url} answered HTTP {exc.response.status_code}"
            return None
        except httpx.HTTPError as exc:
            self.problem = f"dcgm-exporter at {self.url} did not answer ({type(exc).__name__})"
            return None
        except ValueError as exc:
            self.problem = f"dcgm-exporter at {self.url} sent a page that does not parse: {exc}"
            return None
        if not sample.gpus:
            self.problem = f"dcgm-exporter at {self.url} publishes none of {', '.join(FIELDS)}"
            return None
        self.problem = None
        return sample

    def describe(self) -> str:
        return f"dcgm-exporter at {self.url}"

    def close(self) -> None:
        self._client.close()
