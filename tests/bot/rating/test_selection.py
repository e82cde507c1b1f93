"""bot.rating.selection in chat: `/slam rate` hands each rater the most useful pair for them
(never a generation pair twice, A/B balanced), gold pairs at their rate, rounds planned for the open
decision, and the stopping rule said once — over the Slack HTTP path and in the console."""

from __future__ import annotations

import io
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.dispatcher import Dispatcher
from bot.platforms.console import rate_in_console
from bot.platforms.slack import build_app, serve_http
from bot.rating import rounds, selection
from core.config import SlamConfig, parse_config
from evaluation.human.votes import pairwise_results
from storage.db import session_scope
from storage.models import (
    Experiment,
    Generation,
    ModelRecord,
    Notice,
    PairMessage,
    Rater,
    RatingPair,
    RatingRound,
    Vote,
)
from tests.support.bot_seed import MODELS, RUN_DATE, seed
from tests.support.fake_slack_api import FakeSlack
from tests.support.slack_helpers import FORM, JSON, SECRET, TOKEN, reaction_body, signed, slash_body

USERS = ["Ada", "Grace", "Linus", "Barbara", "Alan", "Edsger", "Frances", "Donald"]
REF, GEMMA, MISTRAL = "gpt-4", "gemma3-270m-q4_k_m", "mistral-7b-q4"
_keys = itertools.count()


def config(**evaluation: Any) -> SlamConfig:
    ev = {"bootstrap_rounds": 300, "explore": 0.0, "gold_rate": 0.0, **evaluation}
    return parse_config({"models": MODELS, "evaluation": ev,
                         "chat": {"channel": "C0RATINGS", "admins": ["UADMIN"],
                                  "pairs_per_round": 4}}, "<test>")  # fmt: skip


def history(engine: Engine, plan: dict[tuple[str, str], tuple[int, int]], tag: str = "h") -> None:
    """Past votes in a closed round: (model A, model B) -> (A wins, B wins), one pair per vote
    on the stored generations, from raters who vote 8 times each."""
    with session_scope(engine) as s:
        exp = s.exec(select(Experiment)).first()
        assert exp is not None and exp.id is not None
        names = {m.id: m.name for m in s.exec(select(ModelRecord)).all()}
        gens: dict[str, list[int]] = {}
        for g in s.exec(select(Generation).order_by(Generation.id)).all():  # type: ignore[arg-type]
            gens.setdefault(names[g.model_id], []).append(g.id)  # type: ignore[arg-type]
        rnd = RatingRound(experiment_id=exp.id, status="closed", run_date=RUN_DATE)
        s.add(rnd)
        s.flush()
        raters: list[int] = []
        k = 0
        for (a, b), (wins_a, wins_b) in plan.items():
            for choice in ["A"] * wins_a + ["B"] * wins_b:
                ctx = k % len(gens[a])
                pair = RatingPair(round_id=rnd.id, generation_a_id=gens[a][ctx],  # type: ignore[arg-type]
                                  generation_b_id=gens[b][ctx])  # fmt: skip
                s.add(pair)
                if k % 8 == 0:
                    r = Rater(platform="console", user_hash=f"{tag}-{k}")
                    s.add(r)
                    s.flush()
                    raters.append(r.id)  # type: ignore[arg-type]
                s.flush()
                s.add(Vote(pair_id=pair.id, rater_id=raters[-1], choice=choice,  # type: ignore[arg-type]
                           event_key=f"hist-{next(_keys)}"))  # fmt: skip
                k += 1


OPEN = {(GEMMA, REF): (10, 90), (MISTRAL, REF): (30, 30)}  # gemma ruled out, mistral open
SETTLED = {(MISTRAL, REF): (400, 400)}  # added to OPEN: mistral acceptable, settled


def model_pair(s: Session, pair: RatingPair) -> frozenset[str]:
    out = []
    for gid in (pair.generation_a_id, pair.generation_b_id):
        g = s.get(Generation, gid)
        assert g is not None
        m = s.get(ModelRecord, g.model_id)
        assert m is not None
        out.append(m.name)
    return frozenset(out)


