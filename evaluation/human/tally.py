"""The vote log folded per stream: the results service's fast, incremental path.

`VoteTally` applies rules 1–4 and 7 of evaluation.human.votes (the one definition) by folding
every event in id order with `votes.fold_events` — the same votes as the module's SQL, which a
test checks — and keeps the per-stream state, so new votes update it by reading only the new
events. Rule 8
(gold pairs never count) is in which pairs it maps to models; rule 9 (rater quality) reads its
per-rater tallies and gold answers, and the counts leave the flagged raters out.

The tally is one per database (every feature's votes); a reader of one feature or slice
(evaluation.human.scope) passes that scope's pair ids as `only`, and rule 9 keeps reading
every feature's tallies.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from evaluation.human.votes import (
    _GEN,
    _MODEL,
    PAIRWISE_CHOICES,
    RP,
    SIDES,
    Current,
    StreamKey,
    V,
    VoteEvent,
    fold_events,
)


@dataclass(frozen=True)
class VoteTally:
    """Rules 1–4 and 7 applied by folding the whole log in id order (`fold_events`) — the same
    votes as the SQL above (a test checks it) — kept as per-stream state so that new events
    update it without re-reading the log. The results service's path for a plain policy.

    Immutable: `updated` returns a new tally, or None when the log changed in a way an update
    cannot follow (an event committed out of id order, a row removed): then rebuild.
    """

    as_of: datetime | None
    max_id: int
    n_events: int
    streams: dict[StreamKey, Current]
    pair_models: dict[int, tuple[str, str]]  # model pairs only (rule 8)
    gold: dict[int, str] = field(default_factory=dict)  # gold pair -> the right side

    @classmethod
    def build(cls, session: Session, as_of: datetime | None = None) -> VoteTally:
        events = _events(session, as_of, after=None)
        streams = fold_events(events)
        pairs = {e[1] for e in events}
        max_id = max((e[0] for e in events), default=0)
        return cls(as_of, max_id, len(events), streams, _pair_models(session, pairs),
                   _gold_answers(session, pairs))  # fmt: skip

    def updated(self, session: Session, version: tuple[int, int | None]) -> VoteTally | None:
        """This tally after the events stored since it was built, given the vote table's
        current (count, max id); None when a full rebuild is needed."""
        count, max_id = version
        if self.as_of is not None:
            return None
        if (count, max_id or 0) == (self.n_events, self.max_id):
            return self
        new = _events(session, None, after=self.max_id)
        if self.n_events + len(new) != count:
            return None  # an event with a lower id committed late, or rows were removed
        streams = fold_events(new, self.streams)
        missing = {e[1] for e in new} - self.pair_models.keys() - self.gold.keys()
        pair_models = (
            {**self.pair_models, **_pair_models(session, missing)}
            if missing
            else (self.pair_models)
        )
        gold = {**self.gold, **_gold_answers(session, missing)} if missing else self.gold
        return VoteTally(None, max(self.max_id, max_id or 0), count, streams, pair_models, gold)

    def pairwise_counts(
        self, skip: Collection[int] = (), only: Collection[int] | None = None
    ) -> list[tuple[str, str, str, int]]:
        """As `pairwise_results` with a plain policy; `skip`: raters rule 9 leaves out;
        `only`: these pairs only (a feature's or slice's; None: every pair)."""
        return self.model_counts(self.pair_counts(skip, only))

    def pair_counts(
        self, skip: Collection[int] = (), only: Collection[int] | None = None
    ) -> dict[tuple[int, str], int]:
        """(model pair id, choice) -> counted pairwise votes (what style control reads)."""
        models = self.pair_models
        return dict(Counter(
            (pair, choice)
            for (pair, rater, kind, _), (choice, _) in self.streams.items()
            if kind == "pairwise" and choice in PAIRWISE_CHOICES and pair in models
            and rater not in skip and (only is None or pair in only)
        ))  # fmt: skip

    def model_counts(
        self, pair_counts: Mapping[tuple[int, str], int]
    ) -> list[tuple[str, str, str, int]]:
        """`pairwise_counts` from `pair_counts`' result (one pass over pairs, not votes)."""
        counts: dict[tuple[str, str, str], int] = defaultdict(int)
        for (pair, choice), n in pair_counts.items():
            a, b = self.pair_models[pair]
            counts[(a, b, choice)] += n
        return sorted((a, b, c, n) for (a, b, c), n in counts.items())

    def rater_tallies(self) -> list[tuple[int, str, str, str, int]]:
        """As `votes.rater_tallies` (what rule 9 reads)."""
        models, choices = self.pair_models, frozenset(PAIRWISE_CHOICES)
        counts: Counter[tuple[int, str, str, str]] = Counter(
            (rater, *ab, choice)
            for (pair, rater, kind, _), (choice, _) in self.streams.items()
            if kind == "pairwise" and choice in choices and (ab := models.get(pair)) is not None
        )  # fmt: skip
        return sorted((r, a, b, c, n) for (r, a, b, c), n in counts.items())

    def gold_votes(self) -> list[tuple[int, bool]]:
        """As `votes.gold_votes`: (rater, passed) per effective vote on a gold pair."""
        return sorted(
            (rater, choice == self.gold[pair])
            for (pair, rater, kind, _), (choice, _) in self.streams.items()
            if kind == "pairwise" and choice in PAIRWISE_CHOICES and pair in self.gold
        )

    def scores(
        self, skip: Collection[int] = (), only: Collection[int] | None = None
    ) -> dict[str, list[float]]:
        """model -> effective 0–10 scores, as `scored_models` with a plain policy (sorted);
        `only`: these pairs only."""
        out: dict[str, list[float]] = defaultdict(list)
        for (pair, rater, kind, target), (_, score) in self.streams.items():
            if only is not None and pair not in only:
                continue
            if kind == "score" and score is not None and target in SIDES and rater not in skip:
                models = self.pair_models.get(pair)
                if models is not None:
                    out[models[0] if target == "A" else models[1]].append(score)
        return {m: sorted(v) for m, v in sorted(out.items())}


