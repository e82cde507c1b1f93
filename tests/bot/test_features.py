"""Two features in one bot, end to end on the bot side: the built-in pep talk and a support
feature over a JSONL file (its own template, two of the three models, slices, its own
channel) — a round per feature, pairs that never mix features, a rater's pairs across both
without a feature's name or template, `/slam report F`, `/slam leaderboard F`, `/slam
status` and `/slam round` per feature through the console adapter, an unknown feature's
reply, the daily job's rounds and the digest with a section per feature."""

from __future__ import annotations

import io
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.dispatcher import Dispatcher
from bot.events import Command, Reaction, Reply
from bot.platforms.console import ConsolePort, rate_in_console
from bot.rating import rounds, selection
from core.config import SlamConfig
from core.features import features
from storage.db import session_scope
from storage.models import Experiment, Generation, ModelRecord, RatingPair, RatingRound
from tests.support.bot_seed import (
    RUN_DATE,
    SUPPORT,
    seed,
    seed_feature,
    two_feature_config,
)

PEP = "daily-pep-talk"


@pytest.fixture
def cfg(tmp_path: Path) -> SlamConfig:
    return two_feature_config(tmp_path, pairs_per_round=3, admins=["boss"])


@pytest.fixture
def seeded(engine: Engine, cfg: SlamConfig) -> Engine:
    seed(engine, cfg)
    seed_feature(engine, cfg)
    return engine


