"""How results are written down: one formatter per number, used by every surface.

A rating with its interval reads the same in chat, in the report, in the digest, in
`slam score` and on the dashboard, because all of them call `rating_text`; the leaderboard's
rows carry each model's decision status from the one Decision (evaluation.human.decision).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from evaluation.human import STATUS_LABEL, BTResult, Decision, ModelRating, style_cell
from evaluation.perf import format_usd

PRIOR_NOTE = (
    "* never lost (or never won) against the reference's group: the prior, not the votes, sets "
    "this rating and the open end of its interval; more votes will bound it"
)


def rating_text(r: ModelRating) -> str:
    """'1234 [1100, 1300]'; a rating the prior bounds gets a * and an open end."""
    lo = "−∞" if r.bound in ("upper", "prior") else f"{r.lo:.0f}"
    hi = "∞" if r.bound in ("lower", "prior") else f"{r.hi:.0f}"
    return f"{r.rating:.0f}{'*' if r.bound else ''} [{lo}, {hi}]"


def rank_text(r: ModelRating) -> str:
    return f"rank {r.rank_lo}–{r.rank_hi}" if r.rank_lo != r.rank_hi else f"rank {r.rank}"


def ratings_lines(bt: BTResult) -> list[str]:
    """One line per rated model, best first: the plain-text leaderboard of the ratings."""
    lines = []
    for r in bt.ranked():
        ref = " (ref)" if r.model == bt.reference else ""
        lines.append(f"{r.rank}. {r.model}{ref}: {rating_text(r)}, {rank_text(r)}, "
                     f"{r.n_votes} votes")  # fmt: skip
    return lines


def ratings_caption(bt: BTResult) -> str:
    ref = f", {bt.reference} anchored at 1000" if bt.anchor else ""
    return (
        f"Bradley–Terry ratings from {bt.n_outcomes} pairwise votes{ref}; "
        f"{bt.ci:.0%} bootstrap intervals ({bt.n_boot} rounds)."
    )


def duration(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def _num(v: float, like: float | None = None) -> str:
    """Ratings (hundreds) without decimals, 0–10 scores with two."""
    return f"{v:.0f}" if abs(like if like is not None else v) >= 100 else f"{v:.2f}"


@dataclass(frozen=True)
class LeaderboardRow:
    model: str
    is_reference: bool
    hardware: str
    quality: float | None
    quality_lo: float | None
    quality_hi: float | None
    quality_scale: str
    rating: ModelRating | None  # the Bradley–Terry rating, when the quality is one
    n_votes: int | None
    status: str  # the decision's status for this model ('reference' for the reference)
    latency_p50_s: float | None
    latency_p90_s: float | None
    tpot_p50_s: float | None
    tokens_per_s: float | None
    availability: float | None
    cost_label: str
    cost_per_1k_output: float | None
    reduction_label: str
    monthly_usd: float | None
    style: Any = None  # evaluation.human.style.StyleRating: the length-controlled rating

    def style_text(self) -> str:
        """The style-controlled (length and markdown) rating with its interval when it says
        something beside the raw one, else 'needs more votes' (evaluation.human.style_shown)."""
        return style_cell(self.style, self.rating)

    def quality_text(self) -> str:
        if self.rating is not None:
            return rating_text(self.rating)
        if self.quality is None:
            return "not rated"
        ci = ""
        if (
            self.quality_lo is not None
            and self.quality_hi is not None
            and self.quality_hi > self.quality_lo
        ):
            q = self.quality
            ci = f" [{_num(self.quality_lo, q)}, {_num(self.quality_hi, q)}]"
        return f"{_num(self.quality)}{ci}"

    def status_text(self) -> str:
        return "reference" if self.is_reference else STATUS_LABEL.get(self.status, self.status)


def with_style(rows: list[LeaderboardRow], style: Any) -> list[LeaderboardRow]:
    """The rows with their style-controlled ratings (evaluation.human.style.StyleResult) filled in:
    a separate, slower dataset, read only where the table shows it (the report, the
    dashboard)."""
    from dataclasses import replace

    if style is None:
        return rows
    return [replace(r, style=style.ratings.get(r.model)) for r in rows]


HEADERS = [
    "#",
    "model",
    "decision",
    "hardware",
    "quality",
    "style-controlled",
    "votes",
    "p50 latency",
    "p90 latency",
    "TPOT p50",
    "tok/s",
    "availability",
    "$ per 1K output",
    "vs API",
    "$/month",
]


def cells(i: int, r: LeaderboardRow) -> list[str]:
    """One leaderboard row as text cells, in HEADERS order."""
    return [
        str(i),
        r.model + (" (ref)" if r.is_reference else ""),
        r.status_text(),
        r.hardware,
        r.quality_text(),
        r.style_text(),
        str(r.n_votes) if r.n_votes is not None else "",
        duration(r.latency_p50_s),
        duration(r.latency_p90_s),
        duration(r.tpot_p50_s),
        f"{r.tokens_per_s:.1f}" if r.tokens_per_s else "n/a",
        f"{r.availability:.1%}" if r.availability is not None else "n/a",
        r.cost_label,
        r.reduction_label,
        format_usd(r.monthly_usd),
    ]


def summary_text(rows: list[LeaderboardRow], decision: Decision, limit: int = 8) -> str:
    """The decision, then a short plain-text leaderboard, for a chat reply."""
    if not rows:
        return decision.text() + "\n\nNo models with data yet."
    lines = [
        decision.text(),
        "",
        f"Leaderboard (quality [{decision.confidence:.0%} interval] · decision · p50 latency · "
        "$ per 1K output tokens):",
    ]
    for i, r in enumerate(rows[:limit], 1):
        ref = " (ref)" if r.is_reference else ""
        lines.append(
            f"{i}. {r.model}{ref}: {r.quality_text()} · {r.status_text()} · "
            f"{duration(r.latency_p50_s)} · {r.cost_label}"
        )
    if len(rows) > limit:
        lines.append(f"… and {len(rows) - limit} more in the full report")
    if any(r.rating is not None and r.rating.bound for r in rows):
        lines.append(PRIOR_NOTE)
    return "\n".join(lines)
