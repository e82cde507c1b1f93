"""Fault injection at the CLI's edges: paths, databases, network peers, numbers, interrupts.

Every case asserts a clear message (naming the path, URL, option or key and what to do), a
non-zero exit status, no traceback, and no partial write (nothing created, nothing changed).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest

from slam.cli import main
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
GOOD_MODEL = '[[models]]\nname = "m1"\nbackend = "llamacpp"\nmodel = "builtin:gemma3-270m"\n'


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def clean_failure(code: int, text: str, *needles: str, status: int | None = None) -> None:
    """Non-zero, one short message with the needles, never a traceback."""
    text = re.sub(r"[\s│╭╮╰╯─]+", " ", text)  # typer's usage errors come in a wrapped box
    assert code != 0, text
    if status is not None:
        assert code == status, (code, text)
    assert "Traceback" not in text and 'File "' not in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    assert len(text) < 4000, text


def tree(path: Path) -> dict[str, bytes | None]:
    """Every file and folder under `path` with its content (None for folders)."""
    return {
        str(p.relative_to(path)): None if p.is_dir() else p.read_bytes()
        for p in sorted(path.rglob("*"))
    }


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLAM_DATABASE_URL", f"sqlite:///{tmp_path / 'slam.db'}")
    monkeypatch.setenv("SLAM_RATER_SALT", "fault-test-salt")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    capturing = getattr(logging, "_warnings_showwarning", None) is not None
    yield
    # `slam bot …` installs its log handlers on this test's (then closed) stderr capture and
    # routes warnings to the log: undo both for the tests that come after.
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    if not capturing:
        logging.captureWarnings(False)


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may create files in (root ignores permission bits: use /sys)."""
    if os.geteuid() == 0:
        yield Path("/sys")
        return
    d = tmp_path / "locked"
    d.mkdir()
    d.chmod(0o555)
    yield d
    d.chmod(0o755)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Any]:
    """Make a file read-only for everyone, root included (chattr +i; chmod otherwise)."""
    made: list[Path] = []

    def make(path: Path) -> Path:
        if os.geteuid() == 0:
            if shutil.which("chattr") is None:
                pytest.fail("need chattr to make a file read-only for root")
            subprocess.run(["chattr", "+i", str(path)], check=True)
        else:
            path.chmod(0o444)
            path.parent.chmod(0o555)
        made.append(path)
        return path

    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        else:
            path.parent.chmod(0o755)
            path.chmod(0o644)


# --- paths -----------------------------------------------------------------------------------
def test_init_into_a_missing_folder_creates_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = run(capsys, "init", str(tmp_path / "new" / "deeper" / "slam.toml"))
    assert code == 0, text
    assert "[[models]]" in (tmp_path / "new" / "deeper" / "slam.toml").read_text()


def test_init_refuses_a_file_in_the_way_a_folder_and_an_unwritable_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], unwritable: Path
) -> None:
    (tmp_path / "afile").write_text("keep me")
    (tmp_path / "afolder").mkdir()
    before = tree(tmp_path)
    code, text = run(capsys, "init", "afile/slam.toml")
    clean_failure(code, text, "afile", "is a file, not a folder", status=2)
    for force in ([], ["--force"]):
        code, text = run(capsys, "init", "afolder", *force)
        clean_failure(code, text, "afolder is a folder; name a file", status=2)
    code, text = run(capsys, "init", "/dev/null", "--force")  # never replace a device
    clean_failure(code, text, "/dev/null is not a regular file", status=2)
    assert Path("/dev/null").is_char_device()
    code, text = run(capsys, "init", str(unwritable / "slam.toml"))
    clean_failure(code, text, str(unwritable), "cannot write", status=2)
    assert not (unwritable / "slam.toml").exists()
    assert tree(tmp_path) == before


def test_init_keeps_an_existing_file_and_never_leaves_half_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slam.toml").write_text("# mine\n")
    code, text = run(capsys, "init")
    clean_failure(code, text, "slam.toml already exists; use --force", status=2)
    assert (tmp_path / "slam.toml").read_text() == "# mine\n"

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    before = tree(tmp_path)
    code, text = run(capsys, "init", "--force")
    clean_failure(code, text, "no space left")
    assert tree(tmp_path) == before  # the old file intact, no temp file left behind
    code, text = run(capsys, "init", "other.toml")
    clean_failure(code, text, "no space left")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("command", [["report"], ["quantize", "-t", "Q2_K"]])