def _pairs_by_feature(engine: Engine) -> dict[str, list[tuple[str, str, str]]]:
    """feature -> (model A, model B, the two generations' experiments) of every pair."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    with Session(engine) as s:
        names = {m.id: m.name for m in s.exec(select(ModelRecord)).all()}
        exps = {e.id: e.name for e in s.exec(select(Experiment)).all()}
        for p in s.exec(select(RatingPair)).all():
            rnd = s.get(RatingRound, p.round_id)
            a, b = s.get(Generation, p.generation_a_id), s.get(Generation, p.generation_b_id)
            assert rnd and a and b
            gens = f"{exps[a.experiment_id]}|{exps[b.experiment_id]}"
            out.setdefault(exps[rnd.experiment_id], []).append(
                (names[a.model_id], names[b.model_id], gens))
    return out


async def _say(d: Dispatcher, port: Any, text: str, user: str = "boss") -> Reply:
    reply = await d.handle_command(Command("console", user, "console", text), port)
    assert reply is not None
    return reply


def test_config_has_both_features(cfg: SlamConfig) -> None:
    assert [f.name for f in features(cfg)] == [PEP, SUPPORT]


async def test_a_round_per_feature_posted_in_its_channel_and_pairs_never_mix(
    seeded: Engine, cfg: SlamConfig
) -> None:
    out = io.StringIO()
    d = Dispatcher(seeded, cfg, salt=b"s", rng=random.Random(4))
    try:
        reply = await _say(d, ConsolePort(out), "round start")
    finally:
        await d.aclose()
    assert reply.ok, reply.text
    assert f"({PEP}) is open: 3 pair(s) posted in C0RATINGS" in reply.text
    assert f"({SUPPORT}) is open: 3 pair(s) posted in C0SUPPORT" in reply.text
    posted = out.getvalue()
    assert posted.count("posted to #C0RATINGS") == 3 and posted.count("posted to #C0SUPPORT") == 3
    pairs = _pairs_by_feature(seeded)
    assert set(pairs) == {PEP, SUPPORT}
    for feature, rows in pairs.items():
        assert all(gens == f"{feature}|{feature}" for *_, gens in rows), rows
    # the support feature's models only: gemma answers only the pep talk
    assert {m for a, b, _ in pairs[SUPPORT] for m in (a, b)} == {"gpt-4", "mistral-7b-q4"}
    with Session(seeded) as s:
        assert len(rounds.open_rounds(s)) == 2


async def test_round_start_and_close_of_one_feature(seeded: Engine, cfg: SlamConfig) -> None:
    d = Dispatcher(seeded, cfg, salt=b"s", rng=random.Random(4))
    port = ConsolePort(io.StringIO())
    try:
        started = await _say(d, port, f"round start {SUPPORT}")
        assert started.ok and f"({SUPPORT}) is open" in started.text and PEP not in started.text
        again = await _say(d, port, f"round start {SUPPORT}")
        assert not again.ok and "still open" in again.text
        both = await _say(d, port, "round start")  # the pep talk opens, support is listed
        assert f"({PEP}) is open" in both.text and f"Not opened: {SUPPORT}:" in both.text
        closed = await _say(d, port, f"round close {SUPPORT}")
        assert closed.ok and closed.text.count("closed:") == 1
        with Session(seeded) as s:
            left = rounds.open_rounds(s)
            assert [s.get(Experiment, r.experiment_id).name for r in left] == [PEP]  # type: ignore[union-attr]
        assert (await _say(d, port, "round close")).text.count("closed:") == 1
        await _say(d, port, "round start")
        assert (await _say(d, port, "round close")).text.count("closed:") == 2
        with Session(seeded) as s:
            assert rounds.open_rounds(s) == []
        bad = await _say(d, port, "round start tickets")
        assert not bad.ok and "Unknown feature `tickets`" in bad.text
        assert PEP in bad.text and SUPPORT in bad.text
    finally:
        await d.aclose()


def test_a_rater_gets_pairs_of_both_features_and_never_a_feature_name(
    seeded: Engine, cfg: SlamConfig
) -> None:
    from bot.rating import masker
    from bot.services import BotServices

    with session_scope(seeded) as s:
        rounds.start_rounds(s, cfg, rng=random.Random(2))
    services = BotServices.create(seeded, cfg, salt=b"s")
    got: Counter[str] = Counter()
    with session_scope(seeded) as s:
        exps = {e.id: e.name for e in s.exec(select(Experiment)).all()}
        rids = {r.id: exps[r.experiment_id] for r in s.exec(select(RatingRound)).all()}
        for _ in range(6):
            nxt = selection.next_pair(s, cfg, "console", "rater-1", rng=random.Random(1))
            assert nxt.pair is not None and nxt.quota == 6 and nxt.rounds == (1, 2)
            a = s.get(Generation, nxt.pair.generation_a_id)
            b = s.get(Generation, nxt.pair.generation_b_id)
            assert a and b and a.experiment_id == b.experiment_id
            assert exps[a.experiment_id] == rids[nxt.pair.round_id]
            got[rids[nxt.pair.round_id]] += 1
            view = rounds.pair_view(s, nxt.pair, masker(services, s), "legend")
            shown = " ".join([view.context, view.response_a, view.response_b, view.legend])
            assert SUPPORT not in shown and PEP not in shown and "{{" not in shown
            # vote on it (the pair is then rated) so the next call moves on
            s.add(_vote(nxt.pair.id, nxt.rater_id))
            s.flush()
        # round-robin over the features for this rater, then nothing more
        assert got == {PEP: 3, SUPPORT: 3}
        nxt = selection.next_pair(s, cfg, "console", "rater-1")
        assert nxt.pair is None and nxt.why == "done"
        assert "rounds 1 and 2" in nxt.finished and "6 pair(s)" in nxt.finished


def _vote(pair_id: int | None, rater_id: int) -> Any:
    from storage.models import Vote

    assert pair_id is not None
    return Vote(pair_id=pair_id, rater_id=rater_id, choice="A",
                event_key=f"t:{pair_id}:{rater_id}")  # fmt: skip


def test_slices_whose_decision_is_settled_get_no_more_pairs(
    seeded: Engine, cfg: SlamConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `slice_field`, answers to inputs of settled slices are left out while another
    slice is open; with every slice settled (or none), all inputs are drawn from."""
    from core.features import feature

    support = feature(cfg, SUPPORT)
    with Session(seeded) as s:
        exp_id = rounds.experiment_id(s, SUPPORT)
        assert exp_id is not None
        cands = rounds._candidates(s, exp_id, RUN_DATE, support.models)
    assert {c.slice for c in cands} == {"billing", "legal"}

    def decisions(kinds: dict[str, str]) -> Any:
        return lambda engine, cfg, feat: {sl: _Decision(k) for sl, k in kinds.items()}

    monkeypatch.setattr(selection, "settled", lambda d: d.kind in ("switch", "keep"))
    monkeypatch.setattr(selection, "slice_decisions", decisions({"billing": "switch",
                                                                 "legal": "undecided"}))
    kept = selection.open_slices(seeded, cfg, support, cands)
    assert kept and {c.slice for c in kept} == {"legal"}
    for kinds in ({"billing": "switch", "legal": "keep"},
                  {"billing": "undecided", "legal": "undecided"}):  # fmt: skip
        monkeypatch.setattr(selection, "slice_decisions", decisions(kinds))
        assert selection.open_slices(seeded, cfg, support, cands) == cands


class _Decision:
    def __init__(self, kind: str):
        self.kind = kind


