"""Rater identity: the salted hash a rater is stored under, never the chat id.

Rater ids are HMAC-SHA256(salt, "platform:user id"). The salt is a secret kept apart from the
database (env `SLAM_RATER_SALT`, else a random one generated once into `.slam/rater_salt`,
mode 0600), so a copy of the database alone cannot be matched against a workspace's member
list. Changing the salt makes returning raters look new; their past votes stay valid.
"""

from __future__ import annotations

import hashlib
import hmac

from core.secrets import DEFAULT_SALT_FILE
from core.secrets import rater_salt as load_salt  # the rater-hash salt

__all__ = ["DEFAULT_SALT_FILE", "load_salt", "rater_hash"]


def rater_hash(salt: bytes, platform: str, user_id: str) -> str:
    return hmac.new(salt, f"{platform}:{user_id}".encode(), hashlib.sha256).hexdigest()
