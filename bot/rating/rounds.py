"""Rating rounds: blind pairs built from stored generations.

A round belongs to one feature (`rating_round.experiment_id`: a feature is an experiment row
of its name, core.features) and at most one round per feature is open; its pairs are drawn
from that feature's generations by that feature's models only, so a pair never mixes
features. A pair compares two models' responses to the same prompt (same input and run date).
Model pairs are covered evenly, the A/B order is randomized (balanced per model pair) and
recorded, and responses that name a model are flagged and masked before anyone sees them; one
that still names a model once masked (core.masking: spelled out, cut by markup) is in no pair.
"""

from __future__ import annotations

import random
import threading
import weakref
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from itertools import combinations
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlmodel import Session, col, func, select

from bot.events import PairView
from bot.rating import posterior
from core.config import SlamConfig
from core.errors import SlamError
from core.features import Feature, feature, features
from core.masking import Masker
from storage.models import (
    Experiment,
    Generation,
    ModelRecord,
    PairMessage,
    Prompt,
    RatingPair,
    RatingRound,
    UserContext,
    utcnow,
)
from storage.repo import model_name_hints

# The masker (names from the config, the store and core/data/model_names.json) is
# core.masking's; `session_masker` gathers the names a database knows.


def session_masker(session: Session, cfg: SlamConfig,
                   version: posterior.Version | None = None) -> Masker:  # fmt: skip
    """The masker for what raters see: every configured, stored and reported model name
    (`version`: kept per process under that data version, whose `rest` holds the newest
    generation, model and model version ids, everything the names are read from)."""
    if version is None:
        return Masker.for_config(cfg, model_name_hints(session))
    engine = session.get_bind()
    key = ("masker", tuple((m.name, m.model) for m in cfg.models), version.rest)
    return posterior.shared(engine).memo(  # type: ignore[arg-type]
        key, lambda: Masker.for_config(cfg, model_name_hints(session)))


@dataclass(frozen=True)
class Candidate:
    generation_id: int
    model_id: int
    context_id: int
    text: str
    slice: str | None = None  # the input's slice (Feature.slice_field), if the feature has one


def _experiment(session: Session, name: str) -> Experiment:
    exp = session.exec(select(Experiment).where(Experiment.name == name)).first()
    if exp is None or exp.id is None:
        raise SlamError(f"no generations for experiment '{name}' yet; run `slam generate` first")
    return exp


def experiment_id(session: Session, name: str) -> int | None:
    """The id of the experiment row of feature `name` (None: nothing stored for it yet)."""
    return session.exec(select(Experiment.id).where(Experiment.name == name)).first()


def _feature_model_ids(session: Session, models: Iterable[str] | None) -> set[int] | None:
    if models is None:
        return None
    names = set(models)
    return {m.id for m in session.exec(select(ModelRecord)).all()
            if m.id is not None and m.name in names}  # fmt: skip


def _candidates(session: Session, experiment_id: int, run_date: date,
                models: Iterable[str] | None = None,
                masker: Masker | None = None) -> list[Candidate]:  # fmt: skip
    """The answers of one feature on one day (`models`: only those models', by name). With a
    `masker`, an answer that still names a model once masked (`Masker.leaks`) is left out: no
    pair shows it (`withheld` counts them)."""
    keep = _feature_model_ids(session, models)
    rows = session.exec(
        select(Generation, Prompt.user_context_id, UserContext.slice)
        .join(Prompt, col(Prompt.id) == Generation.prompt_id)
        .join(UserContext, col(UserContext.id) == Prompt.user_context_id)
        .where(Generation.experiment_id == experiment_id, Generation.run_date == run_date)
        .where(col(Generation.error).is_(None))
        .order_by(col(Generation.sample_index), col(Generation.id))
    ).all()
    return [
        Candidate(g.id, g.model_id, ctx, g.text, sl)
        for g, ctx, sl in rows
        if g.id is not None and g.text.strip() and (keep is None or g.model_id in keep)
        and (masker is None or not masker.leaks(g.text))
    ]


def round_candidates(session: Session, cfg: SlamConfig, rnd: RatingRound) -> list[Candidate]:
    """The answers a round's pairs are drawn from: its feature's, by its feature's models."""
    if rnd.run_date is None:
        return []
    feat = round_feature(session, cfg, rnd)
    return _candidates(session, rnd.experiment_id, rnd.run_date,
                       feat.models if feat is not None else None,
                       session_masker(session, cfg))  # fmt: skip


