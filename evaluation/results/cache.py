"""Data-versioned results: a dataset or chart computed once per version of what it reads.

The data version of a table is `(row count, max id)` for the append-only record tables
(votes, probes, generations, judgements...: rows are never updated) and a hash of the rows for
the few small tables that are updated in place (models, rounds, experiments). A result's key is
its name, the versions of the tables it declares it reads, a fingerprint of the configuration
and its parameters; unchanged inputs give the same key, so the value is served from the cache.

One `ResultCache` per process (in memory, LRU) serves the bot and the web front; the CLI adds a
disk layer (`.slam/cache` by default), so `slam report` in a new process reuses what the last
run computed. The results service (evaluation.results.service) and the report's charts are its only
users: there is one cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from core.config import SlamConfig
from core.env import environment

log = logging.getLogger(__name__)

# Tables whose rows are only ever inserted: (count, max id) identifies their content.
APPEND_ONLY = (
    "vote",
    "rating_pair",
    "generation",
    "probe",
    "judge_score",
    "similarity_score",
    "pair_message",
    "rater",
    "gpu_energy",
    "model_version",
    "vote_comment",
)
# Small tables updated in place: hashed whole.
MUTABLE = ("model", "rating_round", "experiment")
TABLES = APPEND_ONLY + MUTABLE

Version = tuple[Any, ...]


def table_versions(engine: Engine) -> dict[str, Version]:
    """The data version of every table the results read: one query for all the append-only
    tables (a count and a max id each), one per small mutable table."""
    from storage.models import SQLModel

    meta = SQLModel.metadata.tables
    appended = [t for t in APPEND_ONLY if t in meta]
    cols = []
    for t in appended:
        cols.append(select(func.count()).select_from(meta[t]).scalar_subquery())
        cols.append(select(func.max(meta[t].c.id)).scalar_subquery())
    out: dict[str, Version] = {"database": database_identity(engine)}
    with engine.connect() as conn:
        row = conn.execute(select(*cols)).one()
        for i, t in enumerate(appended):
            out[t] = (int(row[2 * i]), row[2 * i + 1])
        for t in MUTABLE:
            if t not in meta:
                continue
            table = meta[t]
            h = hashlib.sha256()
            for r in conn.execute(select(table).order_by(table.c.id)):
                h.update(repr(tuple(r)).encode())
            out[t] = (h.hexdigest()[:16],)
    return out


_CODE: str | None = None


def code_version() -> str:
    """A hash of the code that computes and draws results (evaluation/, core/, core/data's
    tables): a cache on disk never serves what an older version computed."""
    global _CODE
    if _CODE is None:
        root = Path(__file__).resolve().parents[2]  # the repository (evaluation/results/cache.py)
        h = hashlib.sha256()
        # core/data's tables too: the masker's names decide Results.withheld.
        code = [*root.glob("evaluation/**/*.py"), *root.glob("core/*.py"),
                *root.glob("core/data/*.json")]  # fmt: skip
        for path in sorted(code):
            h.update(path.name.encode())
            h.update(path.read_bytes())
        _CODE = h.hexdigest()[:16]
    return _CODE


def database_identity(engine: Engine) -> Version:
    """Which database this is, beyond its URL: a database dropped and created again under the
    same name (or a file replaced at the same path) is another one, whatever its counts."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        db = url.database
        if not db or db == ":memory:":
            return ("memory", id(engine))
        try:
            st = os.stat(db)
        except OSError:
            return ("sqlite", db)
        return ("sqlite", st.st_dev, st.st_ino)
    if url.get_backend_name() == "postgresql":
        with engine.connect() as conn:
            oid = conn.execute(
                text("SELECT oid FROM pg_database WHERE datname = current_database()")
            ).scalar()
        return ("postgresql", int(oid or 0))
    return (url.get_backend_name(),)


def config_fingerprint(cfg: SlamConfig) -> str:
    """A short hash of the whole configuration and of the code: any change recomputes every
    result."""
    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, default=str)
    return hashlib.sha256((blob + code_version()).encode()).hexdigest()[:16]


def key_digest(key: tuple[Any, ...]) -> str:
    return hashlib.sha256(repr(key).encode()).hexdigest()[:32]


class ResultCache:
    """An LRU of results in memory, optionally backed by a directory of pickles.

    Thread-safe. Values must be picklable for the disk layer (numpy arrays, dataclasses).
    """

    def __init__(
        self,
        max_entries: int = 512,
        disk_dir: Path | None = None,
        disk_budget_bytes: int = 512 * 1024 * 1024,
    ):
        self.max_entries = max_entries
        self.disk_dir = disk_dir
        self.disk_budget_bytes = disk_budget_bytes
        self._mem: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _path(self, digest: str) -> Path | None:
        return None if self.disk_dir is None else self.disk_dir / f"{digest}.pkl"

    def get(self, key: tuple[Any, ...]) -> tuple[bool, Any]:
        digest = key_digest(key)
        with self._lock:
            if digest in self._mem:
                self._mem.move_to_end(digest)
                self.hits += 1
                return True, self._mem[digest]
        path = self._path(digest)
        if path is not None and path.exists():
            try:
                with path.open("rb") as f:
                    value = pickle.load(f)
            except Exception:  # a torn or stale file is a miss, never an error
                log.debug("unreadable cache file %s", path, exc_info=True)
            else:
                self._remember(digest, value)
                with self._lock:
                    self.hits += 1
                return True, value
        with self._lock:
            self.misses += 1
        return False, None

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        digest = key_digest(key)
        self._remember(digest, value)
        path = self._path(digest)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
            self._prune()
        except Exception as exc:  # a read-only or full disk costs speed, never a report
            log.warning("result cache disabled: cannot write in %s (%s)", path.parent, exc)
            self.disk_dir = None

    def _remember(self, digest: str, value: Any) -> None:
        with self._lock:
            self._mem[digest] = value
            self._mem.move_to_end(digest)
            while len(self._mem) > self.max_entries:
                self._mem.popitem(last=False)

    def _prune(self) -> None:
        """Keep the disk layer under its budget, dropping the least recently written."""
        assert self.disk_dir is not None
        files = sorted(self.disk_dir.glob("*.pkl"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for p in files:
            if total <= self.disk_budget_bytes:
                break
            total -= p.stat().st_size
            p.unlink(missing_ok=True)

    def clear(self) -> None:
        with self._lock:
            self._mem.clear()


# The process's cache: the bot, the web front and in-process reports share it.
PROCESS_CACHE = ResultCache()


def default_cache_dir() -> Path:
    """Where the CLI keeps its disk cache: `SLAM_CACHE_DIR`, else `.slam/cache`."""
    return Path(environment().slam_cache_dir or ".slam/cache")
