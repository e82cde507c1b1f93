"""Platform-neutral events. Adapters translate Slack/Discord/console/web input into these and
render `Reply` back; everything between (dispatcher, commands, votes) never sees a chat SDK."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Command:
    """`/slam <name> <args…>` typed by `user_id` in `channel`."""

    platform: str
    user_id: str
    channel: str
    text: str = ""

    @property
    def words(self) -> list[str]:
        try:
            return shlex.split(self.text)
        except ValueError:  # an unbalanced quote: fall back to plain splitting
            return self.text.split()

    @property
    def name(self) -> str:
        return self.words[0].lower() if self.words else "help"

    @property
    def args(self) -> list[str]:
        return self.words[1:]


@dataclass(frozen=True)
class Reaction:
    """A reaction added to or removed from a message, as the platform reported it.

    `event_key` is unique per platform event (Slack: the event id, so retries collide).
    """

    platform: str
    user_id: str
    channel: str
    message_ref: str
    reaction: str
    added: bool
    event_key: str


@dataclass(frozen=True)
class Vote:
    """A vote as every adapter hands it to the dispatcher: a pairwise `choice` (A | B | tie |
    both_bad) or a 0–10 `score`, added or retracted (`added`), on the message that showed
    the pair to the rater (`channel`, `message_ref`: the pair's message for a choice, one
    response's score message for a score). The vote writer maps the message to its pair and
    side in one batched lookup, so a message that shows no pair is refused there.

    Chat reactions become votes in one place (`bot.reactions.ReactionMap.vote`); pages and
    typed input build them directly. A reaction may read as both (a keycap configured as a
    choice): the message decides which counts. `event_key` is unique per platform event, so
    a redelivered vote is recognised and never counted twice."""

    platform: str
    user_id: str
    channel: str
    message_ref: str
    added: bool
    event_key: str
    choice: str | None = None
    score: int | None = None
    # False for pull adapters (the web): a request is never redelivered, and its event key
    # carries a client's nonce, so only votes that change something are stored.
    replayable: bool = True


@dataclass(frozen=True)
class Comment:
    """A rater's own words on a pair, as every adapter hands them to the dispatcher: a thread
    reply to the pair's message (Slack), a reply to it (Discord), the text field under the
    buttons (web) or a `# …` line after the vote (console). `channel` and `message_ref` name
    the message that showed the pair, as for a `Vote`; `event_key` is unique per platform
    event, so a redelivered message is stored once."""

    platform: str
    user_id: str
    channel: str
    message_ref: str
    text: str
    event_key: str


@dataclass(frozen=True)
class PairView:
    """What raters see of a pair: neutral labels, no model names."""

    pair_id: int
    round_id: int
    context: str
    response_a: str
    response_b: str
    legend: str
    masked: bool = False


@dataclass
class Reply:
    """A platform-neutral answer: text, optional titled fields, files (charts) and a pair."""

    text: str
    title: str | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    ephemeral: bool = False
    pair: PairView | None = None
    score_for: tuple[int, str] | None = None  # (pair id, 'A'|'B'): a score-mode prompt
    ok: bool = True

    def plain(self) -> str:
        """The reply as plain text (console, fallbacks, notifications)."""
        parts = [f"*{self.title}*"] if self.title else []
        if self.pair is not None:
            parts.append(render_pair_text(self.pair))
        if self.text:
            parts.append(self.text)
        parts += [f"{k}: {v}" for k, v in self.fields]
        # Where each chart was written, in full: a terminal or a log reader opens it from there.
        parts += [f"[chart {name}: {path}]" for name, path in self.files.items()]
        return "\n".join(parts)


def render_pair_text(view: PairView) -> str:
    """Plain-text pair message shared by the console and notification fallbacks."""
    return (
        f"Pair {view.pair_id} (round {view.round_id})\n"
        f"Context: {view.context}\n\n"
        f"Response A:\n{view.response_a}\n\n"
        f"Response B:\n{view.response_b}\n\n"
        f"{view.legend}"
    )


@dataclass(frozen=True)
class Posted:
    """Where an adapter put a message (the channel may be a DM the platform opened)."""

    channel: str
    ref: str
