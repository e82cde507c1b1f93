"""Which feature and which slice of its inputs the numbers are about: one `Scope` that every
SQL reader of votes, scores, judge answers and generations applies.

A feature is an `experiment` row (core.features); its inputs are `user_context` rows with a
`slice` (the feature's `slice_field`). A generation is in scope when it answers the scope's
experiment and, with a slice, a prompt made from an input of that slice; a rating pair is in
scope when the generation shown as A is (both sides of a pair answer the same prompt of the
same feature). `Scope()` is everything the database holds: every reader then runs exactly
the query it ran before features existed.

Rater quality (rule 9 of evaluation.human.votes) is deliberately *not* scoped: whether a
rater's votes are careful is about the rater, so the gold and chance rules read every feature's
votes and a flagged rater is left out of every feature's numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlmodel import Session

from storage.models import Experiment, Generation, Prompt, RatingPair, UserContext

_G = Generation.__table__.c  # type: ignore[attr-defined]
_P = Prompt.__table__.c  # type: ignore[attr-defined]
_UC_TABLE = UserContext.__table__  # type: ignore[attr-defined]
_UC = _UC_TABLE.c
_RP = RatingPair.__table__.c  # type: ignore[attr-defined]
_EXP = Experiment.__table__.c  # type: ignore[attr-defined]

NO_EXPERIMENT = 0  # the id of a feature with no row yet: nothing matches it (ids start at 1)


@dataclass(frozen=True)
class Scope:
    """A feature (its experiment id; None: every feature) and optionally one slice."""

    experiment_id: int | None = None
    slice: str | None = None

    @classmethod
    def of(cls, session: Session, feature: str | None, slice: str | None = None) -> Scope:
        """The scope of a feature by name (its experiment row), or of everything (None). A
        feature with nothing stored yet gets an id that matches no row."""
        if feature is None:
            return cls(None, slice)
        q = select(_EXP.id).where(_EXP.name == feature)
        found = session.connection().execute(q).scalar()
        return cls(NO_EXPERIMENT if found is None else int(found), slice)

    @property
    def everything(self) -> bool:
        return self.experiment_id is None and self.slice is None

    def key(self) -> tuple[Any, ...]:
        return (self.experiment_id, self.slice)

    def generation_conditions(self, gen: Any) -> list[Any]:
        """WHERE conditions that keep the rows of the generation table (or an alias's
        columns) `gen` in scope; none for everything."""
        out: list[Any] = []
        if self.experiment_id is not None:
            out.append(gen.experiment_id == self.experiment_id)
        if self.slice is not None:
            prompts = select(_P.id).join(_UC_TABLE, _UC.id == _P.user_context_id)
            out.append(gen.prompt_id.in_(prompts.where(_UC.slice == self.slice)))
        return out

    def generation_ids(self) -> Select[Any]:
        """SELECT the ids of the generations in scope."""
        return select(_G.id).where(*self.generation_conditions(_G))

    def pair_ids(self, session: Session) -> frozenset[int] | None:
        """The ids of the rating pairs in scope (gold pairs too); None for everything."""
        if self.everything:
            return None
        q = select(_RP.id).where(_RP.generation_a_id.in_(self.generation_ids()))
        return frozenset(int(p) for p in session.connection().execute(q).scalars())

    def slice_version(self, session: Session) -> tuple[Any, ...]:
        """What a slice's membership depends on that no table version tracks: the inputs'
        slices are updated in place when the inputs file changes (storage.repo.ensure_input)."""
        if self.slice is None:
            return ()
        q = select(_UC.id, _UC.slice).order_by(_UC.id)
        if self.experiment_id is not None:
            q = q.where(_UC.experiment_id == self.experiment_id)
        rows = session.connection().execute(q).all()
        return (hashlib.sha256(repr([(int(i), s) for i, s in rows]).encode()).hexdigest()[:16],)


EVERYTHING = Scope()
