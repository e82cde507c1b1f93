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
    j_per_1k_output: float | None = None  # GPU energy per 1K output tokens, where measured

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
    "J per 1K output",
]


def energy_text(j_per_1k_output: float | None) -> str:
    """GPU energy per 1K output tokens: '1,234 J' (kJ above 10 kJ); 'n/a' where not measured."""
    if j_per_1k_output is None or not math.isfinite(j_per_1k_output):
        return "n/a"
    if j_per_1k_output >= 10_000:
        return f"{j_per_1k_output / 1000:,.1f} kJ"
    return f"{j_per_1k_output:,.0f} J"


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
        energy_text(r.j_per_1k_output),
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
        energy = (
            f" · {energy_text(r.j_per_1k_output)} per 1K tokens"
            if r.j_per_1k_output is not None
            else ""
        )
        lines.append(
            f"{i}. {r.model}{ref}: {r.quality_text()} · {r.status_text()} · "
            f"{duration(r.latency_p50_s)} · {r.cost_label}{energy}"
        )
    if len(rows) > limit:
        lines.append(f"… and {len(rows) - limit} more in the full report")
    if any(r.rating is not None and r.rating.bound for r in rows):
        lines.append(PRIOR_NOTE)
    return "\n".join(lines)


def version_text(versions: list[Any], min_votes: int) -> str:
    """What the numbers of a model with several versions are based on (its current version,
    from when), the older ones as history, and whether the current one is still warming up
    (fewer than `min_votes` votes). `versions`: evaluation.results.versions.VersionInfo,
    oldest first."""
    cur, older = versions[-1], versions[:-1]
    text = (f"{cur.model}: based on version {cur.label} from {cur.day} "
            f"({cur.votes} vote{'s' if cur.votes != 1 else ''})")  # fmt: skip
    if cur.votes < min_votes:
        text += f" — too few votes yet (warming up: {min_votes} needed)"
    if older:
        text += "; history: " + ", ".join(
            f"{v.label} from {v.day} ({v.votes} votes)" for v in reversed(older))
    return text


def drift_text(d: Any) -> str:
    """A model's quality change between its two latest versions, with the interval and the
    margin (`d`: evaluation.results.versions.Drift)."""
    word = "worse" if d.change < 0 else "better"
    flag = " — beyond the margin" if d.beyond_margin else ""
    return (
        f"{d.model}: version {d.new.label} (from {d.new.day}) is {abs(d.change):.0f} Elo {word} "
        f"than {d.old.label} (from {d.old.day}), [{d.lo:+.0f}, {d.hi:+.0f}], margin "
        f"±{d.margin:.0f}{flag}"
    )


def withheld_text(counts: dict[str, int]) -> str | None:
    """The report's line about them (None: none withheld)."""
    total = sum(counts.values())
    if not total:
        return None
    who = ", ".join(f"{m}: {n}" for m, n in counts.items())
    return (f"{total} answer{'s' if total != 1 else ''} still named a model after masking and "
            f"{'were' if total != 1 else 'was'} never shown to raters ({who}).")


def comment_lines(by_model: dict[str, Any], per_model: int = 5, width: int = 300) -> list[str]:
    """'What raters said about M (n comments):' and its newest comments, each with the vote it
    came with, for every model (the report's section)."""
    from core.errors import short

    out: list[str] = []
    for model, mc in by_model.items():
        out.append(f"What raters said about {model} ({mc.count} comment(s), newest first):")
        for c, vote in mc.comments[:per_model]:
            out.append(f"- “{short(c.text, width)}” ({vote}; {c.created_at:%Y-%m-%d})")
        if mc.count > per_model:
            out.append(f"- … and {mc.count - per_model} more (`slam export comments`)")
    return out


def comment_vote(c: Any) -> str:
    """The vote a comment came with, in model names: 'preferred M over N', …"""
    a, b = c.model_a, c.model_b
    if c.choice in ("A", "B"):
        win, lose = (a, b) if c.choice == "A" else (b, a)
        return f"preferred {win} over {lose}"
    if c.choice == "tie":
        return f"a tie between {a} and {b}"
    if c.choice == "both_bad":
        return f"both bad: {a} and {b}"
    return f"on {a} vs {b}, no vote"


def comment_quotes(by_model: dict[str, Any], n: int = 3, width: int = 160) -> list[str]:
    """The newest few comments (each once), with the vote each came with (the digest's)."""
    from core.errors import short

    unique = {c.id: c for mc in by_model.values() for c, _ in mc.comments}
    newest = sorted(unique.values(), key=lambda c: -c.id)[:n]
    return [f"“{short(c.text, width)}” ({comment_vote(c)})" for c in newest]