def test_output_folders_are_checked_before_any_work(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], unwritable: Path
) -> None:
    (tmp_path / "afile").write_text("keep me")
    before = tree(tmp_path)
    code, text = run(capsys, *command, "--out", "afile")
    clean_failure(code, text, "--out afile is a file, not a folder", status=2)
    code, text = run(capsys, *command, "--out", "afile/charts")
    clean_failure(code, text, "--out afile/charts", "afile is a file", status=2)
    code, text = run(capsys, *command, "--out", str(unwritable / "slam-out"))
    clean_failure(code, text, f"--out {unwritable / 'slam-out'}", "cannot", status=2)
    assert tree(tmp_path) == before  # not even the database was opened


def test_config_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "conf.d").mkdir()
    code, text = run(capsys, "models", "-c", "conf.d")
    clean_failure(code, text, "conf.d", "is a folder; name the config file", status=2)
    for verbose in ([], ["-v"]):  # --verbose adds no traceback to a user error
        code, text = run(capsys, *verbose, "models", "-c", "nope.toml")
        clean_failure(code, text, "nope.toml", "file not found; run `slam init`", status=2)
    os.mkfifo(tmp_path / "pipe.toml")  # reading it would wait forever
    code, text = run(capsys, "models", "-c", "pipe.toml")
    clean_failure(code, text, "pipe.toml", "is a pipe, socket or device", status=2)
    (tmp_path / "zero.toml").symlink_to("/dev/zero")  # a device: reading it never ends
    code, text = run(capsys, "models", "-c", "zero.toml")
    clean_failure(code, text, "zero.toml", "is a pipe, socket or device", status=2)
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    code, text = run(capsys, "models", "-c", "binary.toml")
    clean_failure(code, text, "binary.toml", "not a UTF-8 text file", status=2)
    (tmp_path / "huge.toml").write_text(f'[experiment]\nname = 1\nseed = "{"9" * 1_000_000}"\n')
    code, text = run(capsys, "models", "-c", "huge.toml")
    clean_failure(code, text, "experiment.seed", "(1,000,002 characters)", status=2)


def test_config_that_validates_but_would_fail_at_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "users").mkdir()
    cfg = tmp_path / "slam.toml"
    cfg.write_text(f'[experiment]\nuser_contexts = "users"\n{GOOD_MODEL}')
    code, text = run(capsys, "models", "-c", str(cfg))
    clean_failure(code, text, "experiment.user_contexts", "is a folder", status=2)
    for template in ("{name:{x}}", "{name!z}", "{name:d}", "{name.upper}", "{0}", "}{"):
        cfg.write_text(f"[experiment]\nprompt_template = '''{template}'''\n{GOOD_MODEL}")
        code, text = run(capsys, "models", "-c", str(cfg))
        clean_failure(code, text, "experiment.prompt_template", "{name}", status=2)


def test_user_contexts_and_templates_fail_cleanly_at_use_too(tmp_path: Path) -> None:
    from core.errors import ConfigError
    from core.prompts import load_user_contexts, render_prompt

    with pytest.raises(ConfigError, match=r"is a folder; experiment\.user_contexts"):
        load_user_contexts(str(tmp_path))
    user = load_user_contexts("builtin")[0]
    with pytest.raises(ConfigError, match=r"experiment\.prompt_template") as info:
        render_prompt("Hi {name:{x}}", user)
    assert "unknown placeholder(s) ['x']" in str(info.value)


# --- databases -------------------------------------------------------------------------------
def db_cases(tmp: Path, unwritable: Path) -> list[tuple[str, list[str]]]:
    return [
        (f"sqlite:///{tmp / 'afile' / 'x.db'}", ["database folder", "afile", "is a file"]),
        (f"sqlite:///{unwritable / 'slam' / 'x.db'}", ["database folder", str(unwritable)]),
        (f"sqlite:///{tmp / 'afolder'}", ["is a folder; point SLAM_DATABASE_URL"]),
        ("mysql://slam@127.0.0.1/slam", ["mysql://slam@127.0.0.1/slam", "driver", "install"]),
        ("oracle+nosuch://x@y/z", ["unknown database type", "SQLite", "PostgreSQL"]),
        ("foo://u@h/db", ["unknown database type 'foo'"]),
        ("not a url", ["'not a url' is not a valid SQLAlchemy URL"]),
        (
            "postgresql://slam:hunter2secret@127.0.0.1:1/slam",
            ["cannot connect to the database", "slam:***@127.0.0.1:1", "SLAM_DATABASE_URL"],
        ),
    ]


