"""One vote semantics for every reader: two vote writers (two bot replicas) race on one
database with random reactions, retracts and redeliveries; afterwards the SQL effective votes,
an independent replay of the stored log, the command-side counts and the results service all
agree, every acknowledged vote is stored exactly once, and nothing unacknowledged is counted.
Runs on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from bot.events import Reaction
from bot.rating.writer import VoteOutcome, VoteWriter, _Item
from bot.reactions import ReactionMap
from evaluation.human.votes import all_effective_votes, effective_votes
from evaluation.results.service import Results
from storage.db import make_engine, session_scope
from storage.models import Vote
from tests.evaluation.human.test_votes import _reference
from tests.support.bot_seed import make_config, seed
from tests.support.slack_helpers import prepare_round

REACTIONS = ["a", "b", "handshake", "-1", "thumbsup"]  # the last is not a vote


def _events(refs: list[tuple[str, str]], seed_: int) -> list[Reaction]:
    rng = random.Random(seed_)
    out = []
    for n in range(400):
        channel, ts = rng.choice(refs)
        out.append(
            Reaction(
                platform="slack",
                user_id=f"U{rng.randrange(6)}",
                channel=channel,
                message_ref=ts,
                reaction=rng.choice(REACTIONS),
                added=rng.random() < 0.7,
                event_key=f"Ev{seed_}-{n}",
            )
        )
    return out


def _run_writer(
    writer: VoteWriter,
    reactions: ReactionMap,
    batches: list[list[Reaction]],
    outcomes: dict[str, list[VoteOutcome]],
    lock: threading.Lock,
) -> None:
    for reacted in batches:
        # what the dispatcher hands the writer: the reactions that are votes, as votes
        batch = [v for v in map(reactions.vote, reacted) if v is not None]
        items = [_Item(v, f"hash-{v.user_id}") for v in batch]
        for _ in range(20):  # a batch that fails is not acknowledged: the platform redelivers
            try:
                result = writer.write_batch(items)
                break
            except OperationalError:
                continue
        else:
            raise AssertionError("a batch never committed")
        with lock:
            for r, o in zip(batch, result, strict=True):
                outcomes.setdefault(r.event_key, []).append(o)


@pytest.mark.parametrize("seed_", [1, 2])
def test_two_concurrent_writers_and_every_reader_agree(any_engine: Engine, seed_: int) -> None:
    cfg = make_config()
    seed(any_engine, cfg)
    refs = prepare_round(any_engine, cfg, pairs=6)
    events = _events(refs, seed_)
    rng = random.Random(seed_ + 100)
    # Each event goes to one replica; one in five is redelivered to the other one as well.
    per_writer: list[list[Reaction]] = [[], []]
    for ev in events:
        w = rng.randrange(2)
        per_writer[w].append(ev)
        if rng.random() < 0.2:
            per_writer[1 - w].append(ev)
    engines = [any_engine, make_engine(str(any_engine.url.render_as_string(hide_password=False)))]
    reactions = ReactionMap.from_config(cfg.chat)
    writers = [VoteWriter(e) for e in engines]
    outcomes: dict[str, list[VoteOutcome]] = {}
    lock = threading.Lock()

    def batches(evs: list[Reaction]) -> list[list[Reaction]]:
        sizes = [rng.randint(1, 12) for _ in range(len(evs))]
        out, i = [], 0
        for size in sizes:
            if i >= len(evs):
                break
            out.append(evs[i : i + size])
            i += size
        return out

    plans = [batches(per_writer[0]), batches(per_writer[1])]
    threads = [
        threading.Thread(target=_run_writer, args=(w, reactions, plan, outcomes, lock))
        for w, plan in zip(writers, plans, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engines[1].dispose()

    with session_scope(any_engine) as s:
        rows = s.connection().execute(
            select(Vote.id, Vote.pair_id, Vote.rater_id, Vote.kind, Vote.action, Vote.choice,
                   Vote.target, Vote.score, Vote.event_key).order_by(Vote.id)  # type: ignore[arg-type]
        ).all()  # fmt: skip
        log: list[dict[str, Any]] = [dict(r._mapping) for r in rows]
        sql = effective_votes(s, "pairwise")
        commands = all_effective_votes(s)
    # Exactly once: an event key is stored at most once, and every recorded acknowledgement
    # is a stored row; a redelivered event is a duplicate on the other replica.
    stored = Counter(e["event_key"] for e in log)
    assert max(stored.values()) == 1
    for key, outs in outcomes.items():
        recorded = [o for o in outs if o.status == "recorded"]
        assert len(recorded) <= 1, key
        assert (len(recorded) == 1) == (key in stored), key
        if len(outs) == 2 and recorded:
            assert {o.status for o in outs} == {"recorded", "duplicate"}
    assert len(stored) > 50
    # Every reader computes the same votes as an independent replay of the stored log.
    want = Counter(_reference(log, "pairwise"))
    assert Counter((v.pair_id, v.rater_id, v.choice, v.target, v.score) for v in sql) == want
    assert (
        Counter(
            (v.pair_id, v.rater_id, v.choice, v.target, v.score)
            for v in commands
            if v.kind == "pairwise"
        )
        == want
    )
    results = Results(any_engine, cfg)
    assert sum(n for *_, n in results.pairwise_counts) == sum(want.values())
    # Stored removals always retract the vote they name: the writers never stored a removal
    # that the readers would have to ignore.
    state: dict[tuple[int, int], str | None] = {}
    for e in log:
        key = (e["pair_id"], e["rater_id"])
        if e["action"] == "add":
            state[key] = e["choice"]
        else:
            assert state.get(key) == e["choice"], e
            state[key] = None
