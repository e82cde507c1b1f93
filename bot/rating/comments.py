"""Raters' comments: a `bot.events.Comment` stored as an immutable `vote_comment` row.

The comment names the message that showed the pair (the pair's post, a DM copy, a web page's
pair), mapped to the pair through `pair_message` as votes are. Its text is cleaned (control
characters stripped, runs of blank lines folded, at most `MAX_CHARS` characters) and stored
as written; an edit is a new row (the newest per rater and pair is the one shown), accepted
only while the pair's round is open. A comment never reveals the models while the pair is
blind: whatever shows one then (`shown`) runs the masker over it. Redelivered events are
stored once (`event_key` is unique).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.events import Comment
from storage.models import PairMessage, Rater, RatingPair, RatingRound, VoteComment, utcnow

MAX_CHARS = 1000
_PM = PairMessage.__table__.c  # type: ignore[attr-defined]
_RP = RatingPair.__table__.c  # type: ignore[attr-defined]
_RR = RatingRound.__table__.c  # type: ignore[attr-defined]
_RT = Rater.__table__  # type: ignore[attr-defined]
_VC = VoteComment.__table__  # type: ignore[attr-defined]


def clean(text: str, limit: int = MAX_CHARS) -> str:
    """The text as stored: control and format characters out (a tab is a space, a line break
    stays), at most two line breaks in a row, trimmed, at most `limit` characters."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in "\r\n":
            out.append("\n")
        elif ch == "\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:
            out.append(ch)
    cleaned = re.sub(r"\n{3,}", "\n\n", "".join(out)).strip()
    return cleaned[:limit].rstrip()


@dataclass(frozen=True)
class CommentOutcome:
    """recorded, duplicate, empty, not_a_pair, closed (the round is closed), rate_limited or
    self (the bot's own message)."""

    status: str
    pair_id: int | None = None
    text: str = ""
    cut: bool = False  # the text was longer than MAX_CHARS and was cut
    names_model: bool = False  # the masker finds a model's name in it (the pair is blind)

    @property
    def counted(self) -> bool:
        return self.status == "recorded"

    def message(self) -> str:
        """What to tell the rater (their text is never echoed here: it may name a model)."""
        return {
            "recorded": "Comment saved" + (f" (cut to {MAX_CHARS} characters)" if self.cut
                                           else "") + "; you can edit it until the round "
                                                      "closes by sending a new one." + (
                " It names a model: where others can read it, edit it so the pair stays "
                "blind." if self.names_model else ""),
            "duplicate": "That comment is already saved.",
            "empty": "That comment is empty (nothing but spaces or control characters).",
            "not_a_pair": "Comments go on a pair's message: reply to the pair you rated.",
            "closed": "This pair's round is closed; comments can no longer be added or edited.",
            "rate_limited": "You are commenting too fast; try again later.",
        }.get(self.status, "")  # fmt: skip


def record_comment(engine: Engine, comment: Comment, rater_hash: str) -> CommentOutcome:
    """Store one comment (committed when this returns)."""
    text = clean(comment.text)
    cut = len(clean(comment.text, limit=MAX_CHARS + 1)) > MAX_CHARS
    if not text:
        return CommentOutcome("empty")
    try:
        with engine.begin() as conn:
            where = conn.execute(
                select(_PM.pair_id, _RR.status)
                .select_from(PairMessage.__table__.join(  # type: ignore[attr-defined]
                    RatingPair.__table__, _RP.id == _PM.pair_id).join(  # type: ignore[attr-defined]
                    RatingRound.__table__, _RR.id == _RP.round_id))  # type: ignore[attr-defined]
                .where(_PM.platform == comment.platform, _PM.channel == comment.channel,
                       _PM.message_ref == comment.message_ref)
            ).first()  # fmt: skip
            if where is None:
                return CommentOutcome("not_a_pair")
            pair_id, status = int(where[0]), where[1]
            seen = conn.execute(select(_VC.c.id).where(_VC.c.event_key == comment.event_key))
            if seen.first() is not None:
                return CommentOutcome("duplicate", pair_id)
            if status != "open":
                return CommentOutcome("closed", pair_id)
            q = select(_RT.c.id).where(_RT.c.platform == comment.platform,
                                       _RT.c.user_hash == rater_hash)  # fmt: skip
            rater_id = conn.execute(q).scalar()
            if rater_id is None:
                conn.execute(insert(_RT).values(platform=comment.platform, user_hash=rater_hash,
                                                created_at=utcnow()))  # fmt: skip
                rater_id = conn.execute(q).scalar()
            conn.execute(insert(_VC).values(
                pair_id=pair_id, rater_id=rater_id, platform=comment.platform, text=text,
                event_key=comment.event_key, created_at=utcnow()))  # fmt: skip
    except IntegrityError:  # another replica stored this event (or this rater) first
        return CommentOutcome("duplicate")
    return CommentOutcome("recorded", pair_id, text, cut)


def names_a_model(services: Any, text: str) -> bool:
    """Whether the masker (bot.rating.posting.masker: every configured and stored model name
    and id, known families, vendors) finds a model in `text`."""
    from bot.rating.posting import masker
    from storage.db import session_scope

    with session_scope(services.engine) as s:
        return masker(services, s).names_model(text)
