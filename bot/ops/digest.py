"""The daily digest as a chat message. The numbers come from evaluation.digest (which reads
the results service); this module only formats them. With several features the digest has
one section per feature (its decision, votes, leaderboard, judges and cost), then the
latency and availability of the models once (probes belong to a model, not a feature);
with one feature it is the single digest it always was."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

from sqlalchemy.engine import Engine

from bot.events import Reply
from bot.rating import features
from core.config import SlamConfig
from core.features import features as feature_list
from evaluation.digest import (
    Availability,
    CostLine,
    DayLatency,
    Digest,
    Movement,
    build_digest,
    day_window,
)
from evaluation.results import rating_text

__all__ = [
    "Availability",
    "CostLine",
    "DayLatency",
    "Digest",
    "Movement",
    "build_digest",
    "build_digests",
    "day_window",
    "feature_digest",
    "render",
    "render_digests",
]


def feature_digest(engine: Engine, cfg: SlamConfig, day: date, feature: str, *,
                   charts: Sequence[str] = (), out_dir: Path | None = None) -> Digest:  # fmt: skip
    """One feature's digest for `day`: the numbers of evaluation.digest for that feature."""
    return build_digest(engine, cfg, day, charts=charts, out_dir=out_dir, feature=feature)


def build_digests(engine: Engine, cfg: SlamConfig, day: date, *, charts: Sequence[str] = (),
                  out_dir: Path | None = None) -> list[tuple[str | None, Digest]]:  # fmt: skip
    """The digest of every feature for `day`: [(None, the digest)] with one feature (all the
    database holds), else [(feature name, its digest)] in the configured order."""
    from bot.incidents import listing

    out: list[tuple[str | None, Digest]]
    if not features.several(cfg):
        out = [(None, build_digest(engine, cfg, day, charts=charts, out_dir=out_dir))]
    else:
        out = [(f.name, feature_digest(engine, cfg, day, f.name, charts=charts,
                                       out_dir=out_dir / f.name if out_dir else None))
               for f in feature_list(cfg)]  # fmt: skip
    alerts = listing(engine)  # the open alerts, once (they are every feature's)
    return [(name, replace(d, alerts=alerts)) for name, d in out]


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


def _listing(
    title: str, lines: list[str], limit: int, more: str, empty: tuple[str, str]
) -> tuple[str, str]:
    """A field listing `lines` (see `_top`), or the field `empty` when there are none."""
    return (title, _top(lines, limit, more)) if lines else empty


def _movement_line(m: Movement, reference: str | None) -> str:
    ref = " (ref)" if m.model == reference else ""
    if m.delta is None:
        move = "new"
    else:
        ranks = (m.prev_rank or m.rank) - m.rank
        arrow = f", {'↑' if ranks > 0 else '↓'}{abs(ranks)}" if ranks else ""
        move = f"{m.delta:+.0f}{arrow}"
    text = rating_text(m.rating_row) if m.rating_row else f"{m.rating:.0f} [{m.lo:.0f}, {m.hi:.0f}]"
    return f"{m.rank}. {m.model}{ref}: {text} ({move}) · {m.n_votes} votes"


