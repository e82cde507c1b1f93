"""The generation summary table: per model, samples, tokens, latency percentiles, speed, errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from storage.db import session_scope
from storage.models import Generation, ModelRecord


@dataclass(frozen=True)
class ModelRunSummary:
    model: str
    quantization: str
    reference: bool
    samples: int
    errors: int
    mean_tokens: float | None
    p50_latency_s: float | None
    p95_latency_s: float | None
    p50_ttft_s: float | None
    tokens_per_s: float | None


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarize(engine: Engine, run_date: date | None = None) -> list[ModelRunSummary]:
    """Summarize stored generations (of one day, or all) per model."""
    with session_scope(engine) as s:
        q = select(Generation, ModelRecord).join(
            ModelRecord, col(Generation.model_id) == col(ModelRecord.id)
        )
        if run_date is not None:
            q = q.where(Generation.run_date == run_date)
        rows = s.exec(q).all()
    by_model: dict[str, list[Generation]] = {}
    meta: dict[str, ModelRecord] = {}
    for gen, model in rows:
        by_model.setdefault(model.name, []).append(gen)
        meta[model.name] = model
    out = []
    for name in sorted(by_model, key=lambda n: (not meta[n].is_reference, n)):
        gens = by_model[name]
        ok = [g for g in gens if g.error is None]
        lat = [g.latency_s for g in ok if g.latency_s is not None]
        toks = [g.output_tokens for g in ok if g.output_tokens is not None]
        ttft = [g.ttft_s for g in ok if g.ttft_s is not None]
        speed = sum(toks) / sum(lat) if toks and lat and sum(lat) > 0 else None
        out.append(
            ModelRunSummary(
                model=name,
                quantization=meta[name].quantization,
                reference=meta[name].is_reference,
                samples=len(gens),
                errors=len(gens) - len(ok),
                mean_tokens=float(np.mean(toks)) if toks else None,
                p50_latency_s=_pct(lat, 50),
                p95_latency_s=_pct(lat, 95),
                p50_ttft_s=_pct(ttft, 50),
                tokens_per_s=speed,
            )
        )
    return out


def render_table(rows: list[ModelRunSummary], title: str = "Generation summary") -> object:
    """A rich Table for the terminal."""
    from rich.table import Table

    def f(v: float | None, fmt: str) -> str:
        return "—" if v is None else format(v, fmt)

    table = Table(title=title)
    for name, justify in [
        ("model", "left"),
        ("quant", "left"),
        ("n", "right"),
        ("tokens", "right"),
        ("p50 s", "right"),
        ("p95 s", "right"),
        ("TTFT s", "right"),
        ("tok/s", "right"),
        ("err", "right"),
    ]:
        table.add_column(name, justify=justify, no_wrap=name == "model")  # type: ignore[arg-type]
    table.caption = "n: responses · tokens: mean output tokens · p50/p95: request latency"
    for r in rows:
        table.add_row(
            r.model + (" *ref" if r.reference else ""),
            r.quantization,
            str(r.samples),
            f(r.mean_tokens, ".0f"),
            f(r.p50_latency_s, ".2f"),
            f(r.p95_latency_s, ".2f"),
            f(r.p50_ttft_s, ".3f"),
            f(r.tokens_per_s, ".1f"),
            str(r.errors),
        )
    return table
