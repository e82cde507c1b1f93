"""The web link key: SLAM_WEB_SECRET, else a private file (its own messages)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.rating.invites import load_secret
from core.errors import SlamError


def test_the_web_secret_from_env_else_a_private_file(tmp_path: Path) -> None:
    assert load_secret({"SLAM_WEB_SECRET": "short"}) == b"short"  # the variable is not checked
    path = tmp_path / "web_secret"
    first = load_secret({}, path)
    assert len(first) == 64 and load_secret({}, path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    moved = tmp_path / "moved"
    assert load_secret({"SLAM_WEB_SECRET_FILE": str(moved)}) == moved.read_text().encode()


def test_a_bad_web_secret_file_is_one_clear_message(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(SlamError) as err:
        load_secret({}, short)
    assert str(err.value) == (
        f"the web link secret in {short} is too short; delete it or set SLAM_WEB_SECRET to a "
        "long random string"
    )
    with pytest.raises(SlamError) as err:
        load_secret({}, tmp_path)
    assert str(err.value) == (
        f"cannot read or create the web link secret {tmp_path} (Is a directory); set "
        "SLAM_WEB_SECRET instead"
    )
