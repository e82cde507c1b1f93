"""Showing a blind pair through a port: the masker, the vote legend, and the post itself (the
pair, its score prompts in score mode, the seed reactions, and the `pair_message` rows that map
votes back to the pair). `/slam round start`, `/slam rate` and the scheduler's new round all
post this way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel import Session

from bot.events import PairView, Posted, Reply
from bot.rating import posterior, rounds
from bot.services import ChatPort, Services
from storage.db import session_scope
from storage.models import RatingPair


def db(services: Services, fn: Callable[[Session], Any]) -> Awaitable[Any]:
    """Run `fn` in a session (committed when it returns) on a worker thread."""

    def work() -> Any:
        with session_scope(services.engine) as s:
            return fn(s)

    return asyncio.to_thread(work)


def legend(services: Services, port: ChatPort) -> str:
    return services.reactions.legend(unicode=port.unicode_emoji)


def masker(services: Services, s: Session,
           version: posterior.Version | None = None) -> rounds.Masker:  # fmt: skip
    """Hides every configured, stored and reported model name and id in what raters see
    (`version`: the data version read in this transaction; the masker is kept under it)."""
    return rounds.session_masker(s, services.cfg, version)


async def post_pair(
    services: Services,
    port: ChatPort,
    view: PairView,
    rater_id: int | None = None,
    channel: str | None = None,
    dm_user: str | None = None,
) -> None:
    """Post a pair (plus score prompts in score mode), seed reactions, remember the messages."""
    posted = await port.post(Reply("", pair=view), channel=channel, dm_user=dm_user)
    records: list[tuple[Posted, str | None]] = [(posted, None)]
    await port.add_reactions(posted, services.reactions.seeds)
    if services.reactions.score_mode:
        for target in ("A", "B"):
            text = (f"Pair {view.pair_id}: score *Response {target}* on its own, "
                    f"0 (poor) to 10 (excellent), with a keycap reaction.")  # fmt: skip
            score_prompt = Reply(text, score_for=(view.pair_id, target))
            records.append((await port.post(score_prompt, channel=posted.channel), target))

    def save(s: Session) -> None:
        pair = s.get(RatingPair, view.pair_id)
        assert pair is not None
        for p, target in records:
            rounds.record_message(s, pair, port.platform, p.channel, p.ref, target, rater_id)

    await db(services, save)
