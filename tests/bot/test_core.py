"""The platform-neutral core: pair building, masking, vote rules, middleware, console."""

from __future__ import annotations

import io
import random
import stat
from collections import Counter
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.dispatcher import Dispatcher, RateLimit
from bot.events import Command, Posted, Reaction, Reply
from bot.identity import load_salt, rater_hash
from bot.platforms.console import rate_in_console
from bot.rating.rounds import Candidate, Masker, plan_pairs, start_round
from bot.reactions import ReactionMap, canonical
from storage.db import session_scope
from storage.models import Generation, PairMessage, RatingPair, Vote
from tests.support.bot_seed import effective_votes, make_config, seed


def cands(models: int, contexts: int) -> list[Candidate]:
    return [Candidate(m * 100 + c, m, c, f"text {m} {c}")
            for m in range(models) for c in range(contexts)]  # fmt: skip


def test_model_pairs_are_covered_evenly_and_ab_order_is_balanced() -> None:
    plan = plan_pairs(cands(4, 10), 30, random.Random(3), Counter())
    per_model_pair = Counter((a.model_id, b.model_id) for a, b, _ in plan)
    assert len(per_model_pair) == 6  # C(4, 2)
    assert set(per_model_pair.values()) == {5}
    for mp in per_model_pair:
        firsts = [af for a, b, af in plan if (a.model_id, b.model_id) == mp]
        assert sorted(firsts) == [False, False, True, True, True] or sorted(firsts) == [
            False, False, False, True, True]  # fmt: skip
    # Same user context within a pair, and user contexts spread across the round.
    assert all(a.context_id == b.context_id for a, b, _ in plan)
    per_ctx = Counter(a.context_id for a, _, _ in plan)
    assert len(per_ctx) == 10 and max(per_ctx.values()) - min(per_ctx.values()) <= 2


def test_uneven_counts_differ_by_at_most_one_and_earlier_rounds_are_avoided() -> None:
    plan = plan_pairs(cands(3, 4), 7, random.Random(1), Counter())
    counts = Counter((a.model_id, b.model_id) for a, b, _ in plan)
    assert sorted(counts.values()) == [2, 2, 3]
    used = Counter((a.generation_id, b.generation_id) for a, b, _ in plan)
    again = plan_pairs(cands(3, 4), 3, random.Random(2), used)
    assert all((a.generation_id, b.generation_id) not in used for a, b, _ in again)


def test_masker_hides_self_naming_without_touching_ordinary_words() -> None:
    m = Masker(["mistral-7b-q4", "ollama:llama3.2:1b", "builtin:gemma3-270m"])
    for text in ("As Mistral, I think", "I am Gemma 3", "As an AI by OpenAI (GPT-4)",
                 "llama3.2 here", "Mistral-7b-q4 says hi", "I'm Qwen",
                 "As an AI made by Alibaba Cloud, I cheer you on",
                 "I was trained by Google DeepMind", "Built by Meta AI", "Microsoft's Phi",
                 "Mistral AI made me", "I am Claude, by Anthropic"):  # fmt: skip
        assert m.names_model(text), text
        masked = m.mask(text)
        assert not Masker([]).names_model(masked), masked
        # Neutral words, not a visible "hidden" marker that tells the rater it named itself.
        assert "hidden" not in masked and "[" not in masked, masked
        assert "the assistant" in masked or "the developer" in masked, masked
    for text in ("Keep your philosophy reading ritual.", "Finish the gym plan, Alpha!",
                 "A small step today.", "A meta-analysis of your week",
                 "google the venue"):  # fmt: skip
        assert not m.names_model(text), text


def test_round_records_order_and_masking(engine: Engine) -> None:
    cfg = make_config(pairs_per_round=6)
    seed(engine, cfg, texts={"mistral-7b-q4/Ada": "As Mistral, I cheer for you."})
    with session_scope(engine) as s:
        _, pairs = start_round(s, cfg, random.Random(5))
        assert len(pairs) == 6
        for p in pairs:
            a, b = s.get(Generation, p.generation_a_id), s.get(Generation, p.generation_b_id)
            assert a and b and a.prompt_id == b.prompt_id and a.model_id != b.model_id
            # a_was_first_choice says whether A is the lower model id of the two as drawn.
            assert p.a_was_first_choice == (a.model_id < b.model_id)
            assert p.masked == ("As Mistral" in a.text + b.text)