def test_bad_database_urls(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    unwritable: Path,
) -> None:
    (tmp_path / "afile").write_text("keep me")
    (tmp_path / "afolder").mkdir()
    before = tree(tmp_path)
    for url, needles in db_cases(tmp_path, unwritable):
        monkeypatch.setenv("SLAM_DATABASE_URL", url)
        for command in (["db", "upgrade"], ["db", "current"], ["report"]):
            code, text = run(capsys, *command)
            clean_failure(code, text, *needles, status=2)
            assert "hunter2secret" not in text
    assert tree(tmp_path) == before


def test_a_missing_database_folder_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLAM_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'new' / 'slam.db'}")
    code, text = run(capsys, "db", "upgrade")
    assert code == 0 and "at revision" in text, text


def test_a_corrupt_sqlite_file_is_named_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "slam.db"
    db.write_bytes(b"this is not a database, it is a note" * 100)
    before = tree(tmp_path)
    for command in (["db", "upgrade"], ["db", "current"], ["models"], ["report"]):
        code, text = run(capsys, *command)
        if command == ["models"]:  # needs no database at all
            assert code == 0, text
            continue
        clean_failure(code, text, str(db), "not a SQLite database or is damaged", "backup")
    assert tree(tmp_path) == before


def test_a_read_only_sqlite_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    read_only: Any,
) -> None:  # fmt: skip
    db = tmp_path / "ro" / "slam.db"
    monkeypatch.setenv("SLAM_DATABASE_URL", f"sqlite:///{db}")
    assert run(capsys, "db", "upgrade")[0] == 0
    read_only(db)
    before = db.read_bytes()
    for command in (["db", "upgrade"], ["report"]):
        code, text = run(capsys, *command)
        clean_failure(code, text, str(db), "read-only", status=2)
    assert db.read_bytes() == before


