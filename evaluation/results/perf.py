"""The performance side of the results service: latency probes, availability, generations'
token counts, load sweeps, throughput, cost and the idealized runtime fit.

Probes, sweeps and throughput belong to the model and its host, the same for every feature
(`shared` datasets); generations, and so the cost per request, are the feature's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select

from evaluation.perf import (
    DEFAULT_SLO,
    LevelEnergy,
    ModelCost,
    RequestTiming,
    RuntimeFit,
    SweepLevel,
    electricity_cost_per_1k,
    fit_runtime,
    model_cost,
    parse_sweep_run_id,
    summarize,
)
from evaluation.results.datasets import (
    GENERATIONS,
    PROBES,
    Columns,
    DatasetBase,
    columns,
    dataset,
    fetch_rows,
)
from storage.models import Generation, GpuEnergy, Probe

P = Probe.__table__.c  # type: ignore[attr-defined]
G = Generation.__table__.c  # type: ignore[attr-defined]
E = GpuEnergy.__table__.c  # type: ignore[attr-defined]
ENERGY = ("gpu_energy",)  # GPU telemetry per probe batch and sweep level
# The share of a level's requests that must meet the SLO for it to count as a serving point.
SLO_ATTAINMENT = 0.9

DEFAULT_REQUEST_TOKENS = (1000.0, 1000.0)  # the study's worked example when nothing is measured


@dataclass(frozen=True)
class SweepSeries:
    """The latest sweep of one model with a given number of replicas."""

    model: str
    replicas: int
    levels: list[SweepLevel]


@dataclass(frozen=True)
class BestConfig:
    """A model's best measured serving configuration: the sweep level with the highest output
    throughput among those meeting the SLO (else the highest throughput, `meets_slo` False)."""

    model: str
    replicas: int
    level: SweepLevel

    @property
    def meets_slo(self) -> bool:
        return self.level.meets(SLO_ATTAINMENT)

    def describe(self) -> str:
        slo = "" if self.meets_slo else ", SLO not met"
        return f"sweep best (x{self.replicas}, {self.level.label}{slo})"


@dataclass(frozen=True)
class ModelEnergy:
    """A model's GPU energy per output token where measured, and where the figure comes from."""

    model: str
    j_per_output_token: float
    source: str  # "sweep best (x2, c=4)" or "probes (single stream)"
    mean_watts: float | None = None
    util_pct: float | None = None

    @property
    def j_per_1k_output(self) -> float:
        return self.j_per_output_token * 1000


