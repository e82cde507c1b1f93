"""The models' recent health, as the alerts read it: availability and p95 latency over each
model's last N measure-phase probes (`[alerts] availability_probes`), whatever their age.

Unlike the windowed probe datasets (evaluation.results.perf), this is "the last N requests":
one bad hour shows at once, and clears as soon as N good probes follow."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select

from evaluation.results.datasets import PROBES, DatasetBase, dataset, fetch_rows
from storage.models import Probe

_P = Probe.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ProbeHealth:
    """One model's last `n` measure probes: how many succeeded, their p95 latency."""

    model: str
    n: int
    ok: int
    p95_s: float | None

    @property
    def availability(self) -> float:
        return self.ok / self.n if self.n else 0.0


class HealthData(DatasetBase):
    """The health dataset of `Results` (mixed into evaluation.results.service.Results)."""

    @dataset(reads=PROBES, shared=True)
    def recent_health(self) -> dict[str, ProbeHealth]:
        """model -> its last `[alerts] availability_probes` measure probes' health."""
        n = self.cfg.alerts.availability_probes
        ranked = select(
            _P.model_id, _P.ok, _P.latency_s,
            func.row_number().over(partition_by=_P.model_id,
                                   order_by=(_P.started_at.desc(), _P.id.desc())).label("k"),
        ).where(_P.phase == "measure")  # fmt: skip
        if self.as_of is not None:
            ranked = ranked.where(_P.started_at < self.as_of)
        sub = ranked.subquery()
        q = select(sub.c.model_id, sub.c.ok, sub.c.latency_s).where(sub.c.k <= n)
        rows: dict[int, list[tuple[bool, float | None]]] = {}
        for mid, ok, latency in fetch_rows(self.engine, q):
            rows.setdefault(int(mid), []).append((bool(ok), latency))
        out = {}
        for mid, probes in rows.items():
            lat = [x for ok, x in probes if ok and x is not None]
            p95 = float(np.percentile(lat, 95)) if lat else None
            name = self.name(mid)
            out[name] = ProbeHealth(name, len(probes), sum(ok for ok, _ in probes), p95)
        return out
