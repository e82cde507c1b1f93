"""Everything the charts and the report read, loaded once per report and only when needed.

Probe and generation data come back as numpy columns from narrow SQL selects (no ORM objects),
so a month of hourly probes for 30 models loads in well under a second. Human-rating and judge
statistics come from the evaluation modules; when they are missing or fail, the dataset is
empty and its `problems` entry says why, and the charts draw "no data yet".
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from threading import Lock, Thread
from typing import Any, Generic, TypeVar, overload

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.config import SlamConfig
from evaluation.cost import ModelCost, model_cost
from evaluation.latency_stats import RequestTiming, summarize
from evaluation.runtime_fit import RuntimeFit, fit_runtime
from evaluation.sweep import DEFAULT_SLO, SweepLevel, parse_sweep_run_id
from storage.models import Generation, ModelRecord, Probe

log = logging.getLogger(__name__)

# Core table columns: plain SQL expressions with no ORM row objects behind them.
P = Probe.__table__.c  # type: ignore[attr-defined]
G = Generation.__table__.c  # type: ignore[attr-defined]
M = ModelRecord.__table__.c  # type: ignore[attr-defined]
T = TypeVar("T")

DEFAULT_REQUEST_TOKENS = (1000.0, 1000.0)  # the study's worked example when nothing is measured


@dataclass(frozen=True)
class ModelInfo:
    id: int
    name: str
    hardware: str
    is_reference: bool


@dataclass(frozen=True)
class Columns:
    """Column arrays of one table slice; `model` holds model ids."""

    model: np.ndarray
    values: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.model.size)

    def by_model(self, column: str) -> dict[int, np.ndarray]:
        """Non-missing values of one column grouped by model id."""
        vals = self.values[column]
        keep = np.isfinite(vals)
        m, v = self.model[keep], vals[keep]
        if m.size == 0:
            return {}
        order = np.argsort(m, kind="stable")
        m, v = m[order], v[order]
        ids, starts = np.unique(m, return_index=True)
        return {int(i): part for i, part in zip(ids, np.split(v, starts[1:]), strict=True)}


@dataclass(frozen=True)
class SweepSeries:
    """The latest sweep of one model with a given number of replicas."""

    model: str
    replicas: int
    levels: list[SweepLevel]


def _columns(rows: Sequence[Any], names: list[str]) -> Columns:
    if not rows:
        return Columns(np.zeros(0, dtype=np.int64), {n: np.zeros(0) for n in names})
    # None -> nan: float arrays keep every column numeric for numpy grouping.
    arr = np.array(rows, dtype=float)
    return Columns(arr[:, 0].astype(np.int64), {n: arr[:, i + 1] for i, n in enumerate(names)})


def _fetch(engine: Engine, query: Any) -> list[tuple[Any, ...]]:
    """All rows of a numeric query as plain DBAPI tuples.

    SQLAlchemy binds the parameters (dates as the dialect stores them) but the rows come
    straight from the driver's cursor: wrapping 200,000 probe rows in Row objects and back
    cost more than the query. Only for columns the driver already returns as numbers.
    """
    with engine.connect() as conn:
        result = conn.execute(query)
        try:
            return list(result.cursor.fetchall())
        finally:
            result.close()


class cached(Generic[T]):
    """A cached property that is computed once even when two threads ask at the same time:
    the second waits for the first's value (see `ReportData.prefetch`)."""

    def __init__(self, fn: Callable[[Any], T]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> cached[T]: ...
    @overload
    def __get__(self, obj: ReportData, owner: type | None = None) -> T: ...
    def __get__(self, obj: ReportData | None, owner: type | None = None) -> T | cached[T]:
        if obj is None:
            return self
        values = obj.__dict__
        if self.name in values:
            return values[self.name]
        with obj._guard:
            lock = obj._locks.setdefault(self.name, Lock())
        with lock:
            if self.name not in values:
                values[self.name] = self.fn(obj)
            return values[self.name]


class ReportData:
    """Lazily loaded, cached datasets for one report (one database snapshot)."""

    def __init__(
        self,
        engine: Engine,
        cfg: SlamConfig,
        window_days: int | None = 30,
        requests_per_day: float = 1000,
        now: datetime | None = None,
    ):
        self.engine = engine
        self.cfg = cfg
        self.window_days = window_days
        self.requests_per_day = requests_per_day
        self.now = now or datetime.now(UTC)
        self.problems: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self._guard = Lock()
        self._locks: dict[str, Lock] = {}

    def prefetch(self, *names: str) -> Thread | None:
        """Compute these datasets on a background thread while the caller draws others.

        Database reads and numpy (bootstrap fits) release the GIL for much of their time, so
        loading the human ratings overlaps drawing the latency charts on a 2-CPU host. Not for
        in-memory SQLite, whose connections do not share one database across threads.
        """
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            return None

        def run() -> None:
            cpu = time.thread_time()
            for name in names:
                try:
                    getattr(self, name)
                except Exception:  # the main thread will meet (and report) it again
                    log.debug("prefetching %s failed", name, exc_info=True)
            self.timings["prefetch thread CPU"] = time.thread_time() - cpu

        thread = Thread(target=run, name="report-prefetch", daemon=True)
        thread.start()
        return thread

    def _timed(self, name: str, fn: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.timings[name] = time.perf_counter() - t0

    @property
    def since(self) -> datetime | None:
        return self.now - timedelta(days=self.window_days) if self.window_days else None

    # -- models ---------------------------------------------------------------------------
    @cached
    def models(self) -> dict[int, ModelInfo]:
        """Every model in the database, with hardware and reference flag from the config when
        it is still configured (the config is what the team is deciding about now)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(M.id, M.name, M.hardware, M.is_reference)).all()
        specs = {m.name: m for m in self.cfg.models}
        ref = self.cfg.reference.name if self.cfg.reference else None
        if ref not in {name for _, name, _, _ in rows}:
            ref = None  # the configured reference has no data yet: trust the stored flag
        out = {}
        for mid, name, hardware, is_ref in rows:
            spec = specs.get(name)
            out[mid] = ModelInfo(
                id=mid,
                name=name,
                hardware=spec.hardware if spec else hardware,
                is_reference=(name == ref) if ref else bool(is_ref),
            )
        return out

    @property
    def reference(self) -> str | None:
        return next((m.name for m in self.models.values() if m.is_reference), None)

    def name(self, model_id: int) -> str:
        info = self.models.get(model_id)
        return info.name if info else f"model-{model_id}"

    def named(self, groups: dict[int, T]) -> dict[str, T]:
        return {self.name(k): v for k, v in groups.items()}

    # -- probes ---------------------------------------------------------------------------
    # What the charts read (TTFT is not charted: TPOT and latency already account for it).
    PROBE_COLS = ("hour", "latency_s", "tpot_s", "output_tokens", "prompt_tokens")

    @cached
    def _measure_probes(self) -> Columns:
        """Measure-phase probes in the window, successful or not (`ok` is 1.0 or 0.0)."""

        def load() -> Columns:
            cols = [P[c] for c in ("ok", *self.PROBE_COLS)]
            q = select(P.model_id, *cols).where(P.phase == "measure")
            if self.since is not None:
                q = q.where(P.started_at >= self.since)
            return _columns(_fetch(self.engine, q), ["ok", *self.PROBE_COLS])

        return self._timed("probes", load)

    @cached
    def probes(self) -> Columns:
        """Successful measure-phase probes in the window."""
        cols = self._measure_probes
        ok = cols.values["ok"] == 1
        return Columns(cols.model[ok], {c: cols.values[c][ok] for c in self.PROBE_COLS})

    @cached
    def availability(self) -> dict[str, tuple[int, int]]:
        """model -> (ok, total) measure probes in the window (failures are availability data)."""
        cols = self._measure_probes
        if not len(cols):
            return {}
        total = np.bincount(cols.model)
        ok = np.bincount(cols.model, weights=cols.values["ok"] == 1)
        return {self.name(int(m)): (int(ok[m]), int(total[m])) for m in np.flatnonzero(total)}

    # -- generations ----------------------------------------------------------------------
    @cached
    def generations(self) -> Columns:
        """Token counts and latency of successful generations (all time: they are the corpus)."""

        def load() -> Columns:
            q = select(
                G.model_id,
                G.prompt_tokens,
                G.output_tokens,
                G.latency_s,
            ).where(G.error.is_(None))
            return _columns(_fetch(self.engine, q), ["prompt_tokens", "output_tokens", "latency_s"])

        return self._timed("generations", load)

    @cached
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
    @cached
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
                label, conc, value if kind == "r" else None, summarize(timings, DEFAULT_SLO)
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

    # -- throughput, cost, idealized runtime ------------------------------------------------
    @cached
    def throughput(self) -> dict[str, tuple[float, str]]:
        """model -> (output tokens/s the price is based on, source)."""
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
        for s in self.sweeps:
            peak = max((lv.summary.output_tokens_per_s for lv in s.levels), default=0.0)
            if s.replicas == 1 and peak > out.get(s.model, (0.0, ""))[0]:
                out[s.model] = (peak, "sweep peak")
        return out

    @cached
    def costs(self) -> dict[str, ModelCost]:
        """Cost figures for every known model at the average request size."""
        prompt, output, _ = self.request_tokens
        out = {}
        for info in sorted(self.models.values(), key=lambda m: m.name):
            tps, source = self.throughput.get(info.name, (None, "not measured"))
            hardware = info.hardware
            if hardware != "api" and hardware not in self.cfg.pricing.instances:
                self.problems.setdefault("costs", f"no price for hardware '{hardware}'")
            out[info.name] = model_cost(
                model=info.name,
                hardware=hardware,
                pricing=self.cfg.pricing,
                tokens_per_s=tps,
                throughput_source=source,
                prompt_tokens=prompt,
                output_tokens=output,
                requests_per_day=self.requests_per_day,
            )
        return out

    @property
    def api_cost_per_request(self) -> float:
        from evaluation.cost import api_cost_per_request

        prompt, output, _ = self.request_tokens
        return api_cost_per_request(prompt, output, self.cfg.pricing)

    @cached
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

    # -- human ratings and judges (another area's modules) --------------------------------
    def _external(self, name: str, fn: Callable[[Session], T]) -> T | None:
        t0 = time.perf_counter()
        try:
            with Session(self.engine) as session:
                return fn(session)
        except ImportError as exc:
            self.problems[name] = f"the {exc.name or 'evaluation'} module is not available"
        except Exception as exc:  # statistics on odd data must not break the whole report
            log.warning("%s failed: %s", name, exc, exc_info=True)
            self.problems[name] = f"{type(exc).__name__}: {exc}"
        finally:
            self.timings[name] = time.perf_counter() - t0
        return None

    @cached
    def bt(self) -> Any | None:
        """Bradley–Terry result (evaluation.ratings.BTResult), or None."""

        def fn(session: Session) -> Any:
            from evaluation.ratings import bradley_terry, load_pairwise_outcomes

            outcomes = load_pairwise_outcomes(session)
            if not outcomes:
                self.problems["bt"] = "no pairwise human votes yet"
                return None
            # Same bootstrap as `slam score`, so the report's intervals match its output.
            n_boot = self.cfg.evaluation.bootstrap_rounds
            res = bradley_terry(outcomes, reference=self.reference, n_boot=n_boot)
            return res if res.ratings else None

        return self._external("bt", fn)

    @cached
    def human_scores(self) -> dict[str, Any]:
        """model -> ScoreSummary of absolute human scores (0..10); empty when none."""

        def fn(session: Session) -> dict[str, Any]:
            from evaluation.human_scores import load_absolute_scores, score_summary

            scores = load_absolute_scores(session)
            if not any(len(v) for v in scores.values()):
                self.problems["human_scores"] = "no human scores yet"
                return {}
            return dict(score_summary(scores, n_boot=self.cfg.evaluation.bootstrap_rounds))

        return self._external("human_scores", fn) or {}

    @cached
    def method_scores(self) -> dict[str, dict[str, float]]:
        """method -> model -> mean automated score; empty when none."""

        def fn(session: Session) -> dict[str, dict[str, float]]:
            from evaluation.metaeval import method_model_scores

            out = {m: s for m, s in method_model_scores(session).items() if s}
            if not out:
                self.problems["method_scores"] = "no judge or similarity scores yet"
            return out

        return self._external("method_scores", fn) or {}

    @cached
    def human_means(self) -> tuple[dict[str, float], str]:
        """The human quality signal per model: mean absolute score, else BT rating."""
        if self.human_scores:
            return {
                m: s.mean for m, s in self.human_scores.items() if s.n
            }, "human mean score (0–10)"
        if self.bt is not None:
            return {m: r.rating for m, r in self.bt.ratings.items()}, "human Bradley–Terry rating"
        return {}, "human score"

    @cached
    def agreement(self) -> list[Any]:
        """MethodAgreement per automated method vs the human ranking."""
        human, _ = self.human_means
        if not human or not self.method_scores:
            return []

        def fn(_session: Session) -> list[Any]:
            from evaluation.metaeval import meta_evaluate

            ev = self.cfg.evaluation
            return list(meta_evaluate(self.method_scores, human, k=ev.bottom_k, p=ev.rbo_p))

        return self._external("agreement", fn) or []

    @cached
    def quality(self) -> dict[str, tuple[float, float, float, str]]:
        """model -> (value, CI low, CI high, scale): BT ratings, else human mean scores."""
        if self.bt is not None:
            return {
                m: (r.rating, r.lo, r.hi, "Bradley–Terry rating")
                for m, r in self.bt.ratings.items()
            }
        if self.human_scores:
            return {
                m: (s.mean, s.lo, s.hi, "mean human score (0–10)")
                for m, s in self.human_scores.items()
                if s.n and all(math.isfinite(x) for x in (s.mean, s.lo, s.hi))
            }
        return {}