def round_feature(session: Session, cfg: SlamConfig, rnd: RatingRound) -> Feature | None:
    """The configured feature a round belongs to (None: its experiment is not configured)."""
    def name() -> str | None:
        exp = session.get(Experiment, rnd.experiment_id)
        return exp.name if exp is not None else None

    # An experiment row never changes its name: kept per process (a dictionary look-up).
    got = posterior.shared(session.get_bind()).memo(  # type: ignore[arg-type]
        ("experiment name", rnd.experiment_id), name)
    return next((f for f in features(cfg) if got is not None and f.name == got), None)


def latest_run_date(session: Session, experiment_id: int,
                    models: Iterable[str] | None = None) -> date | None:  # fmt: skip
    """The newest day on which at least two models (of `models`, when given) answered."""
    keep = _feature_model_ids(session, models)
    q = (select(col(Generation.run_date), func.count(func.distinct(Generation.model_id)))
         .where(Generation.experiment_id == experiment_id, col(Generation.error).is_(None)))
    if keep is not None:
        q = q.where(col(Generation.model_id).in_(sorted(keep)))
    rows = session.exec(
        q.group_by(col(Generation.run_date)).order_by(col(Generation.run_date).desc())
    ).all()
    return next((d for d, n in rows if n >= 2), None)


def plan_pairs(
    candidates: list[Candidate], n: int, rng: random.Random, used: Counter[tuple[int, int]]
) -> list[tuple[Candidate, Candidate, bool]]:
    """Up to `n` (first, second, a_is_first) triples: model pairs round-robin, each on the
    least-used user context (`used` counts generation pairs from earlier rounds)."""
    by_ctx: dict[int, dict[int, list[Candidate]]] = defaultdict(lambda: defaultdict(list))
    for c in candidates:
        by_ctx[c.context_id][c.model_id].append(c)
    models = sorted({c.model_id for c in candidates})
    options: dict[tuple[int, int], list[tuple[Candidate, Candidate]]] = {}
    for m1, m2 in combinations(models, 2):
        opts = [
            (g1, g2)
            for ctx in sorted(by_ctx)
            for g1 in by_ctx[ctx].get(m1, [])[:1]
            for g2 in by_ctx[ctx].get(m2, [])[:1]
        ]
        if opts:
            rng.shuffle(opts)  # ties between equally used user contexts are broken at random
            options[(m1, m2)] = opts
    order = list(options)
    rng.shuffle(order)
    picked: list[tuple[Candidate, Candidate]] = []
    ctx_use: Counter[int] = Counter()
    while len(picked) < n and any(options[mp] for mp in order):
        for mp in order:
            if len(picked) >= n or not options[mp]:
                continue
            # Least used before (earlier rounds), then the user context least used this round.
            opts = options[mp]

            def cost(i: int, opts: list[tuple[Candidate, Candidate]] = opts) -> tuple[int, int]:
                g1, g2 = opts[i]
                return used[(g1.generation_id, g2.generation_id)], ctx_use[g1.context_id]

            g1, g2 = opts.pop(min(range(len(opts)), key=cost))
            ctx_use[g1.context_id] += 1
            picked.append((g1, g2))
    return balance_ab(picked, rng)


def balance_ab(
    picked: list[tuple[Candidate, Candidate]], rng: random.Random
) -> list[tuple[Candidate, Candidate, bool]]:
    """Balanced A/B order per model pair: half A-first, the odd one decided by a coin."""
    per_mp: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (g1, g2) in enumerate(picked):
        per_mp[(g1.model_id, g2.model_id)].append(i)
    a_first = [True] * len(picked)
    for idxs in per_mp.values():
        flags = [k % 2 == 0 for k in range(len(idxs))]
        if len(flags) % 2 and rng.random() < 0.5:
            flags[-1] = False
        rng.shuffle(flags)
        for i, f in zip(idxs, flags, strict=True):
            a_first[i] = f
    return [(g1, g2, a_first[i]) for i, (g1, g2) in enumerate(picked)]


def open_rounds(session: Session) -> list[RatingRound]:
    """Every open round, newest first (one per feature)."""
    return list(session.exec(_OPEN_ROUNDS).all())


_OPEN_ROUNDS = (select(RatingRound).where(RatingRound.status == "open")
                .order_by(col(RatingRound.id).desc()))  # fmt: skip


def open_round(session: Session, experiment_id: int | None = None) -> RatingRound | None:
    """The open round of one feature's experiment (None: the newest open round of any)."""
    q = select(RatingRound).where(RatingRound.status == "open")
    if experiment_id is not None:
        q = q.where(RatingRound.experiment_id == experiment_id)
    return session.exec(q.order_by(col(RatingRound.id).desc())).first()


Planner = Callable[
    [list[Candidate], int, random.Random, Counter[tuple[int, int]]],
    list[tuple[Candidate, Candidate, bool]],
]


