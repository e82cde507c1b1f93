"""Property-based tests of the chat edge: `/slam` argument parsing and reaction mapping.

Whatever a user types after `/slam`, the dispatcher answers with a Reply (never raises,
never echoes the input back at length); whatever emoji a platform sends, the reaction map
resolves the configured votes in every spelling and nothing else."""

from __future__ import annotations

import asyncio
import string
from typing import Any, cast

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from bot.commands import COMMANDS, run_command
from bot.dispatcher import Dispatcher
from bot.events import Command, Posted, Reply
from bot.reactions import KEYCAPS, SCORE_NAMES, UNICODE, ReactionMap, canonical, to_unicode
from core.config import ChatConfig, ReactionConfig
from tests.support.bot_seed import make_config, seed

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
# Everything a user may type: words, quotes, markup, mentions, control and wide characters.
typed = st.text(
    st.characters(codec="utf-8") | st.sampled_from(list("\"'`*<>!@#|")),
    max_size=300,
)
# Commands that answer from the database without doing slow work (no report, no probe).
QUICK = ["help", "models", "status", "rate", "reveal", "round", "probe", "frobnicate", ""]


class NullPort:
    platform = "slack"
    unicode_emoji = False

    async def post(self, reply: Reply, *, channel: str | None = None,
                   dm_user: str | None = None) -> Posted:  # fmt: skip
        return Posted(channel or dm_user or "C", "1.0")

    async def add_reactions(self, posted: Posted, names: list[str]) -> None:
        return None


@SETTINGS
@given(typed)
def test_command_parsing_never_fails(text: str) -> None:
    cmd = Command("slack", "U1", "C1", text)
    words = cmd.words
    assert isinstance(words, list) and all(isinstance(w, str) for w in words)
    assert cmd.name == (words[0].lower() if words else "help")
    assert cmd.args == words[1:]


@SETTINGS
@given(typed)
def test_unknown_subcommands_echo_only_a_short_plain_prefix(text: str) -> None:
    cmd = Command("slack", "U1", "C1", text)
    assume(cmd.name not in COMMANDS)
    reply = asyncio.run(run_command(None, cmd, NullPort()))  # type: ignore[arg-type]
    assert not reply.ok and reply.text.startswith("Unknown subcommand `")
    shown = reply.text.split("`")[1]
    assert len(shown) <= 24 and set(shown) <= set(string.ascii_letters + string.digits + "_.-?")
    usage = reply.text.split("Usage:\n", 1)[1]
    assert len(reply.text) <= len(usage) + 60


@SETTINGS
@given(st.sampled_from(QUICK), typed, st.booleans())
@example("reveal", "¹", True)  # str.isdigit says yes, int() says no
@example("reveal", "#" + "9" * 30, True)  # beyond the database's integers
def test_any_slam_text_gets_a_reply(
    engine: Engine, name: str, rest: str, admin: bool
) -> None:
    cfg = make_config(admins=["UADMIN"], pairs_per_round=2)
    if not getattr(engine, "_seeded", False):
        seed(engine, cfg)
        engine._seeded = True  # type: ignore[attr-defined]
    user = "UADMIN" if admin and name not in ("round", "probe") else "U1"

    async def go() -> Reply | None:
        d = Dispatcher(engine, cfg, salt=b"prop")
        try:
            cmd = Command("slack", user, "C1", f"{name} {rest}")
            return await d.handle_command(cmd, cast(Any, NullPort()))
        finally:
            await d.aclose()

    reply = asyncio.run(go())
    assert isinstance(reply, Reply)
    assert "Traceback" not in reply.plain() and "Something went wrong" not in reply.plain()
    assert len(reply.text) < 4000


# --- reaction mapping ------------------------------------------------------------------------
slack_names = st.sampled_from([n for n in UNICODE if n not in SCORE_NAMES]) | st.from_regex(
    r"[a-z][a-z0-9_+-]{0,15}", fullmatch=True
)


@SETTINGS
@given(st.lists(slack_names, min_size=4, max_size=4, unique_by=canonical), st.booleans())
def test_configured_reactions_map_to_their_vote_in_every_spelling(
    names: list[str], score_mode: bool
) -> None:
    a, b, tie, bad = names
    rmap = ReactionMap.from_config(
        ChatConfig(reactions=ReactionConfig(a=a, b=b, tie=tie, both_bad=bad), score_mode=score_mode)
    )
    for name, choice in zip(names, ("A", "B", "tie", "both_bad"), strict=True):
        spellings = {name, f":{name}:", f":{name}::skin-tone-3:", to_unicode(name),
                     to_unicode(name).replace("\ufe0f", ""), f" {name} "}  # fmt: skip
        for s in spellings:
            assert rmap.pairwise(s) == choice, (s, choice)
    assert sorted(rmap.choices.values()) == sorted(["A", "B", "tie", "both_bad"])
    assert len(rmap.seeds) == 4
    legend = rmap.legend(unicode=True)
    assert all(to_unicode(n) in legend for n in names)


@SETTINGS
@given(st.text(max_size=40))
def test_other_reactions_are_not_votes(reaction: str) -> None:
    rmap = ReactionMap.from_config(ChatConfig())
    choice = rmap.pairwise(reaction)
    assert choice is None or canonical(reaction) in rmap.choices
    assert ReactionMap.from_config(ChatConfig()).score(reaction) is None  # score mode off


@SETTINGS
@given(st.text(max_size=40))
def test_canonical_is_idempotent(reaction: str) -> None:
    once = canonical(reaction)
    assert canonical(once) == once


@given(st.integers(0, 10))
def test_keycaps_score_their_number(n: int) -> None:
    rmap = ReactionMap.from_config(ChatConfig(score_mode=True))
    name = "keycap_ten" if n == 10 else KEYCAPS[n]
    assert rmap.score(name) == n and rmap.score(to_unicode(name)) == n
    assert rmap.pairwise(name) is None
