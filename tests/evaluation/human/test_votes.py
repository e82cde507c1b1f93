"""The one vote semantics (evaluation.human.votes) against an independent replay of the rules on a
randomized event log, and against two vote writers racing on one database, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from evaluation.human.ratings import bradley_terry
from evaluation.human.scores import load_absolute_scores
from evaluation.human.votes import (
    PAIRWISE_CHOICES,
    SIDES,
    VotePolicy,
    effective_votes,
    fold,
    fold_events,
    pairwise_results,
    round_pairs,
)
from storage.db import session_scope
from storage.models import Vote
from tests.support.eval_seed import rater, seed_generations, seed_pair, seed_round

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _random_log(
    engine: Engine, seed: int = 7, distinct_times: bool = False
) -> tuple[list[dict[str, Any]], dict[int, tuple]]:
    """Pairs among 4 models, 6 raters, 600 events whose ids are not in time order, with
    repeated timestamps (so the id tie-break matters) unless `distinct_times`.
    Returns the events and pair -> (round, A, B)."""
    rng = np.random.default_rng(seed)
    names = ["ref", "m1", "m2", "m3"]
    gens = seed_generations(engine, {m: [f"{m} {i}" for i in range(3)] for m in names}, "ref")
    rounds = [seed_round(engine), seed_round(engine)]
    pairs: dict[int, tuple] = {}
    for k in range(12):
        a, b = rng.choice(4, size=2, replace=False)
        rnd = rounds[k % 2]
        pid = seed_pair(engine, gens[(names[a], k % 3)], gens[(names[b], k % 3)], rnd)
        pairs[pid] = (rnd, names[a], names[b])
    raters = [rater(engine, f"r{i}") for i in range(6)]
    events = []
    for e in range(600):
        kind = "score" if rng.random() < 0.4 else "pairwise"
        action = "remove" if rng.random() < 0.15 else "add"
        choice = target = score = None
        if kind == "pairwise" and (action == "add" or rng.random() < 0.5):
            choice = str(rng.choice([*PAIRWISE_CHOICES, "bogus"]))
        if kind == "score":
            target = str(rng.choice(["A", "B", "A", "B", "C"]))
            named = action == "add" or rng.random() < 0.5
            score = int(rng.integers(0, 11)) if named and rng.random() < 0.95 else None
        events.append(
            {
                "pair_id": int(rng.choice(list(pairs))),
                "rater_id": int(rng.choice(raters)),
                "kind": kind,
                "action": action,
                "choice": choice,
                "target": target,
                "score": score,
                "event_key": f"rand{seed}-{e}",
                # few distinct minutes: many events share a timestamp
                "created_at": T0
                + timedelta(minutes=int(rng.integers(0, 60)))
                + timedelta(microseconds=e if distinct_times else 0),
            }
        )
    with session_scope(engine) as s:
        s.connection().execute(insert(Vote), events)  # ids follow list order, not time order
    return events, pairs


def _reference(events: list[dict[str, Any]], kind: str) -> list[tuple]:
    """The documented rules, replayed independently: per stream, in event-id order, an 'add'
    sets the vote and a 'remove' clears it when it names the current choice/score or nothing."""
    state: dict[tuple, dict[str, Any] | None] = {}
    for ev in events:  # list order is id order
        if ev["kind"] != kind:
            continue
        key = (ev["pair_id"], ev["rater_id"], ev["target"] if kind == "score" else None)
        cur = state.get(key)
        if ev["action"] == "add":
            state[key] = ev
        elif cur is not None:
            named = ev["choice"] if kind == "pairwise" else ev["score"]
            held = cur["choice"] if kind == "pairwise" else cur["score"]
            if named is None or named == held:
                state[key] = None
    live = [ev for ev in state.values() if ev is not None]
    if kind == "pairwise":
        live = [ev for ev in live if ev["choice"] in PAIRWISE_CHOICES]
    else:
        live = [ev for ev in live if ev["score"] is not None and ev["target"] in ("A", "B")]
    return [(ev["pair_id"], ev["rater_id"], ev["choice"], ev["target"], ev["score"]) for ev in live]


def test_effective_votes_match_replayed_log(any_engine: Engine) -> None:
    events, pairs = _random_log(any_engine)
    with session_scope(any_engine) as s:
        for kind in ("pairwise", "score"):
            got = effective_votes(s, kind)
            want = _reference(events, kind)
            assert len(want) > 10
            assert Counter(
                (v.pair_id, v.rater_id, v.choice, v.target, v.score) for v in got
            ) == Counter(want)
            for v in got:
                assert (v.round_id, v.model_a, v.model_b) == pairs[v.pair_id]
                assert v.kind == kind
            ids = [v.id for v in got]
            assert ids == sorted(ids)  # event-id order, never timestamps
        assert round_pairs(s) == {
            rnd: {p for p, (r, _, _) in pairs.items() if r == rnd} for rnd, _, _ in pairs.values()
        }


def test_fast_loaders_equal_the_filtered_path(any_engine: Engine) -> None:
    events, pairs = _random_log(any_engine, seed=11)
    with session_scope(any_engine) as s:
        fast = pairwise_results(s)
        slow = pairwise_results(s, VotePolicy(max_votes_per_rater=10**9))  # via EffectiveVote
        assert fast == slow
        want = Counter(
            (pairs[p][1], pairs[p][2], c) for p, _, c, _, _ in _reference(events, "pairwise")
        )
        assert Counter({(a, b, c): n for a, b, c, n in fast}) == want
        scores = load_absolute_scores(s)
        assert scores == load_absolute_scores(s, VotePolicy(max_votes_per_rater=10**9))
        by_model: Counter[tuple[str, float]] = Counter()
        for p, _, _, target, score in _reference(events, "score"):
            by_model[(pairs[p][1] if target == "A" else pairs[p][2], float(score))] += 1
        assert Counter((m, v) for m, vals in scores.items() for v in vals) == by_model


def test_as_of_reads_the_log_as_it_was(any_engine: Engine) -> None:
    """Rule 7: as of a moment, only events stored before it count (adds and removals)."""
    events, _ = _random_log(any_engine, seed=3, distinct_times=True)
    cut = T0 + timedelta(minutes=30)
    before = [e for e in events if e["created_at"] < cut]
    with session_scope(any_engine) as s:
        got = effective_votes(s, "pairwise", VotePolicy(as_of=cut))
    assert Counter((v.pair_id, v.rater_id, v.choice) for v in got) == Counter(
        (p, r, c) for p, r, c, _, _ in _reference(before, "pairwise")
    )


def test_fold_is_the_sql_rule() -> None:
    """The writer's in-memory fold agrees with the replay on every stream of a random log."""
    rng = np.random.default_rng(4)
    for _ in range(300):
        state = None
        evs = []
        for i in range(int(rng.integers(1, 8))):
            action = "add" if rng.random() < 0.6 else "remove"
            choice = (
                str(rng.choice(["A", "B", "tie"]))
                if action == "add" or rng.random() < 0.7
                else None
            )
            evs.append({"pair_id": 1, "rater_id": 1, "kind": "pairwise", "target": None,
                        "action": action, "choice": choice, "score": None, "id": i})  # fmt: skip
            state = fold(state, action, choice, None)
        want = _reference(evs, "pairwise")
        assert (state[0] if state else None) == (want[0][2] if want else None)


