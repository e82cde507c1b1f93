"""Each LLM judge's length bias: β_words of the style-controlled Bradley–Terry fit
(evaluation.human.style) on that judge method's verdicts, beside the crowd's own β_words.

The verdicts are the newest answers read as pairwise verdicts (evaluation.auto.verdicts, the
method's registered reader): pairwise, each answered order is a vote; score methods, within one
prompt, day and sample, the higher score wins; the selector, its pick beats every other response
of its set. The fit says how much longer answers win with that judge beyond what the models'
quality explains (judge_trust's "longer wins" share does not separate the two).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from evaluation.auto.judges.tasks import JUDGE_METHODS
from evaluation.auto.verdicts import TIE, Slot, X, newest
from evaluation.human import (
    DEFAULT_POLICY,
    EVERYTHING,
    LengthBias,
    Row,
    Scope,
    StyleResult,
    VotePolicy,
    generation_features,
    length_bias,
    style_control,
    style_ratings,
)
from storage.models import Generation, JudgeScore, ModelRecord


def judge_rows(session: Session, scope: Scope = EVERYTHING) -> dict[str, list[Row]]:
    """'judge / method' -> verdicts as pairwise rows (model A, model B, gen A, gen B,
    choice, 1): the newest parsed answer per question, read by the method's verdict reader
    (pairwise answers: each order one vote; scorer, comparer, comparer-nr: the higher score
    wins within one prompt, day and sample; selector: the pick beats each other response of
    its set). Pairs of two responses of the same model are left out, except pairwise.
    `scope`: only the answers about one feature's (and slice's) generations."""
    jt = JudgeScore.__table__  # type: ignore[attr-defined]
    gt = Generation.__table__  # type: ignore[attr-defined]
    mt = ModelRecord.__table__  # type: ignore[attr-defined]
    j, g, m = jt.c, gt.c, mt.c
    q = (select(j.id, j.judge, j.method, j.generation_id, j.other_generation_id, j.group_key,
                j.order, j.score, g.prompt_id, g.run_date, g.sample_index, m.name)
         .select_from(jt.join(gt, g.id == j.generation_id).join(mt, m.id == g.model_id))
         .where(j.parse_ok.is_(True), j.score.is_not(None), *scope.generation_conditions(g))
         .order_by(j.id))  # fmt: skip
    rows = newest(session.connection().execute(q).all())
    model_of: dict[int, str] = {r.generation_id: r.name for r in rows}
    slot: dict[int, Slot] = {r.generation_id: (r.prompt_id, r.run_date, r.sample_index)
                             for r in rows}  # fmt: skip
    missing = {r.other_generation_id for r in rows if r.method == "pairwise"} - {None}
    missing -= set(model_of)
    if missing:
        q2 = (select(g.id, m.name).select_from(gt.join(mt, m.id == g.model_id))
              .where(g.id.in_(sorted(missing))))  # fmt: skip
        model_of.update(dict(session.connection().execute(q2).all()))
    by_method: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for r in rows:
        by_method[(r.judge, r.method)].append(r)
    out: dict[str, list[Row]] = {}
    for (judge, method), answers in by_method.items():
        entry = JUDGE_METHODS.find(method)
        if entry is None:  # a method no longer registered: no reader
            continue
        votes = []
        choices = {X: "A", TIE: "tie"}
        for x, y, verdict, order in entry.read(answers, slot):
            mx, my = model_of.get(x), model_of.get(y)
            if mx is None or my is None or (order is None and mx == my):
                continue
            votes.append((mx, my, x, y, choices.get(verdict, "B"), 1.0))
        if votes:
            out[f"{judge} / {method}"] = votes
    return out


def judge_length_biases(
    session: Session, ci: float = 0.95, scope: Scope = EVERYTHING
) -> list[LengthBias]:
    """β_words of every judge method, in Elo (they read judge verdicts only, not votes), on
    the answers in `scope`."""
    by_judge = judge_rows(session, scope)
    feats = generation_features(session, [g for rows in by_judge.values() for r in rows
                                          for g in r[2:4]])  # fmt: skip
    return [length_bias(name, style_control(by_judge[name], {}, None, ci, features=feats))
            for name in sorted(by_judge)]  # fmt: skip


def length_biases(
    session: Session,
    policy: VotePolicy = DEFAULT_POLICY,
    ci: float = 0.95,
    crowd: StyleResult | None = None,
) -> list[LengthBias]:
    """β_words of the crowd (the counted votes) and of every judge method, in Elo."""
    crowd = crowd if crowd is not None else style_ratings(session, policy, None, ci)
    return [length_bias("crowd", crowd), *judge_length_biases(session, ci, policy.scope)]
