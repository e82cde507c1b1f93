"""Small, transaction-friendly helpers shared by every area (get-or-create and lookups)."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from core.config import ModelSpec
from core.masking import reported_names
from storage.models import (
    Experiment,
    Generation,
    ModelRecord,
    ModelVersion,
    Prompt,
    UserContext,
)


def ensure_experiment(session: Session, name: str, prompt_template: str) -> Experiment:
    exp = session.exec(select(Experiment).where(Experiment.name == name)).first()
    if exp is None:
        exp = Experiment(name=name, prompt_template=prompt_template)
        session.add(exp)
        session.flush()
    elif exp.prompt_template != prompt_template:
        exp.prompt_template = prompt_template
        session.add(exp)
    return exp


def ensure_model(session: Session, spec: ModelSpec) -> ModelRecord:
    """Record the model as configured now (backend, id, quantization and hardware may change)."""
    rec = session.exec(select(ModelRecord).where(ModelRecord.name == spec.name)).first()
    if rec is None:
        rec = ModelRecord(name=spec.name, backend=spec.backend, model_id=spec.model)
    rec.backend = spec.backend
    rec.model_id = spec.model
    rec.host = spec.host
    rec.quantization = spec.quantization
    rec.hardware = spec.hardware
    rec.is_reference = spec.reference
    session.add(rec)
    session.flush()
    return rec


def ensure_user_context(
    session: Session, key: str, name: str, data: dict[str, object]
) -> UserContext:
    row = session.exec(select(UserContext).where(UserContext.key == key)).first()
    payload = json.dumps(data, sort_keys=True, ensure_ascii=False)
    if row is None:
        row = UserContext(key=key, name=name, data_json=payload)
    else:
        row.name, row.data_json = name, payload
    session.add(row)
    session.flush()
    return row


def ensure_input(
    session: Session,
    experiment_id: int,
    key: str,
    name: str,
    data: dict[str, object],
    slice_: str | None = None,
) -> UserContext:
    """A feature's input by its id within the feature (the row is updated to what the inputs
    file says now)."""
    uc = UserContext
    q = select(uc).where(uc.experiment_id == experiment_id, uc.key == key)
    row = session.exec(q).first()
    payload = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    if row is None:
        row = UserContext(experiment_id=experiment_id, key=key, name=name, data_json=payload,
                          slice=slice_)  # fmt: skip
    else:
        row.name, row.data_json, row.slice = name, payload, slice_
    session.add(row)
    session.flush()
    return row


def ensure_prompt(
    session: Session, experiment_id: int, user_context_id: int, text: str, text_hash: str
) -> Prompt:
    q = select(Prompt).where(
        Prompt.experiment_id == experiment_id,
        Prompt.user_context_id == user_context_id,
        Prompt.text_hash == text_hash,
    )
    row = session.exec(q).first()
    if row is None:
        row = Prompt(
            experiment_id=experiment_id,
            user_context_id=user_context_id,
            text=text,
            text_hash=text_hash,
        )
        session.add(row)
        session.flush()
    return row


def existing_generation(
    session: Session, prompt_id: int, model_id: int, run_date: date, sample_index: int
) -> Generation | None:
    q = select(Generation).where(
        Generation.prompt_id == prompt_id,
        Generation.model_id == model_id,
        Generation.run_date == run_date,
        Generation.sample_index == sample_index,
    )
    return session.exec(q).first()


def model_names(session: Session) -> dict[int, str]:
    """Model id -> name, for reports."""
    return {m.id: m.name for m in session.exec(select(ModelRecord)).all() if m.id is not None}


def try_insert(session: Session, row: object) -> bool:
    """Insert in a savepoint; False when a unique constraint says it is already there."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
        return True
    except IntegrityError:
        return False


def ensure_model_version(
    session: Session, model_id: int, identity: str, label: str, details_json: str
) -> int:
    """The id of a model's version by its identity key, inserted the first time it is seen
    (two writers racing for one new version both get the one row)."""

    def find() -> int | None:
        q = select(ModelVersion.id).where(
            ModelVersion.model_id == model_id, ModelVersion.identity == identity
        )
        return session.exec(q).first()

    found = find()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            row = ModelVersion(model_id=model_id, identity=identity, label=label[:200],
                               details_json=details_json)  # fmt: skip
            session.add(row)
    except IntegrityError:
        found = find()
        assert found is not None
        return found
    assert row.id is not None
    return row.id


_HINTS: dict[str, tuple[tuple[object, ...], list[str]]] = {}


def model_name_hints(session: Session) -> list[str]:
    """Every name a stored model goes by: its configured name and id, and what its sources
    reported (core.masking.reported_names over `generation.meta_json` and the model versions'
    details: Ollama's family, the OpenAI response's `model`). The reported names are re-read
    only when generations with metadata or model versions were added."""
    recs = session.exec(select(ModelRecord)).all()
    names = sorted({n for m in recs for n in (m.name, m.model_id) if n})
    has_meta = col(Generation.meta_json).is_not(None)
    version = tuple(session.exec(
        select(func.count(), func.max(Generation.id)).where(has_meta)
    ).one())  # fmt: skip
    version += tuple(session.exec(select(func.count(), func.max(ModelVersion.id))).one())
    bind = session.get_bind()
    where = str(getattr(bind, "url", id(bind)))
    cached = _HINTS.get(where)
    if cached is None or cached[0] != version:
        seen: set[str] = set()
        rows = session.exec(select(Generation.meta_json).where(has_meta).distinct())
        for meta in rows:
            seen.update(reported_names(meta))
        for details in session.exec(select(ModelVersion.details_json).distinct()):
            seen.update(reported_names(details))  # what a backend said identified the model
        cached = (version, sorted(seen))
        _HINTS[where] = cached
    return names + [n for n in cached[1] if n not in names]