def test_one_round_is_counted_as_in_the_whole_log(any_engine: Engine) -> None:
    """`round_id` narrows the counted votes to a round without changing which count: the
    per-rater cap (rule 6) still takes a rater's first votes across every round."""
    _, pairs = _random_log(any_engine, seed=9)
    rounds = {rnd for rnd, _, _ in pairs.values()}
    assert len(rounds) == 2
    with session_scope(any_engine) as s:
        for policy in (VotePolicy(), VotePolicy(max_votes_per_rater=3),
                       VotePolicy(require_completion=True, max_votes_per_rater=5)):  # fmt: skip
            for kind in ("pairwise", "score"):
                every = effective_votes(s, kind, policy)
                for rnd in rounds:
                    one = effective_votes(s, kind, policy, round_id=rnd)
                    assert one == [v for v in every if v.round_id == rnd]
        capped = effective_votes(s, "pairwise", VotePolicy(max_votes_per_rater=3))
        assert max(Counter(v.rater_id for v in capped).values()) == 3


def test_fold_events_is_the_replay() -> None:
    """The one Python fold of a log (writer, web flow, tally) against the independent replay,
    on random logs of several pairs, raters, kinds and sides; folding in two halves (the
    tally's update) equals folding at once, and leaves the first result unchanged."""
    rng = np.random.default_rng(12)
    for _ in range(40):
        evs = []
        for i in range(int(rng.integers(1, 60))):
            kind = "score" if rng.random() < 0.4 else "pairwise"
            action = "add" if rng.random() < 0.6 else "remove"
            named = action == "add" or rng.random() < 0.6
            choice = str(rng.choice([*PAIRWISE_CHOICES, "bogus"])) if kind == "pairwise" \
                and named else None  # fmt: skip
            target = str(rng.choice(["A", "B", "C"])) if kind == "score" else None
            score = int(rng.integers(0, 11)) if kind == "score" and named else None
            evs.append({"id": i + 1, "pair_id": int(rng.integers(1, 4)),
                        "rater_id": int(rng.integers(1, 4)), "kind": kind, "action": action,
                        "choice": choice, "target": target, "score": score})  # fmt: skip
        rows = [(e["id"], e["pair_id"], e["rater_id"], e["kind"], e["action"], e["choice"],
                 e["target"], e["score"]) for e in evs]  # fmt: skip
        got = fold_events(rows)
        for kind in ("pairwise", "score"):
            want = Counter(_reference(evs, kind))
            mine = Counter(
                (p, r, c, t, None if s is None else int(s))
                for (p, r, k, t), (c, s) in got.items()
                if k == kind
                and (c in PAIRWISE_CHOICES if kind == "pairwise" else s is not None and t in SIDES)
            )
            assert mine == want
        half = fold_events(rows[: len(rows) // 2])
        before = dict(half)
        assert fold_events(rows[len(rows) // 2 :], half) == got
        assert half == before


def test_aggregated_outcomes_give_the_same_bootstrap(any_engine: Engine) -> None:
    """Counts from SQL and counts from EffectiveVote objects give identical ratings."""
    _random_log(any_engine, seed=5, distinct_times=True)
    with session_scope(any_engine) as s:
        fast = pairwise_results(s)
        slow = pairwise_results(s, VotePolicy(max_votes_per_rater=10**9))
    a = bradley_terry(fast, reference="ref", n_boot=100)
    b = bradley_terry(slow, reference="ref", n_boot=100)
    assert a.ratings and a.ratings == b.ratings


def test_tally_equals_the_sql_and_updates_incrementally(any_engine: Engine) -> None:
    """The results service's tally folds the log in Python; it must count exactly the votes
    the SQL counts, and a tally updated with new events must equal one rebuilt from scratch."""
    from sqlalchemy import func, select

    from evaluation.human.tally import VoteTally

    events, _ = _random_log(any_engine, seed=8)
    with session_scope(any_engine) as s:
        full = VoteTally.build(s)
        assert full.pairwise_counts() == pairwise_results(s)
        assert full.scores() == {m: sorted(v) for m, v in load_absolute_scores(s).items()}
    # Half the log, then the rest as "new" events: updated == rebuilt.
    with session_scope(any_engine) as s:
        ids = sorted(s.connection().execute(select(Vote.id)).scalars())  # type: ignore[call-overload]
        cut = ids[len(ids) // 2]
        s.connection().execute(Vote.__table__.delete().where(Vote.id > cut))  # type: ignore[attr-defined]
        half = VoteTally.build(s)
    with session_scope(any_engine) as s:
        rest = [{k: v for k, v in e.items()} for e in events[len(ids) // 2 + 1 :]]
        for e in rest:
            e["event_key"] = "again-" + e["event_key"]
        s.connection().execute(insert(Vote), rest)
    with session_scope(any_engine) as s:
        count, max_id = s.connection().execute(select(func.count(), func.max(Vote.id))).one()  # type: ignore[call-overload]
        updated = half.updated(s, (count, max_id))
        rebuilt = VoteTally.build(s)
        assert updated is not None and updated is not half
        assert updated.pairwise_counts() == rebuilt.pairwise_counts() == pairwise_results(s)
        assert updated.scores() == rebuilt.scores()
        # A count that does not match the new events (a late commit, a removed row) asks for
        # a rebuild instead of a wrong answer.
        assert half.updated(s, (count + 1, max_id)) is None
