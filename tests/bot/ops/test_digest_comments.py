"""The daily digest quotes a few comments (issue 20): the newest ones on pairs no longer blind,
with the vote each came with, as one field of the digest the bot posts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy.engine import Engine

from bot.ops.digest import render
from evaluation.digest import build_digest
from tests.evaluation.human.test_comments import setup


def test_the_digest_quotes_the_newest_comments(engine: Engine, tmp_path: Path) -> None:
    data, _pairs, _who = setup(engine, tmp_path)
    d = build_digest(engine, data.cfg, date(2026, 1, 5), feature="summaries")
    assert d.comments == [
        "“A is warmer” (preferred tiny over api)",
        "“both ignore the goal” (both bad: api and tiny)",
        "“B invents a meeting that never happened” (preferred api over tiny)",
    ]
    fields = dict(render(d).fields)
    assert fields["What raters said"].splitlines()[0] == "“A is warmer” (preferred tiny over api)"
    before = build_digest(engine, data.cfg, date(2026, 1, 4), feature="summaries")
    assert before.comments == []  # as of the end of the day before: none written yet
    assert "What raters said" not in dict(render(before).fields)
