"""Reaction names ↔ votes. Config uses Slack short names (`a`, `b`, `handshake`, `-1`);
Discord and the console see unicode emoji, so both spellings map to the same vote."""

from __future__ import annotations

import string
from dataclasses import dataclass

from bot.events import Reaction, Vote
from core.config import ChatConfig

# Slack short name -> unicode, for the names the bot uses by default (and common aliases).
UNICODE: dict[str, str] = {
    "a": "🅰️",
    "b": "🅱️",
    "handshake": "🤝",
    "-1": "👎",
    "thumbsdown": "👎",
    "+1": "👍",
    "thumbsup": "👍",
    "zero": "0️⃣",
    "one": "1️⃣",
    "two": "2️⃣",
    "three": "3️⃣",
    "four": "4️⃣",
    "five": "5️⃣",
    "six": "6️⃣",
    "seven": "7️⃣",
    "eight": "8️⃣",
    "nine": "9️⃣",
    "keycap_ten": "🔟",
}
KEYCAPS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SCORE_NAMES: dict[str, int] = {**{n: i for i, n in enumerate(KEYCAPS)}, "keycap_ten": 10}


def _strip(s: str) -> str:
    # Clients differ in sending the emoji variation selector (U+FE0F): compare without it.
    return s.replace("\ufe0f", "")


_NAME_OF_UNICODE: dict[str, str] = {}
for _name, _uni in UNICODE.items():
    _NAME_OF_UNICODE.setdefault(_strip(_uni), _name)


_TRIM = string.whitespace + ":"


def canonical(reaction: str) -> str:
    """A platform's reaction as a Slack-style short name (skin tones and colons dropped;
    aliases of one emoji, like `thumbsdown` and `-1` or 👎, become the same name)."""
    r = reaction.strip(_TRIM).split("::", 1)[0].strip(_TRIM)
    if r in UNICODE:
        r = UNICODE[r]
    return _NAME_OF_UNICODE.get(_strip(r), r)


def to_unicode(name: str) -> str:
    """The emoji to show or add on platforms that use unicode (Discord, console)."""
    return UNICODE.get(name, name)


@dataclass(frozen=True)
class ReactionMap:
    """Which reactions are votes, from `[chat.reactions]` and `score_mode`."""

    choices: dict[str, str]  # canonical name -> A | B | tie | both_bad
    score_mode: bool

    @classmethod
    def from_config(cls, chat: ChatConfig) -> ReactionMap:
        r = chat.reactions
        mapping = {canonical(r.a): "A", canonical(r.b): "B"}
        mapping[canonical(r.tie)] = "tie"
        mapping[canonical(r.both_bad)] = "both_bad"
        return cls(choices=mapping, score_mode=chat.score_mode)

    @property
    def seeds(self) -> list[str]:
        """Reactions the bot adds to each pair message so raters only have to click."""
        return list(self.choices)

    def pairwise(self, reaction: str) -> str | None:
        return self.choices.get(canonical(reaction))

    def score(self, reaction: str) -> int | None:
        if not self.score_mode:
            return None
        return SCORE_NAMES.get(canonical(reaction))

    def vote(self, reaction: Reaction) -> Vote | None:
        """The vote a reaction casts, or None when it is no vote (most reactions are not):
        its pairwise reading and, in score mode, its score reading (the message it is on
        decides which counts: bot.rating.writer). The one place a reaction becomes a vote."""
        choice, score = self.pairwise(reaction.reaction), self.score(reaction.reaction)
        if choice is None and score is None:
            return None
        return Vote(reaction.platform, reaction.user_id, reaction.channel, reaction.message_ref,
                    reaction.added, reaction.event_key, choice, score)  # fmt: skip

    def legend(self, unicode: bool = False) -> str:
        """How to vote, in the platform's emoji spelling."""

        def show(name: str) -> str:
            return to_unicode(name) if unicode else f":{name}:"

        labels = {"A": "A is better", "B": "B is better", "tie": "tie", "both_bad": "both bad"}
        text = "React " + ", ".join(f"{show(n)} {labels[c]}" for n, c in self.choices.items())
        if self.score_mode:
            text += f". Score each response {show('zero')}–{show('keycap_ten')} on its own message."
        return text
