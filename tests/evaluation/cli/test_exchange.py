"""`slam export` and `slam import votes` through the real command line (slam.cli.main): exit
codes, files, stdout, and user errors as one line without a traceback."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from slam.cli import main
from storage.db import make_engine
from storage.migrate import upgrade
from tests.evaluation.exchange.test_arena import synthetic_battles

CONFIG = """
[database]
url = "{url}"

[[models]]
name = "api"
backend = "openai"
model = "gpt-4"
hardware = "api"
reference = true

[[models]]
name = "small"
backend = "ollama"
model = "small:1b"
"""


@pytest.fixture
def cfg_path(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SLAM_RATER_SALT", "cli-test-salt")
    upgrade(make_engine(sqlite_url))
    p = tmp_path / "slam.toml"
    p.write_text(CONFIG.format(url=sqlite_url), encoding="utf-8")
    return p


def test_import_then_export(
    cfg_path: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    battles = tmp_path / "in.jsonl"
    battles.write_text("".join(json.dumps(b) + "\n" for b in synthetic_battles(20, seed_=2)))
    c = ["-c", str(cfg_path)]
    assert main(["import", "votes", str(battles), "--feature", "daily-pep-talk", *c]) == 0
    assert b"stored 20 vote(s)" in capsysbinary.readouterr().out
    out = tmp_path / "b.json"
    assert main(["export", "votes", "--format", "arena", "--out", str(out), *c]) == 0
    assert len(pd.read_json(out)) == 20
    assert b"20 votes row(s)" in capsysbinary.readouterr().err
    assert main(["export", "generations", "--format", "csv", *c]) == 0
    frame = pd.read_csv(io.BytesIO(capsysbinary.readouterr().out))
    assert set(frame["source"]) == {"imported"} and frame["data_version"].nunique() == 1
    assert main(["export", "votes", "--format", "parquet", *c]) == 0  # piped: allowed
    assert len(pd.read_parquet(io.BytesIO(capsysbinary.readouterr().out))) == 20


def test_user_errors_are_one_clear_line(
    cfg_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = ["-c", str(cfg_path)]
    assert main(["export", "ballots", *c]) == 2
    err = capsys.readouterr().err
    assert "unknown export kind 'ballots'" in err and "Traceback" not in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"model_a": "x"}\n')
    assert main(["import", "votes", str(bad), "--feature", "daily-pep-talk", *c]) == 2
    err = capsys.readouterr().err
    assert "line 1: missing field(s)" in err and "nothing was stored" in err
    assert main(["export", "votes", "--since", "soon", *c]) == 2
    assert "is not a date" in capsys.readouterr().err
