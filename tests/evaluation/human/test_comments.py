"""What raters said (issue 20): the standing comment per rater and pair (newest wins), read
with the rater's vote, grouped per model newest first with a count, blind pairs left out;
the report's section, the digest's quotes and `slam export comments` read the same rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from evaluation.exchange import ExportRequest, Pseudonyms, export_data, write_export
from evaluation.human import comments_by_model, load_comments
from evaluation.results import Results, comment_quotes
from storage.db import session_scope
from storage.models import RatingRound, VoteComment
from tests.evaluation.results.test_features import Seeded, make_cfg, seed
from tests.support.eval_seed import rater, seed_pair, vote

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def say(engine: Engine, pair: int, who: int, words: str, n: int) -> None:
    with session_scope(engine) as s:
        s.add(VoteComment(pair_id=pair, rater_id=who, platform="console", text=words,
                          event_key=f"c{n}", created_at=T0.replace(minute=n)))  # fmt: skip


def setup(engine: Engine, tmp: Path) -> tuple[Seeded, dict[str, int], dict[str, int]]:
    data = seed(engine, make_cfg(tmp))
    g = data.gens
    p1 = seed_pair(engine, g[("api", "s1")], g[("tiny", "s1")], experiment_id=2)
    p2 = seed_pair(engine, g[("tiny", "s2")], g[("api", "s2")], experiment_id=2)
    who = {n: rater(engine, n) for n in ("ann", "bob")}
    vote(engine, p1, who["ann"], "A")
    vote(engine, p1, who["bob"], "both_bad")
    vote(engine, p2, who["ann"], "A")  # ann prefers tiny on p2
    say(engine, p1, who["ann"], "B invents a meeting", 1)
    say(engine, p1, who["ann"], "B invents a meeting that never happened", 2)  # an edit
    say(engine, p1, who["bob"], "both ignore the goal", 3)
    say(engine, p2, who["ann"], "A is warmer", 4)
    with engine.begin() as c:  # the rounds are over: the pairs are no longer blind
        c.execute(text("UPDATE rating_round SET status = 'closed'"))
    return data, {"p1": p1, "p2": p2}, who


def test_standing_comments_with_their_votes(engine: Engine, tmp_path: Path) -> None:
    _data, _pairs, _who = setup(engine, tmp_path)
    with Session(engine) as s:
        every = load_comments(s, latest_only=False)
        standing = load_comments(s)
    assert len(every) == 4 and [c.text for c in standing] == [
        "A is warmer", "both ignore the goal", "B invents a meeting that never happened"]
    assert [c.choice for c in standing] == ["A", "both_bad", "A"]
    assert standing[2].edits == 2 and not any(c.blind for c in standing)
    by = comments_by_model(standing)
    assert {m: mc.count for m, mc in by.items()} == {"api": 3, "tiny": 3}
    assert [(c.text, v) for c, v in by["tiny"].comments] == [
        ("A is warmer", "preferred it"), ("both ignore the goal", "both bad"),
        ("B invents a meeting that never happened", "preferred the other")]
    quotes = comment_quotes(by, n=2)
    assert quotes == ["“A is warmer” (preferred tiny over api)",
                      "“both ignore the goal” (both bad: api and tiny)"]


def test_blind_pairs_stay_out_until_the_round_closes(engine: Engine, tmp_path: Path) -> None:
    data, pairs, _who = setup(engine, tmp_path)
    with session_scope(engine) as s:
        rnd = RatingRound(experiment_id=2, status="open", run_date=date(2026, 1, 5))
        s.add(rnd)
        s.flush()
        rid = rnd.id
    with engine.begin() as c:
        c.execute(text("UPDATE rating_pair SET round_id = :r WHERE id = :p"),
                  {"r": rid, "p": pairs["p2"]})  # fmt: skip
    res = Results(engine, data.cfg, feature="summaries", cache=None)
    assert [c.text for c, _ in res.comments["tiny"].comments] == [
        "both ignore the goal", "B invents a meeting that never happened"]
    with engine.begin() as c:
        c.execute(text("UPDATE rating_pair SET revealed = true WHERE id = :p"), {"p": pairs["p2"]})
    res = Results(engine, data.cfg, feature="summaries", cache=None)
    assert res.comments["tiny"].count == 3


def test_the_report_and_the_export(engine: Engine, tmp_path: Path) -> None:
    from evaluation.report import build_report

    data, _pairs, _who = setup(engine, tmp_path)
    result = build_report(engine, data.cfg, tmp_path / "r", only=[], feature="summaries")
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## What raters said" in md
    assert "What raters said about tiny (3 comment(s), newest first):" in md
    assert "- “A is warmer” (preferred it; 2026-01-05)" in md
    assert "What raters said" in (tmp_path / "r" / "report.html").read_text()
    assert result is not None
    for fmt in ("csv", "jsonl", "parquet"):
        exp = export_data(engine, data.cfg, ExportRequest("comments", fmt), Pseudonyms(b"k"))
        write_export(exp, fmt, tmp_path / f"c.{fmt}")
        frame = (pd.read_csv(tmp_path / "c.csv") if fmt == "csv" else
                 pd.read_json(tmp_path / "c.jsonl", lines=True).iloc[1:] if fmt == "jsonl"
                 else pd.read_parquet(tmp_path / "c.parquet"))  # fmt: skip
        assert len(frame) == 4 and frame["latest"].astype(bool).sum() == 3, fmt
        assert list(frame["vote"]) == ["A", "A", "both_bad", "A"]
        assert frame["rater"].str.startswith("r-").all() and frame["rater"].nunique() == 2
