"""What gets scored: an experiment's successful generations, their prompts and the reference.

A candidate is compared with the reference model's response to the same prompt, day and
sample index. Failed generations (error set) are never scored: their text may be partial.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlmodel import Session, select

from core.errors import SlamError
from storage.models import Experiment, Generation, ModelRecord, Prompt, RatingPair

SlotKey = tuple[int, date, int]  # (prompt id, run date, sample index)


@dataclass(frozen=True)
class GenRow:
    id: int
    model: str
    prompt_id: int
    run_date: date
    sample_index: int
    text: str
    is_reference: bool

    @property
    def slot(self) -> SlotKey:
        return (self.prompt_id, self.run_date, self.sample_index)


@dataclass
class Corpus:
    experiment_id: int
    generations: dict[int, GenRow]
    prompts: dict[int, str]
    reference_model: str | None
    rating_pairs: list[tuple[int, int]] = field(default_factory=list)

    def slots(self) -> dict[SlotKey, list[GenRow]]:
        """Responses grouped by (prompt, day, sample), one per model, ordered by model."""
        out: dict[SlotKey, list[GenRow]] = defaultdict(list)
        for g in self.generations.values():
            out[g.slot].append(g)
        return {k: sorted(v, key=lambda g: g.model) for k, v in sorted(out.items())}

    def candidate_pairs(self) -> list[tuple[GenRow, GenRow]]:
        """(candidate, reference response to the same prompt, day and sample)."""
        pairs: list[tuple[GenRow, GenRow]] = []
        for group in self.slots().values():
            ref = next((g for g in group if g.is_reference), None)
            if ref is not None:
                pairs.extend((g, ref) for g in group if not g.is_reference)
        return pairs


def load_corpus(session: Session, experiment: str) -> Corpus:
    """Load an experiment's successful generations; a clear error when there are none."""
    exp = session.exec(select(Experiment).where(Experiment.name == experiment)).first()
    if exp is None or exp.id is None:
        raise SlamError(
            f"experiment '{experiment}' has no generations in this database yet; "
            "run `slam generate` (or `slam demo`) first"
        )
    models = {m.id: m for m in session.exec(select(ModelRecord)).all()}
    rows = session.exec(
        select(Generation).where(
            Generation.experiment_id == exp.id,
            Generation.error.is_(None),  # type: ignore[union-attr]
        )
    ).all()
    gens = {
        g.id: GenRow(
            id=g.id,
            model=models[g.model_id].name,
            prompt_id=g.prompt_id,
            run_date=g.run_date,
            sample_index=g.sample_index,
            text=g.text,
            is_reference=models[g.model_id].is_reference,
        )
        for g in rows
        if g.id is not None
    }
    prompt_ids = {g.prompt_id for g in gens.values()}
    prompts = {
        p.id: p.text
        for p in session.exec(select(Prompt).where(Prompt.id.in_(prompt_ids))).all()  # type: ignore[union-attr]
        if p.id is not None
    }
    ref = next((m.name for m in models.values() if m.is_reference), None)
    pairs = [
        (p.generation_a_id, p.generation_b_id)
        for p in session.exec(select(RatingPair)).all()
        if p.generation_a_id in gens and p.generation_b_id in gens
        and p.kind != "gold"  # a gold pair checks raters: nothing for the judges to compare
    ]
    return Corpus(exp.id, gens, prompts, ref, pairs)
