"""core.secrets: a secret from the environment, else a private file made once."""

from __future__ import annotations

import logging
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from core.errors import SlamError
from core.secrets import secret_from_env_or_file

log = logging.getLogger("tests.secrets")


def load(path: Path, value: str | None = None, **texts: Any) -> bytes:
    return secret_from_env_or_file(value, path, log=log, generated="made %s", **texts)


def test_the_environment_wins_and_empty_counts_as_unset(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    assert load(path, "from-env") == b"from-env" and not path.exists()
    assert len(load(path, "")) == 64 and path.exists()


def test_the_file_is_made_once_private_and_then_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "deep" / "folder" / "secret"
    with caplog.at_level(logging.WARNING, logger="tests.secrets"):
        first = load(path)
        assert load(path) == first
    assert len(first) == 64 and int(first, 16) >= 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r.getMessage() for r in caplog.records] == [f"made {path}"]  # warned once
    path.write_text("  kept-by-hand \n")
    assert load(path) == b"kept-by-hand"


def test_processes_starting_together_share_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    barrier = threading.Barrier(8)
    got: list[bytes] = []

    def start() -> None:
        barrier.wait()
        got.append(load(path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and set(got) == {path.read_text().strip().encode()}


def test_an_unreadable_file_and_a_short_secret_are_the_callers_messages(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):  # no message given: the OSError itself
        load(folder)
    with pytest.raises(SlamError, match=rf"^cannot read {folder} \(Is a directory\)$"):
        load(folder, unreadable="cannot read {path} ({reason})")
    short = tmp_path / "short"
    short.write_text("abc")
    assert load(short) == b"abc"  # no minimum given
    with pytest.raises(SlamError, match=rf"^{short} is too short$"):
        load(short, min_length=16, too_short="{path} is too short")
    assert load(short, "abc", min_length=16, too_short="{path} is too short") == b"abc"
