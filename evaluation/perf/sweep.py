"""Load sweeps (`slam sweep`): how throughput and latency trade off as load rises.

Two ways to add load:
- concurrency: N closed-loop workers (1, 2, 4, …), each sending its next request when the last
  one finishes;
- rate (GuideLLM style): a synchronous run (one at a time) and a max-throughput run fix the two
  ends, then open-loop constant-rate arrivals at evenly spaced rates in between.

Several endpoints (replicas) of one model are driven round-robin, to see whether replicating a
small model on one GPU raises throughput; `replicas=[1, 2, 4]` drives replicas × load, using the
first N endpoints for each count (one host given and more replicas asked: the consecutive ports
`slam host up --replicas N` serves on). Every request is stored as a Probe with phase="sweep",
its concurrency, and a run id `sweep-<id>-x<replicas>@c<N>` (or `@r<rate>`) naming the level;
the GPU's energy over each level is a `gpu_energy` row with the same run id (when telemetry
reads the model's GPU: hosting.telemetry).

A level whose server is over-saturated (latency and queue both rising: `saturation`) stops
early; with `slo_search` the highest load meeting the SLO is then found by bisection between
the levels run (`slo_search`).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.engine import Engine

from core.config import ModelSpec, SlamConfig
from core.errors import SlamError
from hosting.backends import Backend, Generation, GenerationRequest, create_backend
from hosting.telemetry import GpuMeter, telemetry_for
from hosting.versions import record_version
from storage.db import session_scope
from storage.models import Probe

from .energy import LevelEnergy, level_energy
from .latency_stats import SLO, LatencySummary, RequestTiming, pareto_frontier, summarize
from .probes import (
    _model_id,
    _store_energy,
    probe_request,
    probe_row,
    request_timing,
    timed_generate,
)
from .saturation import SaturationDetector
from .slo_search import SloSearch, bisect_slo

# Loose defaults for a daily briefing read once: answer within 2 s, stream faster than
# reading speed (≈ 5 tokens/s), finish within 30 s.
DEFAULT_SLO = SLO(ttft_s=2.0, tpot_s=0.2, e2e_s=30.0)
DEFAULT_CONCURRENCY = (1, 2, 4, 8)

_RUN_ID = re.compile(
    r"^(?P<base>sweep-[0-9a-f]+)-x(?P<replicas>\d+)@(?P<kind>[cr])(?P<value>[\d.]+)$"
)


@dataclass(frozen=True)
class SweepLevel:
    """One load level: its label, load and what was measured."""

    label: str
    concurrency: int
    rate: float | None
    summary: LatencySummary
    replicas: int = 1
    energy: LevelEnergy | None = None
    stopped_early: bool = False  # over-saturated: the level's remaining requests were not sent

    def meets(self, slo_attainment: float) -> bool:
        """Whether at least `slo_attainment` of the level's requests met the SLO."""
        return self.summary.n > 0 and self.summary.goodput_fraction >= slo_attainment


