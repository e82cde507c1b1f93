"""The rows of each export kind: plain dicts with a fixed column order, read straight from the
record tables (votes, generations, judgements, similarity, probes) or from `Results`
(ratings), in one feature's scope and a time window.

Votes are the whole event log, one row per stored event, with the flags that say whether it
counts and, when not, why (the rules of evaluation.human.votes): `effective` (rules 1–4: the
latest add of its stream, not retracted), `gold` (rule 8), `counted` (what the ratings read
under the configured policy) and `reason`. So anyone can re-derive our numbers from the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col
from sqlmodel import select as orm_select

from core.config import SlamConfig
from evaluation.exchange.pseudonyms import Pseudonyms
from evaluation.human import EVERYTHING, Scope, VotePolicy, effective_votes, fold, rater_quality
from storage import models as t

_V = t.Vote.__table__.c  # type: ignore[attr-defined]
_RP = t.RatingPair.__table__.c  # type: ignore[attr-defined]
_G = t.Generation.__table__  # type: ignore[attr-defined]
_M = t.ModelRecord.__table__  # type: ignore[attr-defined]
_P = t.Prompt.__table__.c  # type: ignore[attr-defined]
_UC = t.UserContext.__table__.c  # type: ignore[attr-defined]
_EXP = t.Experiment.__table__.c  # type: ignore[attr-defined]
_R = t.Rater.__table__.c  # type: ignore[attr-defined]
_RR = t.RatingRound.__table__.c  # type: ignore[attr-defined]

Row = dict[str, Any]
USABLE = ("A", "B", "tie", "both_bad")


@dataclass(frozen=True)
class Window:
    """Which rows: one feature's (scope) and stored in [since, until)."""

    scope: Scope = EVERYTHING
    since: datetime | None = None
    until: datetime | None = None

    def keeps(self, when: datetime | None) -> bool:
        when = utc(when)
        if when is None:
            return self.since is None and self.until is None
        if self.since is not None and when < self.since:
            return False
        return not (self.until is not None and when >= self.until)


