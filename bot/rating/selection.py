"""Which pair a rater gets next, which pairs a round posts, and the one message that says the
decision is settled: the database side of evaluation.human.active, for every adapter.

- `next_pair(session, cfg, platform, user_hash)`: what `/slam rate` hands a rater (the web
  rating page, bot.rating.flow, calls the same; `NextPair` is the one pick type): a pair
  already sent to them and not rated yet; else, at `[evaluation] gold_rate`, a gold pair;
  else the most useful model pair for them among the open round's responses (an unseen pair
  of the round, or a new one drawn for them), never a generation pair they have seen before,
  A/B order balanced per model pair in the round.
- Several features: one round is open per feature and a pair is always drawn within one
  round (one feature). A rater gets a pair of an unsettled feature before a settled one and,
  among those, of the round they have rated the smallest share of their quota in: each
  rater's votes go round-robin over the features. Their progress (`done`/`quota`) sums the
  open rounds; nothing the rater sees names the feature.
- Slices (`Feature.slice_field`): votes go where a slice's decision is open — the pairs are
  drawn from inputs of slices whose decision is not settled (`open_slices`; all inputs when
  every slice or none is settled).
- `round_planner(engine, cfg, feature=…)`: the pairs a round posts
  (`rounds.start_round(planner=…)`).
- `announce(engine, decision, feature)`: the stopping rule's message, claimed once (a
  `notice` row) so that with several replicas exactly one posts it.
- `status_fields(results)`: the decision and the votes the open comparisons still need.

With `[evaluation] pair_selection = "round_robin"` everything falls back to the coverage
rules (least-voted model pairs), as during warm-up.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.rating import features, pair_index, posterior, rounds
from bot.rating.rater_reads import (
    PairRow,
    RaterVotes,
    as_orm,
    pair_rows,
    pair_votes,
    round_candidates,
    seen_by,
)
from bot.rating.rounds import Candidate
from core.config import SlamConfig
from core.errors import SlamError
from core.features import Feature
from evaluation.human import (
    PAIRWISE_CHOICES,
    Decision,
    Plan,
    effective_from,
    gold_due,
    gold_phase,
    make_plan,
    notice_key,
    open_comparisons,
    plan_batch,
    settled,
    settled_text,
)
from storage.db import session_scope
from storage.models import (
    ModelRecord,
    Notice,
    Rater,
    RatingPair,
    RatingRound,
)

log = logging.getLogger(__name__)
DEFAULT_VOTES_PER_POST = 3.0  # votes a channel post is expected to get before any history

# Off-topic answers for gold pairs: fluent, harmless, about something else entirely.
OFF_TOPIC = (
    "Preheat the oven to 180 °C. Cream the butter and sugar, beat in two eggs, fold in the "
    "flour and bake for twenty-five minutes until golden.",
    "Tomorrow brings light rain in the morning, clearing by noon, with a westerly breeze and "
    "highs around fourteen degrees.",
    "To reset the router, hold the recessed button for ten seconds until the lights blink, then "
    "wait two minutes before reconnecting.",
    "The Treaty of Westphalia of 1648 ended the Thirty Years' War and shaped the idea of "
    "sovereign states in Europe.",
)


@dataclass(frozen=True)
class Snapshot:
    """The decision and the selection plan for one read of the results."""

    decision: Decision
    plan: Plan
    raters: int
    reference_cost: float | None
    warming: frozenset[str] = frozenset()  # models whose new version has too few votes yet

    @property
    def settled(self) -> bool:
        return settled(self.decision)


@dataclass(frozen=True)
class NextPair:
    """What `next_pair` decided for one rater."""

    round_id: int
    rater_id: int
    # None: nothing more for this rater in this round. For showing: an existing rater's pair
    # comes from the round's index as a copy tied to no session (bot.rating.pair_index.PairRow.
    # shown: what a pair view needs; read the pair itself to change it).
    pair: RatingPair | None
    done: int  # model pairs of this round the rater has rated
    quota: int  # model pairs of this round the rater gets
    why: str  # resent | gold | informative | exploration | warm-up | done | settled
    decision: Decision | None = None
    rounds: tuple[int, ...] = ()  # every open round (one per feature); done/quota sum them
    feature: str | None = None  # the pair's feature, with several (never shown to the rater)
    version: posterior.Version | None = None  # the data version the choice was made at

    @property
    def finished(self) -> str:
        """What the rater is told when `pair` is None."""
        return finished_text(self.why, self.quota, self.round_id, self.rounds)


def round_words(round_id: int, ids: tuple[int, ...] = ()) -> str:
    if len(ids) <= 1:
        return f"round {round_id}"
    return "rounds " + ", ".join(map(str, ids[:-1])) + f" and {ids[-1]}"


def finished_text(why: str, quota: int, round_id: int, ids: tuple[int, ...] = ()) -> str:
    """What a rater is told when there is no pair for them (every adapter says the same)."""
    if why == "settled":
        if len(ids) > 1:
            return (f"The decisions are settled, so {round_words(round_id, ids)} need no more "
                    "votes from you for now. Thank you!")  # fmt: skip
        return (f"The decision is settled, so round {round_id} needs no more votes from you "
                "for now. Thank you!")  # fmt: skip
    return f"You have rated all {quota} pair(s) of {round_words(round_id, ids)}. Thank you!"


def snapshot(engine: Engine, cfg: SlamConfig, models: Iterable[str] = (),
             results: Any = None, *, feature: str | None = None,
             previous: Snapshot | None = None) -> Snapshot:  # fmt: skip
    """Read the results service (evaluation.results.service) for one feature (`feature`:
    a `Results(feature=…)` value, bot.rating.features.results_feature) and plan for `models`
    plus the reference. `results`: an existing Results to reuse. `previous`: an earlier
    snapshot of the same key, whose posterior warm-starts the fit."""
    from evaluation.results import Results

    res = results if results is not None else Results(engine, cfg, feature=feature)
    decision: Decision = res.decision
    ref = res.reference
    cost = res.costs.get(ref) if ref else None
    ref_cost = cost.cost_per_request if cost is not None else None
    names = set(models) | set(res.candidates) | ({ref} if ref else set())
    plan = make_plan(decision, res.pairwise_counts, sorted(names), ref_cost,
                     cfg.evaluation.both_bad,
                     init=previous.plan.posterior if previous is not None else None)  # fmt: skip
    warming = getattr(res, "warming_up", None)  # evaluation.results.versions
    return Snapshot(decision, plan, _raters(engine, res), ref_cost,
                    frozenset(warming()) if warming is not None else frozenset())  # fmt: skip


def shared_snapshot(engine: Engine, cfg: SlamConfig, models: Iterable[str] = (), *,
                    feature: str | None = None,
                    version: posterior.Version | None = None) -> Snapshot:  # fmt: skip
    """`snapshot` through this process's shared state (bot.rating.posterior): what a page load
    reads. Rebuilt when the data version says so (warm-started over new votes only, a full
    refit otherwise); on a big database it may lag a few votes while it refreshes."""
    names = frozenset(models)
    key = ("snapshot", feature, names, _fingerprint(cfg))

    def build(prev: posterior.State[Snapshot] | None,
              version: posterior.Version) -> tuple[Snapshot, int]:  # fmt: skip
        warm = prev is not None and prev.version.rest == version.rest
        snap = snapshot(engine, cfg, names, feature=feature,
                        previous=prev.value if warm and prev is not None else None)  # fmt: skip
        return snap, int(snap.plan.pair_votes.sum())

    version = version if version is not None else posterior.data_version(engine)
    return posterior.shared(engine).get(key, version, build)


def _fingerprint(cfg: SlamConfig) -> str:
    """The configuration's identity in the shared state's key."""
    import hashlib

    return hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:16]


def slice_decisions(engine: Engine, cfg: SlamConfig, feat: Feature) -> dict[str, Decision]:
    """The decision of each slice of a feature (its inputs' `slice_field` values): the same
    lines the report shows (evaluation.results.slice_decisions). Empty without slices."""
    from evaluation.results import slice_decisions as decide_slices

    if feat.slice_field is None:
        return {}
    name = features.results_feature(cfg, feat.name)
    return {d.slice: d.decision for d in decide_slices(engine, cfg, name)}


def open_slices(engine: Engine, cfg: SlamConfig, feat: Feature | None,
                cands: list[Candidate]) -> list[Candidate]:  # fmt: skip
    """Spend votes where a slice's decision is open: with slices, only the answers to inputs
    of slices whose decision is not settled — unless every slice is settled or none is (then
    all answers), or those answers leave no two models on one input."""
    if feat is None or feat.slice_field is None or not cands:
        return cands
    decided = {sl for sl, d in slice_decisions(engine, cfg, feat).items() if settled(d)}
    keep = [c for c in cands if c.slice not in decided]
    if not decided or len(keep) == len(cands) or not _options(keep):
        return cands
    return keep


def _raters(engine: Engine, results: Any = None) -> int:
    """Raters with a counted pairwise vote on a model pair (any feature): from the results'
    vote tally when it has one (its streams are the effective votes), else in SQL."""
    tally = getattr(results, "tally", None) if results is not None else None
    if tally is not None:
        return len({rater for (pair, rater, kind, _t), (choice, _s) in tally.streams.items()
                    if kind == "pairwise" and choice in PAIRWISE_CHOICES
                    and pair in tally.pair_models})  # fmt: skip
    e = effective_from("pairwise")
    with engine.connect() as conn:
        q = core_select(func.count(func.distinct(e.vote.rater_id))).select_from(e.source)
        return int(conn.execute(q.where(*e.conditions)).scalar() or 0)


def _model_names(session: Session, version: posterior.Version | None = None) -> dict[int, str]:
    """Model id -> name (`version`: kept per process under the data version, whose `rest`
    holds the models' newest id and count)."""

    def read() -> dict[int, str]:
        rows = session.connection().execute(core_select(ModelRecord.id, ModelRecord.name))  # type: ignore[call-overload]
        return {mid: name for mid, name in rows if mid}

    if version is None:
        return read()
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    return posterior.shared(engine).memo(("model names", version.rest), read)


_RT = Rater.__table__  # type: ignore[attr-defined]
_RATER = core_select(_RT.c.id).where(_RT.c.platform == bindparam("platform"),
                                     _RT.c.user_hash == bindparam("user_hash"))  # fmt: skip


def _rater(session: Session, platform: str, user_hash: str) -> int:
    """The rater's id (one indexed Core read: every page asks), created on their first page."""
    got = session.connection().execute(
        _RATER, {"platform": platform, "user_hash": user_hash}).scalar()  # fmt: skip
    if got is not None:
        return int(got)
    rater = Rater(platform=platform, user_hash=user_hash)
    session.add(rater)
    session.flush()
    assert rater.id is not None
    return rater.id


def _open_rounds(session: Session, version: posterior.Version) -> list[RatingRound]:
    """The open rounds, oldest first, kept per process under the data version (its `rest`
    holds the newest round id and how many are open: a round opened or closed changes it).
    Kept as copies tied to no session, so no transaction's end expires them."""
    def read() -> list[RatingRound]:
        return [RatingRound(**r.model_dump())
                for r in sorted(rounds.open_rounds(session), key=lambda r: r.id or 0)]

    engine: Engine = session.get_bind()  # type: ignore[assignment]
    return list(posterior.shared(engine).memo(("open rounds", version.rest), read))


def _options(cands: list[Candidate]) -> dict[tuple[int, int], list[tuple[Candidate, Candidate]]]:
    """(lower model id, higher) -> generation pairs on the same user context (first sample)."""
    by_ctx: dict[int, dict[int, Candidate]] = defaultdict(dict)
    for c in cands:
        by_ctx[c.context_id].setdefault(c.model_id, c)
    out: dict[tuple[int, int], list[tuple[Candidate, Candidate]]] = defaultdict(list)
    for ctx in sorted(by_ctx):
        models = sorted(by_ctx[ctx])
        for i, m1 in enumerate(models):
            for m2 in models[i + 1 :]:
                out[(m1, m2)].append((by_ctx[ctx][m1], by_ctx[ctx][m2]))
    return out


_ANSWERS: dict[int, tuple[list[Candidate], Any]] = {}


def _answers(cands: list[Candidate]) -> tuple[dict[int, Candidate], dict[int, int], dict[
        tuple[int, int], list[tuple[Candidate, Candidate, frozenset[int]]]]]:  # fmt: skip
    """By generation id, its model, and `_options` with each option's generation pair: the
    same for every page over the same answers (kept while `cands` is the same list: the open
    round's answers are memoised per process, bot.rating.rater_reads.round_candidates)."""
    got = _ANSWERS.get(id(cands))
    if got is not None and got[0] is cands:
        return got[1]
    options = {mp: [(g1, g2, frozenset((g1.generation_id, g2.generation_id))) for g1, g2 in opts]
               for mp, opts in _options(cands).items()}  # fmt: skip
    value = ({c.generation_id: c for c in cands}, {c.generation_id: c.model_id for c in cands},
             options)  # fmt: skip
    if len(_ANSWERS) > 64:
        _ANSWERS.clear()
    _ANSWERS[id(cands)] = (cands, value)
    return value


def next_pair(
    session: Session,
    cfg: SlamConfig,
    platform: str,
    user_hash: str,
    *,
    rng: random.Random | None = None,
    results: Any = None,
) -> NextPair:
    """The next pair for one rater among the open rounds (see the module docstring).
    `results`: an existing Results to reuse (with one open round only)."""
    rng = rng or random.Random()
    ev = cfg.evaluation
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    version = posterior.data_version(engine, session.connection())
    opened = _open_rounds(session, version)
    if not opened:
        raise SlamError("No rating round is open right now; an admin can `round start` one.")
    rater_id = _rater(session, platform, user_hash)
    mine = RaterVotes.load(session, rater_id)
    sent, seen = seen_by(session, rater_id, mine)
    ids = tuple(r.id or 0 for r in opened)
    several = len(opened) > 1
    per_round = cfg.chat.pairs_per_round
    every = [(rnd, pair_rows(session, rnd.id or 0)) for rnd in opened]
    rated = {rnd.id: mine.rated_in(rnd.id or 0) for rnd in opened}
    done_of = {rnd.id: len(rated[rnd.id] - mine.gold) for rnd in opened}
    done_all = sum(done_of.values())
    for rnd, pairs in every:
        pending = [p for p in pairs if p.id in sent and p.id not in rated[rnd.id]]
        if pending:  # a pair already sent but not rated comes first
            done, quota = ((done_all, per_round * len(opened)) if several
                           else (done_of[rnd.id], per_round))  # fmt: skip
            return NextPair(rnd.id or 0, rater_id, as_orm(session, pending[0]), done, quota,
                            "resent", rounds=ids, version=version)  # fmt: skip
    names = _model_names(session, version)
    states = [_state(session, cfg, engine, rnd, pairs, done_of[rnd.id], names,
                     None if several else results, version) for rnd, pairs in every]  # fmt: skip
    quota_all = sum(st.quota for st in states)
    # Unsettled features first; among them the round this rater has rated the least share of
    # (each rater's votes go round-robin over the features), then the oldest round.
    order = sorted((st for st in states if st.done < st.quota),
                   key=lambda st: (st.snap.settled, st.done / st.quota, st.round.id or 0))
    exhausted = False
    for st in order:
        rid = st.round.id or 0
        done, quota = (done_all, quota_all) if several else (st.done, st.quota)
        fname = st.feature.name if several and st.feature is not None else None
        decision = st.snap.decision
        pair: RatingPair | None = None
        if ev.gold_rate > 0 and gold_due(len(sent) + 1, ev.gold_rate,
                                         gold_phase(user_hash, ev.gold_rate)):  # fmt: skip
            pair = make_gold(session, cfg, rid, st.cands, decision.reference, names, rng)
            why = "gold"
        if pair is None:
            cands = open_slices(engine, cfg, st.feature, st.cands)
            pair, why = _choose(session, cfg, rid, mine, st.pairs, cands, seen, names,
                                st.snap, rng)  # fmt: skip
        if pair is not None:
            return NextPair(rid, rater_id, pair, done, quota, why, decision, ids, fname, version)
        exhausted = True
    if several:  # nothing more for this rater in any open round
        settled_all = not exhausted and all(st.snap.settled for st in states)
        return NextPair(ids[-1], rater_id, None, done_all, quota_all if settled_all else done_all,
                        "settled" if settled_all else "done", None, ids)  # fmt: skip
    st = states[0]
    if exhausted:
        return NextPair(ids[0], rater_id, None, st.done, st.done, "done", st.snap.decision)
    return NextPair(ids[0], rater_id, None, st.done, st.quota,
                    "settled" if st.snap.settled else "done", st.snap.decision)  # fmt: skip


def warm_state(engine: Engine, cfg: SlamConfig) -> int:
    """Build what a page load reads for every open round (its answers and the shared
    snapshot, bot.rating.posterior) before the first rater arrives: otherwise the first pages
    after a start all wait for one fit over every vote. The number of rounds warmed."""
    with Session(engine) as s:
        version = posterior.data_version(engine, s.connection())
        names = _model_names(s, version)
        opened = rounds.open_rounds(s)
        for rnd in opened:
            _state(s, cfg, engine, rnd, (), 0, names, None, version)
        return len(opened)


@dataclass(frozen=True)
class _Open:
    """One open round as `next_pair` weighs it for one rater."""

    round: RatingRound
    feature: Feature | None
    pairs: tuple[PairRow, ...]
    cands: list[Candidate]
    snap: Snapshot
    done: int
    quota: int


def _state(session: Session, cfg: SlamConfig, engine: Engine, rnd: RatingRound,
           pairs: tuple[PairRow, ...], done: int, names: dict[int, str],
           results: Any, version: posterior.Version) -> _Open:  # fmt: skip
    """A round's feature, answers and decision, and how many pairs a rater gets in it (the
    pairs per round; once its decision is settled, only the exploration share)."""
    ev = cfg.evaluation
    feat = rounds.round_feature(session, cfg, rnd)
    cands = round_candidates(session, cfg, engine, rnd, version)
    models = {names[c.model_id] for c in cands}
    fname = features.results_feature(cfg, feat.name if feat else None)
    snap = (snapshot(engine, cfg, models, results, feature=fname) if results is not None
            else shared_snapshot(engine, cfg, models, feature=fname, version=version))  # fmt: skip
    quota = cfg.chat.pairs_per_round
    if snap.settled:
        quota = max(1, math.ceil(ev.explore * cfg.chat.pairs_per_round)) if ev.explore else 0
    return _Open(rnd, feat, pairs, cands, snap, done, quota)


def _choose(session: Session, cfg: SlamConfig, round_id: int, rater: RaterVotes,
            pairs: tuple[PairRow, ...], cands: list[Candidate], seen: set[frozenset[int]],
            names: dict[int, str], snap: Snapshot,
            rng: random.Random) -> tuple[RatingPair | None, str]:  # fmt: skip
    """The most useful model pair for this rater, then its least-voted unseen pair in the
    round, else a new pair on the least-used user context.

    Only the model pairs of what the rater has seen are filtered (an option or a pair is
    unseen unless its generation pair is in `seen`, and a seen generation pair belongs to one
    model pair): every page weighs every model pair, but a rater has seen few."""
    by_gen, model_of, every = _answers(cands)
    touched = {mp for gens in seen if (mp := _model_pair(gens, model_of)) is not None}

    def unseen(mp: tuple[int, int]) -> list[tuple[Candidate, Candidate]]:
        return [(g1, g2) for g1, g2, gens in every[mp] if gens not in seen]

    live = [mp for mp, opts in every.items()
            if opts and (mp not in touched or any(g not in seen for _, _, g in opts))]  # fmt: skip
    if not live:
        return None, "done"
    grouped = pair_index.by_models(round_id, tuple(pairs), model_of, cands)

    def existing(mp: tuple[int, int]) -> list[PairRow]:
        rows = grouped.get(mp, ())
        return [p for gens, p in rows if mp not in touched or gens not in seen]

    def has_existing(mp: tuple[int, int]) -> bool:
        rows = grouped.get(mp, ())
        return bool(rows) and (mp not in touched or any(g not in seen for g, _ in rows))

    plan = snap.plan
    mine = rater.model_pairs

    def votes(mp: tuple[int, int]) -> float:
        return plan.votes_of(names[mp[0]], names[mp[1]])

    explore = rng.random() < cfg.evaluation.explore
    warm = [mp for mp in live if snap.warming & {names[mp[0]], names[mp[1]]}]
    if warm:  # a model's new version has too few votes yet: its pairs first (warm-up)
        live = warm
    useful = {mp: plan.utility_of(names[mp[0]], names[mp[1]])
              * _spread(mine[frozenset(mp)], votes(mp), snap.raters) for mp in live}
    active = cfg.evaluation.pair_selection == "active"
    if active and not explore and not plan.warmup and max(useful.values()) > 0:
        mp = max(useful, key=lambda m: (useful[m], -votes(m), has_existing(m), -m[0], -m[1]))
        why = "informative"
    else:
        def coverage(m: tuple[int, int]) -> tuple[float, bool, int, tuple[int, int]]:
            first = min((p.id or 0 for p in existing(m)), default=0)
            return votes(m), not has_existing(m), first, m

        mp = min(live, key=coverage)
        why = "warm-up" if plan.warmup else "exploration"
    rows = existing(mp)
    if rows:
        counts = pair_votes(session, round_id, (p.id or 0 for p in rows))
        return min(rows, key=lambda p: (counts[p.id], p.id)).shown(), why
    return _new_pair(session, cfg, round_id, pairs, unseen(mp), by_gen, names, rng), why


def _model_pair(gens: frozenset[int], model_of: dict[int, int]) -> tuple[int, int] | None:
    """The (lower, higher) model ids of a generation pair among these answers (None: not
    two of them)."""
    if len(gens) != 2:
        return None
    a, b = (model_of.get(g) for g in gens)
    if a is None or b is None:
        return None
    return (a, b) if a <= b else (b, a)


def _spread(rater_votes: float, pair_votes: float, raters: float) -> float:
    """evaluation.human.active.spread_factor on plain floats (the same IEEE arithmetic, without
    building arrays: it runs for every model pair on every page)."""
    return 1.0 / (1.0 + rater_votes / (1.0 + pair_votes / max(raters, 1.0)))


def _new_pair(session: Session, cfg: SlamConfig, round_id: int, pairs: tuple[PairRow, ...],
              opts: list[tuple[Candidate, Candidate]], by_gen: dict[int, Candidate],
              names: dict[int, str], rng: random.Random) -> RatingPair:  # fmt: skip
    """A pair drawn for one rater: the least-used user context of the round, the A/B order
    that keeps this model pair balanced in the round (a coin when it is even)."""
    ctx_use = Counter(by_gen[p.generation_a_id].context_id for p in pairs
                      if p.generation_a_id in by_gen)  # fmt: skip
    g1, g2 = min(opts, key=lambda o: (ctx_use[o[0].context_id], rng.random()))
    same = [p for p in pairs if p.kind != "gold"
            and {p.generation_a_id, p.generation_b_id} <= set(by_gen)
            and {by_gen[p.generation_a_id].model_id, by_gen[p.generation_b_id].model_id}
            == {g1.model_id, g2.model_id}]  # fmt: skip
    firsts = sum(p.a_was_first_choice for p in same)
    seconds = len(same) - firsts
    a_first = firsts < seconds or (firsts == seconds and rng.random() < 0.5)
    a, b = (g1, g2) if a_first else (g2, g1)
    masker = rounds.Masker.for_config(cfg, names.values())
    pair = RatingPair(round_id=round_id, generation_a_id=a.generation_id,
                      generation_b_id=b.generation_id, a_was_first_choice=a_first,
                      masked=masker.names_model(a.text) or masker.names_model(b.text),
                      kind="rater")  # fmt: skip
    session.add(pair)
    session.flush()
    return pair


def truncate(text: str) -> str | None:
    """A clearly unfinished answer: its first quarter of words (at least four), cut mid-
    sentence. None when the answer is too short to cut."""
    words = text.split()
    if len(words) < 8:
        return None
    keep = max(4, len(words) // 4)
    return " ".join(words[:keep]).rstrip(" ,.;:!?")


def make_gold(session: Session, cfg: SlamConfig, round_id: int, cands: list[Candidate],
              reference: str | None, names: dict[int, str],
              rng: random.Random) -> RatingPair | None:  # fmt: skip
    """A gold pair: the reference's answer to one user against a clearly bad one — cut off
    (truncated), about something else (off_topic), or its answer to another user (other_user).
    The bad side shows `decoy_text`; its generation is the one the decoy was made from."""
    refs = [c for c in cands if reference is not None and names.get(c.model_id) == reference]
    if not refs:
        return None
    good = rng.choice(refs)
    others = [c for c in refs if c.context_id != good.context_id and c.text != good.text]
    cut = truncate(good.text)
    kinds = ["off_topic"] + (["truncated"] if cut else []) + (["other_user"] if others else [])
    decoy = rng.choice(kinds)
    source = rng.choice(others) if decoy == "other_user" else good
    text = {"truncated": cut, "other_user": source.text}.get(decoy) or rng.choice(OFF_TOPIC)
    answer = "A" if rng.random() < 0.5 else "B"
    a, b = (good, source) if answer == "A" else (source, good)
    masker = rounds.Masker.for_config(cfg, names.values())
    pair = RatingPair(round_id=round_id, generation_a_id=a.generation_id,
                      generation_b_id=b.generation_id, a_was_first_choice=answer == "A",
                      masked=masker.names_model(good.text) or masker.names_model(text),
                      kind="gold", gold_answer=answer, decoy=decoy, decoy_text=text)  # fmt: skip
    session.add(pair)
    session.flush()
    return pair


# -- rounds ---------------------------------------------------------------------------------------
def votes_per_post(session: Session, rounds_back: int = 3) -> float:
    """Median effective pairwise votes per channel post over the last few rounds (what a new
    post can expect), DEFAULT_VOTES_PER_POST before any history."""
    e = effective_from("pairwise")
    q = (core_select(e.pair.id, func.count()).select_from(e.source).where(*e.conditions)
         .where(e.pair.kind == "round").group_by(e.pair.id)
         .order_by(e.pair.id.desc()).limit(200))  # fmt: skip
    counts = [n for _, n in session.connection().execute(q)]
    return float(statistics.median(counts)) if counts else DEFAULT_VOTES_PER_POST


def round_planner(engine: Engine, cfg: SlamConfig, results: Any = None, *,
                  feature: Feature | None = None) -> rounds.Planner:  # fmt: skip
    """A `rounds.start_round` planner for one feature's round (`feature`; None: the first):
    during warm-up, with `pair_selection = "round_robin"` or without a reference,
    round-robin (`rounds.plan_pairs`); otherwise the most informative model pairs for the
    feature's open decision (evaluation.human.active.plan_batch) with `explore` of them for
    coverage; once the decision is settled, only that exploration share. With slices, the
    pairs come from inputs of slices whose decision is open (`open_slices`)."""
    name = features.results_feature(cfg, feature.name if feature is not None else None)

    Triple = tuple[Candidate, Candidate, bool]

    def plan(cands: list[Candidate], n: int, rng: random.Random,
             used: Counter[tuple[int, int]]) -> list[Triple]:  # fmt: skip
        ev = cfg.evaluation
        if ev.pair_selection != "active" or not cands:
            return rounds.plan_pairs(cands, n, rng, used)
        with Session(engine) as s:
            names = _model_names(s)
            per_post = votes_per_post(s)
        snap = snapshot(engine, cfg, {names[c.model_id] for c in cands}, results, feature=name)
        cands = open_slices(engine, cfg, feature, cands)
        if snap.settled:
            return rounds.plan_pairs(cands, max(1, math.ceil(ev.explore * n)), rng, used)
        if snap.plan.warmup or not snap.plan.weights:
            return rounds.plan_pairs(cands, n, rng, used)
        options = _options(cands)
        allowed = {(names[a], names[b]) for a, b in options}
        chosen = plan_batch(snap.plan, n, ev.explore, per_post,
                            np.random.default_rng(rng.getrandbits(32)), allowed)  # fmt: skip
        ids = {name: mid for mid, name in names.items()}
        picked: list[tuple[Candidate, Candidate]] = []
        ctx_use: Counter[int] = Counter()
        for a, b in chosen:
            m1, m2 = sorted((ids[a], ids[b]))
            opts = [o for o in options.get((m1, m2), []) if o not in picked]
            if not opts:
                continue
            g1, g2 = min(opts, key=lambda o: (used[(o[0].generation_id, o[1].generation_id)],
                                              ctx_use[o[0].context_id], rng.random()))  # fmt: skip
            ctx_use[g1.context_id] += 1
            picked.append((g1, g2))
        return rounds.balance_ab(picked, rng) or rounds.plan_pairs(cands, n, rng, used)

    return plan


# -- the stopping rule's message and the status ---------------------------------------------------
def claim_notice(engine: Engine, key: str, text: str) -> bool:
    """Claim a once-only message: True for the one caller (across replicas) that inserts it."""
    try:
        with session_scope(engine) as s:
            s.add(Notice(key=key, text=text))
    except IntegrityError:
        return False
    return True


def announce(engine: Engine, decision: Decision | None,
             feature: str | None = None) -> str | None:  # fmt: skip
    """The settled message when the decision is settled and nobody has posted it yet
    (`feature`: whose decision, with several features: named in the message and the key)."""
    if decision is None or not settled(decision):
        return None
    text = settled_text(decision)
    key = notice_key(decision)
    if feature is not None:
        text, key = f"{feature}: {text}", f"{key}:{feature}"[:200]
    return text if claim_notice(engine, key, text) else None


LEANING = {"switch": "a switch is ahead", "keep": "keeping the reference is ahead",
           "undecided": "undecided", "too_close": "too close to call",
           "no_data": "not enough votes yet"}  # fmt: skip


def status_fields(snap: Snapshot) -> list[tuple[str, str]]:
    """The decision and, for the comparisons that can still change it, about how many more
    votes they need (what `/slam status` adds). Models are not named while the decision is
    open: raters who knew which comparison the pairs are chosen for would not rate blind."""
    d = snap.decision
    if snap.settled:
        return [("Decision", f"settled: {d.short().removeprefix('Decision: ')} — no more votes "
                             "are needed for it")]  # fmt: skip
    fields = [("Decision", f"{LEANING.get(d.kind, d.kind)}, not settled yet")]
    for k, (_model, text) in enumerate(open_comparisons(d, snap.reference_cost)[:6], 1):
        fields.append((f"Open comparison {k}" + (" (decides first)" if k == 1 else ""), text))
    return fields