@dataclass
class SweepResult:
    model: str
    run_id: str
    hosts: list[str | None]
    slo: SLO
    levels: list[SweepLevel] = field(default_factory=list)
    search: dict[int, SloSearch] = field(default_factory=dict)  # replicas -> SLO search

    @property
    def frontier(self) -> list[int]:
        """Indices of the levels on the throughput–p50-latency Pareto frontier."""
        xs, _ = throughput_axis(self.levels)
        ys = [_nan(lv.summary.latency[50]) for lv in self.levels]
        return pareto_frontier(xs, ys)

    def table(self) -> str:
        """A plain-text table for the console."""
        energy = any(lv.energy is not None for lv in self.levels)
        head = (
            f"{'level':>10} {'ok':>7} {'req/s':>7} {'tok/s':>8} {'p50 s':>7} {'p90 s':>7} "
            f"{'TTFT p50':>9} {'TPOT p50':>9} {'goodput':>8}"
        ) + (f" {'J/1K tok':>9} {'W':>5} {'util':>5} {'MiB':>6}" if energy else "")
        lines = [f"{self.model} × {len(self.hosts)} endpoint(s); SLO: {self.slo.describe()}", head]
        front = set(self.frontier)
        several = len({lv.replicas for lv in self.levels}) > 1
        for i, lv in enumerate(self.levels):
            s = lv.summary
            tok_s = "n/a" if s.mean_output_tokens is None else f"{s.output_tokens_per_s:.1f}"
            label = f"x{lv.replicas} {lv.label}" if several else lv.label
            line = (
                f"{label:>10} {s.n_ok:>3}/{s.n:<3} {s.requests_per_s:7.2f} "
                f"{tok_s:>8} {_fmt(s.latency[50]):>7} {_fmt(s.latency[90]):>7} "
                f"{_fmt(s.ttft[50], 1000):>9} {_fmt(s.tpot[50], 1000):>9} "
                f"{s.goodput_fraction:7.0%} "
            )
            if energy:
                e = lv.energy
                line += (
                    f"{_num(e.j_per_1k_output if e else None, 0):>9} "
                    f"{_num(e.mean_watts if e else None, 0):>5} "
                    f"{_num(e.util_pct if e else None, 0):>5} "
                    f"{_num(e.memory_used_mib if e else None, 0):>6}"
                )
            flags = ("*" if i in front else "") + ("!" if lv.stopped_early else "")
            lines.append((line + " " + flags).rstrip())
        lines.append(
            "* = on the Pareto frontier (no other level is both faster and higher-throughput)"
        )
        if any(lv.stopped_early for lv in self.levels):
            lines.append("! = stopped early: over-saturated (latency and queue both rising)")
        if energy:
            lines.append("J/1K tok: GPU energy per 1K output tokens (idle power included)")
        for replicas, found in sorted(self.search.items()):
            unit = "concurrent requests" if all(lv.rate is None for lv in self.levels) else "req/s"
            lines.append(f"x{replicas}: {found.describe(unit)}")
        return "\n".join(lines)


def throughput_axis(levels: Sequence[SweepLevel]) -> tuple[list[float], str]:
    """Output tokens/s per level, or requests/s when the server reported no token counts
    (llama-cpp-python's server sends no usage when streaming)."""
    if any(lv.summary.mean_output_tokens is not None for lv in levels):
        return [lv.summary.output_tokens_per_s for lv in levels], "output tokens per second"
    return [lv.summary.requests_per_s for lv in levels], "requests per second"


def _nan(v: float | None) -> float:
    return float("nan") if v is None else v


