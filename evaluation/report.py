"""`slam report`: the decision, a leaderboard and every chart, as HTML and Markdown, all read
from the results service (evaluation.results.service).

The same builder answers `/slam report [chart]` in chat: `summary_text` is the short reply and
`charts` the PNGs to attach.

Per feature (issue 19): `build_report(..., feature=F)` is that feature's report (its name in
the title; every number from `Results(feature=F)`), with a section per slice of its inputs
when it has a `slice_field` (evaluation.results.slices). `build_reports` writes one report per
configured feature, each in a subfolder named by the feature, and an index page linking them.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import pickle
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from core.config import SlamConfig
from core.features import Feature, features, slug
from core.paths import writable_dir, write_text_atomic
from evaluation.charts import (
    CHART_DESCRIPTIONS,
    CHART_NAMES,
    RATING_CHARTS,
    ChartSpec,
    chart_function,
    chart_spec,
)
from evaluation.human import Decision
from evaluation.results import (
    HEADERS,
    PRIOR_NOTE,
    PROCESS_CACHE,
    LeaderboardRow,
    ResultCache,
    Results,
    SliceDecision,
    cells,
    comment_lines,
    slice_decisions,
    summary_text,
    with_style,
    withheld_text,
)

__all__ = ["CHART_NAMES", "ReportIndex", "ReportResult", "build_report", "build_reports"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChartOut:
    """A drawn chart: whether it shows data, and if not, why and what fills it."""

    name: str
    path: Path
    has_data: bool
    reason: str = ""
    fills: str = ""


@dataclass
class ReportResult:
    out_dir: Path
    charts: dict[str, Path]
    html_path: Path
    md_path: Path
    leaderboard: list[LeaderboardRow]
    decision: Decision
    summary_text: str
    problems: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    chart_info: dict[str, ChartOut] = field(default_factory=dict)
    drawn: tuple[str, ...] = ()  # the charts drawn by this call (the others: from the cache)
    feature: str | None = None  # None: everything the database holds
    slices: list[SliceDecision] = field(default_factory=list)  # per slice of the feature

    @property
    def with_data(self) -> dict[str, Path]:
        """The charts that show data (the ones worth uploading)."""
        return {n: c.path for n, c in self.chart_info.items() if c.has_data}

    @property
    def empty(self) -> list[ChartOut]:
        return [c for c in self.chart_info.values() if not c.has_data]

    @property
    def recommendation(self) -> str:
        return self.decision.text()

    @property
    def recommended_model(self) -> str | None:
        return self.decision.model


def _title(result: ReportResult) -> str:
    return f"SLaM report: {result.feature}" if result.feature else "SLaM report"


def _about(result: ReportResult, data: Results) -> str:
    what = f"Feature: {result.feature}" if result.feature else (
        f"Experiment: {data.cfg.experiment.name}")  # fmt: skip
    return f"{what}; reference: {data.reference or 'none'}."


def _markdown(result: ReportResult, data: Results, generated: str) -> str:
    lines = [
        f"# {_title(result)}",
        "",
        f"Generated {generated}. {_about(result, data)}",
        "",
        "## Decision",
        "",
        result.decision.headline,
        "",
        *[f"- {d}" for d in result.decision.details],
        "",
        "## Leaderboard",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    for i, r in enumerate(with_style(result.leaderboard, data.style_ratings), 1):
        row = [c.replace("|", "\\|") for c in cells(i, r)]
        if r.is_reference:
            row[1] = f"**{row[1]}**"
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", _quality_note(result, data)]
    if any(r.rating is not None and r.rating.bound for r in result.leaderboard):
        lines += ["", PRIOR_NOTE]
    lines += ["", "### Decision per candidate", ""]
    lines += [
        f"- {c.model}: {c.status.replace('_', ' ')} — {c.interval()} vs the reference; {c.why}"
        for c in result.decision.comparisons
    ]
    lines += ["", _assumptions(data)]
    lines += _slices_markdown(result.slices)
    if versions := _version_lines(data):
        lines += ["", "## Model versions", "", *[f"- {v}" for v in versions]]
    lines += ["", "## Rater quality and style control", "", *_style_section(data)]
    if data.comments:
        lines += ["", "## What raters said", "", *comment_lines(data.comments)]
    trust, sentence = data.judge_trust
    if trust or sentence:
        from evaluation.auto import render_text

        lines += ["", "## How far to trust each judge", "", sentence, ""]
        if trust:
            lines += ["```", render_text(trust, sentence).rsplit("\n", 1)[0], "```"]
    if result.problems:
        lines += ["", "## Data notes", ""] + [
            f"- {k}: {v}" for k, v in sorted(result.problems.items())
        ]
    lines += ["", "## Charts", ""]
    for name, path in result.charts.items():
        lines += [f"### {CHART_DESCRIPTIONS[name]}", "", f"![{name}]({path.name})", ""]
    return "\n".join(lines) + "\n"


def _version_lines(data: Results) -> list[str]:
    """What the numbers of models with several versions are based on, and their drift
    (evaluation.results.versions)."""
    return [*data.version_lines(), *(d.line() for d in data.drift)]


def _slices_markdown(slices: list[SliceDecision]) -> list[str]:
    """Per slice: its decision line and its leaderboard."""
    if not slices:
        return []
    lines = ["", "## Slices", "", *[f"- {s.line()}" for s in slices]]
    for s in slices:
        lines += ["", f"### {s.slice}", "", s.line(), ""]
        if s.leaderboard:
            lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(i, r)) + " |"
                      for i, r in enumerate(s.leaderboard, 1)]  # fmt: skip
    return lines


def _slices_html(slices: list[SliceDecision]) -> str:
    if not slices:
        return ""
    e = html.escape
    head = "<tr>" + "".join(f"<th>{e(h)}</th>" for h in HEADERS) + "</tr>"
    parts = ["<h2>Slices</h2><ul>" + "".join(f"<li>{e(s.line())}</li>" for s in slices)
             + "</ul>"]  # fmt: skip
    for s in slices:
        parts.append(f"<h3>{e(s.slice)}</h3><p class='note'>{e(s.line())}</p>")
        if s.leaderboard:
            rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells(i, r)) + "</tr>"
                           for i, r in enumerate(s.leaderboard, 1))  # fmt: skip
            parts.append(f"<table>{head}{rows}</table>")
    return "".join(parts)


def _style_section(data: Results) -> list[str]:
    """Rule 9's counts, the style-controlled fit and each judge's length bias."""
    from evaluation.human import report_lines

    lines = report_lines(data.rater_quality, data.style_ratings, data.length_biases)
    if data.feature is not None and lines:  # rule 9 is about the rater: every feature's votes
        lines[0] += " (raters are judged over every feature's votes)"
    return lines


def _quality_note(result: ReportResult, data: Results) -> str:
    scale = next((r.quality_scale for r in result.leaderboard if r.quality_scale), "")
    if not scale:
        return "Quality: not rated yet."
    ev = data.cfg.evaluation
    return (
        f"Quality: {scale}, {ev.confidence:.0%} interval in brackets. Decision: "
        f"non-inferiority against the reference with a {data.margin_elo:.0f} Elo margin "
        "(see docs/evaluation.md)."
    )


def _assumptions(data: Results) -> str:
    p = data.cfg.pricing
    prompt, output, source = data.request_tokens
    return (
        f"Costs: {p.api_name} at ${p.api_input_per_1k}/1K input and ${p.api_output_per_1k}/1K "
        f"output tokens (prices as of {p.prices_as_of}); self-hosted = instance $/hour ÷ "
        f"(measured output tokens/hour × {p.utilization:.0%} utilization); a request ≈ "
        f"{prompt:.0f} input + {output:.0f} output tokens ({source}); monthly at "
        f"{data.requests_per_day:,.0f} requests/day × 30 days."
    )


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1260px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:14px;width:100%}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td:nth-child(2),td:nth-child(3){text-align:left}tr.ref{font-weight:bold;background:#fafafa}
.rec{background:#e5f5e0;border-left:5px solid #31a354;padding:.8em 1em;font-size:16px}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}.note{color:#555;font-size:14px}"""


