"""A secret the bot keeps: from the environment, else a private file made once.

The rater-hash salt (bot.identity) and the web link key (bot.rating.invites) are both "the
variable when it is set, else a random secret generated into a file the first time and read
from it ever after". The secret is written to a private temporary file (mode 0600) that is
then hard-linked into place: the link fails when the file exists, so two processes starting at
once cannot both make one, and a reader never sees a file before its secret is in it (the
loser, and anyone who reads meanwhile, reads the winner's secret).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

from core.env import environment
from core.errors import SlamError

DEFAULT_SALT_FILE = Path(".slam/rater_salt")


def secret_from_env_or_file(
    value: str | None,
    path: Path,
    *,
    log: logging.Logger,
    generated: str,
    unreadable: str | None = None,
    min_length: int = 0,
    too_short: str = "",
) -> bytes:
    """`value` (an environment variable; empty or None: unset), else the secret in `path`.

    A missing file is created once (its folders too) with 64 random hex digits, and `log`
    warns with `generated` (`%s`: the path). `unreadable` (`{path}`, `{reason}`): the
    SlamError when the file cannot be read or created (None: the OSError propagates); a
    file's secret shorter than `min_length` is the SlamError `too_short` (`{path}`)."""
    if value:
        return value.encode()
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32))
                with contextlib.suppress(FileExistsError):  # another process made it first
                    os.link(tmp, path)
                    log.warning(generated, path)
            finally:
                os.unlink(tmp)
        secret = path.read_text().strip().encode()
    except OSError as exc:
        if unreadable is None:
            raise
        raise SlamError(unreadable.format(path=path, reason=exc.strerror)) from None
    if len(secret) < min_length:
        raise SlamError(too_short.format(path=path))
    return secret


def rater_salt(env: Mapping[str, str] | None = None, path: Path | None = None) -> bytes:
    """The deployment's rater salt: `SLAM_RATER_SALT`, else a file (created once, private).
    It keys the rater hashes (bot.identity) and the exports' rater pseudonyms
    (evaluation.exchange)."""
    settings = environment(env)
    return secret_from_env_or_file(
        settings.slam_rater_salt,
        path or Path(settings.slam_rater_salt_file or DEFAULT_SALT_FILE),
        log=logging.getLogger("bot.identity"),
        generated="generated a rater salt in %s; set SLAM_RATER_SALT in production",
        unreadable="cannot read or create the rater salt {path} ({reason}); set "
        "SLAM_RATER_SALT instead",
    )
