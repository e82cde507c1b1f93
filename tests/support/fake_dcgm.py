"""A replay of NVIDIA dcgm-exporter's metrics page: a real HTTP server on 127.0.0.1 serving
`/metrics` in the Prometheus text format the exporter documents (its README's sample output:
`# HELP` / `# TYPE` lines, one sample per GPU labelled gpu, UUID, device, modelName,
Hostname, DCGM_FI_DRIVER_VERSION), with the default counters the bot reads and a few it
ignores.

The state is a list of GPUs; each scrape advances their energy counters by `watts × dt`
of the fake's clock (a test moves the clock with `advance`, nothing sleeps), and a test can
reset a counter (`reset(gpu)`: a driver reload), drop a field (`missing`), or make the page
fail (`status`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

UUIDS = ("GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52", "GPU-1e0a2a7c-3b5e-4a4f-9c62-0d2d5a8e7f11")

HELP = {
    "DCGM_FI_DEV_SM_CLOCK": ("gauge", "SM frequency (in MHz)."),
    "DCGM_FI_DEV_MEMORY_TEMP": ("gauge", "Memory temperature (in C)."),
    "DCGM_FI_DEV_GPU_TEMP": ("gauge", "GPU temperature (in C)."),
    "DCGM_FI_DEV_POWER_USAGE": ("gauge", "Power draw (in W)."),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": (
        "counter", "Total energy consumption since boot (in mJ)."),
    "DCGM_FI_DEV_GPU_UTIL": ("gauge", "GPU utilization (in %)."),
    "DCGM_FI_DEV_MEM_COPY_UTIL": ("gauge", "Memory utilization (in %)."),
    "DCGM_FI_DEV_FB_FREE": ("gauge", "Framebuffer memory free (in MiB)."),
    "DCGM_FI_DEV_FB_USED": ("gauge", "Framebuffer memory used (in MiB)."),
}  # fmt: skip


@dataclass
class FakeGpu:
    watts: float = 70.0
    util: float = 0.0
    fb_used_mib: float = 512.0
    fb_total_mib: float = 15360.0  # a Tesla T4 (g4dn)
    energy_mj: float = 1_234_567_890.0


@dataclass
class FakeDcgm:
    gpus: list[FakeGpu] = field(default_factory=lambda: [FakeGpu()])
    missing: set[str] = field(default_factory=set)  # metric names left off the page
    status: int = 200
    scrapes: int = 0
    now: float = 0.0
    _last: float = 0.0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "call start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/metrics"

    def advance(self, seconds: float) -> None:
        """Move the fake's clock: the counters gain watts × seconds at the next scrape."""
        with self._lock:
            self.now += seconds

    def reset(self, gpu: int = 0, to_mj: float = 0.0) -> None:
        """A driver reload: the energy counter starts again from `to_mj`."""
        with self._lock:
            self.gpus[gpu].energy_mj = to_mj

    def page(self) -> str:
        with self._lock:
            dt, self._last = self.now - self._last, self.now
            for g in self.gpus:
                g.energy_mj += g.watts * dt * 1000
            self.scrapes += 1
            return render_page(self.gpus, self.missing)

    def start(self) -> FakeDcgm:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeDcgm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def render_page(gpus: list[FakeGpu], missing: set[str] | frozenset[str] = frozenset()) -> str:
    """The exporter's page for these GPUs (only the metrics not in `missing`)."""
    lines: list[str] = []
    for name, (kind, text) in HELP.items():
        if name in missing:
            continue
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        for i, g in enumerate(gpus):
            labels = (
                f'gpu="{i}",UUID="{UUIDS[i % len(UUIDS)]}",pci_bus_id="00000000:00:1E.0",'
                f'device="nvidia{i}",modelName="Tesla T4",Hostname="ip-172-31-5-17",'
                'DCGM_FI_DRIVER_VERSION="535.104.05"'
            )
            value = {
                "DCGM_FI_DEV_SM_CLOCK": 1590,
                "DCGM_FI_DEV_MEMORY_TEMP": 0,
                "DCGM_FI_DEV_GPU_TEMP": 41,
                "DCGM_FI_DEV_POWER_USAGE": g.watts,
                "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": int(g.energy_mj),
                "DCGM_FI_DEV_GPU_UTIL": int(g.util),
                "DCGM_FI_DEV_MEM_COPY_UTIL": 0,
                "DCGM_FI_DEV_FB_FREE": int(g.fb_total_mib - g.fb_used_mib),
                "DCGM_FI_DEV_FB_USED": int(g.fb_used_mib),
            }[name]
            lines.append(f"{name}{{{labels}}} {value}")
    return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    fake: FakeDcgm

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        if self.path != "/metrics":
            body, status = b"404 page not found\n", 404
        elif self.fake.status != 200:
            body, status = b"An error has occurred while serving metrics\n", self.fake.status
        else:
            body, status = self.fake.page().encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
