"""Invite links for the web front: signed, expiring, revocable tokens — no passwords.

A token is `base64url(payload).base64url(HMAC-SHA256(secret, payload))`; the payload is
compact JSON: version, role (`rate`: the rating page; `view`: the dashboard), the person's
name, issued-at (Unix ms) and expiry (Unix s) and a random id. The signing secret is
`SLAM_WEB_SECRET`, else a random one generated once into `.slam/web_secret` (mode 0600;
`SLAM_WEB_SECRET_FILE` moves it) — every replica needs the same one.

Revoking a name (`slam web revoke NAME`) stores the moment in the `processed_event` table
(platform `web`, event id `revoke:<role>:<name key>:<time>`), so every replica sees it; a token
of that name and role issued before the latest revocation is refused. Replicas read all
revocations in one query, at most `REVOCATION_TTL_S` late. A web rater's identity is the name:
a new link for the same name rates as the same rater (stored, like every rater, only as a
salted hash).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.env import environment
from core.errors import SlamError
from core.secrets import secret_from_env_or_file
from storage.db import session_scope
from storage.models import ProcessedEvent

log = logging.getLogger(__name__)
DEFAULT_SECRET_FILE = Path(".slam/web_secret")
Role = Literal["rate", "view"]
ROLES: dict[str, Role] = {"rater": "rate", "rate": "rate", "viewer": "view", "view": "view"}
ROLE_NAMES: dict[Role, str] = {"rate": "rater", "view": "viewer"}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
MAX_TOKEN = 600  # characters; anything longer is not ours
REVOCATION_TTL_S = 5.0


def load_secret(env: Mapping[str, str] | None = None, path: Path | None = None) -> bytes:
    """The signing secret: `SLAM_WEB_SECRET`, else a file (created once, private, at least 16
    characters)."""
    settings = environment(env)
    return secret_from_env_or_file(
        settings.slam_web_secret,
        path or Path(settings.slam_web_secret_file or DEFAULT_SECRET_FILE),
        log=log,
        generated="generated a web link secret in %s; set SLAM_WEB_SECRET in production (the "
        "same on every replica)",
        unreadable="cannot read or create the web link secret {path} ({reason}); set "
        "SLAM_WEB_SECRET instead",
        min_length=16,
        too_short="the web link secret in {path} is too short; delete it or set "
        "SLAM_WEB_SECRET to a long random string",
    )


def check_name(name: str) -> str:
    """A person's name for a link: letters, digits and . _ @ + -, at most 64 characters."""
    if not NAME.fullmatch(name or ""):
        raise SlamError("a name is 1–64 letters, digits or . _ @ + - (starting with a letter or "
                        "digit), e.g. `alice` or `student-07`")  # fmt: skip
    return name


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Grant:
    """A verified token: who, for what, until when."""

    role: Role
    name: str
    issued: int  # Unix milliseconds
    expires: int  # Unix seconds
    nonce: str

    @property
    def user_id(self) -> str:
        """The rater's user id on the `web` platform (hashed with the salt like any rater)."""
        return self.name


SIGNED_KEPT = 10_000  # verified tokens (and form tokens) kept per process


