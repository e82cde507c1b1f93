"""Raters in an export: a stable pseudonym per rater, keyed per deployment, never a chat id.

A stored rater is already only `HMAC(rater salt, "platform:user id")` (bot.identity); an
export shows a second keyed hash of that, `r-` and 12 hex digits of
`HMAC(rater salt, "export:platform:user hash")`. The key is the deployment's rater salt
(`SLAM_RATER_SALT`, else `.slam/rater_salt`, the file bot.identity keeps), so two exports of
one deployment name a rater the same way, a copy of an export cannot be joined with the
database's rater table, and another deployment's exports cannot be joined with this one's.

Raters that came in through `slam import votes --format arena` (platform `arena`) are stored
under the judge name their file gave (already someone else's pseudonym) and are exported
under that name unchanged, so an export, imported elsewhere and exported again, names the
same judges.
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
DEFAULT_SALT_FILE = Path(".slam/rater_salt")  # the file bot.identity keeps the salt in
IMPORTED = "arena"  # the platform of raters imported from Arena battles


def pseudonym_key(env: Mapping[str, str] | None = None, path: Path | None = None) -> bytes:
    """The deployment's key: the rater salt (the variable, else the file, made once)."""
    settings = environment(env)
    return secret_from_env_or_file(
        settings.slam_rater_salt,
        path or Path(settings.slam_rater_salt_file or DEFAULT_SALT_FILE),
        log=log,
        generated="generated a rater salt in %s; set SLAM_RATER_SALT in production",
        unreadable="cannot read or create the rater salt {path} ({reason}); set "
        "SLAM_RATER_SALT instead",
    )


class Pseudonyms:
    """Rater pseudonyms under one key."""

    def __init__(self, key: bytes):
        if not key:
            raise ValueError("a pseudonym key must not be empty")
        self._key = key

    def of(self, platform: str, user_hash: str) -> str:
        if platform == IMPORTED:
            return user_hash
        msg = f"export:{platform}:{user_hash}".encode()
        return "r-" + hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:12]
