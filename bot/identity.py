"""Rater identity: the salted hash a rater is stored under, never the chat id.

Rater ids are HMAC-SHA256(salt, "platform:user id"). The salt is a secret kept apart from the
database (env `SLAM_RATER_SALT`, else a random one generated once into `.slam/rater_salt`,
mode 0600), so a copy of the database alone cannot be matched against a workspace's member
list. Changing the salt makes returning raters look new; their past votes stay valid.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from pathlib import Path

from core.env import environment
from core.secrets import secret_from_env_or_file

log = logging.getLogger(__name__)
DEFAULT_SALT_FILE = Path(".slam/rater_salt")


def load_salt(env: Mapping[str, str] | None = None, path: Path | None = None) -> bytes:
    """The rater-hash salt: `SLAM_RATER_SALT`, else a file (created once, private)."""
    settings = environment(env)
    return secret_from_env_or_file(
        settings.slam_rater_salt,
        path or Path(settings.slam_rater_salt_file or DEFAULT_SALT_FILE),
        log=log,
        generated="generated a rater salt in %s; set SLAM_RATER_SALT in production",
    )


def rater_hash(salt: bytes, platform: str, user_id: str) -> str:
    return hmac.new(salt, f"{platform}:{user_id}".encode(), hashlib.sha256).hexdigest()
