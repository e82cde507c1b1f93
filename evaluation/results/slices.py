"""Results per slice of a feature's inputs: the same leaderboard and non-inferiority decision,
computed from that slice's votes alone ("switch for billing tickets; keep gpt-4 for legal").

A feature with a `slice_field` stores each input's slice (`user_context.slice`); a slice's
results are `Results(engine, cfg, feature=F, slice=S)`. The report, the chat bot and the
dashboard all show `slice_decisions`, so the lines read the same everywhere.

**Too few votes.** A slice's decision is only as good as its votes, and a small slice can
look decided on a handful of them. A slice has *too few votes to decide* when it has fewer
than `MIN_SLICE_VOTES` counted pairwise votes, or when its decision has no data (no votes
on the reference yet); its line then says so instead of giving the decision. A slice that
has enough votes but an open candidate says "undecided" with the votes that would settle it,
as the whole feature's decision does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.config import SlamConfig
from core.features import feature as find_feature
from evaluation.human import Decision, Scope
from evaluation.results.leaderboard import LeaderboardRow
from storage.models import UserContext

if TYPE_CHECKING:
    from evaluation.results.service import Results

MIN_SLICE_VOTES = 20  # fewer counted pairwise votes than this: "too few votes to decide"
_UC = UserContext.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SliceDecision:
    """One slice of a feature: its decision, its counted pairwise votes and its leaderboard
    (`results` is the slice's results service, for anything else a surface shows)."""

    slice: str
    decision: Decision
    votes: int
    leaderboard: list[LeaderboardRow]
    results: Results | None = None

    @property
    def too_few(self) -> bool:
        """Too few votes to decide (see the module docstring)."""
        return self.votes < MIN_SLICE_VOTES or self.decision.kind == "no_data"

    def line(self) -> str:
        """One plain line: 'billing: switch to qwen3-4b (…)', or why it cannot say yet."""
        if self.too_few:
            return (
                f"{self.slice}: too few votes to decide ({self.votes} counted; a slice needs "
                f"{MIN_SLICE_VOTES} and a rated reference)."
            )
        return f"{self.slice}: {_verdict(self.decision)} ({self.votes} votes)."


def _verdict(d: Decision) -> str:
    if d.kind == "switch":
        return f"switch to {d.model}"
    if d.kind == "keep":
        return f"keep {d.reference_label}"
    return d.short().removeprefix("Decision: ")


def slice_names(engine: Engine, cfg: SlamConfig, feature: str | None = None) -> list[str]:
    """The slices of a feature's stored inputs, sorted (none when it has no `slice_field`)."""
    spec = find_feature(cfg, feature)
    if spec.slice_field is None:
        return []
    with Session(engine) as session:
        scope = Scope.of(session, spec.name)
        q = (select(_UC.slice).where(_UC.experiment_id == scope.experiment_id,
                                     _UC.slice.is_not(None)).distinct())  # fmt: skip
        return sorted(str(s) for s in session.connection().execute(q).scalars())


def slice_decisions(
    engine: Engine, cfg: SlamConfig, feature: str | None = None, **results: Any
) -> list[SliceDecision]:
    """Per slice of `feature` (None: the first feature), in slice order: its decision (the same
    non-inferiority rule, on that slice's votes), its counted pairwise votes and its
    leaderboard. `results`: keyword arguments of every slice's `Results` (window_days,
    requests_per_day, as_of, cache, …)."""
    from evaluation.results.service import Results

    name = find_feature(cfg, feature).name
    out = []
    for s in slice_names(engine, cfg, name):
        r = Results(engine, cfg, feature=name, slice=s, **results)
        votes = sum(n for *_, n in r.pairwise_counts)
        out.append(SliceDecision(s, r.decision, votes, r.leaderboard, r))
    return out