def test_a_database_error_mid_command_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault the edges cannot foresee (the database fails during the work) still ends at
    the boundary as one line naming the database."""
    from sqlalchemy.exc import OperationalError

    import storage.migrate

    def fail(url: str | None = None) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(storage.migrate, "open_database", fail)
    code, text = run(capsys, "generate", "-q")
    clean_failure(code, text, "server closed the connection", "SLAM_DATABASE_URL", status=1)


# --- network peers ---------------------------------------------------------------------------
def test_unreachable_peers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    code, text = run(capsys, "ollama", "list", "--host", closed)
    clean_failure(code, text, closed.removeprefix("http://"))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-fault-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "fault-test-secret")
    monkeypatch.setenv("SLACK_API_URL", closed + "/api/")
    code, text = run(capsys, "bot", "slack", "--http", "--no-scheduler")
    clean_failure(code, text, "cannot reach the Slack API", closed, status=2)


def test_a_port_already_in_use(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.fake_slack_api import FakeSlack

    fake = FakeSlack().start()
    try:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-fault-test")
            monkeypatch.setenv("SLACK_SIGNING_SECRET", "fault-test-secret")
            monkeypatch.setenv("SLACK_API_URL", fake.api_url)
            code, text = run(capsys, "bot", "slack", "--http", "--no-scheduler", "--port",
                             str(port))  # fmt: skip
    finally:
        fake.stop()
    clean_failure(code, text, "address is already in use", "--port", status=1)


# --- numbers: CLI options share the config's bounds ------------------------------------------
OUT_OF_RANGE = [
    (["generate", "--samples", "99999999999999999999"], "--samples", "1 ≤ x ≤ 100"),
    (["generate", "--max-tokens", "8193"], "--max-tokens", "experiment.max_tokens"),
    (["probe", "--measure", "9999999999999999"], "--measure", "1 ≤ x ≤ 1000"),
    (["probe", "--warmup", "-1"], "--warmup", "0 ≤ x"),
    (["report", "--days", "99999999999"], "--days", "1 ≤ x ≤ 3660"),
    (["report", "--requests-per-day", "0"], "--requests-per-day", "1 ≤ x"),
    (["sweep", "-m", "x", "--slo-ttft-ms", "-5"], "--slo-ttft-ms", "0 < x"),
    (["sweep", "-m", "x", "--slo-e2e-s", "nan"], "--slo-e2e-s", "0 < x"),
    (["sweep", "-m", "x", "--slo-tpot-ms", "inf"], "--slo-tpot-ms", "0 < x"),
    (["sweep", "-m", "x", "--max-tokens", "100000"], "--max-tokens", "experiment.max_tokens"),
    (["sweep", "-m", "x", "--requests", "0"], "--requests", "1 ≤ x"),
    (["sweep", "-m", "x", "--concurrency", "1,1e9"], "--concurrency", "1 ≤ x ≤ 1024"),
    (["sweep", "-m", "x", "--rate", "--rates", "0,2"], "--rates", "0 < x"),
    (["score", "--max-tokens", "100000"], "--max-tokens", "evaluation.judge_max_tokens"),
    (["host", "up", "--ttl-hours", "-1"], "--ttl-hours", "aws.ttl_hours"),
]


@pytest.mark.parametrize(("args", "option", "bound"), OUT_OF_RANGE)
def test_out_of_range_numbers_are_refused_before_any_work(
    args: list[str], option: str, bound: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = time.monotonic()
    code, text = run(capsys, *args)
    clean_failure(code, text, option, "out of range", bound, status=2)
    assert "launching" not in text  # e.g. `host up` says nothing about launching first
    assert time.monotonic() - t0 < 10
    assert tree(tmp_path) == {}  # no database, no output


def test_every_numeric_option_has_bounds() -> None:
    """The class, not the cases: any int or float option of any command is bounded."""
    import typer

    from slam.cli import _register_all, app

    _register_all()
    unbounded = []

    def numeric(annotation: Any) -> bool:
        kinds = [a for a in (get_args(annotation) or (annotation,)) if a is not type(None)]
        return any(k in (int, float) for k in kinds)

    def walk(cmd: Any, path: str) -> None:
        seen.append(path)
        for p in cmd.params:
            desc = getattr(p, "type_descriptor", None)
            if desc is not None and numeric(desc.annotation):
                checked.append(f"{path} {p.opts[0]}")
                if p.callback is None and getattr(p, "max", None) is None:
                    unbounded.append(f"{path} {p.opts[0]}")
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")

    seen: list[str] = []
    checked: list[str] = []

    walk(typer.main.get_command(app), "slam")
    assert "slam probe --measure" in checked and "slam bot slack --port" in checked, checked
    assert unbounded == []


# --- the boundary itself ---------------------------------------------------------------------
def test_an_unexpected_exception_is_one_line_and_verbose_shows_where(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.config

    def boom(path: Any = None) -> Any:
        raise ZeroDivisionError("division by zero in a bug")

    monkeypatch.setattr(core.config, "load_config", boom)
    code, text = run(capsys, "models")
    clean_failure(code, text, "internal error: ZeroDivisionError", "--verbose", status=1)
    code, text = run(capsys, "-v", "models")
    assert code == 1 and "Traceback" in text and "boom" in text


def test_ctrl_c_in_a_command_prints_one_line_and_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.config

    def interrupted(path: Any = None) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(core.config, "load_config", interrupted)
    code, text = run(capsys, "models")
    assert code == 130 and text.strip() == "interrupted"


def test_ctrl_c_at_the_console_prompt_exits_at_once(tmp_path: Path) -> None:
    """A real SIGINT while `slam bot console` waits for a vote: one line, status 130."""
    from storage.db import make_engine
    from storage.migrate import upgrade
    from tests.support.bot_seed import MODELS, make_config, seed
    from tests.support.slack_helpers import write_config

    url = f"sqlite:///{tmp_path / 'slam.db'}"
    engine = make_engine(url)
    upgrade(engine)
    seed(engine, make_config())
    engine.dispose()
    config = write_config(tmp_path / "slam.toml", url, MODELS, pairs_per_round=2)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SLAM_DATABASE_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "slam.cli", "bot", "console", "-c", str(config)],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = ""
        deadline = time.monotonic() + 120
        while "vote> " not in seen and time.monotonic() < deadline:
            seen += proc.stdout.read(1)
        assert "vote> " in seen, seen
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip() == "interrupted", err
