"""The dashboard's notes say what `/slam leaderboard` and the report say about model versions
(which version the numbers are based on, history) — the same lines, from the same results."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from bot.web.dashboard import Dashboard
from evaluation.results import Results
from tests.evaluation.results.test_versions import cfg, seed


def test_dashboard_notes_name_the_version_the_numbers_are_based_on(engine: Engine) -> None:
    config = cfg()
    seed(engine)
    lines = Results(engine, config).version_lines()
    assert lines and "based on version bbbb" in lines[0]  # the current one, with history
    board = Dashboard(engine, config)
    try:
        notes = board._compute("v1")["notes"]
    finally:
        if board._tmp is not None:
            board._tmp.cleanup()
    for line in lines:
        assert line in notes
    assert "history: aaaa" in notes


def test_one_version_adds_no_version_note(engine: Engine) -> None:
    config = cfg()
    seed(engine, second_version=False)
    board = Dashboard(engine, config)
    try:
        notes = board._compute("v1")["notes"]
    finally:
        if board._tmp is not None:
            board._tmp.cleanup()
    assert "based on version" not in notes
