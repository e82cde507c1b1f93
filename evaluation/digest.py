"""The daily digest's numbers: what changed on one calendar day (in the schedule's time zone).

Everything comes from the results service (evaluation.results.service) read as of the end of the day
and as of its start — ratings and their movement, the decision, agreement with the judges,
costs — plus the day's votes and probes; bot.ops.digest only renders it.

Per feature (issue 19): `build_digest(..., feature=F)` is one feature's numbers (its votes,
ratings, decision and cost per request; latency and availability are every model's, the same
in each feature's digest: probes belong to the model), and `digest_numbers`
returns one `Digest` per configured feature (one, computed as today, for a single-feature
config), each with its slices' decision lines when the feature has a `slice_field`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.config import SlamConfig
from evaluation.human import BTResult, Decision, ModelRating

if TYPE_CHECKING:
    from evaluation.human import Scope
    from evaluation.results import Results, SliceDecision
from storage.models import ModelRecord, Probe

log = logging.getLogger(__name__)


def day_window(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, in UTC (23 or 25 hours on DST changes)."""
    start = datetime.combine(day, time(0), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)
    return start, end


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@dataclass(frozen=True)
class Movement:
    """A model's Bradley–Terry rating through the digest day vs through the day before."""

    model: str
    rating: float
    lo: float
    hi: float
    rank: int
    n_votes: int
    prev_rating: float | None
    prev_rank: int | None
    rating_row: ModelRating | None = None  # the results service's rating (for rating_text)

    @property
    def delta(self) -> float | None:
        return None if self.prev_rating is None else self.rating - self.prev_rating


@dataclass(frozen=True)
class DayLatency:
    """Successful measure-phase probe latencies: the digest day vs the day before."""

    model: str
    n: int
    p50: float | None
    p95: float | None
    prev_n: int
    prev_p50: float | None
    prev_p95: float | None


@dataclass(frozen=True)
class Availability:
    model: str
    ok: int
    total: int

    @property
    def failed_share(self) -> float | None:
        return (self.total - self.ok) / self.total if self.total else None


@dataclass(frozen=True)
class CostLine:
    model: str
    is_api: bool
    per_1k: float | None
    label: str
    reduction: float | None
    reduction_label: str
    energy: str | None = None  # GPU energy per 1K output tokens, where measured ('2,000 J')


@dataclass
class Digest:
    day: date
    timezone: str
    votes: int  # effective pairwise votes cast that day
    score_votes: int
    raters: int
    total_votes: int  # effective pairwise votes up to the end of the day
    reference: str | None
    leaderboard: list[Movement]
    human_signal: str
    agreement: list[Any]  # evaluation.auto.metaeval.MethodAgreement
    latency: list[DayLatency]
    availability: list[Availability]
    api_name: str
    api_per_1k: float | None
    costs: list[CostLine]
    decision: Decision | None = None
    charts: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    feature: str | None = None  # None: everything the database holds (one feature)
    # per slice of the feature (its `slice_field`), through the end of the day
    slices: list[SliceDecision] = field(default_factory=list)
    # model versions: new that day, what the numbers are based on, drift between versions
    versions: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # open alerts (the bot fills them in)
    # a few of the newest comments on pairs no longer blind, with their votes
    comments: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DayVotes:
    pairwise: int  # effective pairwise votes (as of the day's end) cast that day
    scores: int
    raters: int
    total_pairwise: int  # effective pairwise votes through the day's end


def _day_votes(
    session: Session, start: datetime, end: datetime, scope: Scope | None = None
) -> DayVotes:
    """Counts of the effective votes as of `end` (evaluation.human.votes), by SQL aggregates;
    `scope`: one feature's (and slice's) votes."""
    from sqlalchemy import func, select

    from evaluation.human import EVERYTHING, effective_from

    conn = session.connection()
    counts: dict[str, tuple[int, int]] = {}
    raters: set[int] = set()
    total = 0
    for kind in ("pairwise", "score"):
        e = effective_from(kind, as_of=end, scope=scope or EVERYTHING)
        today = e.vote.created_at >= start
        q = select(func.count()).select_from(e.source).where(*e.conditions, today)
        counts[kind] = (int(conn.execute(q).scalar_one()), 0)
        q = select(e.vote.rater_id).select_from(e.source).where(*e.conditions, today).distinct()
        raters |= set(conn.execute(q).scalars())
        if kind == "pairwise":
            q = select(func.count()).select_from(e.source).where(*e.conditions)
            total = int(conn.execute(q).scalar_one())
    return DayVotes(counts["pairwise"][0], counts["score"][0], len(raters), total)


