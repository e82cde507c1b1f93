"""Console adapter: the same rating flow in a terminal (`slam bot console`), drivable from a
list of inputs so tests and the demo rate pairs without a person or a chat platform."""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy.engine import Engine

from bot.dispatcher import Dispatcher
from bot.events import Command, Posted, Reaction, Reply, render_pair_text
from bot.reactions import KEYCAPS
from bot.rounds import open_round
from core.config import SlamConfig
from storage.db import session_scope

USER = "console"
BOT = "slam-bot"
WORDS = {"a": "A", "b": "B", "t": "tie", "tie": "tie", "x": "both_bad", "bad": "both_bad",
         "both bad": "both_bad", "both_bad": "both_bad"}  # fmt: skip
HELP = (
    "Vote: a (A better), b (B better), tie, bad (both bad); in score mode also 'A 7' / 'B 4'"
    " and n for the next pair. u = undo your vote, q = quit, '/slam <command>' runs a command."
)


@dataclass
class ConsolePort:
    """Prints messages; remembers where pairs and score prompts were 'posted'."""

    out: TextIO
    platform: str = "console"
    unicode_emoji: bool = True
    count: int = 0
    current: tuple[int, Posted] | None = None
    score_refs: dict[tuple[int, str], Posted] = field(default_factory=dict)

    async def post(
        self, reply: Reply, *, channel: str | None = None, dm_user: str | None = None
    ) -> Posted:
        self.count += 1
        where = Posted(channel=f"dm:{dm_user}" if dm_user else (channel or "console"),
                       ref=f"m{self.count}")  # fmt: skip
        if reply.score_for is not None:
            self.score_refs[reply.score_for] = where
        elif reply.pair is not None and dm_user:
            self.current = (reply.pair.pair_id, where)
            self.out.write("\n" + render_pair_text(reply.pair) + "\n")
        elif reply.pair is not None:
            self.out.write(f"(pair {reply.pair.pair_id} posted to #{channel})\n")
        else:
            self.out.write(reply.plain() + "\n")
        return where

    async def add_reactions(self, posted: Posted, names: list[str]) -> None:
        return None


@dataclass
class ConsoleSummary:
    recorded: int = 0
    pairs: set[int] = field(default_factory=set)
    outcomes: list[str] = field(default_factory=list)


def _lines(inputs: Iterable[str] | None) -> Iterator[str | None]:
    if inputs is not None:
        yield from inputs
        return
    while True:
        try:
            yield input("vote> ")
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
    """Rate pairs until the set is done, the inputs run out or 'q'. Opens a round if none is."""
    out = out or sys.stdout
    d = Dispatcher(engine, cfg, self_ids={BOT}, admins={USER}, salt=salt, rng=rng)
    port = ConsolePort(out)
    summary = ConsoleSummary()
    by_choice = {c: name for name, c in d.reactions.choices.items()}
    last: list[tuple[int, Posted, str]] = []  # your pairwise votes, newest last, for undo

    async def say(text: str) -> None:
        reply = await d.handle_command(Command("console", USER, "console", text), port)
        if reply is not None:
            out.write(reply.plain() + "\n")

    async def react(pair_id: int, posted: Posted, name: str, added: bool) -> str:
        r = Reaction("console", USER, posted.channel, posted.ref, name, added,
                     f"console:{uuid.uuid4().hex}")  # fmt: skip
        outcome = await d.handle_reaction(r)
        summary.outcomes.append(outcome.status)
        if outcome.counted and added:
            summary.recorded += 1
            summary.pairs.add(pair_id)
        return outcome.status

    def has_open_round() -> bool:
        with session_scope(engine) as s:
            return open_round(s) is not None

    try:
        if start_round and not await asyncio.to_thread(has_open_round):
            await say("round start")
        lines = _lines(inputs)
        out.write(HELP + "\n")
        while True:
            port.current = None
            await say("rate")
            if port.current is None:
                break
            pair_id, posted = port.current
            while True:
                line = next(lines, None)
                if line is None or line.strip().lower() in ("q", "quit", "exit"):
                    return summary
                text = line.strip()
                low = text.lower()
                if low.startswith(("/slam", "slam ")):
                    await say(text.split(None, 1)[1] if " " in text else "help")
                    continue
                if low in ("u", "undo"):  # retract your latest vote (this pair or an earlier one)
                    status = await react(*last.pop(), False) if last else "nothing to undo"
                    out.write(f"undo: {status}\n")
                    continue
                if low in WORDS:
                    name = by_choice[WORDS[low]]
                    status = await react(pair_id, posted, name, True)
                    last.append((pair_id, posted, name))
                    out.write(f"vote {WORDS[low]}: {status}\n")
                    if not d.reactions.score_mode:
                        break
                    continue
                parts = low.replace("=", " ").split()
                if (d.reactions.score_mode and len(parts) == 2 and parts[0] in ("a", "b")
                        and parts[1].isdigit() and 0 <= int(parts[1]) <= 10):  # fmt: skip
                    target = parts[0].upper()
                    where = port.score_refs.get((pair_id, target))
                    if where is not None:
                        n = int(parts[1])
                        name = "keycap_ten" if n == 10 else KEYCAPS[n]
                        status = await react(pair_id, where, name, True)
                        out.write(f"score {target}={n}: {status}\n")
                    continue
                if low in ("n", "next") and d.reactions.score_mode:
                    break
                out.write(HELP + "\n")
    finally:
        await d.aclose()
    return summary
