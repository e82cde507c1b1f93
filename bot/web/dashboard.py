"""The live dashboard's data: the decision, the leaderboard and the charts, all from the results
service (evaluation.results.service) and formatted by evaluation.results.leaderboard — the
numbers `/slam report` shows. A poll reads the tables' data versions
(evaluation.results.cache.table_versions, one query); only when they changed is a new `Results`
snapshot read (its datasets come from the process result cache when their inputs did not
change). Charts are drawn by evaluation.report.build_report (unchanged charts are served from
the same cache), at most every `[web] chart_refresh_s`, in the background, one drawing at a
time."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from core.config import SlamConfig

log = logging.getLogger(__name__)
CHARTS = ("summary", "bradley_terry", "quality_vs_cost", "latency", "cost_per_1k")
VERSION_TTL_S = 1.0


class Dashboard:
    """Cached dashboard state for one bot process."""

    def __init__(self, engine: Engine, cfg: SlamConfig, out_dir: Path | None = None,
                 clock: Callable[[], float] = time.monotonic):  # fmt: skip
        self.engine, self.cfg, self.clock = engine, cfg, clock
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if out_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="slam-dashboard-")
            out_dir = Path(self._tmp.name)
        self.out_dir = out_dir
        self._version: tuple[float, str] | None = None
        self._state: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        self.pngs: dict[str, bytes] = {}
        self.chart_info: dict[str, tuple[str, str]] = {}  # name -> (title, alt)
        self._chart_version = ""
        self._charts_at = -1e18
        self._drawing: asyncio.Task[None] | None = None

    def touch(self) -> None:
        """A vote was stored in this process: read the versions again at the next poll."""
        self._version = None

    async def version(self) -> str:
        """A short hash of the data versions of every table the results read."""
        now = self.clock()
        if self._version is not None and now - self._version[0] < VERSION_TTL_S:
            return self._version[1]
        from evaluation.results import table_versions

        versions = await asyncio.to_thread(table_versions, self.engine)
        digest = hashlib.sha256(repr(sorted(versions.items())).encode()).hexdigest()[:16]
        self._version = (now, digest)
        return digest

    async def state(self) -> dict[str, Any]:
        """The current state (recomputed only when the data changed)."""
        version = await self.version()
        async with self._lock:
            if self._state is None or self._state["data_version"] != version:
                self._state = await asyncio.to_thread(self._compute, version)
            self._maybe_draw(version)
            state = dict(self._state)
        state["charts"] = self.charts()
        state["version"] = f"{version}-{self._chart_version}"
        return state

    def _compute(self, version: str) -> dict[str, Any]:
        from evaluation.results import HEADERS, PRIOR_NOTE, Results, cells, ratings_caption

        results = Results(self.engine, self.cfg)
        rows, decision, bt = results.leaderboard, results.decision, results.ratings
        caption = ratings_caption(bt) if bt is not None else "No pairwise votes yet."
        notes = list(bt.warnings) if bt is not None else []
        if any(r.rating is not None and r.rating.bound for r in rows):
            notes.append(PRIOR_NOTE)
        return {
            "data_version": version,
            "decision": decision.text(),
            "headline": decision.headline,
            "headers": list(HEADERS),
            "rows": [cells(i, r) for i, r in enumerate(rows, 1)],
            "caption": caption,
            "notes": " ".join(notes),
            "updated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        }

    # -- charts -------------------------------------------------------------------------------
    def charts(self) -> list[dict[str, str]]:
        return [{"name": n, "url": f"/dashboard/chart/{n}.png?v={self._chart_version}",
                 "title": self.chart_info[n][0], "alt": self.chart_info[n][1]}
                for n in CHARTS if n in self.pngs]  # fmt: skip

    def _maybe_draw(self, version: str) -> None:
        if self._drawing is not None and not self._drawing.done():
            return
        if version == self._chart_version:
            return
        if self.pngs and self.clock() - self._charts_at < self.cfg.web.chart_refresh_s:
            return
        self._drawing = asyncio.get_running_loop().create_task(self._draw(version))

    async def draw_now(self) -> None:
        """Draw the charts for the current data and wait (first page load, tests)."""
        version = await self.version()
        if self._drawing is not None and not self._drawing.done():
            await self._drawing
        if version != self._chart_version:
            await self._draw(version)

    async def _draw(self, version: str) -> None:
        self._charts_at = self.clock()
        try:
            pngs, info = await asyncio.to_thread(self._render)
        except Exception:
            log.exception("dashboard charts failed")
            return
        self.pngs, self.chart_info, self._chart_version = pngs, info, version

    def _render(self) -> tuple[dict[str, bytes], dict[str, tuple[str, str]]]:
        from evaluation.charts import CHART_DESCRIPTIONS
        from evaluation.report import build_report
        from evaluation.results import Results

        results = Results(self.engine, self.cfg)
        res = build_report(self.engine, self.cfg, self.out_dir, only=list(CHARTS),
                           results=results, write_pages=False)  # fmt: skip
        pngs, info = {}, {}
        for name in CHARTS:
            path = res.charts.get(name)
            if path is None or not Path(path).exists():
                continue
            pngs[name] = Path(path).read_bytes()
            out = res.chart_info.get(name)
            title = CHART_DESCRIPTIONS.get(name, name)
            empty = f" (no data yet: {out.fills})" if out is not None and not out.has_data else ""
            info[name] = (title[:1].upper() + title[1:] + empty, f"Chart: {title}{empty}")
        return pngs, info

    async def aclose(self) -> None:
        if self._drawing is not None:
            self._drawing.cancel()
            with contextlib.suppress(BaseException):  # cancelled or failed: it is over either way
                await self._drawing
        if self._tmp is not None:
            self._tmp.cleanup()
