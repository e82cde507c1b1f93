"""`slam sweep` over replicas with GPU energy and the SLO search, through the real entry point
(in process), against fake Ollama servers and a replay of dcgm-exporter's page."""

from __future__ import annotations

from pathlib import Path

import pytest

from slam.cli import main
from tests.support.fake_dcgm import FakeDcgm, FakeGpu
from tests.support.fake_ollama import FakeOllama


def write_config(tmp_path: Path, host: str, dcgm_url: str) -> Path:
    toml = tmp_path / "slam.toml"
    toml.write_text(
        f'[experiment]\nmax_tokens = 8\n\n[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n\n'
        f'[telemetry]\nsource = "dcgm"\ndcgm_url = "{dcgm_url}"\ninterval_s = 0\n\n'
        f'[[models]]\nname = "gemma"\nbackend = "ollama"\nmodel = "gemma3:270m"\n'
        f'host = "{host}"\nhardware = "g4dn.xlarge"\nmax_retries = 0\n',
        encoding="utf-8",
    )
    return toml


def test_sweep_over_replicas_prints_energy_and_the_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOllama() as a, FakeOllama() as b, FakeDcgm(gpus=[FakeGpu(watts=55.0)]) as dcgm:
        toml = write_config(tmp_path, a.url, dcgm.url)
        code = main(["sweep", "-c", str(toml), "-m", "gemma", "--host", a.url, "--host", b.url,
                     "--replicas", "1,2", "--concurrency", "1,2", "--requests", "2",
                     "--slo-search", "-q"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "x1 c=1" in out.out and "x2 c=2" in out.out
    assert "J/1K tok" in out.out and "x2: highest load meeting the SLO: 2" in out.out


def test_sweep_replica_errors_are_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = write_config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9/metrics")
    assert main(["sweep", "-c", str(toml), "-m", "gemma", "--replicas", "1,x"]) == 2
    assert "--replicas: expected comma-separated numbers" in capsys.readouterr().err
    assert main(["sweep", "-c", str(toml), "-m", "gemma", "--replicas", "0"]) == 2
    assert "whole numbers from 1 to 16" in capsys.readouterr().err
    args = ["sweep", "-c", str(toml), "-m", "gemma", "--replicas", "3",
            "--host", "http://127.0.0.1:9", "--host", "http://127.0.0.1:10"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "3 replicas asked but 2 --host endpoints given" in err and "Traceback" not in err
