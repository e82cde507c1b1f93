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
from urllib.parse import quote

from sqlalchemy.engine import Engine

from bot.rating import features
from core.config import SlamConfig
from core.errors import SlamError
from core.features import features as feature_list

log = logging.getLogger(__name__)
CHARTS = ("summary", "bradley_terry", "quality_vs_cost", "latency", "cost_per_1k")
# Charts that also get a phone's rendition (`<name>.phone`): 4.5 × 6 in at 240 dpi, so that
# shown 340–360 CSS px wide their 11 pt labels are 11–12 px; titles and labels wrapped, the
# notes left to the full-size chart a tap opens (evaluation.charts.figure_size).
PHONE_CHARTS = ("bradley_terry", "quality_vs_cost", "cost_per_1k")
PHONE_SIZE = (4.5, 6.0, 240)
VERSION_TTL_S = 1.0


class _View:
    """One feature's cached state and charts."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.state: dict[str, Any] | None = None
        self.pngs: dict[str, bytes] = {}
        self.chart_info: dict[str, tuple[str, str]] = {}  # name -> (title, alt)
        self.chart_version = ""
        self.charts_at = -1e18
        self.drawing: asyncio.Task[None] | None = None


class Dashboard:
    """Cached dashboard state for one bot process (per feature)."""

    def __init__(self, engine: Engine, cfg: SlamConfig, out_dir: Path | None = None,
                 clock: Callable[[], float] = time.monotonic):  # fmt: skip
        self.engine, self.cfg, self.clock = engine, cfg, clock
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if out_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="slam-dashboard-")
            out_dir = Path(self._tmp.name)
        self.out_dir = out_dir
        self._version: tuple[float, str] | None = None
        self._lock = asyncio.Lock()
        self._draw_lock = asyncio.Lock()  # one drawing at a time, whichever feature
        self._views: dict[str | None, _View] = {}
        # the switcher's features (empty with one feature: no switcher)
        self.features = [f.name for f in feature_list(cfg)] if features.several(cfg) else []

    def feature(self, name: str | None) -> str | None:
        """The feature a request names, as the results read it (None: the first; with one
        feature always None). A name that is no feature is a SlamError listing them."""
        if name is None or not self.features:
            if name is not None and features.find(self.cfg, name) is None:
                raise SlamError(features.unknown(self.cfg, name))
            return features.results_feature(self.cfg, None)
        found = features.find(self.cfg, name)
        if found is None:
            raise SlamError(features.unknown(self.cfg, name))
        return found.name

    def _view(self, feature: str | None) -> _View:
        if feature not in self._views:
            out = self.out_dir if feature is None else self.out_dir / feature
            self._views[feature] = _View(out)
        return self._views[feature]

    @property
    def pngs(self) -> dict[str, bytes]:
        """The first feature's charts (the only feature's, with one)."""
        return self._view(self.feature(None)).pngs

    def chart_names(self, feature: str | None = None) -> list[str]:
        """The charts drawn for a feature so far."""
        return list(self._view(feature).pngs)

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

    async def state(self, feature: str | None = None) -> dict[str, Any]:
        """The current state of one feature (recomputed only when the data changed)."""
        version = await self.version()
        view = self._view(feature)
        async with self._lock:
            if view.state is None or view.state["data_version"] != version:
                view.state = await asyncio.to_thread(self._compute, version, feature)
            self._maybe_draw(version, feature)
            state = dict(view.state)
        state["charts"] = self.charts(feature)
        state["version"] = f"{version}-{view.chart_version}"
        return state

    def _compute(self, version: str, feature: str | None = None) -> dict[str, Any]:
        from evaluation.results import (
            HEADERS,
            PRIOR_NOTE,
            Results,
            cells,
            ratings_caption,
            with_style,
            withheld_text,
        )

        results = Results(self.engine, self.cfg, feature=feature)
        # the report's rows: with the style-controlled column filled in (the same rule)
        rows = with_style(results.leaderboard, results.style_ratings)
        decision, bt = results.decision, results.ratings
        caption = ratings_caption(bt) if bt is not None else "No pairwise votes yet."
        notes = list(bt.warnings) if bt is not None else []
        if any(r.rating is not None and r.rating.bound for r in rows):
            notes.append(PRIOR_NOTE)
        # the leaderboard's and the report's lines: which version the numbers are based on,
        # and the answers withheld from raters because they still named a model
        notes += [f"{line}." for line in results.version_lines()]
        if withheld := withheld_text(results.withheld):
            notes.append(withheld)
        return {
            "data_version": version,
            "feature": feature or "",
            "features": list(self.features),
            "decision": decision.text(),
            "headline": decision.headline,
            "headers": list(HEADERS),
            "rows": [cells(i, r) for i, r in enumerate(rows, 1)],
            "caption": caption,
            "notes": " ".join(notes),
            "updated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        }

    # -- charts -------------------------------------------------------------------------------
    def charts(self, feature: str | None = None) -> list[dict[str, str]]:
        view = self._view(feature)
        which = f"&feature={quote(feature)}" if feature is not None else ""
        out = []
        for n in CHARTS:
            if n not in view.pngs:
                continue
            c = {"name": n, "url": f"/dashboard/chart/{n}.png?v={view.chart_version}{which}",
                 "title": view.chart_info[n][0], "alt": view.chart_info[n][1]}  # fmt: skip
            if f"{n}.phone" in view.pngs:
                c["phone_url"] = f"/dashboard/chart/{n}.phone.png?v={view.chart_version}{which}"
            out.append(c)
        return out

    def chart(self, name: str, feature: str | None = None) -> bytes | None:
        """One chart's PNG for a feature (None: not drawn); `<name>.phone`: a phone's."""
        known = name in CHARTS or name.removesuffix(".phone") in PHONE_CHARTS
        return self._view(feature).pngs.get(name) if known else None

    def _maybe_draw(self, version: str, feature: str | None) -> None:
        view = self._view(feature)
        if view.drawing is not None and not view.drawing.done():
            return
        if version == view.chart_version:
            return
        if view.pngs and self.clock() - view.charts_at < self.cfg.web.chart_refresh_s:
            return
        view.drawing = asyncio.get_running_loop().create_task(self._draw(version, feature))

    async def draw_now(self, feature: str | None = None) -> None:
        """Draw a feature's charts for the current data and wait (first page load, tests)."""
        version = await self.version()
        view = self._view(feature)
        if view.drawing is not None and not view.drawing.done():
            await view.drawing
        if version != view.chart_version:
            await self._draw(version, feature)

    async def _draw(self, version: str, feature: str | None = None) -> None:
        view = self._view(feature)
        view.charts_at = self.clock()
        try:
            async with self._draw_lock:
                pngs, info = await asyncio.to_thread(self._render, feature)
        except Exception:
            log.exception("dashboard charts failed")
            return
        view.pngs, view.chart_info, view.chart_version = pngs, info, version

    def _render(self, feature: str | None = None
                ) -> tuple[dict[str, bytes], dict[str, tuple[str, str]]]:  # fmt: skip
        from evaluation.charts import CHART_DESCRIPTIONS
        from evaluation.report import build_report
        from evaluation.results import Results

        results = Results(self.engine, self.cfg, feature=feature)
        res = build_report(self.engine, self.cfg, self._view(feature).out_dir,
                           only=list(CHARTS), results=results, write_pages=False)  # fmt: skip
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
        pngs.update(self._render_phone(results, feature, set(pngs)))
        return pngs, info

    def _render_phone(self, results: Any, feature: str | None, drawn: set[str]
                      ) -> dict[str, bytes]:  # fmt: skip
        """A phone's renditions of PHONE_CHARTS (from the same Results snapshot)."""
        from evaluation.charts import chart_function, figure_size

        out = {}
        folder = self._view(feature).out_dir / "phone"
        folder.mkdir(parents=True, exist_ok=True)
        with figure_size(*PHONE_SIZE):
            for name in PHONE_CHARTS:
                if name not in drawn:
                    continue
                path = folder / f"{name}.png"
                try:
                    chart_function(name)(results, path)
                except Exception:  # the full-size chart is still there (a tap opens it)
                    log.exception("dashboard phone chart %s failed", name)
                    continue
                out[f"{name}.phone"] = path.read_bytes()
        return out

    async def aclose(self) -> None:
        for view in self._views.values():
            if view.drawing is not None:
                view.drawing.cancel()
                with contextlib.suppress(BaseException):  # cancelled or failed: it is over
                    await view.drawing
        if self._tmp is not None:
            self._tmp.cleanup()
