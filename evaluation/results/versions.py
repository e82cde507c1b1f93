"""Model versions in the results: which votes count, how each version did, and drift.

A configured model may be answered by several versions over time (storage's `model_version`:
an Ollama digest, an API fingerprint, a GGUF hash; hosting.backends.identity). The ratings and
the decision use the **current** version's votes (the version first seen last): a rating pair
counts when neither of its answers came from an older version of its model. Answers stored
before versions were recorded (no version) count with the current version while a model has
one version, and as history once a second appears. Older versions' votes are kept and shown
as history (`version_history`), and the change between the two latest versions of a model
that both have votes is measured with the same Bradley–Terry bootstrap as the ratings, the
older version as the anchor (`drift`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from evaluation.human import bradley_terry
from evaluation.results.datasets import VOTES, DatasetBase, dataset, fetch_rows
from storage.models import Generation, ModelRecord, ModelVersion, RatingPair

_MV = ModelVersion.__table__.c  # type: ignore[attr-defined]
_M = ModelRecord.__table__.c  # type: ignore[attr-defined]
_G = Generation.__table__.c  # type: ignore[attr-defined]
_RP = RatingPair.__table__.c  # type: ignore[attr-defined]
VERSIONS = ("model_version", "model")


@dataclass(frozen=True)
class VersionInfo:
    """One version of a model: its id, short label, when it was first seen, votes counted."""

    id: int
    model: str
    label: str
    first_seen: datetime
    votes: int = 0

    @property
    def day(self) -> str:
        return self.first_seen.strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Drift:
    """The quality change from a model's previous version to its current one: the new
    version's Bradley–Terry rating with the old one anchored at 0 (bootstrap interval)."""

    model: str
    old: VersionInfo
    new: VersionInfo
    change: float  # Elo points, new minus old
    lo: float
    hi: float
    margin: float

    @property
    def beyond_margin(self) -> bool:
        """The interval lies wholly beyond the margin (either way): the version really moved."""
        return self.hi < -self.margin or self.lo > self.margin

    def line(self) -> str:
        """The drift line every surface shows (evaluation.results.leaderboard.drift_text)."""
        from evaluation.results.leaderboard import drift_text

        return drift_text(self)