class TokenError(Exception):
    """Why a token is refused: 'malformed', 'forged', 'expired', 'revoked' or 'wrong_role'."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Tokens:
    """Issues and verifies tokens with one secret; checks revocations in the database."""

    def __init__(
        self,
        secret: bytes,
        engine: Engine | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.secret = secret
        self.engine = engine
        self.clock = clock
        self._revoked: dict[str, float] = {}  # key -> latest revocation (Unix s)
        self._read_at = -1e18  # when the revocations were last read (monotonic)
        self._lock = threading.Lock()
        # Tokens whose signature checked out, and form tokens made: a rater's cookie comes
        # with every request, and its HMAC, base64 and JSON cost more than the page's own
        # look-ups. Expiry, role and revocation are still checked on every request.
        self._signed: dict[str, Grant] = {}
        self._csrf: dict[tuple[str, str], str] = {}

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self.secret, b"slam-web-token:" + body, hashlib.sha256).digest()

    def issue(self, role: Role, name: str, days: float) -> tuple[str, Grant]:
        check_name(name)
        now = self.clock()
        grant = Grant(role, name, int(now * 1000), int(now + days * 86400),
                      secrets.token_urlsafe(9))  # fmt: skip
        body = json.dumps({"v": 1, "r": role, "n": name, "i": grant.issued, "e": grant.expires,
                           "k": grant.nonce}, separators=(",", ":")).encode()  # fmt: skip
        return f"{_b64(body)}.{_b64(self._sign(body))}", grant

    def verify(self, token: str, role: Role) -> Grant:
        """The grant of a valid token for `role`; TokenError otherwise. Never raises another
        exception for any input."""
        grant = self._signed.get(token) if isinstance(token, str) else None
        if grant is None:
            grant = self._signed_grant(token)
            if len(self._signed) >= SIGNED_KEPT:
                self._signed.clear()
            self._signed[token] = grant
        if grant.role != role:
            raise TokenError("wrong_role")
        if grant.expires <= self.clock():
            raise TokenError("expired")
        revoked = self.revoked_at(role, grant.name)
        if revoked is not None and grant.issued <= revoked * 1000:
            raise TokenError("revoked")
        return grant

    def _signed_grant(self, token: str) -> Grant:
        """The grant a token carries if we signed it (TokenError: malformed or forged)."""
        if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
            raise TokenError("malformed")
        body_b64, sig_b64 = token.split(".")
        try:
            body, sig = _unb64(body_b64), _unb64(sig_b64)
        except (binascii.Error, ValueError):
            raise TokenError("malformed") from None
        if not hmac.compare_digest(sig, self._sign(body)):
            raise TokenError("forged")
        try:
            data = json.loads(body)
            grant = Grant(data["r"], data["n"], int(data["i"]), int(data["e"]), str(data["k"]))
        except (ValueError, KeyError, TypeError):  # signed by us, so never expected
            raise TokenError("malformed") from None
        return grant

    def csrf(self, grant: Grant) -> str:
        """The form token bound to this grant (same link, same value)."""
        key = (grant.nonce, grant.name)
        got = self._csrf.get(key)
        if got is None:
            mac = hmac.new(self.secret, f"slam-web-csrf:{grant.nonce}:{grant.name}".encode(),
                           hashlib.sha256)  # fmt: skip
            got = _b64(mac.digest()[:18])
            if len(self._csrf) >= SIGNED_KEPT:
                self._csrf.clear()
            self._csrf[key] = got
        return got

    def check_csrf(self, grant: Grant, value: str) -> bool:
        return hmac.compare_digest(self.csrf(grant).encode(), (value or "").encode())

    # -- revocation ------------------------------------------------------------------------
    def _key(self, role: Role, name: str) -> str:
        digest = hmac.new(self.secret, f"slam-web-name:{name}".encode(), hashlib.sha256)
        return f"revoke:{role}:{digest.hexdigest()[:32]}:"

    def revoke(self, role: Role, name: str) -> None:
        """Refuse every token of this name and role issued until now."""
        if self.engine is None:
            raise SlamError("revoking a link needs the database")
        check_name(name)
        now = self.clock()
        key = self._key(role, name)
        with session_scope(self.engine) as s:
            s.add(ProcessedEvent(platform="web", event_id=f"{key}{now:.3f}"))
        with self._lock:
            self._revoked[key] = max(self._revoked.get(key, -1.0), now)

    def revoked_at(self, role: Role, name: str) -> float | None:
        """When the name was last revoked for the role. All revocations are read in one query
        and kept for REVOCATION_TTL_S (a revocation made here counts at once)."""
        if self.engine is None:
            return None
        now = time.monotonic()
        with self._lock:
            fresh = now - self._read_at < REVOCATION_TTL_S
        if not fresh:
            latest: dict[str, float] = {}
            pe = ProcessedEvent.__table__  # type: ignore[attr-defined]
            q = select(pe.c.event_id).where(pe.c.platform == "web",
                                            pe.c.event_id.like("revoke:%"))  # fmt: skip
            with self.engine.connect() as conn:
                for (event_id,) in conn.execute(q):
                    key, _, at = str(event_id).rpartition(":")
                    with contextlib.suppress(ValueError):
                        latest[key + ":"] = max(latest.get(key + ":", -1.0), float(at))
            with self._lock:
                self._revoked, self._read_at = latest, now
        with self._lock:
            return self._revoked.get(self._key(role, name))


def link(base: str | None, grant_role: Role, token: str) -> str:
    """The invite URL: `<public_url>/r/<token>` (rating) or `/d/<token>` (dashboard)."""
    path = ("/r/" if grant_role == "rate" else "/d/") + token
    return (base or "").rstrip("/") + path