def _events(session: Session, as_of: datetime | None, after: int | None) -> list[VoteEvent]:
    """Raw vote events in id order: (id, pair, rater, kind, action, choice, target, score)."""
    q = select(V.id, V.pair_id, V.rater_id, V.kind, V.action, V.choice, V.target, V.score)
    if as_of is not None:
        q = q.where(V.created_at < as_of)
    if after is not None:
        q = q.where(V.id > after)
    result = session.connection().execute(q.order_by(V.id))
    try:  # plain DBAPI tuples: 100,000 events load in a fraction of a second
        return [tuple(r) for r in result.cursor.fetchall()]
    finally:
        result.close()


def _gold_answers(session: Session, pairs: set[int]) -> dict[int, str]:
    """gold pair id -> its right side (rule 8: these pairs check raters, not models)."""
    if not pairs:
        return {}
    q = select(RP.id, RP.gold_answer).where(RP.kind == "gold")
    if len(pairs) < 500:
        q = q.where(RP.id.in_(sorted(pairs)))
    return {pid: ans for pid, ans in session.connection().execute(q).all() if pid in pairs}


def _pair_models(session: Session, pairs: set[int]) -> dict[int, tuple[str, str]]:
    """pair id -> (model A's name, model B's name), for model pairs (never gold pairs)."""
    if not pairs:
        return {}
    ga, gb = _GEN.alias("ga"), _GEN.alias("gb")
    ma, mb = _MODEL.alias("ma"), _MODEL.alias("mb")
    q = (
        select(RP.id, ma.c.name, mb.c.name)
        .join(ga, ga.c.id == RP.generation_a_id)
        .join(gb, gb.c.id == RP.generation_b_id)
        .join(ma, ma.c.id == ga.c.model_id)
        .join(mb, mb.c.id == gb.c.model_id)
        .where(RP.kind != "gold")
    )
    if len(pairs) < 500:
        q = q.where(RP.id.in_(sorted(pairs)))
    result = session.connection().execute(q)
    try:  # plain DBAPI tuples: tens of thousands of pairs
        return {pid: (a, b) for pid, a, b in result.cursor.fetchall() if pid in pairs}
    finally:
        result.close()
