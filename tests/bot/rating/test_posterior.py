"""bot.rating.posterior and the page path of bot.rating.selection: the shared, versioned state
equals a full refit after new votes (warm-started Newton, to a tolerance), lags at most its
allowance and catches up in the background, and hands raters the same pairs as the direct
read on a fixed seed; the rater's part read from their own rows equals the SQL over the log."""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.rating import posterior, rater_reads, selection
from core.config import SlamConfig, parse_config
from evaluation.human import effective_from, make_plan
from evaluation.results import Results
from storage.db import make_engine, session_scope
from storage.migrate import upgrade
from storage.models import (
    Generation,
    ModelRecord,
    PairMessage,
    Rater,
    RatingPair,
    RatingRound,
    Vote,
)
from tests.support.perf_seed import seed
from tests.support.web_helpers import open_round

_keys = itertools.count()


def config(names: list[str], **evaluation: Any) -> SlamConfig:
    ev = {"bootstrap_rounds": 200, "explore": 0.0, "gold_rate": 0.0, **evaluation}
    models = [{"name": n, "backend": "ollama", "model": n, **({"reference": True} if i == 0
               else {})} for i, n in enumerate(names)]  # fmt: skip
    chat = {"channel": "C0RATINGS", "pairs_per_round": 40}
    return parse_config({"models": models, "evaluation": ev, "chat": chat}, "<test>")


def seeded(engine: Engine, n_votes: int = 3000, n_models: int = 5) -> SlamConfig:
    """Counted votes in a closed round, and an open round over every model's answers."""
    s = seed(engine, n_models=n_models, n_votes=n_votes, n_generations=n_models * 10 * 2,
             days=1, probes_per_hour=1, score_fraction=0.0, judge=False, sweeps=False)  # fmt: skip
    with engine.begin() as conn:
        conn.execute(update(RatingRound).values(status="closed"))
    cfg = config(s.models)
    open_round(engine, cfg)
    return cfg


def add_votes(engine: Engine, n: int, seed_value: int = 0) -> None:
    """n new counted votes from new raters on the closed round's pairs."""
    rng = random.Random(seed_value)
    with engine.begin() as conn:
        pairs = [p for (p,) in conn.execute(select(RatingPair.id).where(RatingPair.round_id == 1)
                                            .limit(300))]  # fmt: skip
        tag = next(_keys)
        conn.execute(insert(Rater), [{"platform": "console", "user_hash": f"new-{tag}-{i}"}
                                     for i in range(n)])  # fmt: skip
        ids = [r for (r,) in conn.execute(select(Rater.id).where(
            Rater.user_hash.startswith(f"new-{tag}-")))]  # fmt: skip
        conn.execute(insert(Vote), [
            {"pair_id": rng.choice(pairs), "rater_id": ids[i], "kind": "pairwise",
             "action": "add", "choice": rng.choice(["A", "B", "B", "tie"]),
             "event_key": f"add-{tag}-{i}"} for i in range(n)])  # fmt: skip


def models_of(engine: Engine) -> set[str]:
    with Session(engine) as s:
        return {m.name for m in s.exec(select(ModelRecord)).all()}


