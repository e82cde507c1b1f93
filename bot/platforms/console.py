"""Console adapter: the same rating flow in a terminal (`slam bot console`), drivable from a
list of inputs so tests and the demo rate pairs without a person or a chat platform."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import signal
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy.engine import Engine

from bot.commands import run_command
from bot.dispatcher import Dispatcher
from bot.events import Command, Comment, Posted, Reply, Vote, render_pair_text
from bot.rating import open_round
from bot.services import Capabilities
from core.config import SlamConfig
from core.errors import SlamError, short
from storage.db import session_scope

log = logging.getLogger(__name__)
CONSOLE = Capabilities(channel=True, dms=True, ephemeral=False, uploads=False, votes="text")
USER = "console"
BOT = "slam-bot"
WORDS = {"a": "A", "b": "B", "t": "tie", "tie": "tie", "x": "both_bad", "bad": "both_bad",
         "both bad": "both_bad", "both_bad": "both_bad"}  # fmt: skip
HELP = (
    "Vote: a (A better), b (B better), tie, bad (both bad); in score mode also 'A 7' / 'B 4'"
    " and n for the next pair. u = undo your vote, q = quit, '/slam <command>' runs a command;"
    " 'b # why' votes with a comment; a '# why' line after a vote comments on that pair."
)


@dataclass
class ConsolePort:
    """Prints messages; remembers where pairs and score prompts were 'posted'."""

    out: TextIO
    platform: str = "console"
    unicode_emoji: bool = True
    capabilities: Capabilities = field(default_factory=lambda: CONSOLE)
    count: int = 0
    # Message references are unique across sessions: another console run posts to the same
    # channels of the same database, and a reference names one message for the vote writer.
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    current: tuple[int, Posted] | None = None
    score_refs: dict[tuple[int, str], Posted] = field(default_factory=dict)

    async def post(
        self, reply: Reply, *, channel: str | None = None, dm_user: str | None = None
    ) -> Posted:
        self.count += 1
        where = Posted(channel=f"dm:{dm_user}" if dm_user else (channel or "console"),
                       ref=f"{self.session}-m{self.count}")  # fmt: skip
        if reply.score_for is not None:
            self.score_refs[reply.score_for] = where
        elif reply.pair is not None and dm_user:
            self.current = (reply.pair.pair_id, where)
            self.out.write("\n" + render_pair_text(reply.pair) + "\n")
        elif reply.pair is not None:
            self.out.write(f"(pair {reply.pair.pair_id} posted to #{channel})\n")
        else:  # a terminal shows where each chart was written (Reply.plain keeps the path)
            self.out.write(reply.plain() + "\n")
        return where

    async def add_reactions(self, posted: Posted, names: list[str]) -> None:
        return None

    async def send_reply(self, reply: Reply, channel: str, user: str) -> None:
        await self.post(reply, channel=channel)


@dataclass
class ConsoleSummary:
    recorded: int = 0
    pairs: set[int] = field(default_factory=set)
    outcomes: list[str] = field(default_factory=list)


def read_line(prompt: str) -> str:
    """input() that Ctrl-C interrupts at once. Under asyncio.run, SIGINT only cancels the
    main task, which cannot happen while the loop is blocked here; so the default handler
    (raise KeyboardInterrupt) is restored for the wait."""
    if threading.current_thread() is not threading.main_thread():
        return input(prompt)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return input(prompt)
    finally:
        signal.signal(signal.SIGINT, previous)


def _lines(inputs: Iterable[str] | None) -> Iterator[str | None]:
    if inputs is not None:
        yield from inputs
        return
    while True:
        try:
            yield read_line("vote> ")
        except EOFError:
            return


async def rate_in_console(
    engine: Engine,
    cfg: SlamConfig,
    inputs: Iterable[str] | None = None,
    out: TextIO | None = None,
    *,
    start_round: bool = True,
    salt: bytes | None = None,
    rng: random.Random | None = None,
) -> ConsoleSummary:
    """Rate pairs until the set is done, the inputs run out or 'q'. Opens a round if none is.

    The console adapter's error boundary: a line that fails prints one `error:` line and
    the console goes on (nothing is recorded for it); Ctrl-C ends it at once."""
    out = out or sys.stdout
    d = Dispatcher(engine, cfg, self_ids={BOT}, admins={USER}, salt=salt, rng=rng)
    port = ConsolePort(out)
    summary = ConsoleSummary()
    last: list[tuple[int, Posted, str]] = []  # your pairwise votes, newest last, for undo

    async def say(text: str) -> None:
        reply = await d.handle_command(Command("console", USER, "console", text), port)
        if reply is not None:
            out.write(reply.plain() + "\n")

    async def next_pair() -> Reply:
        """The next pair, as part of the rating flow rather than a typed command: it does
        not count against the commands-per-minute limit (a quick rater is not flooding)."""
        try:
            return await run_command(d.services, Command("console", USER, "console", "rate"),
                                     port)  # fmt: skip
        except SlamError as exc:
            return Reply(str(exc), ok=False)

    async def cast(pair_id: int, posted: Posted, added: bool, choice: str | None = None,
                   score: int | None = None) -> str:  # fmt: skip
        """A typed vote as a `Vote` on the message it answers (a pair, or a score prompt)."""
        v = Vote("console", USER, posted.channel, posted.ref, added,
                 f"console:{uuid.uuid4().hex}", choice, score)  # fmt: skip
        outcome = await d.handle_vote(v)
        summary.outcomes.append(outcome.status)
        if outcome.counted and added:
            summary.recorded += 1
            summary.pairs.add(pair_id)
        return outcome.status

    def has_open_round() -> bool:
        with session_scope(engine) as s:
            return open_round(s) is not None

    async def handle(text: str, pair_id: int, posted: Posted) -> bool:
        """One input line; True when this pair is done (move on to the next)."""
        low = text.lower()
        if low.startswith(("/slam", "slam ")):
            await say(text.split(None, 1)[1] if " " in text else "help")
            return False
        if text.startswith("#"):  # a comment on the pair you last voted on (else this one)
            pair, message = (last[-1][0], last[-1][1]) if last else (pair_id, posted)
            outcome = await d.handle_comment(Comment("console", USER, message.channel,
                                                     message.ref, text[1:],
                                                     f"console:{uuid.uuid4().hex}"))  # fmt: skip
            out.write(f"comment on pair {pair}: {outcome.message() or outcome.status}\n")
            return False
        if low in ("u", "undo"):  # retract your latest vote (this pair or an earlier one)
            if last:
                pair, message, choice = last.pop()
                status = await cast(pair, message, False, choice)
            else:
                status = "nothing to undo"
            out.write(f"undo: {status}\n")
            return False
        word = low.partition("#")[0]
        if "#" in text and word.strip() in WORDS:  # 'b # A invents a meeting': vote + comment
            await handle(text.split("#", 1)[0].strip(), pair_id, posted)
            await handle("#" + text.split("#", 1)[1], pair_id, posted)
            return not d.services.reactions.score_mode
        if low in WORDS:
            status = await cast(pair_id, posted, True, WORDS[low])
            last.append((pair_id, posted, WORDS[low]))
            out.write(f"vote {WORDS[low]}: {status}\n")
            return not d.services.reactions.score_mode
        parts = low.replace("=", " ").split()
        if (d.services.reactions.score_mode and len(parts) == 2 and parts[0] in ("a", "b")
                and re.fullmatch(r"[0-9]{1,2}", parts[1]) and int(parts[1]) <= 10):  # fmt: skip
            target = parts[0].upper()
            where = port.score_refs.get((pair_id, target))
            if where is not None:
                n = int(parts[1])
                status = await cast(pair_id, where, True, score=n)
                out.write(f"score {target}={n}: {status}\n")
            return False
        if low in ("n", "next") and d.services.reactions.score_mode:
            return True
        out.write(HELP + "\n")
        return False

    try:
        if start_round and not await asyncio.to_thread(has_open_round):
            await say("round start")
        lines = _lines(inputs)
        out.write(HELP + "\n")
        while True:
            port.current = None
            reply = await next_pair()
            if port.current is None:  # every pair rated, no round, or a refusal: say which
                out.write(reply.plain() + "\n")
                break
            out.write(reply.plain() + "\n")
            pair_id, posted = port.current
            while True:
                line = next(lines, None)
                if line is None or line.strip().lower() in ("q", "quit", "exit"):
                    return summary
                try:
                    if await handle(line.strip(), pair_id, posted):
                        break
                except SlamError as exc:
                    out.write(f"error: {exc}\n")
                except Exception as exc:  # the log has the details; the console goes on
                    log.exception("console input %r failed", line[:80])
                    out.write(f"error: {type(exc).__name__}: {short(str(exc), 200)} (nothing "
                              "was recorded for this line)\n")  # fmt: skip
    finally:
        await d.aclose()
    return summary
