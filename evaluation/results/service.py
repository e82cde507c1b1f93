"""The results service: every number a user sees comes from here.

`Results(engine, cfg)` is one snapshot of the database. Its datasets are computed lazily and
once: the ratings (Bradley–Terry over the effective votes of evaluation.human.votes, bootstrap
rounds and confidence from `[evaluation]`, seeded from the data), win rates, human scores,
automated method scores and their agreement with the humans, latency, availability and cost
(evaluation.results.perf), and the decision (evaluation.human.decision) with the leaderboard
rows that render it. The chat commands, the report, the digest, `slam score` and the web
dashboard all read it, so the same data shows the same numbers everywhere.

`Results(engine, cfg, feature=F, slice=S)` computes every number for one feature (its
experiment's generations, the pairs made from them, their votes, judge and similarity
scores, token counts; its models, reference and margin) and optionally one slice of its
inputs; the scope (evaluation.human.scope) goes into every SQL read. Probes stay per model,
and rater quality is judged over every feature's votes (see evaluation.human.scope).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from sqlmodel import Session

from evaluation.human import (
    BTResult,
    Decision,
    VoteTally,
    bradley_terry,
    decide,
    pairwise_results,
    win_rate_matrix,
)
from evaluation.results.datasets import GENERATIONS, JUDGES, PROBES, VOTES, cached, dataset
from evaluation.results.health import HealthData
from evaluation.results.leaderboard import LeaderboardRow
from evaluation.results.perf import ENERGY, PerfData
from evaluation.results.versions import VersionData
from evaluation.results.withheld import G, withheld_answers

log = logging.getLogger(__name__)
T = TypeVar("T")


class Results(VersionData, HealthData, PerfData):
    """Lazily loaded, cached results for one snapshot of the database."""

    def _external(self, name: str, fn: Callable[[Session], T]) -> T | None:
        t0 = time.perf_counter()
        try:
            with Session(self.engine) as session:
                return fn(session)
        except ImportError as exc:
            self.problems[name] = f"the {exc.name or 'evaluation'} module is not available"
        except Exception as exc:  # statistics on odd data must not break the whole report
            log.warning("%s failed: %s", name, exc, exc_info=True)
            self.problems[name] = f"{type(exc).__name__}: {exc}"
            self.errors.append(name)
        finally:
            self.timings[name] = time.perf_counter() - t0
        return None

    # -- human ratings ---------------------------------------------------------------------
    @cached
    def tally(self) -> VoteTally | None:
        """The vote log folded per stream (evaluation.human.votes.VoteTally), for a plain policy.

        Kept in the cache under the latest vote version it has seen: new votes update it
        (reading only the new events) instead of re-reading the log."""
        if not self.policy.foldable:
            return None
        version = self.versions["vote"]
        scope = ("vote-tally", self.engine.url.render_as_string(hide_password=True),
                 self.versions.get("database"), self.as_of.isoformat() if self.as_of else None,
                 self.versions.get("model"))  # fmt: skip
        previous = None
        if self.cache is not None:
            hit, previous = self.cache.get(scope)
            if not hit or not isinstance(previous, VoteTally):
                previous = None

        def fn(session: Session) -> VoteTally:
            t = previous.updated(session, version) if previous is not None else None
            return t if t is not None else VoteTally.build(session, self.as_of)

        tally = self._external("votes", fn)
        if tally is not None and self.cache is not None and tally is not previous:
            self.cache.put(scope, tally)
        return tally

    @dataset(reads=("rating_pair", "generation", "experiment"))
    def scope_pairs(self) -> frozenset[int] | None:
        """The rating pairs of this feature and slice (what the tally's counts keep); None when
        the results read everything."""
        if self.scope.everything:
            return None
        return self._external("scope", self.scope.pair_ids) or frozenset()

    @dataset(reads=GENERATIONS)
    def withheld(self) -> dict[str, int]:
        """Answers that still name a model after masking, per model: no pair shows them
        (evaluation.results.withheld)."""

        def fn(session: Session) -> dict[str, int]:
            return withheld_answers(session, self.cfg, self.scope.generation_conditions(G))

        return self._external("masking", fn) or {}

    @dataset(reads=VOTES)
    def pairwise_counts(self) -> list[tuple[str, str, str, int]]:
        """(model A, model B, result, votes) of the effective pairwise votes
        (evaluation.human.votes)."""
        if self.tally is not None and self.counted_pairs is not None:
            return self.tally.model_counts(self.counted_pairs)

        def fn(session: Session) -> list[tuple[str, str, str, int]]:
            return pairwise_results(session, self.policy)

        return self._external("votes", fn) or []

    @dataset(reads=VOTES)
    def ratings(self) -> BTResult | None:
        """Bradley–Terry ratings with bootstrap intervals, or None before the first vote.

        Rounds, confidence and the 'both bad' rule come from `[evaluation]`; the bootstrap is
        seeded from the data, so every surface and replica shows the same intervals."""
        counts = self.pairwise_counts
        if not counts:
            self.problems.setdefault("bt", "no pairwise human votes yet")
            return None
        ev = self.cfg.evaluation

        def fit() -> BTResult:
            return bradley_terry(counts, reference=self.reference, n_boot=ev.bootstrap_rounds,
                                 both_bad=ev.both_bad, ci=ev.confidence)  # fmt: skip

        res = self._timed("bt", fit)
        return res if res.ratings else None

    @property
    def bt(self) -> BTResult | None:
        return self.ratings

    @dataset(reads=VOTES)
    def win_rates(self) -> tuple[list[str], Any]:
        """Models and the matrix of the share of i-vs-j votes i won (ties half)."""
        return win_rate_matrix(self.pairwise_counts, both_bad=self.cfg.evaluation.both_bad)

    @dataset(reads=VOTES)
    def human_scores(self) -> dict[str, Any]:
        """model -> ScoreSummary of absolute human scores (0..10); empty when none."""

        def fn(session: Session) -> dict[str, Any]:
            from evaluation.human import load_absolute_scores, score_summary

            tally = self.tally
            scores = (
                tally.scores(self.flagged_raters, self.scope_pairs)
                if tally is not None
                else (load_absolute_scores(session, self.policy))
            )
            if not any(len(v) for v in scores.values()):
                self.problems["human_scores"] = "no human scores yet"
                return {}
            ev = self.cfg.evaluation
            return dict(score_summary(scores, n_boot=ev.bootstrap_rounds, ci=ev.confidence))

        return self._external("human_scores", fn) or {}

    @dataset(reads=JUDGES)
    def method_scores(self) -> dict[str, dict[str, float]]:
        """method -> model -> mean automated score; empty when none."""

        def fn(session: Session) -> dict[str, dict[str, float]]:
            from evaluation.auto import method_model_scores

            scope = self.scope
            found = method_model_scores(session, scope.experiment_id, slice=scope.slice)
            out = {m: s for m, s in found.items() if s}
            if not out:
                self.problems["method_scores"] = "no judge or similarity scores yet"
            return out

        return self._external("method_scores", fn) or {}

    @dataset(reads=VOTES)
    def human_means(self) -> tuple[dict[str, float], str]:
        """The human quality signal per model: mean absolute score, else BT rating."""
        if self.human_scores:
            return {
                m: s.mean for m, s in self.human_scores.items() if s.n
            }, "human mean score (0–10)"
        if self.bt is not None:
            return {m: r.rating for m, r in self.bt.ratings.items()}, "human Bradley–Terry rating"
        return {}, "human score"

    @dataset(reads=VOTES + JUDGES)
    def agreement(self) -> list[Any]:
        """MethodAgreement per automated method vs the human ranking."""
        human, _ = self.human_means
        if not human or not self.method_scores:
            return []

        def fn(_session: Session) -> list[Any]:
            from evaluation.auto import meta_evaluate

            ev = self.cfg.evaluation
            return list(meta_evaluate(self.method_scores, human, k=ev.bottom_k, p=ev.rbo_p))

        return self._external("agreement", fn) or []

    @dataset(reads=VOTES)
    def quality(self) -> dict[str, tuple[float, float, float, str]]:
        """model -> (value, CI low, CI high, scale): BT ratings, else human mean scores."""
        if self.bt is not None:
            return {
                m: (r.rating, r.lo, r.hi, "Bradley–Terry rating")
                for m, r in self.bt.ratings.items()
            }
        if self.human_scores:
            return {
                m: (s.mean, s.lo, s.hi, "mean human score (0–10)")
                for m, s in self.human_scores.items()
                if s.n and all(math.isfinite(x) for x in (s.mean, s.lo, s.hi))
            }
        return {}

    @dataset(reads=VOTES + JUDGES)
    def judge_trust(self) -> tuple[list[Any], str]:
        """Per judge method: agreement with the crowd (Cohen's κ with an interval and n),
        position and length bias, and a sentence naming the best match
        (evaluation.auto.judge_trust)."""

        verdicts, counted = self.judge_verdicts, self.counted_pairs

        def fn(session: Session) -> tuple[list[Any], str]:
            from evaluation.auto import crowd_verdicts, judge_trust_summary

            policy = self.policy
            if counted is not None:  # the counted votes per pair, from the tally (no log scan)
                crowd = crowd_verdicts(session, counts=counted, pairs=self.pair_generations)
            else:
                crowd = crowd_verdicts(session, policy)
            return judge_trust_summary(session, self.cfg, verdicts=verdicts, crowd=crowd,
                                       policy=policy)  # fmt: skip

        return self._external("judge_trust", fn) or ([], "")

    @cached
    def counted_pairs(self) -> dict[tuple[int, str], int] | None:
        """(model pair id, choice) -> counted pairwise votes, from the tally (rule 9 applied);
        None when the policy cannot be folded (then each reader reads the log)."""
        if self.tally is None:
            return None
        # only the current version of each model (evaluation.results.versions)
        tally, only = self.tally, self.current_pairs(self.scope_pairs)
        return self._timed("counted_pairs", lambda: tally.pair_counts(self.flagged_raters, only))

    @dataset(reads=("rating_pair",))
    def pair_generations(self) -> dict[int, tuple[int, int]]:
        """pair id -> (generation shown as A, as B) of every rating pair."""
        from evaluation.human import pair_generations

        return self._external("pair_generations", pair_generations) or {}

    @dataset(reads=JUDGES)
    def judge_verdicts(self) -> Any:
        """Every judge method's verdicts as pairwise outcomes, with response lengths
        (evaluation.auto.judge_trust.method_data): judge answers only, so new votes keep it."""

        def fn(session: Session) -> Any:
            from evaluation.auto import method_data

            return method_data(session, self.scope)

        return self._external("judge_verdicts", fn)

    @dataset(reads=VOTES)
    def rater_quality(self) -> Any:
        """Rule 9 of evaluation.human.votes: the raters the gold and chance rules flag, and how many
        raters and votes each rule affected (a RaterQuality; reports show counts, never who).
        Over every feature's votes, whatever this object's scope: a rater's reliability is
        about the rater (evaluation.human.scope)."""
        from evaluation.human import assess_raters, rater_quality

        if self.tally is not None:
            tally = self.tally
            return self._timed("rater_quality", lambda: assess_raters(
                tally.rater_tallies(), tally.gold_votes(), self.policy.rater_quality))  # fmt: skip
        return self._external("rater_quality", lambda s: rater_quality(s, self.policy))

    @property
    def flagged_raters(self) -> frozenset[int]:
        """The raters whose votes rule 9 leaves out (none unless `rater_quality = exclude`)."""
        if not self.policy.rater_quality or self.rater_quality is None:
            return frozenset()
        flagged: frozenset[int] = self.rater_quality.flagged
        return flagged

    @dataset(reads=VOTES)
    def style_ratings(self) -> Any:
        """Style-controlled Bradley–Terry ratings: length and markdown as covariates
        (evaluation.human.style), beside the raw ones; None when it cannot be fitted."""
        from evaluation.human import pair_rows, style_ratings

        ev, tally, counted = self.cfg.evaluation, self.tally, self.counted_pairs

        def fn(s: Session) -> Any:
            rows = None
            if tally is not None and counted is not None:  # from the tally: no log scan
                rows = pair_rows(s, counted, tally.pair_models, self.pair_generations)
            return style_ratings(s, self.policy, self.reference, ev.confidence, ev.both_bad,
                                 rows=rows)  # fmt: skip

        return self._external("style_ratings", fn)

    @dataset(reads=JUDGES)
    def length_biases(self) -> list[Any]:
        """Each LLM judge method's length bias (evaluation.auto.judge_style); the crowd's is in
        `style_ratings`."""
        from evaluation.auto import judge_length_biases

        ci, scope = self.cfg.evaluation.confidence, self.scope
        return self._external("length_biases", lambda s: judge_length_biases(s, ci, scope)) or []

    @dataset(reads=("vote_comment", "vote", "rating_pair", "rating_round", "generation", "model"))
    def comments(self) -> dict[str, Any]:
        """What raters said about each model: model -> ModelComments (evaluation.human.comments),
        the standing comment of each rater on each pair no longer blind, with their vote,
        newest first."""
        from evaluation.human import comments_by_model, load_comments

        scope, as_of = self.scope, self.as_of
        found = self._external("comments", lambda s: comments_by_model(
            load_comments(s, scope, as_of=as_of)))  # fmt: skip
        return found or {}

    # -- the decision and the leaderboard ---------------------------------------------------
    @property
    def configured(self) -> set[str]:
        """The models being decided about: the feature's, else every configured model."""
        if self.feature_spec is not None:
            return set(self.feature_spec.models)
        return {m.name for m in self.cfg.models}

    @property
    def margin_elo(self) -> float:
        """The non-inferiority margin: the feature's, else `[evaluation] margin_elo`."""
        if self.feature_spec is not None:
            return self.feature_spec.margin_elo
        return self.cfg.evaluation.margin_elo

    @property
    def candidates(self) -> list[str]:
        """Every model but the reference: the configured ones (the feature's) and any with
        stored data (with a feature: any rated in it)."""
        if self.feature_spec is not None:
            rated = set(self.ratings.ratings) if self.ratings is not None else set()
            names = self.configured | rated
        else:
            names = self.configured | {m.name for m in self.models.values()}
        return sorted(names - {self.reference} if self.reference else names)

    @dataset(reads=VOTES + PROBES + ENERGY, windowed=True)
    def decision(self) -> Decision:
        """The one Decision every surface renders (evaluation.human.decision)."""
        ev = self.cfg.evaluation
        return decide(
            self.ratings,
            self.costs,
            self.reference,
            self.candidates,
            margin=self.margin_elo,
            confidence=ev.confidence,
            api_name=self.cfg.pricing.api_name,
        )

    @dataset(reads=VOTES + PROBES + ENERGY, windowed=True)
    def leaderboard(self) -> list[LeaderboardRow]:
        """One row per model with data or configuration; best quality first, then cheapest."""
        configured = self.configured
        lat = self.named(self.probes.by_model("latency_s"))
        tp = self.named(self.probes.by_model("tpot_s"))
        quality, bt, decision = self.quality, self.ratings, self.decision
        names = {
            m.name
            for m in self.models.values()
            if m.name in configured or m.name in quality
            or (self.feature_spec is None and m.name in lat)  # probes are every feature's
        }  # fmt: skip
        rows = []
        for name in names:
            cost = self.costs.get(name)
            q = quality.get(name)
            ok, total = self.availability.get(name, (0, 0))
            lats = lat.get(name)
            rating = bt.ratings.get(name) if bt is not None else None
            rows.append(
                LeaderboardRow(
                    model=name,
                    is_reference=name == self.reference,
                    hardware=cost.hardware if cost else "unknown",
                    quality=q[0] if q else None,
                    quality_lo=q[1] if q else None,
                    quality_hi=q[2] if q else None,
                    quality_scale=q[3] if q else "",
                    rating=rating,
                    n_votes=rating.n_votes if rating is not None else None,
                    status=decision.status(name)
                    or ("reference" if name == self.reference else "unrated"),
                    latency_p50_s=float(np.percentile(lats, 50)) if lats is not None else None,
                    latency_p90_s=float(np.percentile(lats, 90)) if lats is not None else None,
                    tpot_p50_s=float(np.percentile(tp[name], 50)) if name in tp else None,
                    tokens_per_s=cost.tokens_per_s if cost else None,
                    availability=ok / total if total else None,
                    cost_label=cost.label() if cost else "unknown",
                    cost_per_1k_output=cost.cost_per_1k_output if cost else None,
                    reduction_label=cost.reduction_label() if cost else "n/a",
                    monthly_usd=cost.monthly_usd if cost else None,
                    j_per_1k_output=cost.j_per_1k_output if cost else None,
                )
            )
        rows.sort(key=lambda r: (r.quality is None, -(r.quality or 0.0),
                                 r.cost_per_1k_output or 0.0, r.model))  # fmt: skip
        return rows

    # -- what is missing ----------------------------------------------------------------------
    def gaps(self) -> list[tuple[str, str]]:
        """(what has no data yet, the command that fills it), for a one-line note."""
        out = []
        if self.ratings is None:
            out.append(("ratings", "`/slam rate`"))
        if not len(self.probes):
            out.append(("latency and cost", "`slam probe`"))
        if not self.method_scores:
            out.append(("judge and similarity scores", "`slam score`"))
        if not self.human_scores:
            out.append(("human 0–10 scores", "score mode ([chat] score_mode = true)"))
        if not self.sweeps:
            out.append(("throughput under load", "`slam sweep`"))
        return out
