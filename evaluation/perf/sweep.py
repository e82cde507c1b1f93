"""Load sweeps (`slam sweep`): how throughput and latency trade off as load rises.

Two ways to add load:
- concurrency: N closed-loop workers (1, 2, 4, …), each sending its next request when the last
  one finishes;
- rate (GuideLLM style): a synchronous run (one at a time) and a max-throughput run fix the two
  ends, then open-loop constant-rate arrivals at evenly spaced rates in between.

Several endpoints (replicas) of one model are driven round-robin, to see whether replicating a
small model on one GPU raises throughput. Every request is stored as a Probe with phase="sweep",
its concurrency, and a run id `sweep-<id>-x<replicas>@c<N>` (or `@r<rate>`) naming the level.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.engine import Engine

from core.config import ModelSpec, SlamConfig
from core.errors import SlamError
from hosting.backends import Backend, Generation, GenerationRequest, create_backend
from hosting.versions import record_version
from storage.db import session_scope
from storage.models import Probe

from .latency_stats import SLO, LatencySummary, RequestTiming, pareto_frontier, summarize
from .probes import _model_id, probe_request, probe_row, request_timing, timed_generate

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


@dataclass
class SweepResult:
    model: str
    run_id: str
    hosts: list[str | None]
    slo: SLO
    levels: list[SweepLevel] = field(default_factory=list)

    @property
    def frontier(self) -> list[int]:
        """Indices of the levels on the throughput–p50-latency Pareto frontier."""
        xs, _ = throughput_axis(self.levels)
        ys = [_nan(lv.summary.latency[50]) for lv in self.levels]
        return pareto_frontier(xs, ys)

    def table(self) -> str:
        """A plain-text table for the console."""
        head = (
            f"{'level':>10} {'ok':>7} {'req/s':>7} {'tok/s':>8} {'p50 s':>7} {'p90 s':>7} "
            f"{'TTFT p50':>9} {'TPOT p50':>9} {'goodput':>8}"
        )
        lines = [f"{self.model} × {len(self.hosts)} endpoint(s); SLO: {self.slo.describe()}", head]
        front = set(self.frontier)
        for i, lv in enumerate(self.levels):
            s = lv.summary
            tok_s = "n/a" if s.mean_output_tokens is None else f"{s.output_tokens_per_s:.1f}"
            lines.append(
                f"{lv.label:>10} {s.n_ok:>3}/{s.n:<3} {s.requests_per_s:7.2f} "
                f"{tok_s:>8} {_fmt(s.latency[50]):>7} {_fmt(s.latency[90]):>7} "
                f"{_fmt(s.ttft[50], 1000):>9} {_fmt(s.tpot[50], 1000):>9} "
                f"{s.goodput_fraction:7.0%}{' *' if i in front else ''}"
            )
        lines.append(
            "* = on the Pareto frontier (no other level is both faster and higher-throughput)"
        )
        return "\n".join(lines)


def throughput_axis(levels: Sequence[SweepLevel]) -> tuple[list[float], str]:
    """Output tokens/s per level, or requests/s when the server reported no token counts
    (llama-cpp-python's server sends no usage when streaming)."""
    if any(lv.summary.mean_output_tokens is not None for lv in levels):
        return [lv.summary.output_tokens_per_s for lv in levels], "output tokens per second"
    return [lv.summary.requests_per_s for lv in levels], "requests per second"


def _nan(v: float | None) -> float:
    return float("nan") if v is None else v


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
    """Sends requests round-robin over replicas and keeps the timings and rows of one level."""

    def __init__(self, backends: list[Backend], spec: ModelSpec, request: GenerationRequest):
        self.backends = backends
        self.spec = spec
        self.request = request
        self._next = itertools.cycle(range(len(backends)))
        self.in_flight = 0
        self.peak = 0

    async def one(self, t_ref: float) -> tuple[datetime, RequestTiming, Generation]:
        backend = self.backends[next(self._next)]
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            started, t0, gen = await timed_generate(backend, self.request, self.spec)
        finally:
            self.in_flight -= 1
        return started, request_timing(gen, t0 - t_ref), gen


Result = tuple[datetime, RequestTiming, Generation]


async def _closed_loop(
    driver: _Driver, concurrency: int, n_requests: int, tick: Callable[[], object]
) -> list[Result]:
    """`concurrency` workers share `n_requests`; each starts its next request when one ends."""
    counter = itertools.count()
    results: list[Result] = []
    t_ref = time.perf_counter()

    async def worker() -> None:
        while next(counter) < n_requests:
            results.append(await driver.one(t_ref))
            tick()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def _open_loop(
    driver: _Driver, rate: float, n_requests: int, tick: Callable[[], object]
) -> list[Result]:
    """Constant-rate arrivals: request i starts at i / rate seconds, whether or not others ended."""
    t_ref = time.perf_counter()

    async def at(i: int) -> Result:
        delay = t_ref + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        result = await driver.one(t_ref)
        tick()
        return result

    return list(await asyncio.gather(*(at(i) for i in range(n_requests))))


def _replica_specs(spec: ModelSpec, hosts: Sequence[str] | None) -> list[ModelSpec]:
    if not hosts:
        return [spec]
    return [spec.model_copy(update={"host": h}) for h in hosts]


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
) -> SweepResult:
    """Drive one model at increasing load and store every request as a sweep Probe."""
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
    specs = _replica_specs(spec, hosts)
    request = probe_request(cfg, max_tokens)
    model_id = _model_id(engine, spec)
    base = f"sweep-{uuid.uuid4().hex[:10]}"
    result = SweepResult(spec.name, base, [s.host for s in specs], slo)
    backends = [create_backend(s) for s in specs]
    bar = None
    tick: Callable[[], object] = lambda: None  # noqa: E731
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc=f"sweep {spec.name}", unit="req")
        tick = bar.update

    def per_level(c: int) -> int:
        return requests_per_level or max(8, 2 * c)

    async def level(kind: str, value: float) -> None:
        driver = _Driver(backends, spec, request)
        if kind == "c":
            n = per_level(int(value))
            results = await _closed_loop(driver, int(value), n, tick)
        else:
            n = requests_per_level or max(8, round(value * 10))
            results = await _open_loop(driver, value, n, tick)
        run_id = sweep_run_id(base, len(specs), kind, value)
        conc = int(value) if kind == "c" else driver.peak
        rows = [
            probe_row(model_id, run_id, "sweep", started, gen, cfg.schedule.timezone, conc)
            for started, _, gen in results
        ]
        _store_all(engine, rows, [gen for _, _, gen in results])
        label = f"c={int(value)}" if kind == "c" else f"{value:.3g}/s"
        summary = summarize([t for _, t, _ in results], slo)
        result.levels.append(SweepLevel(label, conc, value if kind == "r" else None, summary))

    try:
        if mode == "concurrency":
            for c in levels_c:
                await level("c", c)
        else:
            # Synchronous and max-throughput runs bound the rates worth trying.
            await level("c", 1)
            await level("c", max(levels_c[-1], 2))
            todo = (
                list(rates) if rates else _even_rates(result.levels[0], result.levels[1], n_rates)
            )
            for r in sorted(todo):
                await level("r", r)
    finally:
        if bar is not None:
            bar.close()
        for b in backends:
            await b.aclose()
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
