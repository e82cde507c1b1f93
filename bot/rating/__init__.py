"""The rating flow, platform-free: rounds of blind pairs (`rounds`), which pair a rater gets next
(`selection`, reading the per-process shared posterior of `posterior` and the rater's own rows
through `rater_reads`), showing a pair through a port (`posting`), the vote writer (`writer`:
votes committed once, before the platform's acknowledgement), the pull flow of the web page
(`flow`), raters' comments (`comments`) and the signed invite links that let people rate
(`invites`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from bot.rating.comments import CommentOutcome, names_a_model, record_comment
    from bot.rating.flow import LABELS, RaterPair, lock_rater
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
    from bot.rating.selection import warm_state
    from bot.rating.writer import VoteOutcome, VoteWriter

__getattr__ = lazy_exports(__name__, __file__)