def _movement(now: BTResult | None, before: BTResult | None) -> list[Movement]:
    if now is None:
        return []
    moves = []
    for r in now.ranked():
        prev = before.ratings.get(r.model) if before is not None else None
        moves.append(
            Movement(
                r.model,
                r.rating,
                r.lo,
                r.hi,
                r.rank,
                r.n_votes,
                prev.rating if prev else None,
                prev.rank if prev else None,
                r,
            )
        )
    return moves


def _probes(
    session: Session, prev_start: datetime, start: datetime, end: datetime
) -> tuple[list[DayLatency], list[Availability]]:
    from evaluation.perf import percentiles

    rows = session.exec(
        select(ModelRecord.name, Probe.started_at, Probe.ok, Probe.latency_s)
        .join(ModelRecord, col(ModelRecord.id) == Probe.model_id)
        .where(Probe.phase == "measure", Probe.started_at >= prev_start, Probe.started_at < end)
    ).all()
    lat: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    avail: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, started, ok, latency in rows:
        today = _utc(started) >= start
        if ok and latency is not None:
            lat[name][0 if today else 1].append(latency)
        if today:
            avail[name][0] += int(bool(ok))
            avail[name][1] += 1
    latency_rows = []
    for name in sorted(set(lat) | set(avail)):
        day_vals, prev_vals = lat[name]
        p, q = percentiles(day_vals, (50, 95)), percentiles(prev_vals, (50, 95))
        latency_rows.append(
            DayLatency(name, len(day_vals), p[50], p[95], len(prev_vals), q[50], q[95])
        )
    return latency_rows, [Availability(m, ok, n) for m, (ok, n) in sorted(avail.items())]


def _costs(results: Results) -> tuple[float | None, list[CostLine]]:
    from evaluation.perf import api_cost_per_request

    cfg = results.cfg
    prompt, output, _ = results.request_tokens
    api_per_1k = (
        api_cost_per_request(prompt, output, cfg.pricing) / output * 1000 if output > 0 else None
    )
    configured = [m.name for m in cfg.models]
    if results.feature_spec is not None:
        configured = [n for n in configured if n in results.configured]
    costs = results.costs
    names = [n for n in configured if n in costs] if configured else sorted(costs)
    from evaluation.results import energy_text

    lines = [
        CostLine(n, c.is_api, c.cost_per_1k_output, c.label(), c.reduction, c.reduction_label(),
                 energy_text(c.j_per_1k_output) if c.j_per_1k_output is not None else None)
        for n in names
        for c in [costs[n]]
    ]  # fmt: skip
    return api_per_1k, lines


def _order(cfg: SlamConfig, names: Sequence[str]) -> list[str]:
    configured = [m.name for m in cfg.models]
    return sorted(names, key=lambda n: (configured.index(n) if n in configured else 1e9, n))