def test_warm_started_fit_equals_a_full_refit(engine: Engine) -> None:
    cfg = seeded(engine)
    names = sorted(models_of(engine))
    res = Results(engine, cfg)
    before = make_plan(res.decision, res.pairwise_counts, names)
    add_votes(engine, 40)
    res = Results(engine, cfg)
    full = make_plan(res.decision, res.pairwise_counts, names)
    warm = make_plan(res.decision, res.pairwise_counts, names, init=before.posterior)
    assert full.posterior is not None and warm.posterior is not None
    assert before.posterior is not None
    assert not np.allclose(before.posterior.mean, full.posterior.mean, atol=1e-6)  # it moved
    np.testing.assert_allclose(warm.posterior.mean, full.posterior.mean, atol=1e-7)
    np.testing.assert_allclose(warm.posterior.cov, full.posterior.cov, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(warm.utility, full.utility, rtol=1e-5, atol=1e-9)
    # A start over other models is ignored (a full refit), never a wrong shape.
    other = make_plan(res.decision, res.pairwise_counts, names[:-1])
    again = make_plan(res.decision, res.pairwise_counts, names, init=other.posterior)
    assert again.posterior is not None
    np.testing.assert_allclose(again.posterior.mean, full.posterior.mean, atol=1e-7)


def test_shared_state_follows_the_data_version(engine: Engine) -> None:
    cfg = seeded(engine, n_votes=300)  # small: an allowance of 1% is 2 votes
    names = models_of(engine)
    store = posterior.shared(engine)
    store.clear()
    first = selection.shared_snapshot(engine, cfg, names)
    assert selection.shared_snapshot(engine, cfg, names) is first  # same version: a look-up
    builds = store.builds
    add_votes(engine, 10)  # beyond the allowance: rebuilt now, warm-started
    second = selection.shared_snapshot(engine, cfg, names)
    assert second is not first and store.builds == builds + 1
    direct = selection.snapshot(engine, cfg, names)
    assert direct.plan.posterior is not None and second.plan.posterior is not None
    np.testing.assert_allclose(second.plan.posterior.mean, direct.plan.posterior.mean, atol=1e-7)
    np.testing.assert_allclose(second.plan.utility, direct.plan.utility, rtol=1e-5, atol=1e-9)
    assert second.plan.pair_votes.sum() == direct.plan.pair_votes.sum()
    assert second.raters == direct.raters and second.decision.kind == direct.decision.kind


def test_a_big_database_may_lag_its_allowance_and_catches_up(engine: Engine) -> None:
    cfg = seeded(engine, n_votes=3000)  # ~30 votes of allowance
    names = models_of(engine)
    store = posterior.shared(engine)
    store.clear()
    first = selection.shared_snapshot(engine, cfg, names)
    key = next(k for k in store._states if isinstance(k, tuple) and k[0] == "snapshot")
    assert store.allowance(store._states[key]) >= 20
    add_votes(engine, 5)
    assert selection.shared_snapshot(engine, cfg, names) is first  # within the allowance
    posterior.wait_idle()  # the refresh started by that read
    caught = store.state(key)
    assert caught is not None and caught.value is not first
    assert caught.version == posterior.data_version(engine)
    assert caught.value.plan.pair_votes.sum() == first.plan.pair_votes.sum() + 5
    assert selection.shared_snapshot(engine, cfg, names) is caught.value
    add_votes(engine, 200)  # beyond it: built now
    assert selection.shared_snapshot(engine, cfg, names).plan.pair_votes.sum() == (
        first.plan.pair_votes.sum() + 205)


def test_concurrent_first_reads_build_once(engine: Engine) -> None:
    cfg = seeded(engine, n_votes=300)
    names = models_of(engine)
    store = posterior.shared(engine)
    store.clear()
    builds = store.builds
    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(
        selection.shared_snapshot(engine, cfg, names))) for _ in range(6)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 6 and all(g is got[0] for g in got)
    assert store.builds == builds + 1


def _walk(engine: Engine, cfg: SlamConfig, direct: bool, steps: int = 24) -> list[tuple[Any, ...]]:
    """A few raters in turn: next pair, vote, … (`direct`: the old read, a fresh Results each
    page; otherwise the shared state)."""
    out: list[tuple[Any, ...]] = []
    for step in range(steps):
        rater = f"walker-{step % 3}"
        with session_scope(engine) as s:
            res = Results(engine, cfg) if direct else None
            nxt = selection.next_pair(s, cfg, "console", rater, rng=random.Random(step),
                                      results=res)  # fmt: skip
            if nxt.pair is None:
                out.append((rater, None, nxt.why))
                continue
            p = nxt.pair
            out.append((rater, p.generation_a_id, p.generation_b_id, p.a_was_first_choice,
                        nxt.why, nxt.done))  # fmt: skip
            s.add(PairMessage(pair_id=p.id, platform="console", channel="dm",  # type: ignore[arg-type]
                              message_ref=f"w{step}", rater_id=nxt.rater_id))  # fmt: skip
            s.add(Vote(pair_id=p.id, rater_id=nxt.rater_id, choice="AB"[step % 2],  # type: ignore[arg-type]
                       event_key=f"walk-{step}"))  # fmt: skip
    return out


def test_pairs_chosen_are_the_same_as_the_direct_read(tmp_path: Any) -> None:
    walks = []
    for direct in (True, False):
        engine = make_engine(f"sqlite:///{tmp_path / f'walk-{direct}.db'}")
        upgrade(engine)
        cfg = seeded(engine, n_votes=600, n_models=4)
        posterior.shared(engine).clear()
        walks.append(_walk(engine, cfg, direct))
        engine.dispose()
    assert walks[0] == walks[1]
    assert sum(1 for w in walks[0] if w[-2] == "informative") >= 5  # the utilities were used


