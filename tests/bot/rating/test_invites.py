"""The web link key: SLAM_WEB_SECRET, else a private file (its own messages); verified tokens
kept per process and still checked on every request."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.rating.invites import TokenError, Tokens, load_secret
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


def test_a_verified_token_is_still_checked_for_expiry_role_and_revocation(
        engine: Engine) -> None:  # fmt: skip
    """Tokens keeps the tokens whose signature checked out (every request carries the cookie),
    but every request still checks the role, the expiry and the revocations."""
    now = [time.time()]
    tokens = Tokens(b"k" * 32, engine, clock=lambda: now[0])
    token, grant = tokens.issue("rate", "ada", 1)
    assert tokens.verify(token, "rate") == grant == tokens.verify(token, "rate")  # kept
    with pytest.raises(TokenError, match="wrong_role"):
        tokens.verify(token, "view")
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(TokenError, match=r"forged|malformed"):
        tokens.verify(forged, "rate")
    assert tokens.csrf(grant) == tokens.csrf(grant) != tokens.csrf(tokens.issue("rate", "bo", 1)[1])
    now[0] += 1.5 * 86400  # past its expiry: refused although its signature was kept
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token, "rate")
    now[0] -= 1.5 * 86400
    assert tokens.verify(token, "rate") == grant
    now[0] += 1  # revoked after it was issued (and kept): refused at once
    tokens.revoke("rate", "ada")
    with pytest.raises(TokenError, match="revoked"):
        tokens.verify(token, "rate")
