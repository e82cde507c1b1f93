"""The features as the bot sees them (core.features: a feature is a prompt, its inputs and the
models that answer it): which one a command names, what its results are read with, where its
pairs are posted.

With one feature configured the bot behaves as before features existed: its results are
read with `feature=None` (everything the database holds, evaluation.results), commands take
no feature argument and replies name no feature. With several, each result is read for one
feature and replies say which.
"""

from __future__ import annotations

import re

from core.config import SlamConfig
from core.features import Feature, features


def several(cfg: SlamConfig) -> bool:
    """True when the config describes more than one feature."""
    return len(features(cfg)) > 1


def results_feature(cfg: SlamConfig, name: str | None) -> str | None:
    """The `feature=` to read `name`'s results with: None with a single feature (all the
    database holds, exactly what the bot read before features), else the feature's name
    (None: the first)."""
    if not several(cfg):
        return None
    return name if name is not None else features(cfg)[0].name


def find(cfg: SlamConfig, text: str) -> Feature | None:
    """The feature a command argument names: its exact name, else the one that matches it
    ignoring case; None when no feature is called that."""
    every = features(cfg)
    exact = [f for f in every if f.name == text]
    if exact:
        return exact[0]
    folded = [f for f in every if f.name.lower() == text.lower()]
    return folded[0] if len(folded) == 1 else None


def names_text(cfg: SlamConfig) -> str:
    return ", ".join(f.name for f in features(cfg))


def unknown(cfg: SlamConfig, text: str) -> str:
    """The reply to a name that is no feature: a short plain echo and the features."""
    shown = re.sub(r"[^A-Za-z0-9_.-]", "", text)[:40] or "?"
    return f"Unknown feature `{shown}`; features: {names_text(cfg)}"


def channel(cfg: SlamConfig, feat: Feature | None) -> str:
    """Where a feature's round posts its pairs: its own `channel`, else `[chat].channel`."""
    return (feat.channel if feat is not None else None) or cfg.chat.channel
