"""Chatbot Arena's battle format both ways (issue 20): export, import into an empty database,
export again gives identical battles; ratings of imported battles against choix; FastChat's
`compute_mle_elo` (ported here from its published code) runs on our export; every kind of
bad file is refused with its line and stores nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.config import SlamConfig
from core.errors import SlamError
from core.features import feature
from evaluation.exchange import ExportRequest, Pseudonyms, export_data, import_battles
from evaluation.exchange.export import sidecar, write_export
from evaluation.human.ratings import RIDGE, SCALE
from evaluation.results import Results
from storage.db import make_engine
from storage.migrate import upgrade
from storage.models import Generation, RatingPair, Vote
from tests.evaluation.results.test_features import PLAN, make_cfg, seed

NAMES = Pseudonyms(b"arena-test-key")


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


def battles_of(engine: Engine, cfg: SlamConfig, out: Path) -> list[dict[str, object]]:
    exp = export_data(engine, cfg, ExportRequest("votes", "arena"), NAMES)
    write_export(exp, "arena", out)
    return list(json.loads(out.read_text()))


def counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as s:
        return tuple(  # type: ignore[return-value]
            int(s.connection().execute(select(func.count()).select_from(t.__table__)).scalar()  # type: ignore[union-attr]
                or 0)
            for t in (Vote, RatingPair, Generation)
        )


def test_round_trip_gives_identical_battles(
    any_engine: Engine, empty: Engine, tmp_path: Path
) -> None:
    cfg = make_cfg(tmp_path)
    seed(any_engine, cfg)
    first = battles_of(any_engine, cfg, tmp_path / "one.json")
    assert len(first) == sum(n for _, _, v in PLAN.values() for n in v.values())
    b = first[0]
    assert set(b) == {"question_id", "model_a", "model_b", "winner", "judge", "conversation_a",
                      "conversation_b", "turn", "anony", "tstamp"}  # fmt: skip
    assert b["conversation_a"][0]["role"] == "user"  # type: ignore[index]
    assert {x["winner"] for x in first} == {"model_a", "model_b", "tie"}
    assert json.loads(sidecar(tmp_path / "one.json").read_text())["rows"] == len(first)
    # Into an empty database, in one feature; then out again.
    result = import_battles(empty, cfg, feature(cfg, "support"), tmp_path / "one.json")
    assert result.stored == len(first) and result.duplicates == 0
    second = battles_of(empty, cfg, tmp_path / "two.json")
    assert second == first
    # Again: nothing new.
    before = counts(empty)
    again = import_battles(empty, cfg, feature(cfg, "support"), tmp_path / "one.json")
    assert again.stored == 0 and again.duplicates == len(first)
    assert counts(empty) == before
    # The same answer of the same model is one generation: 8 inputs × 2 sides at most.
    assert before[2] == 16


def synthetic_battles(n: int, seed_: int) -> list[dict[str, Any]]:
    rng = random.Random(seed_)
    strength = {"api": 1.0, "small": 0.4, "tiny": -0.3, "mini": 0.0}
    models = sorted(strength)
    out = []
    for i in range(n):
        a, b = rng.sample(models, 2)
        p = 1 / (1 + math.exp(strength[b] - strength[a]))
        q = f"q{i % 7}"
        out.append({
            "question_id": q, "model_a": a, "model_b": b,
            "winner": "model_a" if rng.random() < p else "model_b",
            "judge": f"arena_user_{i % 23}", "anony": True, "tstamp": 1.7e9 + i,
            "conversation_a": [{"role": "user", "content": f"ask {q}"},
                               {"role": "assistant", "content": f"{a} on {q}"}],
            "conversation_b": [{"role": "user", "content": f"ask {q}"},
                               {"role": "assistant", "content": f"{b} on {q}"}],
            "language": "English", "turn": 1,
        })  # fmt: skip
    return out


def test_ratings_of_imported_battles_match_choix(engine: Engine, tmp_path: Path) -> None:
    """Independent fit: choix's MAP estimate under the same Gaussian prior (alpha = RIDGE/2,
    as in tests/evaluation/human/test_ratings.py), on decisive battles, to 0.1 Elo."""
    import choix

    cfg = make_cfg(tmp_path)
    battles = synthetic_battles(600, seed_=3)
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(b) + "\n" for b in battles))
    assert import_battles(engine, cfg, feature(cfg, "support"), path).stored == 600
    ours = Results(engine, cfg, cache=None).ratings
    assert ours is not None
    models = sorted({str(b["model_a"]) for b in battles} | {str(b["model_b"]) for b in battles})
    idx = {m: i for i, m in enumerate(models)}
    data = [(idx[str(b["model_a"])], idx[str(b["model_b"])]) if b["winner"] == "model_a"
            else (idx[str(b["model_b"])], idx[str(b["model_a"])]) for b in battles]  # fmt: skip
    theirs = choix.opt_pairwise(len(models), data, alpha=RIDGE / 2, tol=1e-12)
    ref = idx["api"]
    for m, i in idx.items():
        want = SCALE * (theirs[i] - theirs[ref]) + 1000.0
        assert ours.ratings[m].rating == pytest.approx(want, abs=0.1), m


def compute_mle_elo(df: pd.DataFrame, scale: float = 400, base: float = 10,
                    init: float = 1000) -> pd.Series:
    """FastChat's `compute_mle_elo` (fastchat/serve/monitor/elo_analysis.py), written from its
    published algorithm: a logistic regression without intercept on the win table, each
    battle counted twice and a tie once each way."""
    from sklearn.linear_model import LogisticRegression

    ptbl_a_win = pd.pivot_table(df[df["winner"] == "model_a"], index="model_a",
                                columns="model_b", aggfunc="size", fill_value=0)
    ties = df[df["winner"].isin(["tie", "tie (bothbad)"])]
    if len(ties) == 0:
        ptbl_tie = pd.DataFrame(0, index=ptbl_a_win.index, columns=ptbl_a_win.columns)
    else:
        ptbl_tie = pd.pivot_table(ties, index="model_a", columns="model_b", aggfunc="size",
                                  fill_value=0)
        ptbl_tie = ptbl_tie + ptbl_tie.T
    ptbl_b_win = pd.pivot_table(df[df["winner"] == "model_b"], index="model_a",
                                columns="model_b", aggfunc="size", fill_value=0)
    ptbl_win = ptbl_a_win * 2 + ptbl_b_win.T * 2 + ptbl_tie
    models = pd.Series(np.arange(len(ptbl_win.index)), index=ptbl_win.index)
    p = len(models)
    x = np.zeros([p * (p - 1) * 2, p])
    y = np.zeros(p * (p - 1) * 2)
    row = 0
    weights = []
    for m_a in ptbl_win.index:
        for m_b in ptbl_win.columns:
            if m_a == m_b:
                continue
            if math.isnan(ptbl_win.loc[m_a, m_b]) or math.isnan(ptbl_win.loc[m_b, m_a]):
                continue
            x[row, models[m_a]] = +math.log(base)
            x[row, models[m_b]] = -math.log(base)
            y[row] = 1.0
            weights.append(ptbl_win.loc[m_a, m_b])
            x[row + 1, models[m_a]] = math.log(base)
            x[row + 1, models[m_b]] = -math.log(base)
            y[row + 1] = 0.0
            weights.append(ptbl_win.loc[m_b, m_a])
            row += 2
    # FastChat passes penalty=None; scikit-learn ≥ 1.8 spells "no penalty" C=inf.
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-6)
    lr.fit(x[:row], y[:row], sample_weight=weights)
    return pd.Series(scale * lr.coef_[0] + init, index=models.index).sort_values(ascending=False)


def test_fastchat_compute_mle_elo_runs_on_our_export(engine: Engine, tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(b) + "\n" for b in synthetic_battles(400, seed_=8)))
    import_battles(engine, cfg, feature(cfg, "support"), path)
    out = tmp_path / "battles.json"
    battles_of(engine, cfg, out)
    df = pd.read_json(out)  # as FastChat reads clean_battle files
    df = df[df["anony"]]
    elo = compute_mle_elo(df)
    ours = Results(engine, cfg, cache=None).ratings
    assert ours is not None
    assert list(elo.index) == [r.model for r in ours.ranked()]
    # The MLE and our MAP (a weak prior) agree on every gap to the reference within 2 Elo.
    for m in elo.index:
        gap = elo[m] - elo["api"]
        assert gap == pytest.approx(ours.ratings[m].rating - 1000.0, abs=2.0), m


# -- bad files -----------------------------------------------------------------------------
GOOD = synthetic_battles(3, seed_=1)


def _jsonl(rows: Sequence[object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


BAD = {
    "wrong winner": (_jsonl([GOOD[0], {**GOOD[1], "winner": "A"}]),
                     "line 2: winner must be one of"),
    "unknown field": (_jsonl([{**GOOD[0], "votes": 3}]), "line 1: unknown field(s) 'votes'"),
    "truncated line": (_jsonl(GOOD[:2]) + json.dumps(GOOD[2])[:40] + "\n",
                       "line 3: not valid JSON"),
    "truncated array": ("[\n" + ",\n".join(json.dumps(b) for b in GOOD)[:-30],
                        "line 4: not valid JSON"),
    "same model": (_jsonl([{**GOOD[0], "model_b": GOOD[0]["model_a"]}]), "are the same model"),
    "missing field": (_jsonl([{k: v for k, v in GOOD[0].items() if k != "conversation_b"}]),
                      "missing field(s) conversation_b"),
    "different questions": (_jsonl([{**GOOD[0], "conversation_b": [
        {"role": "user", "content": "else"}, {"role": "assistant", "content": "x"}]}]),
        "ask different questions"),
    "not an object": ("[1, 2]\n", "line 1: expected a JSON object"),
    "empty": ("", "it is empty"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_file_is_refused_with_its_line_and_nothing_stored(
    any_engine: Engine, tmp_path: Path, case: str
) -> None:
    cfg = make_cfg(tmp_path)
    text, message = BAD[case]
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SlamError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        import_battles(any_engine, cfg, feature(cfg, "support"), path)
    if case not in ("empty",):
        assert "nothing was stored" in str(err.value)
    assert counts(any_engine) == (0, 0, 0)


def test_a_100_mb_file_is_refused_before_it_is_read(engine: Engine, tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as f:  # sparse: 100 MB on paper, written in no time
        f.truncate(100 * 1024 * 1024)
    with pytest.raises(SlamError, match=r"is 105 MB; at most 67 MB per import"):
        import_battles(engine, cfg, feature(cfg, "support"), path)
    assert counts(engine) == (0, 0, 0)


def test_a_pipe_is_refused_instead_of_waiting_for_a_writer(engine: Engine, tmp_path: Path) -> None:
    import os

    cfg = make_cfg(tmp_path)
    path = tmp_path / "battles.jsonl"
    os.mkfifo(path)  # reading it would wait for a writer forever
    with pytest.raises(SlamError, match="is a pipe, socket or device"):
        import_battles(engine, cfg, feature(cfg, "support"), path)
    assert counts(engine) == (0, 0, 0)


def test_a_json_array_with_the_arena_extras_imports(engine: Engine, tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    rows = [{**b, "category_tag": {}, "dedup_tag": {"sampled": True}} for b in GOOD]
    del rows[0]["judge"], rows[0]["question_id"], rows[0]["tstamp"]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(rows, indent=2))
    dry = import_battles(engine, cfg, feature(cfg, "support"), path, dry_run=True)
    assert dry.stored == 3 and counts(engine) == (0, 0, 0)
    assert import_battles(engine, cfg, feature(cfg, "support"), path).stored == 3
    assert counts(engine)[0] == 3
    assert import_battles(engine, cfg, feature(cfg, "support"), path).duplicates == 3


def test_the_import_command(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from evaluation.cli import exchange

    cfg = make_cfg(tmp_path)
    monkeypatch.setattr(exchange, "_open", lambda _c: (cfg, engine))
    path = tmp_path / "b.jsonl"
    path.write_text(_jsonl(list(GOOD)))
    exchange.import_votes(file=path, feature="support", fmt="arena", dry_run=False, config=None)
    assert "3 battle(s) read (arena format); stored 3 vote(s)" in capsys.readouterr().out
    with pytest.raises(SlamError, match="--format arena"):
        exchange.import_votes(file=path, feature="support", fmt="csv", dry_run=False,
                              config=None)  # fmt: skip
    with pytest.raises(SlamError, match="unknown feature"):
        exchange.import_votes(file=path, feature="nope", fmt="arena", dry_run=False,
                              config=None)  # fmt: skip
