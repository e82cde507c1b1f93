"""The rating flow for adapters where a rater fetches pairs instead of reacting to posts (the web
front): which pair comes next, what the rater's vote on it is now, and a button press as the
neutral `bot.events.Vote` every adapter hands the dispatcher. No rule lives here: the pair comes
from the selection `/slam rate` uses (bot.rating.selection.next_pair), the vote goes through the
dispatcher (rate limits, then the vote writer), and "what is my vote now" is
evaluation.human.votes.fold_events over the rater's events on the pair.

Each pair shown to a rater is remembered as a `pair_message` on the adapter's platform with a
reference derived from the pair and the rater (`message_ref`), recorded once however often the
page is loaded, so a vote maps to the pair exactly like a reaction on a DM does. Handing out is
idempotent per rater: one transaction chooses the pair and records its messages, under a lock
of that rater (SQLite's write lock, a PostgreSQL advisory lock), so of two loads at once (two
tabs, a double reload) the second gets the pair the first stored, never a second pair or an
error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlalchemy import text as sql_text
from sqlmodel import Session, select

from bot.events import Comment, PairView, Vote
from bot.rating import posting, rounds, selection
from bot.rating.selection import NextPair
from bot.rating.writer import VoteOutcome
from bot.services import ChatPort, Services
from core.errors import SlamError
from evaluation.human import fold_events
from storage.db import begin_write
from storage.models import PairMessage, RatingPair, RatingRound
from storage.models import Vote as VoteRow

CHOICES = ("A", "B", "tie", "both_bad")
LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both bad"}


@dataclass(frozen=True)
class RaterPair:
    """A pair as one rater sees it, with their current vote on it."""

    round_id: int
    done: int
    quota: int
    why: str
    view: PairView | None = None
    choice: str | None = None  # the rater's current pairwise vote
    scores: dict[str, int] = field(default_factory=dict)  # 'A'/'B' -> current score
    version: int = 0  # the id of the rater's latest event on this pair (0: none)
    round_open: bool = True
    rounds: tuple[int, ...] = ()  # every open round (one per feature), for the messages

    @property
    def finished(self) -> str:
        """What the rater is told when there is no pair for them (bot.rating.selection)."""
        return selection.finished_text(self.why, self.quota, self.round_id, self.rounds)


def message_ref(services: Services, platform: str, user_id: str, pair_id: int,
                target: str | None = None) -> str:  # fmt: skip
    """The reference of the 'message' that shows `pair_id` to this rater on `platform`."""
    key = services.rater(platform, user_id)[:20]
    return f"{platform[:1]}{pair_id}.{key}" + (f".{target}" if target else "")


_VT = VoteRow.__table__  # type: ignore[attr-defined]
_EVENTS = (core_select(_VT.c.id, _VT.c.pair_id, _VT.c.rater_id, _VT.c.kind, _VT.c.action,
                       _VT.c.choice, _VT.c.target, _VT.c.score)
           .where(_VT.c.pair_id == bindparam("pair"), _VT.c.rater_id == bindparam("rater"))
           .order_by(_VT.c.id))  # fmt: skip

def _current(s: Session, pair_id: int, rater_id: int) -> tuple[str | None, dict[str, int], int]:
    """The rater's current pairwise choice and scores on a pair (evaluation.human.votes.
    fold_events over their events in id order), and the id of their latest event on it."""
    rows = [tuple(r) for r in s.connection().execute(
        _EVENTS, {"pair": pair_id, "rater": rater_id}).all()]  # fmt: skip
    streams = fold_events(rows)
    pairwise = streams.get((pair_id, rater_id, "pairwise", None))
    scores = {t: int(c[1]) for (_, _, k, t), c in streams.items()
              if k == "score" and t and c[1] is not None}  # fmt: skip
    return (pairwise[0] if pairwise else None), scores, (rows[-1][0] if rows else 0)


def lock_rater(s: Session, platform: str, user_hash: str) -> None:
    """Serialize this rater's hand-outs until the transaction ends: SQLite takes its write lock
    (BEGIN IMMEDIATE), PostgreSQL an advisory lock keyed by the rater (other raters go on)."""
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        digest = hashlib.sha256(f"slam-rater:{platform}:{user_hash}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        conn.execute(sql_text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    else:
        begin_write(conn)


async def next_pair(services: Services, port: ChatPort, user_id: str) -> RaterPair:
    """The rater's next pair, shown through `port` (recorded once), with progress: the
    selection `/slam rate` uses (bot.rating.selection.next_pair: a pair already sent and not
    rated first, gold pairs, the most informative pair, the stopping rule). Every adapter
    without reactions gets its pairs here; their pair's 'message' is `message_ref` (and, in
    score mode, its score messages the same ref plus `.A`/`.B`), recorded in the transaction
    that chose the pair."""
    platform = port.platform
    user_hash = services.rater(platform, user_id)
    legend = posting.legend(services, port)

    Mine = tuple[str | None, dict[str, int], int]

    def work(s: Session) -> tuple[NextPair, PairView | None, Mine]:
        lock_rater(s, platform, user_hash)
        got = selection.next_pair(s, services.cfg, platform, user_hash, rng=services.rng)
        if got.pair is None or got.pair.id is None:
            return got, None, (None, {}, 0)
        view = rounds.pair_view(s, got.pair, posting.masker(services, s, got.version), legend)
        if got.why == "resent":  # shown to them before (its messages are recorded), not rated
            return got, view, _current(s, got.pair.id, got.rater_id)
        # Any other pair is new to this rater: the selection never picks a generation pair
        # they were sent or voted on, so it has no messages or votes of theirs yet.
        ref = message_ref(services, platform, user_id, got.pair.id)
        targets: list[str | None] = [None]
        targets += ["A", "B"] if services.reactions.score_mode else []
        rounds.record_rater_messages(
            s, got.pair.id, platform, ref,
            [(message_ref(services, platform, user_id, got.pair.id, t), t) for t in targets],
            got.rater_id)  # fmt: skip
        return got, view, (None, {}, 0)

    got, view, (choice, scores, version) = await posting.db(services, work)
    return RaterPair(got.round_id, got.done, got.quota, got.why, view, choice, scores, version,
                     rounds=got.rounds)  # fmt: skip


async def shown_pair(services: Services, port: ChatPort, user_id: str,
                     pair_id: int) -> RaterPair | None:  # fmt: skip
    """A pair this rater was shown (to change or retract their vote), or None."""
    platform = port.platform
    ref = message_ref(services, platform, user_id, pair_id)
    legend = posting.legend(services, port)

    def work(s: Session) -> RaterPair | None:
        msg = s.exec(select(PairMessage).where(PairMessage.platform == platform,
                                               PairMessage.message_ref == ref)).first()  # fmt: skip
        pair = s.get(RatingPair, pair_id)
        if msg is None or pair is None or msg.pair_id != pair_id or msg.rater_id is None:
            return None
        rnd = s.get(RatingRound, pair.round_id)
        view = rounds.pair_view(s, pair, posting.masker(services, s), legend)
        choice, scores, version = _current(s, pair_id, msg.rater_id)
        return RaterPair(pair.round_id, 0, 0, "shown", view, choice, scores, version,
                         round_open=rnd is not None and rnd.status == "open")  # fmt: skip

    result: RaterPair | None = await posting.db(services, work)
    return result


def vote(services: Services, platform: str, user_id: str, pair_id: int, *,
         choice: str | None = None, target: str | None = None, score: int | None = None,
         added: bool = True, version: int = 0) -> Vote:  # fmt: skip
    """A button press as a `Vote` on the 'message' that showed the pair (or, for a score,
    response `target`'s score message) to this rater. The event key names the submission
    (its `version`: the rater's latest event on the pair when the page was drawn), but the
    writer decides what a duplicate is (the choice the rater already has), so a re-sent vote
    is one row whatever `version` the client sends; a change of mind is a new row."""
    if target is None:
        if choice not in CHOICES:
            raise SlamError(f"a vote is one of {', '.join(CHOICES)}")
        what = choice
    else:
        if target not in ("A", "B") or score is None or not 0 <= score <= 10:
            raise SlamError("a score is 0 to 10 for response A or B")
        what = f"{target}{score}"
        if not services.reactions.score_mode:  # as a keycap reaction: no score outside it
            score = None
    channel = message_ref(services, platform, user_id, pair_id)
    ref = message_ref(services, platform, user_id, pair_id, target)
    key = f"{platform}:{ref}:{version}:{'add' if added else 'rm'}:{what}"
    return Vote(platform, user_id, channel, ref, added, key,
                choice if target is None else None, score, replayable=False)  # fmt: skip


def comment(services: Services, platform: str, user_id: str, pair_id: int, text: str,
            version: int = 0) -> Comment:  # fmt: skip
    """The page's comment field as a `Comment` on the 'message' that showed the pair to this
    rater; the same text sent again from the same page is one comment."""
    import hashlib

    ref = message_ref(services, platform, user_id, pair_id)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return Comment(platform, user_id, ref, ref, text, f"{platform}:{ref}:{version}:c:{digest}")


def describe(outcome: VoteOutcome, choice: str | None = None) -> str:
    """What happened to a vote, for the rater."""
    what = LABELS.get(choice or "", choice or "")
    return {
        "recorded": f"Saved: {what}." if what else "Saved.",
        "retracted": "Your vote was retracted.",
        "duplicate": "Already saved (that was the same vote again).",
        "ignored": "There was no vote of yours to retract.",
        "closed": "This round is closed: votes on it no longer count.",
        "rate_limited": "You are voting too fast; that vote was not saved. Try again later.",
        "not_a_pair": "That pair was not shown to you.",
        "not_a_vote": "That is not a vote.",
    }.get(outcome.status, outcome.status)