# -- the rater's part: their own rows folded = the SQL over the log ------------------------------
def _sql_model_votes(s: Session, rater_id: int, ids: dict[str, int]) -> dict[frozenset[int], int]:
    e = effective_from("pairwise")
    q = e.select(e.model_a.name, e.model_b.name).where(e.vote.rater_id == rater_id)
    out: dict[frozenset[int], int] = {}
    for a, b in s.connection().execute(q):
        k = frozenset((ids[a], ids[b]))
        out[k] = out.get(k, 0) + 1
    return out


EVENT = st.tuples(
    st.integers(0, 2),  # rater
    st.integers(0, 3),  # pair
    st.sampled_from(["pairwise", "score"]),
    st.sampled_from(["add", "remove"]),
    st.sampled_from(["A", "B", "tie", "both_bad", "bogus", None]),
    st.sampled_from(["A", "B", None]),
    st.sampled_from([None, 3, 7]),
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENT, max_size=30), gold=st.integers(0, 3))
def test_rater_votes_equal_the_sql_rules(engine: Engine, events: list[tuple[Any, ...]],
                                         gold: int) -> None:  # fmt: skip
    with session_scope(engine) as s:
        if s.exec(select(ModelRecord)).first() is None:
            seed(engine, n_models=3, n_votes=0, n_generations=30, days=1, probes_per_hour=1,
                 judge=False, sweeps=False)  # fmt: skip
    with session_scope(engine) as s:
        s.exec(Vote.__table__.delete())  # type: ignore[attr-defined]
        s.exec(PairMessage.__table__.delete())  # type: ignore[attr-defined]
        s.exec(RatingPair.__table__.delete())  # type: ignore[attr-defined]
        rnd = RatingRound(experiment_id=1, status="open")
        s.add(rnd)
        s.flush()
        gens = [g.id for g in s.exec(select(Generation).order_by(Generation.id)).all()]  # type: ignore[arg-type]
        pairs = []
        for k in range(4):
            p = RatingPair(round_id=rnd.id, generation_a_id=gens[k], generation_b_id=gens[k + 1],  # type: ignore[arg-type]
                           kind="gold" if k == gold else "round")  # fmt: skip
            s.add(p)
            s.flush()
            pairs.append(p.id)
        raters = []
        for r in range(3):
            got = s.exec(select(Rater).where(Rater.user_hash == f"prop-{r}")).first()
            if got is None:
                got = Rater(platform="console", user_hash=f"prop-{r}")
                s.add(got)
                s.flush()
            raters.append(got.id)
        for r, p, kind, action, choice, target, score in events:
            s.add(Vote(pair_id=pairs[p], rater_id=raters[r], kind=kind, action=action,
                       choice=choice if kind == "pairwise" else None,
                       target=target if kind == "score" else None,
                       score=score if kind == "score" else None,
                       event_key=f"prop-{next(_keys)}"))  # fmt: skip
    with Session(engine) as s:
        ids = {m.name: m.id for m in s.exec(select(ModelRecord)).all()}
        for rid in raters:
            mine = rater_reads.RaterVotes.load(s, rid)  # type: ignore[arg-type]
            assert set(mine.rated_in(rnd.id)) == rater_reads.rated_sql(s, rid, rnd.id)  # type: ignore[arg-type]
            assert dict(mine.model_pairs) == _sql_model_votes(s, rid, ids)  # type: ignore[arg-type]
            voted = set(s.exec(select(Vote.pair_id).where(Vote.rater_id == rid)).all())
            assert set(mine.voted) == voted
        models = [p for p in pairs if p != pairs[gold]]
        every = rater_reads.pair_votes(s, rnd.id)  # type: ignore[arg-type]
        only = rater_reads.pair_votes(s, rnd.id, models)  # type: ignore[arg-type]
        assert only == Counter({k: v for k, v in every.items() if k in models})


def test_the_pages_spread_factor_is_the_algorithms() -> None:
    from evaluation.human import spread_factor

    for mine, pair, raters in [(0, 0, 0), (3, 10, 4), (7, 2, 50), (1, 1000, 1), (0, 5, 2.5)]:
        expected = float(spread_factor(np.array(float(mine)), np.array(float(pair)), raters))
        assert selection._spread(mine, pair, raters) == expected
    assert selection._spread(3, 10, 4) == 1 / (1 + 3 / (1 + 10 / 4))  # hand-derived