def start_round(
    session: Session,
    cfg: SlamConfig,
    rng: random.Random | None = None,
    run_date: date | None = None,
    n: int | None = None,
    planner: Planner | None = None,
    *,
    feature_name: str | None = None,
    replace: bool = False,
) -> tuple[RatingRound, list[RatingPair]]:
    """Open a round of one feature (`feature_name`; None: the config's first) and create its
    pairs (not yet posted) from that feature's answers by its models. `planner` chooses them
    (default: `plan_pairs`, round-robin; bot.rating.selection.round_planner picks informative
    pairs). The feature's open round is an error, or with `replace` closed once the new one
    can be built (nothing is written before that: a failure leaves the session untouched)."""
    rng = rng or random.Random()
    feat = feature(cfg, feature_name)
    exp = _experiment(session, feat.name)
    assert exp.id is not None
    current = open_round(session, exp.id)
    if current is not None and not replace:
        raise SlamError(f"round {current.id} is still open; close it first (`round close`)")
    run_date = run_date or latest_run_date(session, exp.id, feat.models)
    if run_date is None:
        raise SlamError("no day has responses from two models yet; run `slam generate` first")
    masker = session_masker(session, cfg)
    cands = _candidates(session, exp.id, run_date, feat.models, masker)
    used = Counter(
        (p.generation_a_id, p.generation_b_id) if p.a_was_first_choice
        else (p.generation_b_id, p.generation_a_id)
        for p in session.exec(select(RatingPair)).all()
    )  # fmt: skip
    plan = (planner or plan_pairs)(cands, n or cfg.chat.pairs_per_round, rng, used)
    if not plan:
        raise SlamError(f"no two models answered the same prompt on {run_date}; nothing to rate")
    if current is not None:
        _close(session, current)
    rnd = RatingRound(experiment_id=exp.id, run_date=run_date)
    session.add(rnd)
    session.flush()
    assert rnd.id is not None
    pairs = []
    for g1, g2, a_first in plan:
        a, b = (g1, g2) if a_first else (g2, g1)
        pair = RatingPair(
            round_id=rnd.id,
            generation_a_id=a.generation_id,
            generation_b_id=b.generation_id,
            a_was_first_choice=a_first,
            masked=masker.names_model(a.text) or masker.names_model(b.text),
        )
        session.add(pair)
        pairs.append(pair)
    session.flush()
    return rnd, pairs


def _close(session: Session, rnd: RatingRound) -> RatingRound:
    rnd.status, rnd.closed_at = "closed", utcnow()
    session.add(rnd)
    return rnd


def close_round(session: Session, experiment_id: int | None = None) -> RatingRound:
    """Close the open round of one feature's experiment (None: the newest open round)."""
    rnd = open_round(session, experiment_id)
    if rnd is None:
        raise SlamError("no round is open; start one with `round start`")
    return _close(session, rnd)


@dataclass(frozen=True)
class Opened:
    """A round `start_rounds` opened: its feature, its pairs, and the round it replaced."""

    feature: Feature
    round: RatingRound
    pairs: list[RatingPair]
    closed: int | None = None


def start_rounds(
    session: Session,
    cfg: SlamConfig,
    names: Iterable[str] | None = None,
    rng: random.Random | None = None,
    run_date: date | None = None,
    planner: Callable[[Feature], Planner | None] | None = None,
    *,
    replace: bool = False,
) -> tuple[list[Opened], list[str]]:
    """One round per feature (`names`; None: every configured feature), each by `start_round`
    with `planner(feature)`. With one feature its error is raised as it is; with several, the
    features that cannot open a round are listed ('name: why') and the others open, and only
    when none can is it an error."""
    wanted = [feature(cfg, n) for n in names] if names is not None else features(cfg)
    opened: list[Opened] = []
    problems: list[str] = []
    for feat in wanted:
        exp_id = experiment_id(session, feat.name)
        before = open_round(session, exp_id) if exp_id is not None else None
        try:
            rnd, pairs = start_round(session, cfg, rng, run_date,
                                     planner=planner(feat) if planner else None,
                                     feature_name=feat.name, replace=replace)  # fmt: skip
        except SlamError as exc:
            if len(wanted) == 1:
                raise
            problems.append(f"{feat.name}: {exc}")
            continue
        opened.append(Opened(feat, rnd, pairs, before.id if before is not None else None))
    if not opened:
        raise SlamError("no round could be opened: " + "; ".join(problems))
    return opened, problems


def round_pairs(session: Session, round_id: int) -> list[RatingPair]:
    return list(
        session.exec(
            select(RatingPair).where(RatingPair.round_id == round_id).order_by(col(RatingPair.id))
        ).all()
    )


