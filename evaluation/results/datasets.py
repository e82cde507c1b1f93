"""The building blocks of the results service: narrow numeric columns straight from SQL,
thread-safe lazily computed datasets, and the base every dataset group extends (engine,
config, time window, the feature and slice it reads, the models and the reference).

Probe and generation data come back as numpy columns from narrow SQL selects (no ORM objects),
so a month of hourly probes for 30 models loads in well under a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from threading import Lock, Thread
from typing import Any, Generic, TypeVar, overload

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.config import SlamConfig
from core.features import Feature
from core.features import feature as find_feature
from evaluation.human import Scope, VotePolicy
from evaluation.results.cache import (
    PROCESS_CACHE,
    ResultCache,
    Version,
    config_fingerprint,
    table_versions,
)
from storage.models import ModelRecord

log = logging.getLogger(__name__)
M = ModelRecord.__table__.c  # type: ignore[attr-defined]
T = TypeVar("T")


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


def columns(rows: Sequence[Any], names: list[str]) -> Columns:
    if not rows:
        return Columns(np.zeros(0, dtype=np.int64), {n: np.zeros(0) for n in names})
    # None -> nan: float arrays keep every column numeric for numpy grouping.
    arr = np.array(rows, dtype=float)
    return Columns(arr[:, 0].astype(np.int64), {n: arr[:, i + 1] for i, n in enumerate(names)})


def fetch_rows(engine: Engine, query: Any) -> list[tuple[Any, ...]]:
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


# What the datasets read, for their cache keys (see evaluation.results.cache).
VOTES = ("vote", "rating_pair", "generation", "model", "model_version")
PROBES = ("probe", "model")
GENERATIONS = ("generation", "model")
JUDGES = ("judge_score", "similarity_score", "generation", "model", "experiment")


class cached(Generic[T]):
    """A lazily computed dataset, computed once per results object even when two threads ask
    at the same time (the second waits for the first's value; see `DatasetBase.prefetch`).

    With `reads` (the tables it reads) it is also data-versioned: its value is kept in the
    results object's `ResultCache` under the versions of those tables, the configuration and
    the object's parameters (`windowed`: also the probe window, bucketed to the hour;
    `shared`: the same for every feature and slice, as probes are), so an unchanged dataset is
    never computed twice. Problems recorded while computing it are
    replayed with a cached value; a value computed while an error was recorded is not kept.
    """

    def __init__(
        self,
        fn: Callable[[Any], T],
        *,
        reads: tuple[str, ...] | None = None,
        windowed: bool = False,
        shared: bool = False,
    ) -> None:
        self.fn = fn
        self.reads = reads
        self.windowed = windowed
        self.shared = shared
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> cached[T]: ...
    @overload
    def __get__(self, obj: DatasetBase, owner: type | None = None) -> T: ...
    def __get__(self, obj: DatasetBase | None, owner: type | None = None) -> T | cached[T]:
        if obj is None:
            return self
        values = obj.__dict__
        if self.name in values:
            return values[self.name]
        with obj._guard:
            lock = obj._locks.setdefault(self.name, Lock())
        with lock:
            if self.name not in values:
                values[self.name] = self._compute(obj)
            return values[self.name]

    def _compute(self, obj: DatasetBase) -> T:
        if obj.cache is None or self.reads is None:
            return self.fn(obj)
        key = obj.cache_key(self.name, self.reads, self.windowed, self.shared)
        hit, stored = obj.cache.get(key)
        if hit:
            value, problems = stored
            for k, v in problems.items():
                obj.problems.setdefault(k, v)
            return value
        before, errors = dict(obj.problems), len(obj.errors)
        value = self.fn(obj)
        if len(obj.errors) == errors:
            new = {k: v for k, v in obj.problems.items() if before.get(k) != v}
            obj.cache.put(key, (value, new))
        return value


def dataset(
    *, reads: tuple[str, ...], windowed: bool = False, shared: bool = False
) -> Callable[[Callable[[Any], T]], cached[T]]:
    """`@dataset(reads=VOTES)`: a data-versioned `cached` dataset."""

    def deco(fn: Callable[[Any], T]) -> cached[T]:
        return cached(fn, reads=reads, windowed=windowed, shared=shared)

    return deco


class DatasetBase:
    """One snapshot of the database as the results service reads it: lazily loaded, cached
    datasets (see `cached`), the problems met while loading them, and timings."""

    def __init__(
        self,
        engine: Engine,
        cfg: SlamConfig,
        window_days: int | None = 30,
        requests_per_day: float = 1000,
        now: datetime | None = None,
        as_of: datetime | None = None,
        cache: ResultCache | None = PROCESS_CACHE,
        feature: str | None = None,
        slice: str | None = None,
    ):
        self.engine = engine
        self.cfg = cfg
        # `feature`: only that feature's generations, pairs, votes and scores, and its models,
        # reference and margin (None: all the database holds and the config's models, which
        # is the one feature of a single-feature deployment); `slice`: only the inputs of that
        # slice of the feature. Probes stay per model: latency belongs to the model and host.
        self.feature = feature
        self.slice = slice
        self.feature_spec: Feature | None = (
            find_feature(cfg, feature) if feature is not None else None
        )  # an unknown name is a SlamError here, before any work
        self.window_days = window_days
        self.requests_per_day = requests_per_day
        # `as_of`: read the database as it was then (votes stored before it); the digest
        # uses it for "through the end of the day". `now` sets the probe window's end.
        self.as_of = as_of
        self.now = now or as_of or datetime.now(UTC)
        self._policy = VotePolicy.from_config(cfg.evaluation, as_of)
        self.problems: dict[str, str] = {}
        self.errors: list[str] = []  # datasets that failed (their values are not cached)
        self.timings: dict[str, float] = {}
        self.cache = cache
        self._guard = Lock()
        self._locks: dict[str, Lock] = {}
        self._versions: dict[str, Version] | None = None
        self._scope: tuple[Scope, tuple[Any, ...]] | None = None

    @property
    def scope(self) -> Scope:
        """The feature's experiment id and the slice, as every SQL reader applies them
        (evaluation.human.scope); `Scope()` for feature=None and no slice."""
        return self._scope_and_version()[0]

    def _scope_and_version(self) -> tuple[Scope, tuple[Any, ...]]:
        with self._guard:
            if self._scope is None:
                if self.feature is None and self.slice is None:
                    self._scope = (Scope(), ())
                else:
                    with Session(self.engine) as session:
                        scope = Scope.of(session, self.feature, self.slice)
                        self._scope = (scope, scope.slice_version(session))
            return self._scope

    @property
    def policy(self) -> VotePolicy:
        """Which votes count (`[evaluation]`, as of `as_of`), in this object's scope."""
        scope = self.scope
        return self._policy if scope.everything else replace(self._policy, scope=scope)

    @property
    def versions(self) -> dict[str, Version]:
        """The data version of every table, read once per results object (a snapshot)."""
        with self._guard:
            if self._versions is None:
                t0 = time.perf_counter()
                self._versions = table_versions(self.engine)
                self.timings["versions"] = time.perf_counter() - t0
            return self._versions

    @property
    def fingerprint(self) -> str:
        fp = self.__dict__.get("_fingerprint")
        if fp is None:
            fp = self.__dict__["_fingerprint"] = config_fingerprint(self.cfg)
        return str(fp)

    def cache_key(
        self, name: str, reads: tuple[str, ...], windowed: bool, shared: bool = False
    ) -> tuple[Any, ...]:
        """What a dataset's value depends on: see `cached`."""
        versions = self.versions
        scoped = (None, None, ()) if shared else (
            self.feature, self.slice, self._scope_and_version()[1])  # fmt: skip
        return (
            name,
            self.engine.url.render_as_string(hide_password=True),
            self.fingerprint,
            self.window_days,
            self.requests_per_day,
            self.as_of.isoformat() if self.as_of else None,
            *scoped,
            self.since.isoformat() if windowed and self.since else None,
            versions.get("database"),
            tuple((t, versions.get(t)) for t in reads),
        )

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
        """Start of the probe window: `window_days` before now, at the start of an hour (so a
        windowed dataset is the same all hour, and cacheable)."""
        if not self.window_days:
            return None
        start = self.now - timedelta(days=self.window_days)
        return start.replace(minute=0, second=0, microsecond=0)

    # -- models ---------------------------------------------------------------------------
    @dataset(reads=("model",))
    def models(self) -> dict[int, ModelInfo]:
        """Every model in the database, with hardware and reference flag from the config when
        it is still configured (the config is what the team is deciding about now). With a
        feature, its reference is the feature's (`core.features.Feature.reference`)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(M.id, M.name, M.hardware, M.is_reference)).all()
        specs = {m.name: m for m in self.cfg.models}
        ref = self.cfg.reference.name if self.cfg.reference else None
        if self.feature_spec is not None:
            ref = self.feature_spec.reference
        elif ref not in {name for _, name, _, _ in rows}:
            ref = None  # the configured reference has no data yet: trust the stored flag
        out = {}
        for mid, name, hardware, is_ref in rows:
            spec = specs.get(name)
            out[mid] = ModelInfo(
                id=mid,
                name=name,
                hardware=spec.hardware if spec else hardware,
                is_reference=(name == ref) if ref or self.feature_spec else bool(is_ref),
            )
        return out

    @property
    def reference(self) -> str | None:
        """The reference model: the feature's when there is one (even before it has data),
        else the configured one with data, else the stored flag."""
        if self.feature_spec is not None:
            return self.feature_spec.reference
        return next((m.name for m in self.models.values() if m.is_reference), None)

    def name(self, model_id: int) -> str:
        info = self.models.get(model_id)
        return info.name if info else f"model-{model_id}"

    def named(self, groups: dict[int, T]) -> dict[str, T]:
        return {self.name(k): v for k, v in groups.items()}
