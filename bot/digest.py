"""The daily digest: one compact, platform-neutral message about yesterday.

Days are calendar days in the schedule's time zone. Statistics come from the evaluation
modules (effective votes, Bradley–Terry with bootstrap CIs, meta-evaluation, percentiles,
the report's cost model); this module only picks the time windows and formats.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.events import Reply
from core.config import SlamConfig
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
    agreement: list[Any]  # evaluation.metaeval.MethodAgreement
    latency: list[DayLatency]
    availability: list[Availability]
    api_name: str
    api_per_1k: float | None
    costs: list[CostLine]
    charts: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_reply(self) -> Reply:
        return render(self)


class PairVote(NamedTuple):
    """An effective pairwise vote cast before the digest's end; `today` if on the day."""

    model_a: str
    model_b: str
    choice: str
    rater_id: int
    today: bool


class ScoreVote(NamedTuple):
    """An effective 0–10 score vote cast before the digest's end; `today` if on the day."""

    model: str
    score: float
    rater_id: int
    today: bool


def _votes(
    session: Session, start: datetime, end: datetime
) -> tuple[list[PairVote], list[ScoreVote]]:
    """Effective votes (as of now) cast before `end`, oldest first, as narrow rows: the time
    tests run in SQL, so no timestamp is turned into a Python datetime."""
    from sqlalchemy import case

    from evaluation.votes import effective_from

    conn = session.connection()
    e = effective_from("pairwise")
    today = e.vote.created_at >= start
    q = e.select(e.model_a.name, e.model_b.name, e.vote.choice, e.vote.rater_id, today)
    q = q.where(e.vote.created_at < end)
    pairwise = [PairVote(a, b, c, r, bool(t)) for a, b, c, r, t in conn.execute(q)]
    e = effective_from("score")
    today = e.vote.created_at >= start
    model = case((e.vote.target == "A", e.model_a.name), else_=e.model_b.name)
    q = e.select(model, e.vote.score, e.vote.rater_id, today).where(e.vote.created_at < end)
    scores = [ScoreVote(m, float(v), r, bool(t)) for m, v, r, t in conn.execute(q)]
    return pairwise, scores


def _movement(pairwise: list[PairVote], ref: str | None, n_boot: int) -> tuple[list[Movement], Any]:
    from evaluation.ratings import Outcome, bradley_terry

    shared: dict[tuple[str, str, str], Outcome] = {}  # one immutable Outcome per result

    def fit(votes: list[PairVote]) -> Any:
        outcomes = [
            shared.get(k) or shared.setdefault(k, Outcome(*k))
            for k in ((v.model_a, v.model_b, v.choice) for v in votes)
        ]
        return bradley_terry(outcomes, reference=ref, n_boot=n_boot, seed=0)

    now = fit(pairwise)
    before = fit([v for v in pairwise if not v.today])
    moves = []
    for r in now.ranked():
        prev = before.ratings.get(r.model)
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
            )
        )
    return moves, now


def _agreement(
    session: Session, cfg: SlamConfig, scores: list[ScoreVote], bt: Any
) -> tuple[str, list[Any]]:
    """Judge methods vs the human signal: mean human score when there are scores, else BT."""
    from evaluation.human_scores import score_summary
    from evaluation.metaeval import meta_evaluate
    from evaluation.method_scores import judge_method_scores

    by_model: dict[str, list[float]] = defaultdict(list)
    for v in scores:
        by_model[v.model].append(v.score)
    if by_model:
        human = {m: s.mean for m, s in score_summary(by_model, n_boot=0).items()}
        signal = "mean human score"
    else:
        human = {m: r.rating for m, r in bt.ratings.items()}
        signal = "human Bradley–Terry rating"
    methods = {m: s for m, s in judge_method_scores(session).items() if s}
    if len(human) < 2 or not methods:
        return signal, []
    ev = cfg.evaluation
    return signal, list(meta_evaluate(methods, human, k=ev.bottom_k, p=ev.rbo_p))


def _probes(
    session: Session, prev_start: datetime, start: datetime, end: datetime
) -> tuple[list[DayLatency], list[Availability]]:
    from evaluation.latency_stats import percentiles

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


