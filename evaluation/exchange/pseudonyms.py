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

from core.secrets import rater_salt

IMPORTED = "arena"  # the platform of raters imported from Arena battles
# The deployment's key: the rater salt bot.identity hashes raters with (the variable, else
# the file, made once).
pseudonym_key = rater_salt


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
