"""`slam init` writes a config that loads as it is: the example feature's inputs come with it,
and an inputs file already there is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_config
from core.features import features
from slam.cli import main


def test_init_writes_a_config_that_loads_with_its_feature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / "slam.toml")]) == 0
    out = capsys.readouterr().out
    assert "support-tickets.jsonl: the example feature's inputs" in out
    cfg = load_config(tmp_path / "slam.toml")
    assert [f.name for f in features(cfg)] == ["daily-pep-talk", "support-reply"]
    assert len(features(cfg)[1].inputs()) == 6


def test_init_keeps_an_existing_inputs_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = '{"id": "mine", "subject": "s", "body": "b", "customer_tier": "free", "category": "x"}\n'
    (tmp_path / "support-tickets.jsonl").write_text(mine)
    assert main(["init", str(tmp_path / "slam.toml")]) == 0
    assert "kept" in capsys.readouterr().out
    assert (tmp_path / "support-tickets.jsonl").read_text() == mine
    cfg = load_config(tmp_path / "slam.toml")
    assert [i.id for i in features(cfg)[1].inputs()] == ["mine"]