class PerfData(DatasetBase):
    # -- probes ---------------------------------------------------------------------------
    # What the charts read (TTFT is not charted: TPOT and latency already account for it).
    PROBE_COLS = ("hour", "latency_s", "tpot_s", "output_tokens", "prompt_tokens")

    @dataset(reads=PROBES, windowed=True, shared=True)
    def _measure_probes(self) -> Columns:
        """Measure-phase probes in the window, successful or not (`ok` is 1.0 or 0.0)."""

        def load() -> Columns:
            cols = [P[c] for c in ("ok", *self.PROBE_COLS)]
            q = select(P.model_id, *cols).where(P.phase == "measure")
            if self.since is not None:
                q = q.where(P.started_at >= self.since)
            return columns(fetch_rows(self.engine, q), ["ok", *self.PROBE_COLS])

        return self._timed("probes", load)

    @dataset(reads=PROBES, windowed=True, shared=True)
    def probes(self) -> Columns:
        """Successful measure-phase probes in the window."""
        cols = self._measure_probes
        ok = cols.values["ok"] == 1
        return Columns(cols.model[ok], {c: cols.values[c][ok] for c in self.PROBE_COLS})

    @dataset(reads=PROBES, windowed=True, shared=True)
    def availability(self) -> dict[str, tuple[int, int]]:
        """model -> (ok, total) measure probes in the window (failures are availability data)."""
        cols = self._measure_probes
        if not len(cols):
            return {}
        total = np.bincount(cols.model)
        ok = np.bincount(cols.model, weights=cols.values["ok"] == 1)
        return {self.name(int(m)): (int(ok[m]), int(total[m])) for m in np.flatnonzero(total)}

    # -- generations ----------------------------------------------------------------------
    @dataset(reads=GENERATIONS)
    def generations(self) -> Columns:
        """Token counts and latency of successful generations (all time: they are the corpus),
        of the feature (and slice) when there is one: its requests set the cost per request."""

        def load() -> Columns:
            q = select(
                G.model_id,
                G.prompt_tokens,
                G.output_tokens,
                G.latency_s,
            ).where(G.error.is_(None), *self.scope.generation_conditions(G))
            return columns(
                fetch_rows(self.engine, q), ["prompt_tokens", "output_tokens", "latency_s"]
            )

        return self._timed("generations", load)

    @dataset(reads=GENERATIONS + PROBES, windowed=True)
    def request_tokens(self) -> tuple[float, float, str]:
        """Average (prompt, output) tokens of one feature request, and where it came from."""
        gens = self.generations
        ref_ids = [m.id for m in self.models.values() if m.is_reference]
        for label, mask in (
            ("reference generations", np.isin(gens.model, ref_ids)),
            ("all generations", np.ones(len(gens), dtype=bool)),
        ):
            p = gens.values["prompt_tokens"][mask]
            o = gens.values["output_tokens"][mask]
            ok = np.isfinite(p) & np.isfinite(o)
            if ok.any():
                return float(p[ok].mean()), float(o[ok].mean()), label
        p, o = self.probes.values["prompt_tokens"], self.probes.values["output_tokens"]
        ok = np.isfinite(p) & np.isfinite(o)
        if ok.any():
            return float(p[ok].mean()), float(o[ok].mean()), "probes"
        return (*DEFAULT_REQUEST_TOKENS, "the study's 1K-in + 1K-out example")

    # -- sweeps ---------------------------------------------------------------------------
    @dataset(reads=PROBES + ENERGY, shared=True)
    def sweeps(self) -> list[SweepSeries]:
        """The latest sweep per (model, replica count), summarised per load level."""
        return self._timed("sweeps", self._load_sweeps)

    def _load_sweeps(self) -> list[SweepSeries]:
        with self.engine.connect() as conn:
            runs = conn.execute(
                select(P.model_id, P.run_id, func.max(P.started_at))
                .where(P.phase == "sweep")
                .group_by(P.model_id, P.run_id)
            ).all()
            latest: dict[tuple[int, int], tuple[Any, str]] = {}
            for mid, run_id, last in runs:
                parsed = parse_sweep_run_id(run_id)
                if parsed is None:
                    continue
                base, replicas, _, _ = parsed
                key = (mid, replicas)
                if key not in latest or last > latest[key][0]:
                    latest[key] = (last, base)
            wanted = {
                run_id
                for mid, run_id, _ in runs
                if (p := parse_sweep_run_id(run_id)) and latest.get((mid, p[1]), (0, ""))[1] == p[0]
            }
            if not wanted:
                return []
            rows = conn.execute(
                select(
                    P.model_id,
                    P.run_id,
                    P.concurrency,
                    P.started_at,
                    P.ok,
                    P.latency_s,
                    P.ttft_s,
                    P.output_tokens,
                    P.prompt_tokens,
                ).where(P.phase == "sweep", P.run_id.in_(sorted(wanted)))
            ).all()
            energy = {
                r[0]: LevelEnergy(*r[1:])
                for r in conn.execute(
                    select(
                        E.run_id,
                        E.joules,
                        E.joules_per_output_token,
                        E.joules_per_request,
                        E.mean_watts,
                        E.util_pct,
                        E.memory_used_mib,
                        E.source,
                    ).where(E.run_id.in_(sorted(wanted)))
                ).all()
            }
        by_level: dict[tuple[int, str], list[Any]] = {}
        for row in rows:
            by_level.setdefault((row[0], row[1]), []).append(row)
        series: dict[tuple[int, int], list[tuple[tuple[int, float], SweepLevel]]] = {}
        for (mid, run_id), level_rows in by_level.items():
            parsed = parse_sweep_run_id(run_id)
            assert parsed is not None
            _, replicas, kind, value = parsed
            t0 = min(r[3] for r in level_rows)
            timings = [
                RequestTiming(
                    start_s=(r[3] - t0).total_seconds(),
                    latency_s=r[5],
                    ttft_s=r[6],
                    output_tokens=r[7],
                    prompt_tokens=r[8],
                    ok=bool(r[4]),
                )
                for r in level_rows
            ]
            conc = max(r[2] for r in level_rows)
            label = f"c={int(value)}" if kind == "c" else f"{value:.3g}/s"
            level = SweepLevel(
                label,
                conc,
                value if kind == "r" else None,
                summarize(timings, DEFAULT_SLO),
                replicas=replicas,
                energy=energy.get(run_id),
            )
            # Concurrency levels first (by concurrency), then rate levels by rate.
            order = (0 if kind == "c" else 1, value)
            series.setdefault((mid, replicas), []).append((order, level))
        out = [
            SweepSeries(
                self.name(mid), replicas, [lv for _, lv in sorted(levels, key=lambda x: x[0])]
            )
            for (mid, replicas), levels in series.items()
        ]
        return sorted(out, key=lambda s: (s.model, s.replicas))

    # -- throughput, energy, cost, idealized runtime ---------------------------------------
    @dataset(reads=PROBES + ENERGY, shared=True)
    def best_configs(self) -> dict[str, BestConfig]:
        """model -> its best measured configuration (replicas, load) over its latest sweeps."""
        out: dict[str, BestConfig] = {}
        for s in self.sweeps:
            for lv in s.levels:
                if lv.summary.mean_output_tokens is None or lv.summary.output_tokens_per_s <= 0:
                    continue
                cand = BestConfig(s.model, s.replicas, lv)
                best = out.get(s.model)
                key = (cand.meets_slo, lv.summary.output_tokens_per_s)
                if best is None or key > (best.meets_slo, best.level.summary.output_tokens_per_s):
                    out[s.model] = cand
        return out

    @dataset(reads=PROBES + ENERGY, windowed=True, shared=True)
    def throughput(self) -> dict[str, tuple[float, str]]:
        """model -> (output tokens/s the price is based on, source): the best sweep
        configuration when one was measured, else single-stream probes."""
        out: dict[str, tuple[float, str]] = {}
        cols = self.probes
        both = np.isfinite(cols.values["output_tokens"]) & np.isfinite(cols.values["latency_s"])
        if both.any():
            ids = cols.model[both]
            toks = np.bincount(ids, weights=cols.values["output_tokens"][both])
            secs = np.bincount(ids, weights=cols.values["latency_s"][both])
            for mid in np.unique(ids):
                if secs[mid] > 0 and toks[mid] > 0:
                    out[self.name(int(mid))] = (
                        float(toks[mid] / secs[mid]),
                        "probes (single stream)",
                    )
        for name, best in self.best_configs.items():
            tps = best.level.summary.output_tokens_per_s
            if best.meets_slo or tps > out.get(name, (0.0, ""))[0]:
                out[name] = (tps, best.describe())
        return out

    @dataset(reads=PROBES + ENERGY, windowed=True, shared=True)
    def energy(self) -> dict[str, ModelEnergy]:
        """model -> GPU joules per output token where measured: at the best configuration's
        level when the sweep read the GPU, else over the probe batches in the window."""
        out: dict[str, ModelEnergy] = {}
        for name, best in self.best_configs.items():
            e = best.level.energy
            if e is not None and e.j_per_output_token is not None:
                out[name] = ModelEnergy(
                    name, e.j_per_output_token, best.describe(), e.mean_watts, e.util_pct
                )
        q = select(E.model_id, E.joules, E.output_tokens, E.duration_s, E.util_pct).where(
            E.phase == "measure", E.joules.is_not(None), E.output_tokens > 0
        )
        if self.since is not None:
            q = q.where(E.started_at >= self.since)
        rows = fetch_rows(self.engine, q)
        by_model: dict[int, list[tuple[Any, ...]]] = {}
        for r in rows:
            by_model.setdefault(int(r[0]), []).append(r)
        for mid, rs in by_model.items():
            name = self.name(mid)
            if name in out:
                continue
            joules = sum(float(r[1]) for r in rs)
            tokens = sum(int(r[2]) for r in rs)
            secs = sum(float(r[3]) for r in rs)
            utils = [float(r[4]) for r in rs if r[4] is not None]
            out[name] = ModelEnergy(
                name,
                joules / tokens,
                "probes (single stream)",
                joules / secs if secs > 0 else None,
                sum(utils) / len(utils) if utils else None,
            )
        return out

    @dataset(reads=GENERATIONS + PROBES + ENERGY, windowed=True)
    def costs(self) -> dict[str, ModelCost]:
        """Cost figures for every known model at the average request size (electricity added
        where `[pricing] electricity_per_kwh` is set and the energy was measured)."""
        prompt, output, _ = self.request_tokens
        pricing = self.cfg.pricing
        out = {}
        for info in sorted(self.models.values(), key=lambda m: m.name):
            tps, source = self.throughput.get(info.name, (None, "not measured"))
            hardware = info.hardware
            if hardware != "api" and hardware not in pricing.instances:
                self.problems.setdefault("costs", f"no price for hardware '{hardware}'")
            energy = self.energy.get(info.name)
            j_per_token = energy.j_per_output_token if energy is not None else None
            out[info.name] = model_cost(
                model=info.name,
                hardware=hardware,
                pricing=pricing,
                tokens_per_s=tps,
                throughput_source=source,
                prompt_tokens=prompt,
                output_tokens=output,
                requests_per_day=self.requests_per_day,
                j_per_output_token=j_per_token,
                electricity_per_1k=electricity_cost_per_1k(
                    j_per_token, pricing.electricity_per_kwh, pricing.pue
                )
                if hardware != "api"
                else None,
            )
        return out

    @property
    def api_cost_per_request(self) -> float:
        from evaluation.perf import api_cost_per_request

        prompt, output, _ = self.request_tokens
        return api_cost_per_request(prompt, output, self.cfg.pricing)

    @dataset(reads=GENERATIONS + PROBES, windowed=True)
    def runtime_fits(self) -> dict[str, RuntimeFit]:
        """Per-model idealized runtime from single-stream probes and generations."""

        def load() -> dict[str, RuntimeFit]:
            p, g = self.probes, self.generations
            model = np.concatenate([p.model, g.model])
            cols = {
                c: np.concatenate([p.values[c], g.values[c]])
                for c in ("prompt_tokens", "output_tokens", "latency_s")
            }
            out = {}
            for mid in np.unique(model):
                m = model == mid
                fit = fit_runtime(
                    self.name(int(mid)),
                    cols["prompt_tokens"][m],
                    cols["output_tokens"][m],
                    cols["latency_s"][m],
                )
                if fit is not None:
                    out[fit.model] = fit
            return out

        return self._timed("runtime_fit", load)
