"""The posterior behind informative pairs, kept per process and shared by every request of a
replica (bot.rating.selection reads it; the pure algorithm is evaluation.human.active).

A page load needs the decision and the selection plan (the Laplace posterior over the models
and the pairs' utilities). Building them reads the results service and fits Bradley–Terry, far
too much for every `GET /rate`. So one state per key (feature, models, configuration) lives
here with the data version it reflects (`data_version`: the newest vote id, and the ids and
counts of what else the decision reads). A request reads it:

- same version: the state as it is (a dictionary look-up);
- only newer votes, fewer than `STALE_SHARE` of the counted votes the state reflects (at
  least one): the state as it is, and one refresh is started on a worker thread (never more
  than one per key, at most every `REFRESH_S` and at most `REFRESH_SHARE` of the time: a
  refresh is Python holding the GIL the requests need): a page may lag a few votes behind on
  a big database, where they change nothing a rater would notice, never on a small one;
- anything else (the first request, more new votes than that, a new model, round, probe or
  generation): built now; concurrent requests for the same key wait for the one build.

A refresh over the same models warm-starts Newton from the previous mean (a vote changes one
pair's counts: a step or two instead of a full fit); anything beyond new votes (the rest of
the version changed, other models) is a full refit. The results service's own cache keeps its
vote tally incremental, so a refresh reads only the new events. All of it runs on the
caller's worker thread or the refresher's, never on the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col

from storage.models import Generation, ModelRecord, ModelVersion, Probe, RatingRound, Vote

log = logging.getLogger(__name__)
T = TypeVar("T")
STALE_SHARE = 0.01  # a state may be this share of its counted votes behind while it refreshes
REFRESH_S = 0.5  # at most one background refresh per key in this many seconds …
REFRESH_SHARE = 0.1  # … and background refreshes take at most this share of the time


@dataclass(frozen=True)
class Version:
    """What a state reflects: the newest vote id, and what else the decision reads."""

    votes: int
    rest: tuple[Any, ...]


@dataclass(frozen=True)
class State(Generic[T]):
    value: T
    version: Version
    counted: int  # counted votes the value reflects (the staleness allowance's base)
    made: float  # time.monotonic() when it was built


# (previous state, the version being built) -> (value, counted votes it reflects)
Build = Callable[["State[T] | None", Version], tuple[T, int]]


_VERSION = select(  # built once: it takes longer to build than to run
    select(func.max(Vote.id)).scalar_subquery(),
    select(func.max(Probe.id)).scalar_subquery(),
    select(func.max(Generation.id)).scalar_subquery(),
    select(func.max(ModelRecord.id)).scalar_subquery(),
    select(func.count()).select_from(ModelRecord).scalar_subquery(),
    select(func.max(RatingRound.id)).scalar_subquery(),
    select(func.count()).select_from(RatingRound)
    .where(col(RatingRound.status) == "open").scalar_subquery(),
    select(func.max(ModelVersion.id)).scalar_subquery(),  # a model's new version: warm-up
)  # fmt: skip


def data_version(engine: Engine, conn: Connection | None = None) -> Version:
    """One cheap query: max ids (primary-key look-ups) and the small tables' counts (`conn`:
    on that connection, inside its transaction; else on one of the engine's own)."""
    if conn is not None:
        row = tuple(conn.execute(_VERSION).one())
    else:
        with engine.connect() as own:
            row = tuple(own.execute(_VERSION).one())
    return Version(int(row[0] or 0), row[1:])