def _num(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None else f"{v:,.{digits}f}"


def _fmt(v: float | None, scale: float = 1.0) -> str:
    return "n/a" if v is None else f"{v * scale:.{0 if scale > 1 else 2}f}"


def sweep_run_id(base: str, replicas: int, kind: str, value: float) -> str:
    return f"{base}-x{replicas}@{kind}{value:g}"


def parse_sweep_run_id(run_id: str) -> tuple[str, int, str, float] | None:
    """(base, replicas, 'c' or 'r', level value) of a sweep run id, or None for other runs."""
    m = _RUN_ID.match(run_id)
    if m is None:
        return None
    return m["base"], int(m["replicas"]), m["kind"], float(m["value"])


class _Driver:
    """Sends requests round-robin over replicas and keeps the timings and rows of one level;
    `stopped` once its detector sees the server over-saturated (no new request starts)."""

    def __init__(
        self,
        backends: list[Backend],
        spec: ModelSpec,
        request: GenerationRequest,
        detector: SaturationDetector | None = None,
    ):
        self.backends = backends
        self.spec = spec
        self.request = request
        self._next = itertools.cycle(range(len(backends)))
        self.in_flight = 0
        self.peak = 0
        self.detector = detector
        self.stopped = False

    async def one(self, t_ref: float) -> tuple[datetime, RequestTiming, Generation]:
        backend = self.backends[next(self._next)]
        self.in_flight += 1
        queued = self.in_flight
        self.peak = max(self.peak, self.in_flight)
        try:
            started, t0, gen = await timed_generate(backend, self.request, self.spec)
        finally:
            self.in_flight -= 1
        timing = request_timing(gen, t0 - t_ref)
        if self.detector is not None:
            self.detector.observe(timing.start_s, queued, timing.latency_s if gen.ok else None)
            if not self.stopped and self.detector.over_saturated():
                self.stopped = True
        return started, timing, gen


Result = tuple[datetime, RequestTiming, Generation]


async def _closed_loop(
    driver: _Driver, concurrency: int, n_requests: int, tick: Callable[[], object]
) -> list[Result]:
    """`concurrency` workers share `n_requests`; each starts its next request when one ends."""
    counter = itertools.count()
    results: list[Result] = []
    t_ref = time.perf_counter()

    async def worker() -> None:
        while not driver.stopped and next(counter) < n_requests:
            results.append(await driver.one(t_ref))
            tick()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def _open_loop(
    driver: _Driver, rate: float, n_requests: int, tick: Callable[[], object]
) -> list[Result]:
    """Constant-rate arrivals: request i starts at i / rate seconds, whether or not others ended
    (unless the level was stopped as over-saturated by then)."""
    t_ref = time.perf_counter()

    async def at(i: int) -> Result | None:
        delay = t_ref + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if driver.stopped:
            return None
        result = await driver.one(t_ref)
        tick()
        return result

    done = await asyncio.gather(*(at(i) for i in range(n_requests)))
    return [r for r in done if r is not None]


def _replica_specs(spec: ModelSpec, hosts: Sequence[str] | None) -> list[ModelSpec]:
    if not hosts:
        return [spec]
    return [spec.model_copy(update={"host": h}) for h in hosts]


def consecutive_ports(endpoint: str, n: int) -> list[str]:
    """`endpoint` and the next n-1 ports on the same host, as `slam host up --replicas N`
    serves them (http://h:11434 -> http://h:11434, http://h:11435, ...)."""
    import httpx

    url = httpx.URL(endpoint if "://" in endpoint else f"http://{endpoint}")
    port = url.port or (443 if url.scheme == "https" else 80)
    return [str(url.copy_with(port=port + i)).rstrip("/") for i in range(n)]


def _endpoints(spec: ModelSpec, hosts: Sequence[str] | None, most: int) -> list[str] | None:
    """The endpoints replicas 1..`most` use: the hosts given, else the model's host and the
    ports after it (one server per port on the GPU host)."""
    if hosts and len(hosts) >= most:
        return list(hosts)
    if hosts and len(hosts) > 1:
        raise SlamError(
            f"{most} replicas asked but {len(hosts)} --host endpoints given; give one --host"
            " per replica, or one host whose next ports serve the others"
        )
    base = hosts[0] if hosts else spec.host
    if base is None and spec.backend == "ollama":
        from hosting.backends import ollama_host

        base = ollama_host(None)
    if base is None:
        raise SlamError(
            f"{most} replicas asked but model '{spec.name}' has no host to find them at;"
            " give --host for each replica"
        )
    return consecutive_ports(base, most)


async def run_sweep(
    engine: Engine,
    cfg: SlamConfig,
    model: str,
    *,
    hosts: Sequence[str] | None = None,
    mode: Literal["concurrency", "rate"] = "concurrency",
    concurrencies: Sequence[int] = DEFAULT_CONCURRENCY,
    rates: Sequence[float] | None = None,
    n_rates: int = 3,
    requests_per_level: int | None = None,
    max_tokens: int | None = None,
    slo: SLO = DEFAULT_SLO,
    progress: bool = True,
    replicas: Sequence[int] | None = None,
    stop_when_saturated: bool = True,
    slo_search: bool = False,
    slo_attainment: float = 0.9,
    search_steps: int = 4,
) -> SweepResult:
    """Drive one model at increasing load (for each replica count) and store every request as
    a sweep Probe, and each level's GPU energy when telemetry reads it."""
    spec = cfg.model(model)
    if mode not in ("concurrency", "rate"):
        raise SlamError(f"unknown sweep mode '{mode}'; expected 'concurrency' or 'rate'")
    levels_c = sorted(set(concurrencies))
    if not levels_c or levels_c[0] < 1:
        raise SlamError(f"concurrency levels must be integers ≥ 1 (got {list(concurrencies)})")
    if rates is not None and any(r <= 0 for r in rates):
        raise SlamError(f"rates must be > 0 requests/s (got {list(rates)})")
    if requests_per_level is not None and requests_per_level < 1:
        raise SlamError("requests per level must be ≥ 1")
    if not 0 < slo_attainment <= 1:
        raise SlamError(f"SLO attainment must be in (0, 1] (got {slo_attainment:g})")
    counts = sorted(set(replicas)) if replicas else None
    if counts is not None and counts[0] < 1:
        raise SlamError(f"replica counts must be integers ≥ 1 (got {list(replicas or [])})")
    if counts is not None and counts[-1] > 1:
        hosts = _endpoints(spec, hosts, counts[-1])
    specs = _replica_specs(spec, hosts)
    counts = counts or [len(specs)]
    request = probe_request(cfg, max_tokens)
    model_id = _model_id(engine, spec)
    base = f"sweep-{uuid.uuid4().hex[:10]}"
    result = SweepResult(spec.name, base, [s.host for s in specs[: counts[-1]]], slo)
    # One GPU serves every replica: one telemetry source for the sweep (None: no GPU read).
    source = await asyncio.to_thread(telemetry_for, spec, cfg)
    meter = GpuMeter(source, cfg.telemetry.interval_s)
    backends = [create_backend(s) for s in specs]
    bar = None
    tick: Callable[[], object] = lambda: None  # noqa: E731
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc=f"sweep {spec.name}", unit="req")
        tick = bar.update

    def per_level(c: int) -> int:
        return requests_per_level or max(8, 2 * c)

    async def level(n_replicas: int, kind: str, value: float) -> SweepLevel:
        detector = SaturationDetector() if stop_when_saturated else None
        driver = _Driver(backends[:n_replicas], spec, request, detector)
        started = datetime.now(UTC)
        async with meter:
            if kind == "c":
                n = per_level(int(value))
                results = await _closed_loop(driver, int(value), n, tick)
            else:
                n = requests_per_level or max(8, round(value * 10))
                results = await _open_loop(driver, value, n, tick)
        run_id = sweep_run_id(base, n_replicas, kind, value)
        conc = int(value) if kind == "c" else driver.peak
        rows = [
            probe_row(model_id, run_id, "sweep", started_at, gen, cfg.schedule.timezone, conc)
            for started_at, _, gen in results
        ]
        _store_all(engine, rows, [gen for _, _, gen in results])
        timings = [t for _, t, _ in results]
        energy = _store_energy(engine, model_id, run_id, started, meter, timings, "sweep")
        label = f"c={int(value)}" if kind == "c" else f"{value:.3g}/s"
        lv = SweepLevel(
            label,
            conc,
            value if kind == "r" else None,
            summarize(timings, slo),
            replicas=n_replicas,
            energy=level_energy(energy) if energy is not None else None,
            stopped_early=driver.stopped,
        )
        result.levels.append(lv)
        return lv

    async def search(n_replicas: int, kind: str, grid: list[tuple[float, SweepLevel]]) -> None:
        async def measure(load: float) -> bool:
            return (await level(n_replicas, kind, load)).meets(slo_attainment)

        result.search[n_replicas] = await bisect_slo(
            measure,
            [(load, lv.meets(slo_attainment)) for load, lv in grid],
            integer=kind == "c",
            max_steps=search_steps,
        )

    try:
        for n_replicas in counts:
            if mode == "concurrency":
                grid = [(float(c), await level(n_replicas, "c", c)) for c in levels_c]
                kind = "c"
            else:
                # Synchronous and max-throughput runs bound the rates worth trying.
                sync = await level(n_replicas, "c", 1)
                peak = await level(n_replicas, "c", max(levels_c[-1], 2))
                todo = list(rates) if rates else _even_rates(sync, peak, n_rates)
                grid = [(r, await level(n_replicas, "r", r)) for r in sorted(todo)]
                kind = "r"
            if slo_search and grid:
                await search(n_replicas, kind, grid)
    finally:
        if bar is not None:
            bar.close()
        for b in backends:
            await b.aclose()
        if source is not None:
            source.close()
    return result


def _even_rates(sync: SweepLevel, peak: SweepLevel, n: int) -> list[float]:
    lo, hi = sync.summary.requests_per_s, peak.summary.requests_per_s
    if lo <= 0 or hi <= 0 or n < 1:
        return []
    hi = max(hi, lo * 1.1)
    step = (hi - lo) / (n + 1)
    return [round(lo + step * (i + 1), 3) for i in range(n)]


def _store_all(engine: Engine, rows: list[Probe], gens: list[Generation]) -> None:
    # One commit per level, after it ends, so database writes never slow the requests measured;
    # each row with the model version that answered it (hosting.versions).
    with session_scope(engine) as session:
        for row, gen in zip(rows, gens, strict=True):
            if gen.ok:
                row.model_version_id = record_version(session, row.model_id, gen.identity)
        session.add_all(rows)