class _Spy:
    """Records the `feature=` each Results is read with (the numbers are the service's)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        import evaluation.results as results

        self.features: list[str | None] = []
        real = results.Results
        spy = self

        class Recording(real):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kw: Any) -> None:
                spy.features.append(kw.get("feature"))
                super().__init__(*args, **kw)

        monkeypatch.setattr(results, "Results", Recording)


async def test_report_and_leaderboard_of_one_feature_through_the_console(
    seeded: Engine, cfg: SlamConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    spy = _Spy(monkeypatch)
    out = io.StringIO()
    await rate_in_console(seeded, cfg, [
        "a", f"/slam leaderboard {SUPPORT}", f"/slam report {SUPPORT}", "/slam leaderboard",
        "/slam leaderboard tickets", "/slam report tickets", f"/slam report {SUPPORT} nope",
        "/slam status", "q",
    ], out, salt=b"s")  # fmt: skip
    text = out.getvalue()
    assert f"Leaderboard · {SUPPORT}" in text and f"SLaM report · {SUPPORT}" in text
    assert f"Leaderboard · {PEP}" in text  # no feature named: the first
    assert f"Feature: {SUPPORT}. Others: {PEP} (`/slam leaderboard FEATURE`)." in text
    assert SUPPORT in spy.features and PEP in spy.features and None not in spy.features
    assert f"Unknown feature `tickets`; features: {PEP}, {SUPPORT}" in text
    assert "`tickets` is neither a feature nor a chart" in text
    assert "Unknown chart `nope`" in text
    # status: a line per feature, then each feature's decision
    assert f"{PEP}: round 1 is open" in text and f"{SUPPORT}: round 2 is open" in text
    assert f"{SUPPORT} · Decision:" in text


def test_the_daily_job_opens_a_round_per_feature_and_replaces_each(
    seeded: Engine, cfg: SlamConfig
) -> None:
    from bot.ops.job_bodies import new_rounds

    first, problems = new_rounds(seeded, cfg, RUN_DATE)
    assert problems == [] and [r.feature for r in first] == [PEP, SUPPORT]
    assert all(r.closed is None for r in first)
    again, _ = new_rounds(seeded, cfg, RUN_DATE)
    assert [r.closed for r in again] == [r.round_id for r in first]
    with Session(seeded) as s:
        assert sorted(r.id for r in rounds.open_rounds(s)) == sorted(r.round_id for r in again)
    pairs = _pairs_by_feature(seeded)
    for feature, rows in pairs.items():
        assert all(gens == f"{feature}|{feature}" for *_, gens in rows)


async def test_the_round_poster_posts_in_the_features_channel(
    seeded: Engine, cfg: SlamConfig
) -> None:
    from bot.ops.job_bodies import new_rounds
    from bot.ops.jobs import round_poster
    from bot.services import BotServices

    opened, _ = new_rounds(seeded, cfg, RUN_DATE)
    out = io.StringIO()
    post = round_poster(BotServices.create(seeded, cfg, salt=b"s"), ConsolePort(out))
    for r in opened:
        await post(r.round_id)
    assert out.getvalue().count("posted to #C0SUPPORT") == 3
    assert out.getvalue().count("posted to #C0RATINGS") == 3


def test_the_digest_has_a_section_per_feature(seeded: Engine, cfg: SlamConfig) -> None:
    from bot.ops.digest import build_digests, render_digests

    digests = build_digests(seeded, cfg, RUN_DATE)
    assert [name for name, _ in digests] == [PEP, SUPPORT]
    reply = render_digests(digests)
    titles = [t for t, _ in reply.fields]
    for feature in (PEP, SUPPORT):
        assert f"{feature} · Decision" in titles and f"{feature} · Votes" in titles
        assert any(t.startswith(f"{feature} · Leaderboard") for t in titles)
        assert any(t.startswith(f"{feature} · Cost per 1K") for t in titles)
        assert reply.text.count(f"{feature}: ") >= 1
    # the models' latency is the same for every feature: shown once, after the sections
    assert sum(t.startswith("Latency") for t in titles) == 1
    assert titles.index(next(t for t in titles if t.startswith("Latency"))) > titles.index(
        f"{SUPPORT} · Decision")


def test_one_feature_renders_the_digest_as_before(engine: Engine) -> None:
    from bot.ops.digest import build_digest, build_digests, render, render_digests
    from tests.support.bot_seed import make_config

    single = make_config()
    seed(engine, single)
    digests = build_digests(engine, single, RUN_DATE)
    assert [name for name, _ in digests] == [None]
    assert render_digests(digests).fields == render(build_digest(engine, single, RUN_DATE)).fields


def test_a_feature_settles_with_its_own_message(
    seeded: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evaluation.human import Decision

    monkeypatch.setattr(selection, "settled", lambda d: True)
    decision = Decision(kind="switch", model="mistral-7b-q4", reference="gpt-4",
                        reference_label="gpt-4", margin=50, confidence=0.95,
                        headline="Switch to mistral-7b-q4.")  # fmt: skip
    first = selection.announce(seeded, decision, SUPPORT)
    assert first is not None and first.startswith(f"{SUPPORT}: The decision is settled")
    assert selection.announce(seeded, decision, SUPPORT) is None  # once
    assert selection.announce(seeded, decision, PEP) is not None  # another feature's own


async def test_a_reaction_on_a_support_pair_is_a_vote(seeded: Engine, cfg: SlamConfig) -> None:
    """Votes on either feature's pairs go through the same writer."""
    d = Dispatcher(seeded, cfg, salt=b"s", rng=random.Random(4))
    try:
        await _say(d, ConsolePort(io.StringIO()), f"round start {SUPPORT}")
        with Session(seeded) as s:
            pair = s.exec(select(RatingPair)).first()
            assert pair is not None and pair.channel and pair.message_ref
            channel, ref = pair.channel, pair.message_ref
        assert channel == "C0SUPPORT"
        outcome = await d.handle_reaction(Reaction("console", "u9", channel, ref, "a", True, "k1"))
        assert outcome.status == "recorded"
    finally:
        await d.aclose()
