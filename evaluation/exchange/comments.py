"""`slam export comments`: every comment row (edits included: `latest` marks the one that
stands), with the pair's models, the rater's pseudonym and the vote it came with."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from evaluation.exchange.pseudonyms import Pseudonyms
from evaluation.exchange.tables import Window, utc
from evaluation.human import load_comments
from storage.models import Rater

COMMENT_COLUMNS = [
    "comment_id", "created_at", "pair_id", "pair_kind", "rater", "platform", "text", "latest",
    "edits", "model_a", "model_b", "vote", "blind",
]  # fmt: skip


def comment_rows(session: Session, window: Window, names: Pseudonyms) -> list[dict[str, Any]]:
    raters = {r.id: names.of(r.platform, r.user_hash) for r in session.exec(select(Rater))}
    out = []
    for c in sorted(load_comments(session, window.scope, latest_only=False), key=lambda c: c.id):
        if not window.keeps(c.created_at):
            continue
        out.append({
            "comment_id": c.id, "created_at": utc(c.created_at), "pair_id": c.pair_id,
            "pair_kind": c.pair_kind, "rater": raters.get(c.rater_id, ""),
            "platform": c.platform, "text": c.text, "latest": c.latest, "edits": c.edits,
            "model_a": c.model_a, "model_b": c.model_b, "vote": c.choice, "blind": c.blind,
        })  # fmt: skip
    return out
