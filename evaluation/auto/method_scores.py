"""Per-model means of every automated method, from the stored judge and similarity rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select as core_select
from sqlalchemy import true
from sqlmodel import Session, select

from evaluation.auto.verdicts import newest
from evaluation.human import Scope
from storage.models import Generation, JudgeScore, ModelRecord, SimilarityScore


def _gen_models(session: Session, experiment_id: int | None, slice: str | None) -> dict[int, str]:
    """generation id -> model name, of one experiment (and slice of its inputs) or all."""
    q = select(Generation.id, ModelRecord.name).join(
        ModelRecord,
        ModelRecord.id == Generation.model_id,  # type: ignore[arg-type]
    )
    g = Generation.__table__.c  # type: ignore[attr-defined]
    q = q.where(*Scope(experiment_id, slice).generation_conditions(g))
    return {gid: name for gid, name in session.exec(q).all() if gid is not None}


def _means(acc: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    return {
        method: {m: sum(v) / len(v) for m, v in sorted(per.items()) if v}
        for method, per in sorted(acc.items())
    }


def judge_method_scores(
    session: Session,
    experiment_id: int | None = None,
    judge: str | None = None,
    slice: str | None = None,
) -> dict[str, dict[str, float]]:
    """method -> model -> mean: scores (0–10), selection rate, or pairwise points (1/½/0),
    over one experiment's generations (and one slice of its inputs) or all of them.

    With several judges in the database and none chosen, keys are 'method@judge'.
    """
    gm = _gen_models(session, experiment_id, slice)
    # Only the columns the means need: no ORM objects (a report reads every verdict).
    j = JudgeScore.__table__.c  # type: ignore[attr-defined]
    q = core_select(
        j.id, j.judge, j.method, j.generation_id, j.other_generation_id, j.group_key, j.order,
        j.score,
    ).where(j.parse_ok == true())
    if judge is not None:
        q = q.where(j.judge == judge)
    verdicts: list[Any] = list(session.connection().execute(q).all())
    # The newest answer per question (evaluation.auto.verdicts): after a template change, the
    # re-asked answer; every selector row, each a pick among its own set.
    rows = newest(r for r in verdicts if r.generation_id in gm)
    rows = [r for r in rows if r.score is not None]
    judges = {r.judge for r in rows}
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        key = r.method if len(judges) <= 1 else f"{r.method}@{r.judge}"
        assert r.generation_id is not None and r.score is not None
        acc[key][gm[r.generation_id]].append(r.score)
        if r.method == "pairwise" and r.other_generation_id in gm:
            acc[key][gm[r.other_generation_id]].append(1.0 - r.score)
    return _means(acc)


def similarity_method_scores(
    session: Session, experiment_id: int | None = None, slice: str | None = None
) -> dict[str, dict[str, float]]:
    """metric -> model -> mean similarity to the reference response (of one experiment's
    generations, and one slice of its inputs, or all)."""
    gm = _gen_models(session, experiment_id, slice)
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for metric, gid, value in session.exec(
        select(SimilarityScore.metric, SimilarityScore.generation_id, SimilarityScore.value)
    ).all():
        if gid in gm:
            acc[metric][gm[gid]].append(value)
    return _means(acc)


@dataclass(frozen=True)
class OrderConsistency:
    """How often the pairwise judge gives the same verdict when the order is swapped."""

    judge: str
    n_pairs: int  # pairs judged in both orders with both answers parsed
    consistent: int
    first_position_rate: float | None  # share of non-tie verdicts for the response shown first

    @property
    def rate(self) -> float | None:
        return self.consistent / self.n_pairs if self.n_pairs else None


def order_consistency(session: Session, judge: str | None = None) -> list[OrderConsistency]:
    """Per judge: order-consistency rate and position bias of its pairwise verdicts."""
    q = select(JudgeScore).where(JudgeScore.method == "pairwise", JudgeScore.parse_ok == True)  # noqa: E712
    if judge is not None:
        q = q.where(JudgeScore.judge == judge)
    by_judge: dict[str, dict[tuple[int | None, int | None], dict[str, float]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    firsts: dict[str, list[int]] = defaultdict(list)
    for r in newest(session.exec(q).all()):
        if r.score is None or r.order not in ("AB", "BA"):
            continue
        by_judge[r.judge][(r.generation_id, r.other_generation_id)][r.order] = r.score
        if r.choice in ("A", "B"):
            firsts[r.judge].append(int(r.choice == "A"))
    out = []
    for j, pairs in sorted(by_judge.items()):
        both = [v for v in pairs.values() if len(v) == 2]
        f = firsts[j]
        out.append(
            OrderConsistency(
                judge=j,
                n_pairs=len(both),
                consistent=sum(v["AB"] == v["BA"] for v in both),
                first_position_rate=sum(f) / len(f) if f else None,
            )
        )
    return out
