"""Latency probes (`slam probe`): warm each model up, then measure the same request N times.

Every request becomes a `Probe` row, committed as soon as it completes, so a crash loses at
most the request in flight. Failures (timeouts, refused connections, HTTP errors) are stored
with ok=False: they are the availability data, not noise to drop.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from core.config import ModelSpec, SlamConfig
from core.errors import SlamError
from hosting.backends import Backend, Generation, GenerationRequest, create_backend
from hosting.telemetry import GpuMeter, telemetry_for
from hosting.versions import record_version
from storage.db import session_scope
from storage.models import GpuEnergy, Probe
from storage.repo import ensure_model

from .energy import energy_row
from .latency_stats import RequestTiming, summarize


@dataclass(frozen=True)
class ProbeSummary:
    """What one model's probe run measured (measure phase only; warmup is excluded)."""

    model: str
    run_id: str
    n: int
    n_ok: int
    latency_p50_s: float | None
    latency_p90_s: float | None
    ttft_p50_s: float | None
    tpot_p50_s: float | None
    output_tokens_per_s: float | None
    mean_output_tokens: float | None
    errors: list[str] = field(default_factory=list)
    j_per_output_token: float | None = None  # GPU energy of the measure phase, when read

    @property
    def availability(self) -> float:
        return self.n_ok / self.n if self.n else 0.0

    def line(self) -> str:
        """One line for the console."""
        if not self.n_ok:
            why = self.errors[0] if self.errors else "no requests"
            return f"{self.model}: 0/{self.n} ok — {why}"

        def ms(v: float | None) -> str:
            return "n/a" if v is None else f"{v * 1000:.0f} ms"

        tps = "n/a" if self.output_tokens_per_s is None else f"{self.output_tokens_per_s:.1f}"
        energy = (
            ""
            if self.j_per_output_token is None
            else f", {self.j_per_output_token * 1000:,.0f} J per 1K output tokens"
        )
        return (
            f"{self.model}: {self.n_ok}/{self.n} ok, latency p50 {ms(self.latency_p50_s)} "
            f"p90 {ms(self.latency_p90_s)}, TTFT p50 {ms(self.ttft_p50_s)}, "
            f"TPOT p50 {ms(self.tpot_p50_s)}, {tps} tok/s{energy}"
        )


def probe_request(cfg: SlamConfig, max_tokens: int | None = None) -> GenerationRequest:
    """The one request every probe sends: the feature's prompt for the first sample user."""
    from core.prompts import load_user_contexts, render_prompt

    user = load_user_contexts(cfg.experiment.user_contexts)[0]
    return GenerationRequest(
        prompt=render_prompt(cfg.experiment.prompt_template, user),
        system=cfg.experiment.system_prompt,
        max_tokens=max_tokens or cfg.experiment.max_tokens,
        temperature=cfg.experiment.temperature,
        seed=cfg.experiment.seed,
    )


def local_hour(ts: datetime, timezone: str = "UTC") -> int:
    """Hour of day (0..23) of an aware UTC timestamp in the schedule's time zone."""
    return ts.astimezone(ZoneInfo(timezone)).hour


async def timed_generate(
    backend: Backend, request: GenerationRequest, spec: ModelSpec
) -> tuple[datetime, float, Generation]:
    """Send one request; never raises. Returns (UTC start, perf_counter start, result)."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    try:
        # Backends enforce their own timeout; this outer one only guards against a hung SDK.
        gen = await asyncio.wait_for(backend.generate(request), timeout=spec.timeout_s * 2 + 5)
    except TimeoutError:
        gen = Generation(text="", backend=spec.backend, model=spec.name, error="timeout")
    except Exception as exc:  # a backend bug must not end the run: record it as a failure
        gen = Generation(
            text="", backend=spec.backend, model=spec.name, error=f"{type(exc).__name__}: {exc}"
        )
    if gen.ok and gen.latency_s is None:
        gen = replace(gen, latency_s=time.perf_counter() - t0)
    return started, t0, gen


def request_timing(gen: Generation, start_s: float) -> RequestTiming:
    """One request's timings as the latency arithmetic reads them (start relative to the run)."""
    return RequestTiming(
        start_s=start_s,
        latency_s=gen.latency_s,
        ttft_s=gen.ttft_s,
        output_tokens=gen.output_tokens,
        prompt_tokens=gen.prompt_tokens,
        ok=gen.ok,
    )


def probe_row(
    model_id: int,
    run_id: str,
    phase: str,
    started: datetime,
    gen: Generation,
    timezone: str = "UTC",
    concurrency: int = 1,
) -> Probe:
    """A Probe row for one request (aware UTC timestamp, hour in the schedule time zone)."""
    row = Probe(
        model_id=model_id,
        run_id=run_id,
        phase=phase,
        concurrency=concurrency,
        hour=local_hour(started, timezone),
        started_at=started.astimezone(UTC),
        ok=gen.ok,
    )
    for column, value in gen.measurements().items():
        setattr(row, column, value)
    return row


def store(engine: Engine, row: Probe, gen: Generation | None = None) -> None:
    """Commit one probe on its own so nothing measured is lost on a crash, with the version
    of the model that answered it (`gen`'s identity, hosting.versions)."""
    with session_scope(engine) as session:
        if gen is not None and gen.ok:
            row.model_version_id = record_version(session, row.model_id, gen.identity)
        session.add(row)