def utc(value: datetime | None) -> datetime | None:
    """Stored times as aware UTC (SQLite hands them back naive)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: date | datetime | None) -> date | datetime | None:
    return utc(value) if isinstance(value, datetime) else value


@dataclass(frozen=True)
class GenInfo:
    feature: str
    input_id: str
    slice: str | None
    model: str
    prompt: str
    text: str
    experiment_id: int


def generation_info(session: Session, ids: Sequence[int] | None = None) -> dict[int, GenInfo]:
    """generation id -> its feature, input, slice, model, prompt and text."""
    q = (
        select(_G.c.id, _EXP.name, _UC.key, _UC.slice, _M.c.name, _P.text, _G.c.text,
               _G.c.experiment_id)
        .select_from(_G)
        .join(_M, _M.c.id == _G.c.model_id)
        .join(t.Prompt.__table__, _P.id == _G.c.prompt_id)  # type: ignore[attr-defined]
        .join(t.UserContext.__table__, _UC.id == _P.user_context_id)  # type: ignore[attr-defined]
        .join(t.Experiment.__table__, _EXP.id == _G.c.experiment_id)  # type: ignore[attr-defined]
    )  # fmt: skip
    if ids is not None:
        q = q.where(_G.c.id.in_(sorted(set(ids))))
    return {
        int(gid): GenInfo(feat, key, sl, model, prompt, text, int(exp))
        for gid, feat, key, sl, model, prompt, text, exp in session.connection().execute(q)
    }


def _in_scope(info: GenInfo | None, scope: Scope) -> bool:
    if info is None:
        return False
    if scope.experiment_id is not None and info.experiment_id != scope.experiment_id:
        return False
    return scope.slice is None or info.slice == scope.slice


def _raters(session: Session, names: Pseudonyms) -> dict[int, tuple[str, str]]:
    """rater id -> (pseudonym, platform)."""
    rows = session.connection().execute(select(_R.id, _R.platform, _R.user_hash))
    return {int(i): (names.of(p, h), p) for i, p, h in rows}


# -- votes ----------------------------------------------------------------------------------
VOTE_COLUMNS = [
    "vote_id", "created_at", "feature", "input_id", "slice", "round_id", "pair_id",
    "pair_kind", "gold", "gold_answer", "gold_passed", "rater", "platform", "kind", "action",
    "choice", "target", "score", "model_a", "model_b", "generation_a_id", "generation_b_id",
    "effective", "counted", "reason",
]  # fmt: skip


def _stream_fates(events: Sequence[Any]) -> tuple[set[int], dict[int, str]]:
    """Rules 1–3 over the whole log with evaluation.human.votes.fold: the ids of the effective
    adds, and why each other event is not one."""
    state: dict[tuple[Any, ...], Any] = {}
    holder: dict[tuple[Any, ...], int] = {}
    why: dict[int, str] = {}
    for e in events:
        key = (e.pair_id, e.rater_id, e.kind, e.target if e.kind == "score" else None)
        new = fold(state.get(key), e.action, e.choice, e.score)
        if e.action == "add":
            if key in holder:
                why[holder[key]] = "superseded by a later vote"
            holder[key] = e.id
        else:
            why[e.id] = "a removal event (retracts, never counts itself)"
            if new is None and key in holder:
                why[holder.pop(key)] = "retracted"
        if new is None:
            state.pop(key, None)
        else:
            state[key] = new
    return set(holder.values()), why


def vote_rows(session: Session, cfg: SlamConfig, window: Window, names: Pseudonyms) -> list[Row]:
    events = session.connection().execute(
        select(_V.id, _V.pair_id, _V.rater_id, _V.kind, _V.action, _V.choice, _V.target,
               _V.score, _V.created_at).order_by(_V.id)
    ).all()  # fmt: skip
    effective, why = _stream_fates(events)
    pairs = {
        int(r.id): r
        for r in session.connection().execute(
            select(_RP.id, _RP.round_id, _RP.kind, _RP.gold_answer, _RP.generation_a_id,
                   _RP.generation_b_id)
        )
    }  # fmt: skip
    gens = generation_info(session)
    raters = _raters(session, names)
    full = VotePolicy.from_config(cfg.evaluation, scope=window.scope)
    # The stages of the configured policy, in the order its rules apply (5, 6, 9).
    stages: list[tuple[VotePolicy, str]] = [(VotePolicy(scope=window.scope), "not usable")]
    if full.require_completion:
        stages.append((replace(stages[-1][0], require_completion=True),
                       "the rater did not finish the round (require_completion)"))  # fmt: skip
    if full.max_votes_per_rater is not None:
        stages.append((replace(stages[-1][0], max_votes_per_rater=full.max_votes_per_rater),
                       "over the per-rater cap (max_votes_per_rater)"))  # fmt: skip
    kept: list[set[int]] = []
    for policy, _ in stages:
        kinds = ("pairwise", "score")
        kept.append({v.id for k in kinds for v in effective_votes(session, k, policy)})
    flagged = rater_quality(session, full).flagged if full.rater_quality else frozenset()
    out: list[Row] = []
    for e in events:
        pair = pairs.get(e.pair_id)
        if pair is None:
            continue
        ga, gb = gens.get(pair.generation_a_id), gens.get(pair.generation_b_id)
        if not _in_scope(ga, window.scope) or not window.keeps(e.created_at):
            continue
        assert ga is not None
        gold = pair.kind == "gold"
        is_eff = e.id in effective
        counted = False
        reason = why.get(e.id, "")
        if is_eff:
            usable = (e.choice in USABLE) if e.kind == "pairwise" else (
                e.score is not None and e.target in ("A", "B"))
            if gold:
                reason = "gold pair: checks the rater, never counted (rule 8)"
            elif not usable:
                reason = "not a usable choice or score (rule 4)"
            else:
                reason = ""
                for (_, text), ids in zip(stages, kept, strict=True):
                    if e.id not in ids:
                        reason = text
                        break
                if not reason and e.rater_id in flagged:
                    reason = "the rater is flagged by the rater-quality rules (rule 9)"
                counted = not reason
        pseudo, platform = raters.get(e.rater_id, ("", ""))
        out.append({
            "vote_id": e.id, "created_at": utc(e.created_at), "feature": ga.feature,
            "input_id": ga.input_id, "slice": ga.slice, "round_id": pair.round_id,
            "pair_id": e.pair_id, "pair_kind": pair.kind, "gold": gold,
            "gold_answer": pair.gold_answer,
            "gold_passed": (e.choice == pair.gold_answer) if gold and e.kind == "pairwise"
            and e.action == "add" else None,
            "rater": pseudo, "platform": platform, "kind": e.kind, "action": e.action,
            "choice": e.choice, "target": e.target,
            "score": None if e.score is None else float(e.score),
            "model_a": ga.model, "model_b": gb.model if gb else None,
            "generation_a_id": pair.generation_a_id, "generation_b_id": pair.generation_b_id,
            "effective": is_eff, "counted": counted, "reason": reason,
        })  # fmt: skip
    return out


# -- generations, judgements, similarity, probes -----------------------------------------------
GENERATION_COLUMNS = [
    "generation_id", "created_at", "feature", "input_id", "slice", "model", "run_date",
    "sample_index", "backend", "source", "temperature", "prompt", "text", "error",
    "prompt_tokens", "output_tokens", "ttft_s", "latency_s", "tpot_s", "meta",
]  # fmt: skip


def generation_rows(session: Session, window: Window) -> list[Row]:
    gens = generation_info(session)
    out: list[Row] = []
    for g in session.exec(orm_select(t.Generation).order_by(col(t.Generation.id))):
        info = gens.get(g.id or 0)
        if not _in_scope(info, window.scope) or not window.keeps(g.created_at):
            continue
        assert info is not None
        out.append({
            "generation_id": g.id, "created_at": utc(g.created_at), "feature": info.feature,
            "input_id": info.input_id, "slice": info.slice, "model": info.model,
            "run_date": g.run_date, "sample_index": g.sample_index, "backend": g.backend,
            "source": g.source, "temperature": g.temperature, "prompt": info.prompt,
            "text": g.text, "error": g.error, "prompt_tokens": g.prompt_tokens,
            "output_tokens": g.output_tokens, "ttft_s": g.ttft_s, "latency_s": g.latency_s,
            "tpot_s": g.tpot_s, "meta": g.meta_json,
        })  # fmt: skip
    return out


JUDGEMENT_COLUMNS = [
    "judgement_id", "created_at", "feature", "input_id", "judge", "method", "generation_id",
    "model", "other_generation_id", "other_model", "group_key", "order", "score", "choice",
    "reasoning", "parse_ok", "error",
]  # fmt: skip


def judgement_rows(session: Session, window: Window) -> list[Row]:
    gens = generation_info(session)
    out: list[Row] = []
    for j in session.exec(orm_select(t.JudgeScore).order_by(col(t.JudgeScore.id))):
        info = gens.get(j.generation_id) if j.generation_id is not None else None
        other = gens.get(j.other_generation_id) if j.other_generation_id is not None else None
        if not window.scope.everything and not _in_scope(info, window.scope):
            continue
        if not window.keeps(j.created_at):
            continue
        out.append({
            "judgement_id": j.id, "created_at": utc(j.created_at),
            "feature": info.feature if info else None,
            "input_id": info.input_id if info else None, "judge": j.judge, "method": j.method,
            "generation_id": j.generation_id, "model": info.model if info else None,
            "other_generation_id": j.other_generation_id,
            "other_model": other.model if other else None, "group_key": j.group_key,
            "order": j.order, "score": j.score, "choice": j.choice, "reasoning": j.reasoning,
            "parse_ok": j.parse_ok, "error": j.error,
        })  # fmt: skip
    return out


SIMILARITY_COLUMNS = [
    "similarity_id", "created_at", "feature", "input_id", "metric", "generation_id", "model",
    "reference_generation_id", "reference_model", "value",
]  # fmt: skip


def similarity_rows(session: Session, window: Window) -> list[Row]:
    gens = generation_info(session)
    out: list[Row] = []
    q = orm_select(t.SimilarityScore).order_by(col(t.SimilarityScore.id))
    for sc in session.exec(q):
        info, ref = gens.get(sc.generation_id), gens.get(sc.reference_generation_id)
        if not _in_scope(info, window.scope) or not window.keeps(sc.created_at):
            continue
        assert info is not None
        out.append({
            "similarity_id": sc.id, "created_at": utc(sc.created_at), "feature": info.feature,
            "input_id": info.input_id, "metric": sc.metric, "generation_id": sc.generation_id,
            "model": info.model, "reference_generation_id": sc.reference_generation_id,
            "reference_model": ref.model if ref else None, "value": sc.value,
        })  # fmt: skip
    return out


PROBE_COLUMNS = [
    "probe_id", "started_at", "model", "run_id", "phase", "concurrency", "hour", "ok", "error",
    "prompt_tokens", "output_tokens", "ttft_s", "latency_s", "tpot_s",
]  # fmt: skip


def probe_rows(session: Session, window: Window, models: set[str] | None) -> list[Row]:
    """Probes belong to a model, not a feature: with a feature, its models' probes."""
    names = {int(i): n for i, n in session.connection().execute(select(_M.c.id, _M.c.name))}
    out: list[Row] = []
    for p in session.exec(orm_select(t.Probe).order_by(col(t.Probe.id))):
        name = names.get(p.model_id, "")
        if (models is not None and name not in models) or not window.keeps(p.started_at):
            continue
        out.append({
            "probe_id": p.id, "started_at": utc(p.started_at), "model": name,
            "run_id": p.run_id, "phase": p.phase, "concurrency": p.concurrency, "hour": p.hour,
            "ok": p.ok, "error": p.error, "prompt_tokens": p.prompt_tokens,
            "output_tokens": p.output_tokens, "ttft_s": p.ttft_s, "latency_s": p.latency_s,
            "tpot_s": p.tpot_s,
        })  # fmt: skip
    return out


