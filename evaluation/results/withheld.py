"""Answers withheld from raters: those that still name a model once masked (core.masking:
a name spelled out letter by letter or cut by markup). The rating rounds leave them out of
every pair (bot.rating.rounds), as Chatbot Arena drops battles where identity leaked; this
counts them per model (`Results.withheld`; leaderboard.withheld_text says how many and
whose) with the same masker (the configured, stored and reported names:
storage.repo.model_name_hints)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from core.config import SlamConfig
from core.masking import Masker
from storage.models import Generation, ModelRecord
from storage.repo import model_name_hints

GT = Generation.__table__  # type: ignore[attr-defined]
MT = ModelRecord.__table__  # type: ignore[attr-defined]
G, M = GT.c, MT.c


def withheld_answers(session: Session, cfg: SlamConfig, conditions: list[Any]) -> dict[str, int]:
    """Model name -> how many of its successful answers (under `conditions`: the feature and
    slice) no pair may show."""
    masker = Masker.for_config(cfg, model_name_hints(session))
    q = (select(M.name, G.text).select_from(GT).join(MT, M.id == G.model_id)
         .where(G.error.is_(None), *conditions))  # fmt: skip
    counts: Counter[str] = Counter()
    for name, text in session.connection().execute(q):
        if text and text.strip() and masker.leaks(text):
            counts[name] += 1
    return dict(sorted(counts.items()))

