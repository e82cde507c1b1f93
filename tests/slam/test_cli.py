"""The `slam` command line: help everywhere, clear errors, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slam.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["init", "--help"],
        ["generate", "--help"],
        ["quantize", "--help"],
        ["demo", "--help"],
        ["db", "--help"],
        ["db", "upgrade", "--help"],
        ["models", "--help"],
    ],
)
def test_help_everywhere(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(args, capsys)
    assert code == 0 and "Usage" in text


def test_no_arguments_shows_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run([], capsys)
    assert code == 2 and "Usage" in text and "generate" in text


def test_init_writes_a_valid_example_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "slam.toml"
    assert run(["init", str(target)], capsys)[0] == 0
    assert "[[models]]" in target.read_text()
    code, text = run(["models", "-c", str(target)], capsys)
    assert code == 0 and "gpt-4" in text and "reference + judge" in text
    code, text = run(["init", str(target)], capsys)
    assert code == 2 and "already exists; use --force" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "-c", "missing.toml"], "missing.toml: 1 problem(s)"),
        (
            ["generate", "--date", "tomorrow"],
            "--date 'tomorrow' is not a date; expected YYYY-MM-DD",
        ),
        (
            ["generate", "--model", "gpt-5"],
            "unknown model 'gpt-5'; configured: ['gemma3-270m-q4_k_m']",
        ),
        (["quantize", "-t", "Q1"], "unknown quantization type 'Q1'"),
        (["quantize", "nope.gguf"], "GGUF file not found: nope.gguf"),
        (["generate", "--samples", "0"], "Invalid value for '--samples'"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_bad_arguments_give_clear_messages(
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLAM_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    code, text = run(args, capsys)
    assert code == 2
    assert message in text
    assert "Traceback" not in text


def test_bad_config_file_lists_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "slam.toml"
    cfg.write_text('[experiment]\nsamples_per_model = -1\n[databse]\nurl = "x"\n')
    code, text = run(["models", "-c", str(cfg)], capsys)
    assert code == 2
    assert f"{cfg}: 2 problem(s)" in text
    assert "experiment.samples_per_model: Input should be greater than or equal to 1" in text
    assert "databse: unknown key" in text


def test_db_upgrade_and_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLAM_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.chdir(tmp_path)
    code, text = run(["db", "current"], capsys)
    assert code == 0 and "empty (run `slam db upgrade`)" in text
    code, text = run(["db", "upgrade"], capsys)
    assert code == 0 and "at revision" in text
    code, text = run(["db", "current"], capsys)
    assert code == 0 and "empty" not in text


def test_unreachable_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLAM_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/slam")
    code, text = run(["db", "upgrade"], capsys)
    assert code == 2 and "cannot connect to the database" in text and "Traceback" not in text


def test_console_script_entry_point() -> None:
    exe = Path(sys.executable).parent / "slam"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "slam.cli"]
    done = subprocess.run([*cmd, "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0 and "generate" in done.stdout


def test_features_lists_every_feature(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`slam features`: the built-in pep talk and a [[features]] table, with their inputs,
    slices, models, reference and decision."""
    from tests.support.bot_seed import SUPPORT, write_tickets

    monkeypatch.chdir(tmp_path)
    inputs = write_tickets(tmp_path / "tickets.jsonl")
    toml = tmp_path / "slam.toml"
    toml.write_text(f"""[database]
url = "sqlite:///{tmp_path / 'slam.db'}"

[experiment]
name = "daily-pep-talk"

[[models]]
name = "gpt-4"
backend = "openai"
model = "gpt-4"
reference = true

[[models]]
name = "mistral-7b-q4"
backend = "ollama"
model = "mistral:7b"

[[models]]
name = "gemma3-270m-q4_k_m"
backend = "llamacpp"
model = "builtin:gemma3-270m"

[[features]]
name = "{SUPPORT}"
prompt_template = "Reply to: {{{{ subject }}}}"
inputs = "{inputs}"
slice_field = "kind"
models = ["gpt-4", "mistral-7b-q4"]
""", encoding="utf-8")
    code, text = run(["features", "-c", str(toml)], capsys)
    assert code == 0, text
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]]
            for line in text.splitlines() if line.startswith("│ ") and "│" in line[1:]}
    pep = rows["daily-pep-talk (built"]
    assert pep[1].startswith("6 from builtin") and pep[4] == "gpt-4"
    assert pep[3].startswith("mistral-7b-q4") and pep[5].startswith("Decision:")
    support = rows[SUPPORT]
    assert support[1:5] == ["4 from tickets.jsonl", "kind: 2", "mistral-7b-q4", "gpt-4"]
    assert support[5].startswith("Decision:") and "Traceback" not in text


def test_models_shows_each_models_current_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`slam models` adds the version the results service counts (the newest one seen), and
    works the same without a database (no file is made)."""
    from datetime import UTC, datetime

    from sqlmodel import Session, select

    from storage.db import make_engine
    from storage.models import ModelRecord, ModelVersion

    db = tmp_path / "db.sqlite"
    monkeypatch.setenv("SLAM_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    code, text = run(["models"], capsys)
    assert code == 0 and "version" in text and not db.exists()
    assert run(["db", "upgrade"], capsys)[0] == 0
    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as s:
        s.add(ModelRecord(name="gemma3-270m-q4_k_m", backend="llamacpp", model_id="x"))
        s.commit()
        m = s.exec(select(ModelRecord)).one()
        for i, label in enumerate(["sha256:aaaa111", "sha256:bbbb222"]):
            s.add(ModelVersion(model_id=m.id, identity=label, label=label,
                               first_seen=datetime(2026, 12, 1 + i, tzinfo=UTC)))  # fmt: skip
        s.commit()
    engine.dispose()
    code, text = run(["models"], capsys)
    assert code == 0, text
    row = next(line for line in text.splitlines() if "gemma3-270m-q4_k_m" in line)
    cells = " ".join(text.replace("│", " ").split())  # the cell may wrap
    assert "sha256:bbbb222" in row and "sha256:aaaa111" not in text, text
    assert "sha256:bbbb222 (since" in cells and "2026-12-02; 2 versions)" in cells, text