def test_next_pair_is_informative_never_repeats_and_keeps_ab_balanced(engine: Engine) -> None:
    cfg = config()
    seed(engine, cfg, users=USERS)
    history(engine, OPEN)
    with session_scope(engine) as s:
        rounds.start_round(s, cfg, random.Random(1), n=2)
    seen: set[frozenset[int]] = set()
    kinds: Counter[tuple[frozenset[str], str]] = Counter()
    for step in range(len(USERS) + 3):
        with session_scope(engine) as s:
            nxt = selection.next_pair(s, cfg, "console", "rater-x", rng=random.Random(step))
            if nxt.pair is None:
                break
            pair = nxt.pair
            gens = frozenset((pair.generation_a_id, pair.generation_b_id))
            assert gens not in seen  # never the same generation pair twice
            seen.add(gens)
            kinds[(model_pair(s, pair), nxt.why)] += 1
            s.add(PairMessage(pair_id=pair.id, platform="console", channel="dm",  # type: ignore[arg-type]
                              message_ref=f"m{step}", rater_id=nxt.rater_id))  # fmt: skip
            s.add(Vote(pair_id=pair.id, rater_id=nxt.rater_id, choice="A",  # type: ignore[arg-type]
                       event_key=f"x-{step}"))  # fmt: skip
    # The decision turns on mistral vs the reference: that is what the rater got.
    informative = kinds[(frozenset({MISTRAL, REF}), "informative")]
    assert informative >= 4 and informative == sum(
        n for (mp, why), n in kinds.items() if why == "informative")
    assert nxt.pair is None and nxt.done == nxt.quota == cfg.chat.pairs_per_round
    with session_scope(engine) as s:
        made = s.exec(select(RatingPair).where(RatingPair.kind == "rater")).all()
        by_mp = Counter((model_pair(s, p), p.a_was_first_choice) for p in made)
        for mp in {m for m, _ in by_mp}:
            assert abs(by_mp[(mp, True)] - by_mp[(mp, False)]) <= 1  # A/B balanced


def test_gold_pairs_at_their_rate_show_a_decoy_and_never_count(engine: Engine) -> None:
    cfg = config(gold_rate=0.5)  # with phase < 0.5 every second pair is gold
    seed(engine, cfg, users=USERS)
    with session_scope(engine) as s:
        rounds.start_round(s, cfg, random.Random(1), n=4)
    got = []
    for step in range(4):
        with session_scope(engine) as s:
            nxt = selection.next_pair(s, cfg, "console", "gold-rater", rng=random.Random(step))
            assert nxt.pair is not None
            got.append(nxt.why)
            pair = nxt.pair
            if nxt.why == "gold":
                assert pair.kind == "gold" and pair.decoy in ("truncated", "off_topic",
                                                              "other_user")  # fmt: skip
                view = rounds.pair_view(s, pair, rounds.Masker([]), "")
                bad = view.response_b if pair.gold_answer == "A" else view.response_a
                good = view.response_a if pair.gold_answer == "A" else view.response_b
                assert bad.strip() == (pair.decoy_text or "").strip() and bad != good
                assert model_pair(s, pair) == frozenset({REF})  # both sides the reference's
                choice = "B" if pair.gold_answer == "A" else "A"  # fail it
            else:
                choice = "A"
            s.add(PairMessage(pair_id=pair.id, platform="console", channel="dm",  # type: ignore[arg-type]
                              message_ref=f"g{step}", rater_id=nxt.rater_id))  # fmt: skip
            s.add(Vote(pair_id=pair.id, rater_id=nxt.rater_id, choice=choice,  # type: ignore[arg-type]
                       event_key=f"g-{step}"))  # fmt: skip
    assert got == ["warm-up", "gold", "warm-up", "gold"]
    with session_scope(engine) as s:
        assert sum(n for *_, n in pairwise_results(s)) == 2  # the gold votes never count
        from evaluation.human.votes import rater_quality

        assert rater_quality(s).by_rule["gold"] == (1, 2)  # failed both: flagged


def test_rounds_are_planned_for_the_open_decision_and_shrink_once_settled(engine: Engine) -> None:
    cfg = config(explore=0.25)
    seed(engine, cfg, users=USERS)
    history(engine, OPEN)
    planner = selection.round_planner(engine, cfg)
    with session_scope(engine) as s:
        _, pairs = rounds.start_round(s, cfg, random.Random(3), n=8, planner=planner)
        mps = Counter(model_pair(s, p) for p in pairs)
        assert len(pairs) == 8 and mps[frozenset({MISTRAL, REF})] >= 5
        firsts = Counter(p.a_was_first_choice for p in pairs
                         if model_pair(s, p) == frozenset({MISTRAL, REF}))  # fmt: skip
        assert abs(firsts[True] - firsts[False]) <= 1
        rounds.close_round(s)
    history(engine, SETTLED, tag="more")
    with session_scope(engine) as s:
        _, pairs = rounds.start_round(s, cfg, random.Random(4), n=8, planner=planner)
        assert len(pairs) == 2  # ceil(0.25 · 8): exploration only


