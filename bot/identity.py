"""Rater identity: the salted hash a rater is stored under, never the chat id.

Rater ids are HMAC-SHA256(salt, "platform:user id"). The salt is a secret kept apart from the
database (env `SLAM_RATER_SALT`, else a random one generated once into `.slam/rater_salt`,
mode 0600), so a copy of the database alone cannot be matched against a workspace's member
list. Changing the salt makes returning raters look new; their past votes stay valid.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)
DEFAULT_SALT_FILE = Path(".slam/rater_salt")


def load_salt(env: Mapping[str, str] | None = None, path: Path | None = None) -> bytes:
    """The rater-hash salt: `SLAM_RATER_SALT`, else a file (created once, private)."""
    env = os.environ if env is None else env
    if env.get("SLAM_RATER_SALT"):
        return env["SLAM_RATER_SALT"].encode()
    path = path or Path(env.get("SLAM_RATER_SALT_FILE") or DEFAULT_SALT_FILE)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            log.warning("generated a rater salt in %s; set SLAM_RATER_SALT in production", path)
    return path.read_text().strip().encode()


def rater_hash(salt: bytes, platform: str, user_id: str) -> str:
    return hmac.new(salt, f"{platform}:{user_id}".encode(), hashlib.sha256).hexdigest()