class SharedPosteriors:
    """The states of one database (engine) in this process; thread-safe."""

    def __init__(self, engine: Engine, stale_share: float = STALE_SHARE,
                 refresh_s: float = REFRESH_S):  # fmt: skip
        self._engine = weakref.ref(engine)
        self.stale_share = stale_share
        self.refresh_s = refresh_s
        self._states: dict[Hashable, State[Any]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._pending: set[Hashable] = set()
        self._last_refresh: dict[Hashable, float] = {}
        self._guard = threading.Lock()
        self._memo: dict[Hashable, Any] = {}
        self.builds = 0  # how many states were built (synchronously or refreshed)
        self.refreshes = 0  # of which in the background

    def state(self, key: Hashable) -> State[Any] | None:
        return self._states.get(key)

    def allowance(self, state: State[Any]) -> int:
        return max(0, int(self.stale_share * state.counted))

    def get(self, key: Hashable, version: Version, build: Build[T]) -> T:
        """The value for `key` at `version` (see the module docstring for when it may lag)."""
        cur: State[T] | None = self._states.get(key)
        if cur is not None and cur.version == version:
            return cur.value
        if (cur is not None and cur.version.rest == version.rest
                and 0 < version.votes - cur.version.votes <= self.allowance(cur)):  # fmt: skip
            self._refresh_later(key, build)
            return cur.value
        return self._build(key, version, build).value

    def _lock(self, key: Hashable) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _build(self, key: Hashable, version: Version, build: Build[T]) -> State[T]:
        """Build under the key's lock; a caller that waited gets the state built meanwhile.
        `version` is read before the data: a vote stored during the build makes the state
        look older than it is (refreshed again), never newer."""
        with self._lock(key):
            cur: State[T] | None = self._states.get(key)
            if cur is not None and cur.version == version:
                return cur
            value, counted = build(cur, version)
            state = State(value, version, counted, time.monotonic())
            self._states[key] = state
            self.builds += 1
            return state

    def _refresh_later(self, key: Hashable, build: Build[T]) -> None:
        now = time.monotonic()
        with self._guard:
            if key in self._pending or now - self._last_refresh.get(key, -1e9) < self.refresh_s:
                return
            self._pending.add(key)
            self._last_refresh[key] = now
        _executor().submit(self._refresh, key, build)

    def _refresh(self, key: Hashable, build: Build[Any]) -> None:
        t0 = time.monotonic()
        try:
            engine = self._engine()
            if engine is not None:
                self._build(key, data_version(engine), build)
                self.refreshes += 1
        except Exception as exc:  # a failed refresh leaves the previous state; the next page
            log.warning("refreshing the shared posterior failed (%s: %s); the next page "
                        "retries", type(exc).__name__, str(exc)[:200])  # fmt: skip
        finally:
            took = time.monotonic() - t0
            with self._guard:
                self._pending.discard(key)
                # The next refresh waits so that refreshing takes at most REFRESH_SHARE.
                wait = max(self.refresh_s, took / REFRESH_SHARE)
                self._last_refresh[key] = time.monotonic() - self.refresh_s + wait

    def memo(self, key: Hashable, build: Callable[[], T]) -> T:
        """A value that never changes for its key (the key says what it depends on), e.g. an
        open round's answers under the generations' version: built once per process."""
        with self._guard:
            if key in self._memo:
                return self._memo[key]
        value = build()
        with self._guard:
            if len(self._memo) > 256:
                self._memo.clear()
            self._memo[key] = value
        return value

    def clear(self) -> None:
        with self._guard:
            self._states.clear()
            self._last_refresh.clear()
            self._memo.clear()


_SHARED: weakref.WeakKeyDictionary[Engine, SharedPosteriors] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()
_EXECUTOR: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    with _SHARED_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slam-posterior")
        return _EXECUTOR


def shared(engine: Engine) -> SharedPosteriors:
    """This process's states for one database (kept as long as the engine lives)."""
    with _SHARED_LOCK:
        got = _SHARED.get(engine)
        if got is None:
            got = _SHARED[engine] = SharedPosteriors(engine)
        return got


def wait_idle(timeout: float = 30.0) -> None:
    """Wait until queued background refreshes are done (tests and benchmarks)."""
    ex = _executor()
    ex.submit(lambda: None).result(timeout=timeout)