def test_the_settled_notice_is_claimed_once(any_engine: Engine) -> None:
    assert selection.claim_notice(any_engine, "decision:x", "settled")
    assert not selection.claim_notice(any_engine, "decision:x", "settled again")
    with Session(any_engine) as s:
        assert [n.text for n in s.exec(select(Notice)).all()] == ["settled"]


# -- over the Slack HTTP path ---------------------------------------------------------------------
class SlackBot:
    def __init__(self, http: httpx.AsyncClient, fake: FakeSlack):
        self.http, self.fake = http, fake

    async def slash(self, text: str, user: str) -> httpx.Response:
        body = slash_body(text, user)
        return await self.http.post("/slack/events", content=body, headers={**FORM, **signed(body)})

    async def react(self, event_id: str, ts: str, reaction: str, user: str,
                    channel: str) -> httpx.Response:  # fmt: skip
        body = reaction_body(event_id, user, channel, ts, reaction)
        return await self.http.post("/slack/events", content=body, headers={**JSON, **signed(body)})

    def posts(self, channel: str) -> list[str]:
        return [str(c.params) for c in self.fake.named("chat.postMessage")
                if c.params.get("channel") == channel]  # fmt: skip


def dms(engine: Engine, channel: str) -> list[PairMessage]:
    with Session(engine) as s:
        return list(s.exec(select(PairMessage).where(PairMessage.channel == channel)).all())