def build_digest(
    engine: Engine,
    cfg: SlamConfig,
    day: date,
    *,
    charts: Sequence[str] = (),
    out_dir: Path | None = None,
    cost_window_days: int = 30,
    feature: str | None = None,
) -> Digest:
    """Everything the digest for `day` says; `charts` (report chart names) are drawn too.
    `feature`: that feature's numbers only (None: everything the database holds)."""
    from evaluation.results import Results, comment_quotes, slice_decisions

    tz = ZoneInfo(cfg.schedule.timezone)
    start, end = day_window(day, tz)
    prev_start, _ = day_window(day - timedelta(days=1), tz)
    notes: list[str] = []
    results = Results(engine, cfg, as_of=end, window_days=cost_window_days, feature=feature)
    before = Results(engine, cfg, as_of=start, window_days=cost_window_days, feature=feature)
    with Session(engine) as s:
        votes = _day_votes(s, start, end, results.scope)
        latency, availability = _probes(s, prev_start, start, end)
    bt = results.ratings
    moves = _movement(bt, before.ratings)
    human, signal = results.human_means
    if bt is not None:
        notes += bt.warnings[:2]
    api_per_1k, costs = _costs(results)
    order = {n: i for i, n in enumerate(_order(cfg, [x.model for x in latency]))}
    latency.sort(key=lambda x: order[x.model])
    availability.sort(key=lambda x: order.get(x.model, 1e9))
    drawn: dict[str, Path] = {}
    if charts:
        target = out_dir or Path(".slam/digests") / str(day)
        drawn = _draw(engine, cfg, list(charts), target, notes, results)
    slices = []
    if feature is not None:
        slices = slice_decisions(engine, cfg, feature, as_of=end, window_days=cost_window_days)
    return Digest(
        day=day,
        timezone=cfg.schedule.timezone,
        votes=votes.pairwise,
        score_votes=votes.scores,
        raters=votes.raters,
        total_votes=votes.total_pairwise,
        reference=results.reference,
        leaderboard=moves,
        human_signal=signal if human else "human rating",
        agreement=results.agreement,
        latency=latency,
        availability=availability,
        api_name=cfg.pricing.api_name,
        api_per_1k=api_per_1k,
        costs=costs,
        decision=results.decision,
        charts=drawn,
        notes=notes,
        feature=feature,
        slices=slices,
        versions=version_lines(results, start, end),
        comments=comment_quotes(results.comments),
    )


def version_lines(results: Any, start: datetime, end: datetime) -> list[str]:
    """The digest's model-version lines: versions first seen in [start, end), what each
    model with several versions is based on, and the drift between its last two."""
    new = [f"{v.model}: new version {v.label} (first seen {v.first_seen:%H:%M} UTC)"
           for vs in results.model_versions.values() for v in vs[1:]
           if start <= v.first_seen < end]  # fmt: skip
    return new + results.version_lines() + [d.line() for d in results.drift]


def digest_numbers(
    engine: Engine,
    cfg: SlamConfig,
    day: date,
    *,
    feature: str | None = None,
    charts: Sequence[str] = (),
    out_dir: Path | None = None,
    cost_window_days: int = 30,
) -> list[Digest]:
    """One `Digest` per feature for `day`, in the config's order (the bot formats each as a
    section). `feature`: only that one. A config with a single feature gets one digest of
    everything the database holds (`build_digest(feature=None)`, as before features); with
    several, each digest is its feature's numbers (`Digest.feature`, `Digest.slices`), its
    charts in a subfolder named by the feature."""
    from core.features import features, slug

    names = [feature] if feature is not None else [f.name for f in features(cfg)]
    if feature is None and len(names) == 1:
        return [build_digest(engine, cfg, day, charts=charts, out_dir=out_dir,
                             cost_window_days=cost_window_days)]  # fmt: skip
    base = out_dir or Path(".slam/digests") / str(day)
    out = []
    for name in names:
        out.append(build_digest(engine, cfg, day, charts=charts, out_dir=base / slug(name),
                                cost_window_days=cost_window_days, feature=name))  # fmt: skip
    return out


def _draw(
    engine: Engine,
    cfg: SlamConfig,
    charts: list[str],
    out_dir: Path,
    notes: list[str],
    results: Results,
) -> dict[str, Path]:
    """The key charts as PNGs (a failed chart becomes a note, never a failed digest)."""
    from evaluation.report import CHART_NAMES, build_report

    wanted = [c for c in charts if c in CHART_NAMES]
    if not wanted:
        return {}
    try:
        result = build_report(engine, cfg, out_dir, only=wanted, results=results)
    except Exception as exc:
        log.exception("digest charts failed")
        notes.append(f"charts could not be drawn: {type(exc).__name__}: {exc}")
        return {}
    return {k: Path(v) for k, v in result.charts.items() if Path(v).exists()}