class VersionData(DatasetBase):
    """The version datasets of `Results` (mixed into evaluation.results.service.Results)."""

    @dataset(reads=VERSIONS)
    def model_versions(self) -> dict[str, list[VersionInfo]]:
        """model -> its versions, oldest first (the last one is current)."""
        q = (
            select(_M.name, _MV.id, _MV.label, _MV.first_seen)
            .join(ModelRecord.__table__, _M.id == _MV.model_id)  # type: ignore[attr-defined]
            .order_by(_MV.first_seen, _MV.id)
        )
        if self.as_of is not None:  # the versions seen by then (the digest's day before)
            q = q.where(_MV.first_seen < self.as_of)
        out: dict[str, list[VersionInfo]] = defaultdict(list)
        with self.engine.connect() as conn:  # typed rows: first_seen as an aware datetime
            for name, vid, label, first in conn.execute(q).all():
                out[name].append(VersionInfo(int(vid), name, label, first))
        return dict(out)

    @dataset(reads=VOTES + VERSIONS)
    def _pair_versions(self) -> dict[int, tuple[tuple[str, int | None], tuple[str, int | None]]]:
        """pair id -> ((model, version id) of A, of B) for every rating pair."""
        ga, gb = Generation.__table__.alias("ga"), Generation.__table__.alias("gb")  # type: ignore[attr-defined]
        ma, mb = ModelRecord.__table__.alias("ma"), ModelRecord.__table__.alias("mb")  # type: ignore[attr-defined]
        q = (
            select(_RP.id, ma.c.name, ga.c.model_version_id, mb.c.name, gb.c.model_version_id)
            .join(ga, ga.c.id == _RP.generation_a_id)
            .join(gb, gb.c.id == _RP.generation_b_id)
            .join(ma, ma.c.id == ga.c.model_id)
            .join(mb, mb.c.id == gb.c.model_id)
        )
        return {
            int(p): ((a, None if va is None else int(va)), (b, None if vb is None else int(vb)))
            for p, a, va, b, vb in fetch_rows(self.engine, q)
        }

    def _is_current(self, model: str, version: int | None) -> bool:
        versions = self.model_versions.get(model, [])
        if len(versions) <= 1:
            return True  # one version (or none recorded): every answer is it
        return version == versions[-1].id

    @dataset(reads=VOTES + VERSIONS)
    def stale_pairs(self) -> frozenset[int]:
        """Rating pairs with an answer from an older version of its model: history, not
        counted in the ratings or the decision."""
        if not any(len(v) > 1 for v in self.model_versions.values()):
            return frozenset()
        return frozenset(
            p for p, (a, b) in self._pair_versions.items()
            if not (self._is_current(*a) and self._is_current(*b))
        )  # fmt: skip

    def current_pairs(self, scoped: frozenset[int] | None) -> frozenset[int] | None:
        """The pairs the ratings count: those in scope (`scoped`, None: all) minus the stale."""
        stale = self.stale_pairs
        if not stale:
            return scoped
        pairs = scoped if scoped is not None else frozenset(self._pair_versions)
        return frozenset(pairs - stale)

    def _all_counts(self) -> dict[tuple[int, str], int]:
        """(pair, choice) -> counted votes, every version's (scope and rater rules applied)."""
        tally = getattr(self, "tally", None)
        if tally is None:
            return {}
        only = getattr(self, "scope_pairs", None)
        flagged: frozenset[int] = getattr(self, "flagged_raters", frozenset())
        counts: dict[tuple[int, str], int] = tally.pair_counts(flagged, only)
        return counts

    @dataset(reads=VOTES + VERSIONS)
    def version_history(self) -> dict[str, list[VersionInfo]]:
        """model -> its versions with the pairwise votes each got, for models with several."""
        several = {m: v for m, v in self.model_versions.items() if len(v) > 1}
        if not several:
            return {}
        votes: dict[tuple[str, int | None], int] = defaultdict(int)
        pv = self._pair_versions
        for (pair, _), n in self._all_counts().items():
            for side in pv.get(pair, ()):
                votes[side] += n
        first = {m: v[0].id for m, v in several.items()}
        out = {}
        for model, versions in several.items():
            out[model] = [
                VersionInfo(v.id, v.model, v.label, v.first_seen,
                            votes[(model, v.id)] + (votes[(model, None)] if v.id == first[model]
                                                    else 0))
                for v in versions
            ]  # fmt: skip
        return out

    def warming_up(self) -> dict[str, VersionInfo]:
        """model -> its current version, for models whose current version (of several) has
        fewer votes than `[alerts] min_version_votes`: pair selection favours them."""
        if not self._per_version:
            return {}
        need = self.cfg.alerts.min_version_votes
        return {m: v[-1] for m, v in self.version_history.items() if v[-1].votes < need}

    @property
    def _per_version(self) -> bool:
        """Whether votes can be told apart by version: under a vote policy that cannot be
        folded per stream (`require_completion`, `max_votes_per_rater`) the counts are read by
        model from the log, every version's together."""
        return getattr(self, "tally", None) is not None

    @dataset(reads=VOTES + VERSIONS)
    def drift(self) -> list[Drift]:
        """Per model with votes on its two latest versions: the change from the older to the
        newer (the same Bradley–Terry bootstrap as the ratings, the older one anchored)."""
        history = self.version_history
        if not history or not self._per_version:
            return []
        ev = self.cfg.evaluation
        margin = self.cfg.alerts.drift_margin_elo or float(getattr(self, "margin_elo", 0) or 0)
        pv, counts = self._pair_versions, self._all_counts()
        out = []
        for model, versions in sorted(history.items()):
            voted = [v for v in versions if v.votes]
            if len(voted) < 2 or versions[-1].id != voted[-1].id:
                continue
            old, new = voted[-2], voted[-1]
            names: dict[int, str | None] = {old.id: f"{model}@old", new.id: f"{model}@new"}
            first = versions[0].id
            rows: dict[tuple[str, str, str], int] = defaultdict(int)
            for (pair, choice), n in counts.items():
                if pair not in pv:
                    continue
                a, b = (_side_name(side, model, first, names) for side in pv[pair])
                if a is None or b is None or a == b:
                    continue
                rows[(a, b, choice)] += n
            if not rows:
                continue
            fit = bradley_terry(
                [(a, b, c, n) for (a, b, c), n in sorted(rows.items())],
                reference=f"{model}@old", n_boot=ev.bootstrap_rounds, both_bad=ev.both_bad,
                ci=ev.confidence,
            )  # fmt: skip
            r_new, r_old = fit.ratings.get(f"{model}@new"), fit.ratings.get(f"{model}@old")
            if r_new is None or r_old is None:
                continue
            base = r_old.rating
            out.append(Drift(model, old, new, r_new.rating - base, r_new.lo - base,
                             r_new.hi - base, margin))  # fmt: skip
        return out

    def version_lines(self) -> list[str]:
        """What the leaderboard says of versions: which one the numbers are based on, and
        which are still warming up (leaderboard.version_text writes each)."""
        from evaluation.results.leaderboard import version_text

        need = self.cfg.alerts.min_version_votes
        if self.version_history and not self._per_version:
            return [f"{m}: {len(v)} versions; under this vote policy (require_completion or "
                    "max_votes_per_rater) the ratings count every version's votes"
                    for m, v in self.version_history.items()]  # fmt: skip
        return [version_text(v, need) for v in self.version_history.values()]


def _side_name(side: tuple[str, int | None], model: str, first: int,
               names: dict[int, str | None]) -> str | None:  # fmt: skip
    """The player a pair's side is in the drift fit: another model as itself, the drifting
    model's two versions as `model@old` / `model@new` (answers without a version belong to its
    first version), its other versions left out (None)."""
    m, vid = side
    if m != model:
        return m
    return names.get(first if vid is None else vid)


def as_dict(v: VersionInfo) -> dict[str, Any]:
    return {"id": v.id, "model": v.model, "label": v.label, "first_seen": v.first_seen,
            "votes": v.votes}  # fmt: skip