def _costs(
    engine: Engine, cfg: SlamConfig, end: datetime, window_days: int
) -> tuple[float | None, list[CostLine]]:
    from evaluation.charts.data import ReportData
    from evaluation.cost import api_cost_per_request

    data = ReportData(engine, cfg, window_days=window_days, now=end)
    prompt, output, _ = data.request_tokens
    api_per_1k = (
        api_cost_per_request(prompt, output, cfg.pricing) / output * 1000 if output > 0 else None
    )
    configured = [m.name for m in cfg.models]
    costs = data.costs
    names = [n for n in configured if n in costs] if configured else sorted(costs)
    lines = [
        CostLine(n, c.is_api, c.cost_per_1k_output, c.label(), c.reduction, c.reduction_label())
        for n in names
        for c in [costs[n]]
    ]
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
    n_boot: int = 200,
    cost_window_days: int = 30,
) -> Digest:
    """Everything the digest for `day` says; `charts` (report chart names) are drawn too."""
    tz = ZoneInfo(cfg.schedule.timezone)
    start, end = day_window(day, tz)
    prev_start, _ = day_window(day - timedelta(days=1), tz)
    ref = cfg.reference.name if cfg.reference else None
    notes: list[str] = []
    with Session(engine) as s:
        pairwise, scores = _votes(s, start, end)
        day_pw = [v for v in pairwise if v.today]
        day_sc = [v for v in scores if v.today]
        moves, bt = _movement(pairwise, ref, n_boot)
        signal, agreement = _agreement(s, cfg, scores, bt)
        latency, availability = _probes(s, prev_start, start, end)
    notes += [w for w in bt.warnings if "no pairwise votes" not in w][:2]
    api_per_1k, costs = _costs(engine, cfg, end, cost_window_days)
    order = {n: i for i, n in enumerate(_order(cfg, [x.model for x in latency]))}
    latency.sort(key=lambda x: order[x.model])
    availability.sort(key=lambda x: order.get(x.model, 1e9))
    drawn: dict[str, Path] = {}
    if charts:
        drawn = _draw(engine, cfg, list(charts), out_dir or Path(".slam/digests") / str(day), notes)
    return Digest(
        day=day,
        timezone=cfg.schedule.timezone,
        votes=len(day_pw),
        score_votes=len(day_sc),
        raters=len({v.rater_id for v in day_pw} | {v.rater_id for v in day_sc}),
        total_votes=len(pairwise),
        reference=ref,
        leaderboard=moves,
        human_signal=signal,
        agreement=agreement,
        latency=latency,
        availability=availability,
        api_name=cfg.pricing.api_name,
        api_per_1k=api_per_1k,
        costs=costs,
        charts=drawn,
        notes=notes,
    )


def _draw(
    engine: Engine, cfg: SlamConfig, charts: list[str], out_dir: Path, notes: list[str]
) -> dict[str, Path]:
    """The key charts as PNGs (a failed chart becomes a note, never a failed digest)."""
    from evaluation.report import CHART_NAMES, build_report

    wanted = [c for c in charts if c in CHART_NAMES]
    if not wanted:
        return {}
    try:
        result = build_report(engine, cfg, out_dir, only=wanted)
    except Exception as exc:
        log.exception("digest charts failed")
        notes.append(f"charts could not be drawn: {type(exc).__name__}: {exc}")
        return {}
    return {k: Path(v) for k, v in result.charts.items() if Path(v).exists()}


# --- rendering ----------------------------------------------------------------------------
def _dur(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def _change(now: float | None, before: float | None) -> str:
    """' (+5%)' relative to the day before; empty when either day has no data."""
    if now is None or before is None or before <= 0:
        return ""
    return f" ({(now / before - 1) * 100:+.0f}%)"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.2f}"


def _top(lines: list[str], limit: int, more: str) -> str:
    """At most `limit` lines, then how many were left out, so the message stays compact."""
    if len(lines) > limit:
        lines = [*lines[:limit], f"… and {len(lines) - limit} more {more}"]
    return "\n".join(lines)