async def until(cond: Any, what: str) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + 30
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def slack_bot(engine: Engine, cfg: SlamConfig, port: int, tmp: Path,
                    monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SlackBot]:  # fmt: skip
    fake = FakeSlack().start()
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_API_URL", fake.api_url)
    d = Dispatcher(engine, cfg, salt=b"test-salt", rng=random.Random(5), report_dir=tmp)
    runner = await serve_http(await build_app(d), "127.0.0.1", port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield SlackBot(http, fake)
    finally:
        await runner.cleanup()
        await d.aclose()
        fake.stop()


async def test_slack_rate_status_and_the_stopping_rule(
    engine: Engine, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config()
    seed(engine, cfg, users=USERS)
    history(engine, OPEN)
    async with slack_bot(engine, cfg, port, tmp_path, monkeypatch) as bot:
        assert (await bot.slash("round start", "UADMIN")).status_code == 200
        await until(lambda: any("Round" in p and "is open" in p for p in bot.posts("C0CMD")),
                    "the round")  # fmt: skip
        with Session(engine) as s:
            posted = s.exec(select(RatingPair).where(RatingPair.kind == "round",
                                                     RatingPair.message_ref != None)).all()  # noqa: E711
            assert sum(model_pair(s, p) == frozenset({MISTRAL, REF}) for p in posted) >= 3
        # /slam rate: the DM is a pair of the comparison the decision turns on.
        await bot.slash("rate", "U9")
        await until(lambda: dms(engine, "D9"), "the DM")
        with Session(engine) as s:
            dm = s.exec(select(PairMessage).where(PairMessage.channel == "D9")).one()
            pair = s.get(RatingPair, dm.pair_id)
            assert pair is not None and model_pair(s, pair) == frozenset({MISTRAL, REF})
        assert (await bot.react("EvSel1", dm.message_ref, "b", "U9", "D9")).status_code == 200
        # /slam status: how many more votes the open comparison needs, no model named.
        resp = await bot.slash("status", "U1")
        await until(lambda: "Open comparison" in resp.text or any(
            "Open comparison" in str(c.params) for c in bot.fake.calls), "the status")  # fmt: skip
        status = resp.text + "".join(str(c.params) for c in bot.fake.calls
                                     if "Open comparison" in str(c.params))  # fmt: skip
        assert "Open comparison 1 (decides first)" in status and "more vote(s)" in status
        assert MISTRAL not in status and GEMMA not in status
        assert not [p for p in bot.posts("C0RATINGS") if "decision is settled" in p]
        # Enough votes come in: the next /slam rate says so once in the channel.
        history(engine, SETTLED, tag="more")
        await bot.slash("rate", "U8")
        await until(lambda: [p for p in bot.posts("C0RATINGS") if "decision is settled" in p],
                    "the settled notice")  # fmt: skip
        await bot.slash("rate", "U7")
        await until(lambda: dms(engine, "D7") or any("settled" in str(c.params)
                                                    for c in bot.fake.named("chat.postEphemeral")),
                    "U7's answer")  # fmt: skip
        await bot.slash("status", "U1")
        notices = [p for p in bot.posts("C0RATINGS") if "decision is settled" in p]
        assert len(notices) == 1 and f"Switch to {MISTRAL}" in notices[0]


async def test_console_rates_informative_pairs_and_hears_the_decision_once(
    engine: Engine,
) -> None:
    cfg = config()
    seed(engine, cfg, users=USERS)
    history(engine, OPEN)
    out = io.StringIO()
    summary = await rate_in_console(engine, cfg, ["b"] * 3, out, salt=b"s",
                                    rng=random.Random(2))  # fmt: skip
    assert summary.recorded == 3
    with Session(engine) as s:
        rater_id = s.exec(select(Rater.id).where(Rater.platform == "console")
                          .order_by(Rater.id.desc())).first()  # type: ignore[union-attr]  # fmt: skip
        mine = s.exec(select(Vote).where(Vote.rater_id == rater_id)).all()
        mps = Counter(model_pair(s, s.get(RatingPair, v.pair_id)) for v in mine)  # type: ignore[arg-type]
    assert mps[frozenset({MISTRAL, REF})] == 3
    assert "decision is settled" not in out.getvalue()


async def test_console_hears_the_settled_decision_once(engine: Engine) -> None:
    cfg = config()
    seed(engine, cfg, users=USERS)
    history(engine, OPEN)
    history(engine, SETTLED, tag="more")
    out = io.StringIO()
    await rate_in_console(engine, cfg, ["a"] * 5, out, salt=b"s2", rng=random.Random(3))
    text = out.getvalue()
    assert text.count("The decision is settled at 95%") == 1 and f"Switch to {MISTRAL}" in text
    assert "Round 3 is open: 1 pair(s)" in text  # exploration only (rounds 1-2: history)
    assert "needs no more votes from you" in text


def test_a_new_model_version_is_warmed_up_first(engine: Engine) -> None:
    """Gemma is ruled out on its old version's votes; once a new version of it is seen, its
    votes are history and its pairs come first until the new version has enough votes."""
    from datetime import UTC, datetime

    from storage.repo import ensure_model_version

    cfg = config()
    seed(engine, cfg, users=USERS)
    history(engine, OPEN)
    with session_scope(engine) as s:
        rounds.start_round(s, cfg, random.Random(1), n=2)
        gemma = s.exec(select(ModelRecord.id).where(ModelRecord.name == GEMMA)).one()
        assert gemma is not None
        ensure_model_version(s, gemma, "a" * 64, "old", "{}")
    with session_scope(engine) as s:
        nxt = selection.next_pair(s, cfg, "console", "rater-a", rng=random.Random(0))
        assert nxt.pair is not None and model_pair(s, nxt.pair) == {MISTRAL, REF}
    with session_scope(engine) as s:  # a re-pulled gemma: a second, newer version
        v = ensure_model_version(s, gemma, "b" * 64, "new", "{}")
        from storage.models import ModelVersion

        row = s.get(ModelVersion, v)
        assert row is not None
        row.first_seen = datetime(2100, 1, 1, tzinfo=UTC)
        s.add(row)
    with session_scope(engine) as s:
        nxt = selection.next_pair(s, cfg, "console", "rater-b", rng=random.Random(0))
        assert nxt.pair is not None and GEMMA in model_pair(s, nxt.pair)


def test_warm_state_builds_what_the_first_page_reads(engine: Engine) -> None:
    """`slam bot web` warms the shared state before it opens its port: the first page then
    reuses it (no build of its own) and picks the same pair as without the warm-up."""
    from bot.rating import posterior

    cfg = config()
    seed(engine, cfg, users=USERS)
    history(engine, OPEN)
    with session_scope(engine) as s:
        rounds.start_round(s, cfg, random.Random(1), n=2)
    shared = posterior.shared(engine)
    shared.clear()
    assert selection.warm_state(engine, cfg) == 1
    built = shared.builds
    assert built >= 1
    with session_scope(engine) as s:
        warm = selection.next_pair(s, cfg, "console", "rater-a", rng=random.Random(0))
        assert warm.pair is not None
        warm_pair = model_pair(s, warm.pair)
        s.rollback()
    assert shared.builds == built  # the page read the warmed state
    shared.clear()
    with session_scope(engine) as s:
        cold = selection.next_pair(s, cfg, "console", "rater-a", rng=random.Random(0))
        assert cold.pair is not None and model_pair(s, cold.pair) == warm_pair


def test_the_choice_is_the_rule_over_every_unseen_option(engine: Engine) -> None:
    """`_choose` filters only the model pairs whose generation pairs the rater has seen; what
    it picks equals the rule applied after filtering every option and pair (written out here
    from the module's docstring), for random sets of seen generation pairs."""
    from bot.rating import posterior, rater_reads
    from bot.rating.selection import _choose, _model_names, _spread, _state

    cfg = config()
    seed(engine, cfg, users=USERS)
    history(engine, OPEN)
    with session_scope(engine) as s:
        rounds.start_round(s, cfg, random.Random(1), n=3)
    checked = Counter[str]()
    for trial in range(40):
        with Session(engine) as s:
            rnd = rounds.open_rounds(s)[0]
            assert rnd.id is not None
            version = posterior.data_version(engine, s.connection())
            names = _model_names(s, version)
            pairs = rater_reads.pair_rows(s, rnd.id)
            st = _state(s, cfg, engine, rnd, pairs, 0, names, None, version)
            model_of = {c.generation_id: c.model_id for c in st.cands}
            by_ctx: dict[int, dict[int, Any]] = {}
            for c in st.cands:
                by_ctx.setdefault(c.context_id, {}).setdefault(c.model_id, c)
            options: dict[tuple[int, int], list[frozenset[int]]] = {}
            for per in by_ctx.values():
                for m1, m2 in itertools.combinations(sorted(per), 2):
                    options.setdefault((m1, m2), []).append(
                        frozenset((per[m1].generation_id, per[m2].generation_id)))
            every = sorted({g for gs in options.values() for g in gs}, key=sorted)
            r = random.Random(trial)
            seen = set(r.sample(every, r.randrange(len(every))))
            if trial % 3 == 0:  # pairs of another round's answers are seen too
                seen.add(frozenset((10**6, 10**6 + 1)))
            unseen = {mp: [g for g in gs if g not in seen] for mp, gs in options.items()}
            unseen = {mp: gs for mp, gs in unseen.items() if gs}
            existing = {mp: [p for p in pairs if p.kind != "gold" and p.generations not in seen
                             and tuple(sorted((model_of.get(p.generation_a_id, -1),
                                               model_of.get(p.generation_b_id, -1)))) == mp]
                        for mp in unseen}  # fmt: skip
            mine = rater_reads.RaterVotes(frozenset(), {}, Counter(), {})
            got, why = _choose(s, cfg, rnd.id, mine, pairs, st.cands, seen, names, st.snap,
                               random.Random(trial))  # fmt: skip
            if not unseen:
                assert (got, why) == (None, "done")
                s.rollback()
                continue
            plan = st.snap.plan

            def votes(mp: tuple[int, int], plan: Any = plan, names: Any = names) -> float:
                return float(plan.votes_of(names[mp[0]], names[mp[1]]))

            useful = {mp: plan.utility_of(names[mp[0]], names[mp[1]])
                      * _spread(0, votes(mp), st.snap.raters) for mp in unseen}  # fmt: skip
            if not plan.warmup and max(useful.values()) > 0:
                want = max(unseen, key=lambda m: (useful[m], -votes(m), bool(existing[m]),
                                                  -m[0], -m[1]))  # fmt: skip
                assert why == "informative"
            else:
                want = min(unseen, key=lambda m: (votes(m), not existing[m],
                                                  min((p.id for p in existing[m]), default=0), m))
            assert got is not None
            gens = frozenset((got.generation_a_id, got.generation_b_id))
            assert gens not in seen and gens in unseen[want]
            if existing[want]:
                counts = rater_reads.pair_votes(s, rnd.id, (p.id for p in existing[want]))
                assert got.id == min(existing[want], key=lambda p: (counts[p.id], p.id)).id
                checked["existing"] += 1
            else:
                checked["new"] += 1
            s.rollback()
    assert checked["existing"] > 5 and checked["new"] > 5, checked
