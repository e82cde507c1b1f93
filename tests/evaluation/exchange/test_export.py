"""`slam export KIND` (issue 20): every kind in every format, read back with pandas and
pyarrow (not by the code that wrote them), counts pinned against the seed's own plan, the
vote-rule flags, pseudonyms and provenance."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.errors import SlamError
from evaluation.exchange import (
    ExportRequest,
    Pseudonyms,
    export_data,
    pseudonym_key,
    write_export,
)
from evaluation.exchange.provenance import data_version
from storage.db import session_scope
from storage.models import JudgeScore, Rater, RatingPair
from tests.evaluation.results.test_features import PLAN, SUPPORT, Seeded, make_cfg, seed
from tests.support.eval_seed import rater, seed_pair, vote

NAMES = Pseudonyms(b"a-test-deployment-key")
SEEDED_VOTES = sum(n for _, _, v in PLAN.values() for n in v.values())  # pairwise adds
KIND_ROWS = {"generations": 2 * len(SUPPORT) + 2 * 2, "similarity": 2, "probes": 6,
             "judgements": 1}  # fmt: skip


@pytest.fixture
def seeded(any_engine: Engine, tmp_path: Path) -> Seeded:
    engine = any_engine
    data = seed(engine, make_cfg(tmp_path))
    with session_scope(engine) as s:
        s.add(JudgeScore(judge="api", method="scorer", generation_id=data.gens[("small", "b1")],
                         score=7.0, raw='{"score": 7}', cache_key="k1"))  # fmt: skip
    return data


def read(path: Path, fmt: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A written export read back by pandas / pyarrow, and its provenance as the file says."""
    if fmt == "csv":
        frame = pd.read_csv(path)
        prov = {"data_version": str(frame["data_version"].iloc[0])} if len(frame) else {}
        return frame.drop(columns=["data_version", "config_fingerprint"]), prov
    if fmt == "jsonl":
        lines = path.read_text().splitlines()
        first = json.loads(lines[0])["_provenance"]
        frame = pd.read_json(path, lines=True).iloc[1:].reset_index(drop=True)
        return frame.drop(columns=["_provenance"]), first
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"slam.provenance"])
    return table.to_pandas(), meta


def export(data: Seeded, tmp: Path, kind: str, fmt: str, **kw: object) -> Path:
    exp = export_data(data.engine, data.cfg, ExportRequest(kind, fmt, **kw), NAMES)  # type: ignore[arg-type]
    out = tmp / f"{kind}.{fmt}"
    write_export(exp, fmt, out)
    return out


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("kind", ["generations", "similarity", "probes", "judgements"])
def test_every_record_kind_reads_back_in_every_format(
    seeded: Seeded, tmp_path: Path, kind: str, fmt: str
) -> None:
    frame, prov = read(export(seeded, tmp_path, kind, fmt), fmt)
    assert len(frame) == KIND_ROWS[kind]
    assert prov["data_version"] == data_version(seeded.engine)
    if kind == "generations":
        assert set(frame["model"]) == {"api", "small", "tiny"}
        assert set(frame["feature"]) == {"support", "summaries"}
    if kind == "similarity":
        assert sorted(frame["value"]) == [0.2, 0.5]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_votes_carry_the_rule_flags_and_pseudonyms(
    seeded: Seeded, tmp_path: Path, fmt: str
) -> None:
    frame, _ = read(export(seeded, tmp_path, "votes", fmt), fmt)
    assert len(frame) == SEEDED_VOTES + 2  # every event, the two score votes included
    counted = frame[frame["counted"].astype(bool)]
    assert len(counted) == SEEDED_VOTES + 2
    assert (frame["reason"].fillna("") == "").all()
    with session_scope(seeded.engine) as s:
        hashes = {r.user_hash for r in s.exec(select(Rater)).all()}
    assert not hashes & set(frame["rater"])  # never the stored hash, let alone a chat id
    assert frame["rater"].str.fullmatch(r"r-[0-9a-f]{12}").all()
    # The counted pairwise votes per (model A, model B, choice) are the plan's.
    pw = counted[counted["kind"] == "pairwise"]
    got = pw.groupby(["model_a", "model_b", "choice"]).size().to_dict()
    want: dict[tuple[str, str, str], int] = {}
    for a, b, votes in PLAN.values():
        for c, n in votes.items():
            want[(a, b, c)] = want.get((a, b, c), 0) + n
    assert got == want


def test_the_reasons_a_vote_does_not_count(seeded: Seeded, tmp_path: Path) -> None:
    eng, gens = seeded.engine, seeded.gens
    someone = rater(eng, "late-rater")
    pid = seed_pair(eng, gens[("api", "s1")], gens[("tiny", "s1")], experiment_id=2)
    vote(eng, pid, someone, "A")
    vote(eng, pid, someone, "B")  # supersedes the A
    other = seed_pair(eng, gens[("api", "s2")], gens[("tiny", "s2")], experiment_id=2)
    vote(eng, other, someone, "tie")
    vote(eng, other, someone, "tie", action="remove")  # retracts the tie
    gold = seed_pair(eng, gens[("api", "s1")], gens[("tiny", "s1")], experiment_id=2)
    with session_scope(eng) as s:
        row = s.get(RatingPair, gold)
        assert row is not None
        row.kind, row.gold_answer = "gold", "A"
        s.add(row)
    vote(eng, gold, someone, "B")
    frame, _ = read(export(seeded, tmp_path, "votes", "parquet", feature="summaries"), "parquet")
    mine = frame[frame["pair_id"].isin([pid, other, gold])].sort_values("vote_id")
    assert list(mine["reason"]) == [
        "superseded by a later vote", "",
        "retracted", "a removal event (retracts, never counts itself)",
        "gold pair: checks the rater, never counted (rule 8)",
    ]
    assert list(mine["counted"]) == [False, True, False, False, False]
    assert list(mine["gold_passed"].fillna("-")) == ["-", "-", "-", "-", False]
    # The feature filter: the summaries' plan (30 pairwise + 2 score) and these 5 events.
    assert len(frame) == 30 + 2 + 5
    assert set(frame["feature"]) == {"summaries"}