def _html(result: ReportResult, data: Results, generated: str, pngs: dict[str, bytes]) -> str:
    e = html.escape
    rows = []
    for i, r in enumerate(with_style(result.leaderboard, data.style_ratings), 1):
        cls = ' class="ref"' if r.is_reference else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in cells(i, r)) + "</tr>")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(_title(result))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{e(_title(result))}</h1>",
        f"<p class='note'>Generated {e(generated)}. {e(_about(result, data))}</p>",
        f"<h2>Decision</h2><p class='rec'>{e(result.decision.headline)}</p>",
        "".join(f"<p class='note'>{e(d)}</p>" for d in result.decision.details),
        "<h2>Leaderboard</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in HEADERS) + "</tr>",
        *rows,
        "</table>",
        f"<p class='note'>{e(_quality_note(result, data))}</p>",
        f"<p class='note'>{e(_assumptions(data))}</p>",
        "<h3>Decision per candidate</h3><ul>"
        + "".join(
            f"<li>{e(c.model)}: {e(c.status.replace('_', ' '))} — {e(c.interval())}; "
            f"{e(c.why)}</li>"
            for c in result.decision.comparisons
        )
        + "</ul>",
        _slices_html(result.slices),
        "".join(["<h2>Model versions</h2><ul>", *(f"<li>{e(v)}</li>" for v in versions),
                 "</ul>"]) if (versions := _version_lines(data)) else "",
        "<h2>Rater quality and style control</h2>"
        + "".join(f"<p class='note'>{e(line)}</p>" for line in _style_section(data)),
    ]
    if data.comments:
        said = comment_lines(data.comments)
        parts.append("<h2>What raters said</h2>" + "".join(
            f"<p class='note'>{e(x)}</p>" if x.startswith("- ") else f"<h3>{e(x)}</h3>"
            for x in said))  # fmt: skip
    trust, sentence = data.judge_trust
    if trust or sentence:
        from evaluation.auto import render_text

        table = render_text(trust, sentence).rsplit("\n", 1)[0] if trust else ""
        parts.append(f"<h2>How far to trust each judge</h2><p>{e(sentence)}</p>")
        if table:
            parts.append(f"<pre>{e(table)}</pre>")
    if result.problems:
        parts.append(
            "<h2>Data notes</h2><ul>"
            + "".join(f"<li>{e(k)}: {e(v)}</li>" for k, v in sorted(result.problems.items()))
            + "</ul>"
        )
    parts.append("<h2>Charts</h2>")
    for name in result.charts:
        b64 = base64.b64encode(pngs[name]).decode("ascii")
        parts.append(
            f"<h3>{e(CHART_DESCRIPTIONS[name])}</h3>"
            f"<img alt='{e(name)}' src='data:image/png;base64,{b64}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _content_key(data: Results, name: str, spec: ChartSpec) -> tuple[Any, ...]:
    """A chart's cache key from the values it draws (`ChartSpec.content`) and the problems
    recorded for them, plus what every key holds (config, code, database)."""
    values = [getattr(data, attr) for attr in spec.content]
    problems = [data.problems.get(attr) for attr in spec.content]
    digest = hashlib.sha256(pickle.dumps((values, problems), protocol=5)).hexdigest()
    return (*data.cache_key(f"chart:{name}", (), spec.windowed), digest)


def _draw(data: Results, name: str, path: Path) -> tuple[bytes, str | None]:
    """Draw one chart; returns its PNG bytes and the error that replaced it, if any."""
    from evaluation.charts import no_data

    try:
        chart_function(name)(data, path)
        error = None
    except Exception as exc:  # one broken chart must not cost the team the whole report
        log.exception("chart %s failed", name)
        error = f"{type(exc).__name__}: {exc}"
        no_data(path, CHART_DESCRIPTIONS[name], f"this chart failed: {exc}")
    return path.read_bytes(), error


def build_report(
    engine: Engine,
    cfg: SlamConfig,
    out_dir: Path,
    only: list[str] | None = None,
    *,
    requests_per_day: float = 1000,
    window_days: int | None = 30,
    results: Results | None = None,
    cache: ResultCache | None = PROCESS_CACHE,
    write_pages: bool = True,
    feature: str | None = None,
) -> ReportResult:
    """Draw the charts (all, or `only` these), then write report.html and report.md.

    `results`: the results service to read (default: a new snapshot of the database, using
    `cache`). A chart whose inputs did not change since it was last drawn is served from the
    cache (its key: the versions of the tables it reads, the config, the code). With
    `write_pages=False` only the chart files are written (the chat answer). `feature`: that
    feature's report (None: everything the database holds, or `results`' feature); the pages
    add a section per slice when the feature has a `slice_field`."""
    from evaluation.charts import png_text

    names = list(CHART_NAMES) if not only else list(dict.fromkeys(only))
    for n in names:
        chart_function(n)  # validates every name before any work
    out_dir = Path(out_dir)
    writable_dir(out_dir, "report folder")
    data = results or Results(
        engine, cfg, window_days=window_days, requests_per_day=requests_per_day, cache=cache,
        feature=feature,
    )  # fmt: skip
    store = data.cache
    timings: dict[str, float] = {}
    pngs: dict[str, bytes] = {}
    chart_errors: dict[str, str] = {}
    keys: dict[str, Any] = {}
    todo = []

    def cached(n: str) -> bool:
        """Serve chart `n` from the cache if its key is there."""
        t0 = time.perf_counter()
        spec = chart_spec(n)
        keys[n] = (_content_key(data, n, spec) if spec.content
                   else data.cache_key(f"chart:{n}", spec.reads, spec.windowed))  # fmt: skip
        hit, stored = store.get(keys[n]) if store is not None else (False, None)
        if not hit or stored is None:
            return False
        pngs[n], err = stored
        if err:
            chart_errors[f"chart {n}"] = err
        timings[f"chart:{n}"] = time.perf_counter() - t0
        return True

    for n in names:  # a content-keyed chart is looked up when its turn comes (below)
        if chart_spec(n).content or not cached(n):
            todo.append(n)
    drawn = set()
    # Drawing is serial (forking chart workers was measured slower on the shared 2-CPU host
    # and is unsafe in the threaded chat bot), but the Bradley–Terry ratings are computed on
    # a thread meanwhile. The charts that need ratings are drawn last.
    cpu = time.thread_time()  # this thread's CPU: the critical path when no one else is busy
    loader = None
    if RATING_CHARTS.intersection(todo):
        loader = data.prefetch("ratings", "decision")
    try:
        if todo:
            from evaluation.charts import setup

            setup()  # import matplotlib now: a cold process overlaps it with the ratings
        if loader is not None and write_pages and set(todo) <= RATING_CHARTS:
            # Only votes changed: while the ratings fit on the other thread (numpy, mostly
            # outside the GIL), compute the pages' other vote-dependent sections here.
            data.style_ratings, data.judge_trust  # noqa: B018
        for n in sorted(todo, key=lambda n: n in RATING_CHARTS):
            if chart_spec(n).content and cached(n):
                continue
            drawn.add(n)
            t0 = time.perf_counter()
            pngs[n], err = _draw(data, n, out_dir / f"{n}.png")
            if err:
                chart_errors[f"chart {n}"] = err
            if store is not None and not data.errors:
                store.put(keys[n], (pngs[n], err))
            timings[f"chart:{n}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rows = data.leaderboard
        decision = data.decision
    finally:
        if loader is not None:
            loader.join()  # the engine is the caller's again once we return
    timings["leaderboard"] = time.perf_counter() - t0
    charts: dict[str, Path] = {}
    info: dict[str, ChartOut] = {}
    for n in names:  # the report's order
        path = out_dir / f"{n}.png"
        if n not in drawn:
            path.write_bytes(pngs[n])
        charts[n] = path
        desc = png_text(pngs[n]).get("Description", "")
        empty = desc.startswith("no data")
        info[n] = ChartOut(n, path, not empty, desc.removeprefix("no data: ") if empty else "",
                           chart_spec(n).fills)  # fmt: skip
    timings = {**{f"chart:{n}": timings[f"chart:{n}"] for n in names}, **timings}
    problems = {**data.problems, **chart_errors}
    if withheld := withheld_text(data.withheld):
        problems["withheld from raters"] = withheld
    if data.ratings is not None:
        for i, w in enumerate(data.ratings.warnings):
            problems[f"ratings warning {i + 1}"] = w
    result = ReportResult(
        out_dir=out_dir,
        charts=charts,
        html_path=out_dir / "report.html",
        md_path=out_dir / "report.md",
        leaderboard=rows,
        decision=decision,
        summary_text=summary_text(rows, decision),
        problems=problems,
        timings=timings,
        chart_info=info,
        drawn=tuple(n for n in names if n in drawn),
        feature=data.feature,
    )
    sliced = _sliced_feature(data)
    if write_pages and sliced is not None:
        t0 = time.perf_counter()
        result.slices = slice_decisions(
            engine, cfg, sliced.name, window_days=data.window_days, as_of=data.as_of,
            requests_per_day=data.requests_per_day, cache=data.cache,
        )  # fmt: skip
        timings["slices"] = time.perf_counter() - t0
    if write_pages:
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        t0 = time.perf_counter()
        write_text_atomic(result.md_path, _markdown(result, data, generated))
        write_text_atomic(result.html_path, _html(result, data, generated, pngs))
        timings["html+md"] = time.perf_counter() - t0
    timings["main thread CPU"] = time.thread_time() - cpu
    for k, v in data.timings.items():
        timings[f"data:{k}"] = v
    return result


def _sliced_feature(data: Results) -> Feature | None:
    """The feature whose slices the report shows: the results' feature, or the one feature of
    a single-feature config; None when it has no `slice_field`."""
    spec = data.feature_spec
    if spec is None:
        every = features(data.cfg)
        spec = every[0] if len(every) == 1 else None
    return spec if spec is not None and spec.slice_field else None


@dataclass
class ReportIndex:
    """`build_reports`: one report per feature (in a subfolder named by the feature) and the
    index page that links them."""

    out_dir: Path
    reports: dict[str, ReportResult]  # feature name -> its report
    html_path: Path
    md_path: Path

    @property
    def summary_text(self) -> str:
        """One line per feature: its decision, and where its report is."""
        return "\n".join(f"{name}: {r.decision.short()} ({r.md_path})"
                         for name, r in self.reports.items())  # fmt: skip


def build_reports(
    engine: Engine,
    cfg: SlamConfig,
    out_dir: Path,
    only: list[str] | None = None,
    **options: Any,
) -> ReportIndex:
    """One report per configured feature, each `build_report(..., feature=F)` in
    `out_dir/<feature>/`, then index.md and index.html in `out_dir` with each feature's decision
    and a link to its report. `options`: build_report's keyword arguments (not `results`)."""
    out_dir = Path(out_dir)
    writable_dir(out_dir, "report folder")
    reports = {
        f.name: build_report(engine, cfg, out_dir / slug(f.name), only, feature=f.name, **options)
        for f in features(cfg)
    }
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    md = ["# SLaM reports", "", f"Generated {generated}. One report per feature:", ""]
    md += [f"- [{name}]({slug(name)}/report.md): {r.decision.short()}"
           for name, r in reports.items()]  # fmt: skip
    e = html.escape
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>SLaM reports</title>"
        f"<style>{_CSS}</style></head><body><h1>SLaM reports</h1>"
        f"<p class='note'>Generated {e(generated)}. One report per feature:</p><ul>"
        + "".join(f"<li><a href='{e(slug(name))}/report.html'>{e(name)}</a>: "
                  f"{e(r.decision.short())}</li>" for name, r in reports.items())
        + "</ul></body></html>"
    )  # fmt: skip
    index = ReportIndex(out_dir, reports, out_dir / "index.html", out_dir / "index.md")
    write_text_atomic(index.md_path, "\n".join(md) + "\n")
    write_text_atomic(index.html_path, page)
    return index