def record_message(
    session: Session,
    pair: RatingPair,
    platform: str,
    channel: str,
    ref: str,
    target: str | None = None,
    rater_id: int | None = None,
) -> None:
    """Remember that a message shows `pair` so reactions on it become votes."""
    assert pair.id is not None
    session.add(
        PairMessage(
            pair_id=pair.id,
            platform=platform,
            channel=channel,
            message_ref=ref,
            target=target,
            rater_id=rater_id,
        )
    )
    if pair.message_ref is None and rater_id is None and target is None:
        pair.platform, pair.channel, pair.message_ref = platform, channel, ref
        session.add(pair)


_PM = PairMessage.__table__  # type: ignore[attr-defined]


def record_rater_messages(session: Session, pair_id: int, platform: str, channel: str,
                          refs: list[tuple[str, str | None]], rater_id: int) -> None:  # fmt: skip
    """`record_message` for messages shown to one rater (the web page's pair and its score
    prompts: `refs` are (message ref, target)), as one Core insert in the session's
    transaction: a page load records them, and an ORM object per row cost more than the
    insert itself. Messages of a rater never update the pair's own message."""
    now = utcnow()
    rows = [{"pair_id": pair_id, "platform": platform, "channel": channel, "message_ref": ref,
             "target": target, "rater_id": rater_id, "created_at": now}
            for ref, target in refs]  # fmt: skip
    session.connection().execute(_PM.insert(), rows)


_GA, _GB = Generation.__table__.alias("ga"), Generation.__table__.alias("gb")  # type: ignore[attr-defined]
_PA, _PB = Prompt.__table__.alias("pa"), Prompt.__table__.alias("pb")  # type: ignore[attr-defined]
_TEXTS = (core_select(_GA.c.text, _GB.c.text, _PA.c.text, _PB.c.text)
          .select_from(_GA.join(_GB, _GB.c.id == bindparam("b"))
                       .outerjoin(_PA, _PA.c.id == _GA.c.prompt_id)
                       .outerjoin(_PB, _PB.c.id == _GB.c.prompt_id))
          .where(_GA.c.id == bindparam("a")))  # fmt: skip
_VIEWS: weakref.WeakKeyDictionary[Any, OrderedDict[tuple[Any, ...], tuple[Masker, str, str, str]]]
_VIEWS = weakref.WeakKeyDictionary()
_VIEWS_LOCK = threading.Lock()
VIEWS_KEPT = 4096  # masked pair texts kept per database (generations are immutable rows)


def pair_view(session: Session, pair: RatingPair, masker: Masker, legend: str) -> PairView:
    """The blind view of a pair: prompt context and the two masked responses (one Core read;
    the masked texts are kept per process and masker: a pair's answers never change)."""
    assert pair.id is not None
    key = (pair.id, pair.generation_a_id, pair.generation_b_id, pair.kind, pair.gold_answer,
           pair.decoy_text, id(masker))  # fmt: skip
    engine = session.get_bind()
    with _VIEWS_LOCK:
        kept = _VIEWS.setdefault(engine, OrderedDict()).get(key)
    if kept is not None and kept[0] is masker:
        _m, context, shown_a, shown_b = kept
    else:
        context, shown_a, shown_b = _masked_texts(session, pair, masker)
        with _VIEWS_LOCK:
            views = _VIEWS.setdefault(engine, OrderedDict())
            views[key] = (masker, context, shown_a, shown_b)
            while len(views) > VIEWS_KEPT:
                views.popitem(last=False)
    return PairView(pair_id=pair.id, round_id=pair.round_id, context=context,
                    response_a=shown_a, response_b=shown_b, legend=legend,
                    masked=pair.masked)  # fmt: skip


def _masked_texts(session: Session, pair: RatingPair, masker: Masker) -> tuple[str, str, str]:
    row = session.connection().execute(
        _TEXTS, {"a": pair.generation_a_id, "b": pair.generation_b_id}).first()  # fmt: skip
    if row is None:
        raise SlamError(f"pair {pair.id} refers to a missing generation")
    text_a, text_b, prompt_a, prompt_b = row
    asked = prompt_a
    if pair.kind == "gold" and pair.decoy_text is not None:  # the bad side shows the decoy
        if pair.gold_answer == "B":
            text_a, asked = pair.decoy_text, prompt_b
        else:
            text_b = pair.decoy_text
    context = (asked or "").split("\n\nQuery:", 1)[0].removeprefix("Context: ")
    if len(context) > 700:
        context = context[:700] + "…"
    return masker.mask(context), masker.mask(text_a.strip()), masker.mask(text_b.strip())