def test_the_per_rater_cap_is_a_reason(engine: Engine, tmp_path: Path) -> None:
    data = seed(engine, make_cfg(tmp_path, max_votes_per_rater=3))
    frame, _ = read(export(data, tmp_path, "votes", "jsonl"), "jsonl")
    capped = frame[frame["reason"] == "over the per-rater cap (max_votes_per_rater)"]
    per_rater = frame.groupby(["rater", "kind"]).size()  # the cap is per kind of vote
    assert len(capped) == int((per_rater - 3).clip(lower=0).sum()) > 0
    assert (frame[frame["counted"].astype(bool)].groupby(["rater", "kind"]).size() <= 3).all()


def test_pseudonyms_are_stable_and_keyed_per_deployment(seeded: Seeded, tmp_path: Path) -> None:
    a = export_data(seeded.engine, seeded.cfg, ExportRequest("votes"), NAMES)
    b = export_data(seeded.engine, seeded.cfg, ExportRequest("votes"), NAMES)
    c = export_data(seeded.engine, seeded.cfg, ExportRequest("votes"), Pseudonyms(b"another"))
    assert [r["rater"] for r in a.rows] == [r["rater"] for r in b.rows]
    assert not {r["rater"] for r in a.rows} & {r["rater"] for r in c.rows}
    assert len({r["rater"] for r in a.rows}) == 40


def test_the_key_is_the_rater_salt(tmp_path: Path) -> None:
    assert pseudonym_key({"SLAM_RATER_SALT": "s3cret"}) == b"s3cret"
    made = pseudonym_key({}, tmp_path / "salt")
    assert pseudonym_key({}, tmp_path / "salt") == made and len(made) == 64


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_ratings_and_the_decision(seeded: Seeded, tmp_path: Path, fmt: str) -> None:
    from evaluation.results import Results

    frame, prov = read(export(seeded, tmp_path, "ratings", fmt, feature="summaries"), fmt)
    res = Results(seeded.engine, seeded.cfg, feature="summaries", cache=None)
    assert res.ratings is not None
    want = {m: r.rating for m, r in res.ratings.ratings.items()}
    got = dict(zip(frame["model"], frame["rating"], strict=True))
    assert got == pytest.approx(want)
    assert set(frame["decision"]) == {res.decision.text()}
    if fmt != "csv":
        assert prov["feature"] == "summaries"


def test_since_and_until(seeded: Seeded, tmp_path: Path) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    empty = export_data(seeded.engine, seeded.cfg, ExportRequest("votes", since=later), NAMES)
    assert empty.rows == []
    every = export_data(seeded.engine, seeded.cfg, ExportRequest("votes", until=later), NAMES)
    assert len(every.rows) == SEEDED_VOTES + 2
    frame, _ = read(export(seeded, tmp_path, "votes", "csv", since=later), "csv")
    assert len(frame) == 0 and "counted" in frame.columns  # the columns, even with no rows


def test_the_provenance_moves_with_the_data(seeded: Seeded, tmp_path: Path) -> None:
    _, before = read(export(seeded, tmp_path, "generations", "jsonl"), "jsonl")
    vote(seeded.engine, 1, 1, "A")
    _, after = read(export(seeded, tmp_path, "generations", "jsonl"), "jsonl")
    assert before["data_version"] != after["data_version"]
    assert before["config_fingerprint"] == after["config_fingerprint"]
    assert after["rows"] == KIND_ROWS["generations"] and after["kind"] == "generations"


def test_bad_requests_are_clear(seeded: Seeded, tmp_path: Path) -> None:
    cases = {
        ExportRequest("ballots"): "unknown export kind 'ballots'",
        ExportRequest("votes", "xlsx"): "unknown format 'xlsx'",
        ExportRequest("probes", "arena"): "--format arena is for votes only",
        ExportRequest("ratings", since=datetime.now(UTC)): "use --until",
        ExportRequest("votes", feature="nope"): "unknown feature 'nope'",
    }
    for req, message in cases.items():
        with pytest.raises(SlamError, match=message):
            export_data(seeded.engine, seeded.cfg, req, NAMES)
    exp = export_data(seeded.engine, seeded.cfg, ExportRequest("probes", "parquet"), NAMES)
    with pytest.raises(SlamError, match="Parquet is binary"):
        write_export(exp, "parquet", None, stdout_is_tty=True)


def test_the_command(
    seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from evaluation.cli import exchange

    monkeypatch.setattr(exchange, "_open", lambda _c: (seeded.cfg, seeded.engine))
    monkeypatch.setenv("SLAM_RATER_SALT", "cli-salt")
    out = tmp_path / "v.parquet"
    exchange.export(kind="votes", fmt="parquet", feature="support", since="2000-01-01",
                    until=None, out=out, config=None)  # fmt: skip
    assert len(pd.read_parquet(out)) == sum(
        n for k, (_, _, v) in PLAN.items() if k[0] in "blh" for n in v.values())
    assert "row(s) →" in capsys.readouterr().err
    with pytest.raises(SlamError, match="not a date"):
        exchange.export(kind="votes", fmt="csv", feature=None, since="yesterday", until=None,
                        out=None, config=None)  # fmt: skip
