"""`/slam leaderboard` says which version of a model its ratings are based on (the current
one's votes only), with the older versions as history."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from bot.commands import format_leaderboard
from evaluation.results import Results
from tests.evaluation.results.test_versions import N, cfg, seed


def test_the_chat_leaderboard_says_which_version_it_is_based_on(engine: Engine) -> None:
    seed(engine)
    reply = format_leaderboard(Results(engine, cfg()))
    assert reply.text.endswith("cand: based on version bbbb from 2026-12-03 (40 votes); "
                               "history: aaaa from 2026-12-01 (40 votes)")  # fmt: skip
    fields = dict(reply.fields)
    assert f"{N} votes" in fields["2. cand"]  # the current version's, not both versions' 80