def _fields(d: Digest, limit: int) -> list[tuple[tuple[str, str], bool]]:
    """The digest's fields in order, each with whether it is about the models themselves
    (latency, availability: the same for every feature) rather than one feature."""
    rank = {m.model: i for i, m in enumerate(d.leaderboard)}

    def order(name: str) -> tuple[float, int]:  # rated models by rank, then as listed
        return (rank.get(name, math.inf), 0)

    fields: list[tuple[tuple[str, str], bool]] = []
    if d.decision is not None:
        fields.append((("Decision", d.decision.headline), False))
    votes = f"{d.votes} pairwise" + (f" + {d.score_votes} scores" if d.score_votes else "")
    fields.append((("Votes", f"{votes} from {d.raters} rater(s); {d.total_votes} pairwise in "
                              "total"), False))  # fmt: skip
    board = [_movement_line(m, d.reference) for m in d.leaderboard]
    agreement = [
        f"{a.method}: Spearman {_fmt(a.spearman)}, bottom-k Jaccard {_fmt(a.jaccard)}, "
        f"RBO {_fmt(a.rbo)} ({a.n_models} models)"
        for a in d.agreement
    ]
    latency = [
        f"{x.model}: {_dur(x.p50)}{_change(x.p50, x.prev_p50)} / {_dur(x.p95)}"
        f"{_change(x.p95, x.prev_p95)}, {x.n} probes"
        if x.n
        else f"{x.model}: no successful probes"
        for x in sorted(d.latency, key=lambda x: order(x.model))
    ]
    fields += [
        (_listing("Leaderboard (Bradley–Terry [interval], vs the day before)", board, limit,
                  "(`/slam leaderboard`)", ("Leaderboard", "no pairwise votes yet")), False),
        (_listing(f"Judge/human agreement (vs {d.human_signal})", agreement, limit, "",
                  ("Judge/human agreement", "not enough judge scores or human ratings yet")),
         False),
        (_listing("Latency p50 / p95 (vs the day before)", latency, limit, "models",
                  ("Latency", "no probes that day")), True),
    ]  # fmt: skip
    if d.versions:
        fields.append((("Model versions", _top(d.versions, limit, "lines")), False))
    if d.alerts:
        fields.append(((f"Open alerts ({len(d.alerts)})", _top(d.alerts, limit, "alerts")
                        + "\n(`/slam alerts`)"), True))  # fmt: skip
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
        fields.append((("Availability", text), True))
    api = f"{d.api_name} ${d.api_per_1k:.4f}" if d.api_per_1k is not None else d.api_name
    cost_lines = [
        f"{c.model}: {c.label} · {c.reduction_label} vs {d.api_name}"
        + (f" · {c.energy} GPU energy" if c.energy else "")
        for c in sorted(d.costs, key=lambda c: order(c.model))
        if not c.is_api
    ]
    fields.append(((f"Cost per 1K output tokens (API: {api})",
                    _top(cost_lines, limit, "models") or "n/a"), False))  # fmt: skip
    if d.comments:
        fields.append((("What raters said", "\n".join(d.comments)), False))
    return fields


def _head(d: Digest) -> str:
    head = f"{d.votes} vote(s) from {d.raters} rater(s) on {d.day:%a %d %b} ({d.timezone})."
    if d.leaderboard:
        head += f" Top rated: {d.leaderboard[0].model}."
    return head


def render(d: Digest, limit: int = 8) -> Reply:
    """The digest as a Reply: a headline and one field per topic (charts as files). Each
    per-model list shows at most `limit` models, best rated first."""
    fields = [f for f, _shared in _fields(d, limit)]
    head = _head(d)
    if d.charts:
        head += " Key charts are attached; `/slam report` has the full report."
    text = "\n".join([head, *(f"Note: {n}" for n in d.notes)])
    return Reply(
        text, title=f"SLaM daily digest · {d.day.isoformat()}", fields=fields, files=dict(d.charts)
    )


def render_digests(digests: Sequence[tuple[str | None, Digest]], limit: int = 8) -> Reply:
    """Every feature's digest as one Reply: a headline per feature, then one section per
    feature (fields titled 'feature · topic'), then the models' latency and availability
    once. A single digest renders exactly as `render` does."""
    if len(digests) == 1:
        return render(digests[0][1], limit)
    first = digests[0][1]
    fields: list[tuple[str, str]] = []
    shared: list[tuple[str, str]] = []
    lines: list[str] = []
    files: dict[str, Path] = {}
    for name, d in digests:
        label = name or "all"
        lines.append(f"{label}: {_head(d)}")
        lines += [f"Note ({label}): {n}" for n in d.notes]
        for (title, text), is_shared in _fields(d, limit):
            if not is_shared:
                fields.append((f"{label} · {title}", text))
            elif d is first:
                shared.append((title, text))
        files.update({f"{label}-{k}": v for k, v in d.charts.items()})
    if files:
        lines.append("Key charts are attached; `/slam report FEATURE` has the full report.")
    return Reply("\n".join(lines), title=f"SLaM daily digest · {first.day.isoformat()}",
                 fields=fields + shared, files=files)  # fmt: skip
