"""The rating flow, platform-free: rounds of blind pairs (`rounds`), which pair a rater gets next
(`selection`), showing a pair through a port (`posting`), the vote writer (`writer`: votes
committed once, before the platform's acknowledgement), the pull flow of the web page
(`flow`) and the signed invite links that let people rate (`invites`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from bot.rating.flow import LABELS, RaterPair
    from bot.rating.invites import (
        ROLES,
        Grant,
        Role,
        TokenError,
        Tokens,
        check_name,
        link,
        load_secret,
    )
    from bot.rating.posting import db, legend, masker, post_pair
    from bot.rating.rounds import open_round
    from bot.rating.writer import VoteOutcome, VoteWriter

# The wing's public surface: name -> the module that defines it (imported on first use).
EXPORTS = {
    "Grant": "invites",
    "LABELS": "flow",
    "ROLES": "invites",
    "RaterPair": "flow",
    "Role": "invites",
    "TokenError": "invites",
    "Tokens": "invites",
    "VoteOutcome": "writer",
    "VoteWriter": "writer",
    "check_name": "invites",
    "db": "posting",
    "legend": "posting",
    "link": "invites",
    "load_secret": "invites",
    "masker": "posting",
    "open_round": "rounds",
    "post_pair": "posting",
}
__getattr__ = lazy_exports(__name__, EXPORTS)
__all__ = [
    "LABELS",
    "ROLES",
    "Grant",
    "RaterPair",
    "Role",
    "TokenError",
    "Tokens",
    "VoteOutcome",
    "VoteWriter",
    "check_name",
    "db",
    "legend",
    "link",
    "load_secret",
    "masker",
    "open_round",
    "post_pair",
]