def test_salt_from_env_else_a_private_file(tmp_path: Path) -> None:
    assert load_salt({"SLAM_RATER_SALT": "s3cret"}) == b"s3cret"
    path = tmp_path / "salt"
    first = load_salt({}, path)
    assert len(first) == 64 and load_salt({}, path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert rater_hash(first, "slack", "U1") != rater_hash(b"other", "slack", "U1")
    assert "U1" not in rater_hash(first, "slack", "U1")


def test_reaction_names_across_platforms() -> None:
    rm = ReactionMap.from_config(make_config().chat)
    assert rm.pairwise("🅰️") == rm.pairwise("a") == rm.pairwise(":a:") == "A"
    assert rm.pairwise("\U0001f170") == "A"  # without the variation selector
    assert rm.pairwise("-1::skin-tone-2") == rm.pairwise("👎") == "both_bad"
    assert rm.pairwise("tada") is None and rm.score("seven") is None  # score mode off
    scored = ReactionMap.from_config(make_config(score_mode=True).chat)
    assert scored.score("7️⃣") == scored.score("seven") == 7 and scored.score("🔟") == 10
    assert canonical(":handshake:") == "handshake"


class NullPort:
    platform = "console"
    unicode_emoji = True

    async def post(
        self, reply: Reply, *, channel: str | None = None, dm_user: str | None = None
    ) -> Posted:
        raise AssertionError("nothing should be posted")

    async def add_reactions(self, posted: Posted, names: list[str]) -> None:
        return None


async def test_middleware_ignores_self_limits_rates_and_guards_admin_commands(
    engine: Engine,
) -> None:
    seed(engine, make_config())
    now = [0.0]
    cfg = make_config(votes_per_rater_per_hour=2, admins=["boss"])
    d = Dispatcher(engine, cfg, self_ids={"bot"}, salt=b"s", clock=lambda: now[0])
    try:
        assert await d.handle_command(Command("console", "bot", "c", "help"), NullPort()) is None
        reply = await d.handle_command(Command("console", "u1", "c", "round start"), NullPort())
        assert reply is not None and "admins only" in reply.text
        reply = await d.handle_command(Command("console", "u1", "c", "reveal 1"), NullPort())
        assert reply is not None and "admins only" in reply.text

        def r(user: str, key: str) -> Reaction:
            return Reaction("console", user, "c", "m1", "a", True, key)

        assert (await d.handle_reaction(r("bot", "k0"))).status == "self"
        statuses = [(await d.handle_reaction(r("u1", f"k{i}"))).status for i in range(3)]
        assert statuses == ["not_a_pair", "not_a_pair", "rate_limited"]
        now[0] += 3601  # the window slides
        assert (await d.handle_reaction(r("u1", "k9"))).status == "not_a_pair"
        tada = Reaction("console", "u2", "c", "m1", "tada", True, "k10")
        assert (await d.handle_reaction(tada)).status == "not_a_vote"
    finally:
        await d.aclose()


def test_rate_limit_is_per_rater() -> None:
    rl = RateLimit(votes_per_hour=1, clock=lambda: 0.0)
    assert rl.allow("vote", "slack", "a") and rl.allow("vote", "slack", "b")
    assert not rl.allow("vote", "slack", "a")


async def test_console_rates_a_set_in_memory(engine: Engine) -> None:
    cfg = make_config(pairs_per_round=3)
    seed(engine, cfg)
    out = io.StringIO()
    summary = await rate_in_console(
        engine, cfg, ["a", "what?", "b", "u", "tie", "/slam status", "bad"], out, salt=b"s"
    )
    text = out.getvalue()
    assert summary.recorded == 4 and len(summary.pairs) == 3
    assert "Round 1 is open: 3 pair(s)" in text and "Response A" in text
    assert "undo: recorded" in text and "Rating status" in text
    assert "You have rated all 3 pair(s) of round 1" in text
    with Session(engine) as s:
        eff = effective_votes(s)
        assert sorted(str(v.choice) for v in eff.values()) == ["A", "both_bad", "tie"]
        assert len(s.exec(select(Vote)).all()) == 5  # A, B, remove B, tie, both_bad
        assert len(s.exec(select(RatingPair)).all()) == 3
    for m in cfg.models:
        assert m.name not in text


async def test_console_score_mode(engine: Engine) -> None:
    cfg = make_config(pairs_per_round=1, score_mode=True)
    seed(engine, cfg)
    out = io.StringIO()
    summary = await rate_in_console(engine, cfg, ["A 7", "b 10", "a", "n"], out, salt=b"s")
    assert summary.recorded == 3
    with Session(engine) as s:
        got = {(v.kind, v.target, v.score, v.choice) for v in effective_votes(s).values()}
    assert got == {("score", "A", 7, None), ("score", "B", 10, None), ("pairwise", None, None, "A")}


async def test_vote_rules_on_sqlite_and_postgres(any_engine: Engine) -> None:
    """add, redelivery, change, stale removal, retraction, closed round — on both databases;
    and two bot replicas (two writers) racing on the same events store each once."""
    from bot.rating.writer import VoteWriter
    from tests.support.slack_helpers import prepare_round

    cfg = make_config(pairs_per_round=2)
    seed(any_engine, cfg)
    (ch, ts), (_, ts2) = prepare_round(any_engine, cfg, 2)
    rm = ReactionMap.from_config(cfg.chat)
    w1, w2 = VoteWriter(any_engine), VoteWriter(any_engine)

    def ev(key: str, name: str, added: bool = True, user: str = "U1", ref: str = ts) -> Reaction:
        return Reaction("slack", user, ch, ref, name, added, f"slack:{key}")

    async def vote(r: Reaction, w: VoteWriter = w1) -> str:
        v = rm.vote(r)
        assert v is not None
        return (await w.submit(v, rater_hash(b"s", r.platform, r.user_id))).status

    try:
        assert await vote(ev("1", "a")) == "recorded"
        assert await vote(ev("1", "a"), w2) == "duplicate"
        assert await vote(ev("2", "b")) == "recorded"
        assert await vote(ev("3", "a", added=False)) == "ignored"
        assert await vote(ev("3", "a", added=False)) == "duplicate"
        assert await vote(ev("4", "b", added=False)) == "recorded"
        # Two replicas receive the same burst (Slack retried to another replica).
        burst = [ev(f"r{i}", "handshake", user=f"R{i}", ref=ts2) for i in range(20)]
        import asyncio

        results = await asyncio.gather(*(vote(r, w) for r in burst for w in (w1, w2)))
        assert sorted(results).count("recorded") == 20
        with Session(any_engine) as s:
            eff = effective_votes(s)
            assert [str(v.choice) for v in eff.values()] == ["tie"] * 20
            keys = [v.event_key for v in s.exec(select(Vote)).all()]
            assert len(keys) == len(set(keys)) == 23
        with session_scope(any_engine) as s:
            from bot.rating.rounds import close_round

            close_round(s)
        assert await vote(ev("5", "a")) == "closed"
    finally:
        await w1.aclose()
        await w2.aclose()


async def test_a_second_console_session_on_the_same_database(engine: Engine) -> None:
    """A second `slam bot console` (or a demo run after another) posts into the same channel:
    its message references must not collide with the first session's."""
    cfg = make_config(pairs_per_round=2)
    seed(engine, cfg)
    first = await rate_in_console(engine, cfg, ["a", "b"], io.StringIO(), salt=b"s")
    out = io.StringIO()
    second = await rate_in_console(engine, cfg, ["tie", "a"], out, salt=b"s2")
    assert first.recorded == 2 and second.recorded == 2, out.getvalue()
    with Session(engine) as s:
        refs = [m.message_ref for m in s.exec(select(PairMessage)).all()]
    assert len(refs) == len(set(refs)) >= 4


async def test_chat_probe_bound_comes_from_command_limits(engine: Engine) -> None:
    from core.config import CommandLimits

    cfg = make_config()
    seed(engine, cfg)
    d = Dispatcher(engine, cfg, salt=b"s", admins={"boss"})
    try:
        top = CommandLimits.model_fields["chat_probe_measure"].metadata
        le = next(m.le for m in top if hasattr(m, "le"))
        for text in (f"probe {le + 1}", "probe 0", "probe 2.5"):
            reply = await d.handle_command(Command("console", "boss", "c", text), NullPort())
            assert reply is not None and not reply.ok, text
            assert "MEASURE" in reply.text and "Traceback" not in reply.text
        reply = await d.handle_command(Command("console", "boss", "c", f"probe {le + 1}"),
                                       NullPort())  # fmt: skip
        assert reply is not None and f"between 1 and {le}" in reply.text
    finally:
        await d.aclose()


async def test_status_close_and_reveal_count_under_the_configured_policy(engine: Engine) -> None:
    """`/slam status`, `round close` and `reveal` count the votes the report counts: with
    `[evaluation] max_votes_per_rater = 1`, a rater's second vote is in neither."""
    from bot.platforms.console import ConsolePort
    from evaluation.human.votes import VotePolicy, pairwise_results
    from evaluation.results.service import Results
    from tests.support.slack_helpers import prepare_round

    base = make_config(pairs_per_round=3, admins=["boss"])
    cfg = base.model_copy(update={"evaluation": base.evaluation.model_copy(
        update={"max_votes_per_rater": 1})})  # fmt: skip
    seed(engine, cfg)
    (ch, ts1), (_, ts2), _ = prepare_round(engine, cfg, 3)
    d = Dispatcher(engine, cfg, salt=b"s")
    port = ConsolePort(io.StringIO())

    async def say(text: str) -> Reply:
        reply = await d.handle_command(Command("slack", "boss", ch, text), port)
        assert reply is not None
        return reply

    try:
        for key, user, ts, name in [("1", "U1", ts1, "a"), ("2", "U1", ts2, "b"),
                                    ("3", "U2", ts1, "handshake")]:  # fmt: skip
            out = await d.handle_reaction(Reaction("slack", user, ch, ts, name, True, key))
            assert out.status == "recorded"
        with Session(engine) as s:
            report = sum(n for *_, n in Results(engine, cfg).pairwise_counts)
            assert report == sum(n for *_, n in pairwise_results(s, VotePolicy(
                max_votes_per_rater=1))) == 2  # fmt: skip
            assert sum(n for *_, n in pairwise_results(s)) == 3  # the default policy
        fields = dict((await say("status")).fields)
        assert fields["Votes"] == f"{report} pairwise"
        assert fields["Raters"].startswith("2 ")
        assert fields["Choices"] == "A 1, B 0, tie 1, both_bad 0"
        closed = await say("round close")
        assert f"{report} vote(s) from 2 rater(s)" in closed.text
        with Session(engine) as s:
            ids = {m.message_ref: m.pair_id for m in s.exec(select(PairMessage)).all()}
        assert dict((await say(f"reveal {ids[ts1]}")).fields)["Votes"] == (
            "A 1, B 0, tie 1, both bad 0")
        assert dict((await say(f"reveal {ids[ts2]}")).fields)["Votes"] == (
            "A 0, B 0, tie 0, both bad 0")  # U1's second vote is over the cap
    finally:
        await d.aclose()


def test_a_response_that_still_names_a_model_after_masking_is_in_no_pair(engine: Engine) -> None:
    cfg = make_config(pairs_per_round=12)
    texts = {"mistral-7b-q4/Ada": "Hi Ada, I am Q w e n, your coach.",
             "mistral-7b-q4/Grace": "我是通义千问，由阿里云开发。Grace, go!"}  # fmt: skip
    seed(engine, cfg, texts=texts)
    with session_scope(engine) as s:
        _, pairs = start_round(s, cfg, random.Random(5))
        shown = [g.text for p in pairs for gid in (p.generation_a_id, p.generation_b_id)
                 if (g := s.get(Generation, gid)) is not None]  # fmt: skip
        assert pairs and not any("Q w e n" in t for t in shown)
        # A name the masker replaces is shown masked, not withheld.
        assert any("通义千问" in t for t in shown)
        assert any(p.masked for p in pairs)
