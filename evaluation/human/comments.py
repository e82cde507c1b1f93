"""What raters said: their comments on pairs (storage.models.VoteComment), read with the vote
each came with.

A comment row is immutable; a rater's newest comment on a pair (by id, as votes are ordered) is
the one that stands. Each standing comment is read with the pair's two models and the rater's
effective pairwise vote on it (rules 1–4 of evaluation.human.votes), so the report can say
"what raters said about M": every comment on a pair M was in, with how that rater voted on
M (preferred it, preferred the other, a tie, both bad), newest first, with a count. Gold pairs
check raters, not models: their comments are left out of the per-model view, and so are the
comments on pairs still blind (their round open, the pair not revealed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from evaluation.human.scope import EVERYTHING, Scope
from evaluation.human.votes import effective_from
from storage.models import Generation, ModelRecord, RatingPair, RatingRound, VoteComment

_VC = VoteComment.__table__  # type: ignore[attr-defined]
_RP = RatingPair.__table__  # type: ignore[attr-defined]
_G = Generation.__table__  # type: ignore[attr-defined]
_M = ModelRecord.__table__  # type: ignore[attr-defined]
_RR = RatingRound.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PairComment:
    """One comment with what it was about: the pair's models and the rater's vote."""

    id: int
    pair_id: int
    rater_id: int
    platform: str
    text: str
    created_at: datetime
    model_a: str
    model_b: str
    pair_kind: str
    revealed: bool
    blind: bool  # the pair's round is open and the pair not revealed: show no model names
    choice: str | None  # the rater's effective pairwise vote on the pair (A|B|tie|both_bad)
    latest: bool  # the rater's newest comment on this pair (the one that stands)
    edits: int  # how many comments this rater wrote on this pair

    def vote_on(self, model: str) -> str:
        """The rater's vote as it concerns `model` (one of the pair's)."""
        side = "A" if model == self.model_a else "B"
        if self.choice in ("A", "B"):
            return "preferred it" if self.choice == side else "preferred the other"
        return {"tie": "a tie", "both_bad": "both bad"}.get(self.choice or "", "no vote")


def load_comments(
    session: Session,
    scope: Scope = EVERYTHING,
    *,
    latest_only: bool = True,
    as_of: datetime | None = None,
    pair_ids: Collection[int] | None = None,
) -> list[PairComment]:
    """The comments in scope (only the standing ones unless `latest_only` is False), newest
    first; `as_of`: those stored before it; `pair_ids`: on those pairs only."""
    ga, gb = _G.alias("ga"), _G.alias("gb")
    ma, mb = _M.alias("ma"), _M.alias("mb")
    q = (
        select(_VC.c.id, _VC.c.pair_id, _VC.c.rater_id, _VC.c.platform, _VC.c.text,
               _VC.c.created_at, ma.c.name, mb.c.name, _RP.c.kind, _RP.c.revealed,
               _RR.c.status)
        .select_from(_VC.join(_RP, _RP.c.id == _VC.c.pair_id)
                     .join(_RR, _RR.c.id == _RP.c.round_id)
                     .join(ga, ga.c.id == _RP.c.generation_a_id)
                     .join(gb, gb.c.id == _RP.c.generation_b_id)
                     .join(ma, ma.c.id == ga.c.model_id).join(mb, mb.c.id == gb.c.model_id))
        .where(*scope.generation_conditions(ga.c))
        .order_by(_VC.c.id)
    )  # fmt: skip
    if as_of is not None:
        q = q.where(_VC.c.created_at < as_of)
    if pair_ids is not None:
        q = q.where(_VC.c.pair_id.in_(sorted(pair_ids)))
    rows = session.connection().execute(q).all()
    newest: dict[tuple[int, int], int] = {}
    edits: dict[tuple[int, int], int] = defaultdict(int)
    for r in rows:
        newest[(r[1], r[2])] = r[0]
        edits[(r[1], r[2])] += 1
    choices = _choices(session, {(r[1], r[2]) for r in rows})
    out = [
        PairComment(id=cid, pair_id=pid, rater_id=rid, platform=plat, text=text,
                    created_at=when, model_a=a, model_b=b, pair_kind=kind,
                    revealed=bool(revealed), blind=status == "open" and not revealed,
                    choice=choices.get((pid, rid)), latest=newest[(pid, rid)] == cid,
                    edits=edits[(pid, rid)])
        for cid, pid, rid, plat, text, when, a, b, kind, revealed, status in rows
    ]  # fmt: skip
    if latest_only:
        out = [c for c in out if c.latest]
    return sorted(out, key=lambda c: -c.id)


def _choices(session: Session, keys: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """(pair, rater) -> the rater's effective pairwise vote, for the commented pairs."""
    if not keys:
        return {}
    out: dict[tuple[int, int], str] = {}
    pairs = sorted({p for p, _ in keys})
    for which in ("models", "gold"):
        e = effective_from("pairwise", pairs=which)
        q = e.select(e.vote.pair_id, e.vote.rater_id, e.vote.choice).where(
            e.vote.pair_id.in_(pairs))
        for pid, rid, choice in session.connection().execute(q):
            if (pid, rid) in keys:
                out[(pid, rid)] = choice
    return out


@dataclass(frozen=True)
class ModelComments:
    """What raters said about one model: (comment, the vote as it concerns the model),
    newest first."""

    model: str
    comments: list[tuple[PairComment, str]]

    @property
    def count(self) -> int:
        return len(self.comments)


def comments_by_model(comments: list[PairComment]) -> dict[str, ModelComments]:
    """Every standing model-pair comment under each of the pair's two models, newest first;
    comments on pairs still blind (round open, not revealed) are left out: naming the model
    a comment was about would unblind the pair for everyone who saw it."""
    acc: dict[str, list[tuple[PairComment, str]]] = defaultdict(list)
    for c in sorted(comments, key=lambda c: -c.id):
        if not c.latest or c.pair_kind == "gold" or c.blind:
            continue
        for m in dict.fromkeys((c.model_a, c.model_b)):
            acc[m].append((c, c.vote_on(m)))
    return {m: ModelComments(m, acc[m]) for m in sorted(acc)}