# -- ratings ---------------------------------------------------------------------------------
RATING_COLUMNS = [
    "model", "is_reference", "rating", "rating_lo", "rating_hi", "rank", "rank_lo", "rank_hi",
    "bound", "n_votes", "status", "quality", "quality_lo", "quality_hi", "quality_scale",
    "latency_p50_s", "latency_p90_s", "tokens_per_s", "availability", "cost_per_1k_output",
    "monthly_usd", "decision",
]  # fmt: skip


def rating_rows(results: Any) -> list[Row]:
    """The leaderboard of a `Results` (intervals and each model's status) and the decision's
    headline on every row."""
    decision = results.decision.text()
    out: list[Row] = []
    for r in results.leaderboard:
        m = r.rating
        out.append({
            "model": r.model, "is_reference": r.is_reference,
            "rating": m.rating if m else None, "rating_lo": m.lo if m else None,
            "rating_hi": m.hi if m else None, "rank": m.rank if m else None,
            "rank_lo": m.rank_lo if m else None, "rank_hi": m.rank_hi if m else None,
            "bound": m.bound if m else None, "n_votes": r.n_votes, "status": r.status,
            "quality": r.quality, "quality_lo": r.quality_lo, "quality_hi": r.quality_hi,
            "quality_scale": r.quality_scale, "latency_p50_s": r.latency_p50_s,
            "latency_p90_s": r.latency_p90_s, "tokens_per_s": r.tokens_per_s,
            "availability": r.availability, "cost_per_1k_output": r.cost_per_1k_output,
            "monthly_usd": r.monthly_usd, "decision": decision,
        })  # fmt: skip
    return out