def _movement_line(m: Movement, reference: str | None) -> str:
    ref = " (ref)" if m.model == reference else ""
    if m.delta is None:
        move = "new"
    else:
        ranks = (m.prev_rank or m.rank) - m.rank
        arrow = f", {'↑' if ranks > 0 else '↓'}{abs(ranks)}" if ranks else ""
        move = f"{m.delta:+.0f}{arrow}"
    ci = f"[{m.lo:.0f}–{m.hi:.0f}]"
    return f"{m.rank}. {m.model}{ref}: {m.rating:.0f} {ci} ({move}) · {m.n_votes} votes"


def render(d: Digest, limit: int = 8) -> Reply:
    """The digest as a Reply: a headline and one field per topic (charts as files). Each
    per-model list shows at most `limit` models, best rated first."""
    rank = {m.model: i for i, m in enumerate(d.leaderboard)}

    def order(name: str) -> tuple[float, int]:  # rated models by rank, then as listed
        return (rank.get(name, math.inf), 0)

    fields: list[tuple[str, str]] = []
    votes = f"{d.votes} pairwise" + (f" + {d.score_votes} scores" if d.score_votes else "")
    fields.append(("Votes", f"{votes} from {d.raters} rater(s); {d.total_votes} pairwise in total"))
    if d.leaderboard:
        lines = [_movement_line(m, d.reference) for m in d.leaderboard]
        fields.append(
            (
                "Leaderboard (Bradley–Terry, 95% CI, vs the day before)",
                _top(lines, limit, "(`/slam leaderboard`)"),
            )
        )
    else:
        fields.append(("Leaderboard", "no pairwise votes yet"))
    if d.agreement:
        lines = [
            f"{a.method}: Spearman {_fmt(a.spearman)}, bottom-k Jaccard {_fmt(a.jaccard)}, "
            f"RBO {_fmt(a.rbo)} ({a.n_models} models)"
            for a in d.agreement
        ]
        fields.append((f"Judge/human agreement (vs {d.human_signal})", _top(lines, limit, "")))
    else:
        fields.append(("Judge/human agreement", "not enough judge scores or human ratings yet"))
    if d.latency:
        lines = [
            f"{x.model}: {_dur(x.p50)}{_change(x.p50, x.prev_p50)} / {_dur(x.p95)}"
            f"{_change(x.p95, x.prev_p95)}, {x.n} probes"
            if x.n
            else f"{x.model}: no successful probes"
            for x in sorted(d.latency, key=lambda x: order(x.model))
        ]
        fields.append(("Latency p50 / p95 (vs the day before)", _top(lines, limit, "models")))
    else:
        fields.append(("Latency", "no probes that day"))
    probed = [a for a in d.availability if a.total]
    if probed:
        failing = sorted((a for a in probed if a.ok < a.total), key=lambda a: a.ok / a.total)
        lines = [
            f"{a.model}: {a.ok / a.total:.1%} ({a.total - a.ok} of {a.total} probes failed)"
            for a in failing
        ]
        text = _top(lines, limit, "models with failures")
        healthy = len(probed) - len(failing)
        if healthy:
            every = f"{healthy} model(s)" if failing else f"all {healthy} model(s)"
            text = "\n".join(filter(None, [text, f"{every} answered every probe"]))
        fields.append(("Availability", text))
    api = f"{d.api_name} ${d.api_per_1k:.4f}" if d.api_per_1k is not None else d.api_name
    cost_lines = [
        f"{c.model}: {c.label} · {c.reduction_label} vs {d.api_name}"
        for c in sorted(d.costs, key=lambda c: order(c.model))
        if not c.is_api
    ]
    fields.append(
        (f"Cost per 1K output tokens (API: {api})", _top(cost_lines, limit, "models") or "n/a")
    )
    head = f"{d.votes} vote(s) from {d.raters} rater(s) on {d.day:%a %d %b} ({d.timezone})."
    if d.leaderboard:
        head += f" Top rated: {d.leaderboard[0].model}."
    if d.charts:
        head += " Key charts are attached; `/slam report` has the full report."
    text = "\n".join([head, *(f"Note: {n}" for n in d.notes)])
    return Reply(
        text, title=f"SLaM daily digest · {d.day.isoformat()}", fields=fields, files=dict(d.charts)
    )