def _model_id(engine: Engine, spec: ModelSpec) -> int:
    with session_scope(engine) as session:
        rec = ensure_model(session, spec)
        assert rec.id is not None
        return rec.id


def select_models(cfg: SlamConfig, models: list[str] | None) -> list[ModelSpec]:
    """The configured models to probe (all when `models` is None); unknown names are an error."""
    if not cfg.models:
        raise SlamError("no models configured: add [[models]] entries to slam.toml")
    if not models:
        return list(cfg.models)
    return [cfg.model(name) for name in models]


async def probe_model(
    engine: Engine,
    cfg: SlamConfig,
    spec: ModelSpec,
    warmup: int = 10,
    measure: int = 10,
    request: GenerationRequest | None = None,
    on_request: Callable[[], object] | None = None,
) -> ProbeSummary:
    """Warm one model up, then measure it; every request is stored as it completes."""
    run_id = f"probe-{uuid.uuid4().hex[:12]}"
    model_id = _model_id(engine, spec)
    tz = cfg.schedule.timezone
    req = request or probe_request(cfg)
    try:
        backend = create_backend(spec)
    except Exception as exc:  # missing GGUF, bad host: the model is unavailable this hour
        gen = Generation(text="", backend=spec.backend, model=spec.name, error=str(exc))
        store(engine, probe_row(model_id, run_id, "measure", datetime.now(UTC), gen, tz))
        return ProbeSummary(spec.name, run_id, 1, 0, None, None, None, None, None, None, [str(exc)])
    timings: list[RequestTiming] = []
    errors: list[str] = []
    meter = GpuMeter(await asyncio.to_thread(telemetry_for, spec, cfg), cfg.telemetry.interval_s)
    measure_started = datetime.now(UTC)
    run_t0 = time.perf_counter()

    async def one(phase: str) -> None:
        started, t0, gen = await timed_generate(backend, req, spec)
        store(engine, probe_row(model_id, run_id, phase, started, gen, tz), gen)
        if on_request is not None:
            on_request()
        if phase == "measure":
            timings.append(request_timing(gen, t0 - run_t0))
            if gen.error and gen.error not in errors:
                errors.append(gen.error)

    try:
        for _ in range(warmup):
            await one("warmup")
        measure_started = datetime.now(UTC)
        async with meter:  # the GPU's energy over the measure phase only
            for _ in range(measure):
                await one("measure")
    finally:
        await backend.aclose()
        if meter.source is not None:
            meter.source.close()
    s = summarize(timings)
    energy = _store_energy(engine, model_id, run_id, measure_started, meter, timings)
    ok_time = sum(t.latency_s or 0.0 for t in timings if t.ok)
    ok_tokens = sum(t.output_tokens or 0 for t in timings if t.ok)
    return ProbeSummary(
        model=spec.name,
        run_id=run_id,
        n=s.n,
        n_ok=s.n_ok,
        latency_p50_s=s.latency[50],
        latency_p90_s=s.latency[90],
        ttft_p50_s=s.ttft[50],
        tpot_p50_s=s.tpot[50],
        # Single-stream speed: tokens over time spent generating (not over idle gaps).
        output_tokens_per_s=ok_tokens / ok_time if ok_time > 0 and ok_tokens else None,
        mean_output_tokens=s.mean_output_tokens,
        errors=errors,
        j_per_output_token=energy.joules_per_output_token if energy else None,
    )


def _store_energy(
    engine: Engine,
    model_id: int,
    run_id: str,
    started: datetime,
    meter: GpuMeter,
    timings: list[RequestTiming],
    phase: str = "measure",
) -> GpuEnergy | None:
    """The batch's `gpu_energy` row, when the GPU was read before and after it."""
    if meter.window is None:
        return None
    ok = [t for t in timings if t.ok]
    tokens = [t.output_tokens for t in ok if t.output_tokens is not None]
    row = energy_row(
        model_id, run_id, phase, started, meter.window, len(ok), sum(tokens) if tokens else None
    )
    with session_scope(engine) as session:
        session.add(row)
    return row


async def run_probes(
    engine: Engine,
    cfg: SlamConfig,
    models: list[str] | None = None,
    warmup: int = 10,
    measure: int = 10,
    progress: bool = True,
) -> list[ProbeSummary]:
    """Probe each configured model in turn (one at a time, so they do not contend)."""
    if warmup < 0 or measure < 1:
        raise SlamError(f"need warmup ≥ 0 and measure ≥ 1 (got warmup={warmup}, measure={measure})")
    specs = select_models(cfg, models)
    request = probe_request(cfg)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(specs) * (warmup + measure), desc="probing", unit="req")
    summaries = []
    try:
        for spec in specs:
            if bar is not None:
                bar.set_postfix_str(spec.name)
            summaries.append(
                await probe_model(
                    engine,
                    cfg,
                    spec,
                    warmup,
                    measure,
                    request,
                    on_request=bar.update if bar is not None else None,
                )
            )
    finally:
        if bar is not None:
            bar.close()
    return summaries
