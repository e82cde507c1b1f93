"""The daily digest on a seeded database: every number checked against the data.

Day under test: Monday 2024-03-11 in Europe/Berlin (UTC+1), i.e. [2024-03-10 23:00Z,
2024-03-11 23:00Z). The day before is Sunday 2024-03-10.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from bot.ops.digest import build_digest, day_window, render
from core.config import SlamConfig, parse_config
from evaluation.human.ratings import Outcome, bradley_terry
from storage import repo
from storage.db import session_scope
from storage.models import (
    Generation,
    JudgeScore,
    Probe,
    Rater,
    RatingPair,
    RatingRound,
    Vote,
)

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2024, 3, 11)


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def make_cfg() -> SlamConfig:
    return parse_config(
        {
            "models": [
                {
                    "name": "gpt-4",
                    "backend": "openai",
                    "model": "gpt-4",
                    "hardware": "api",
                    "reference": True,
                },
                {
                    "name": "mistral",
                    "backend": "ollama",
                    "model": "mistral:7b",
                    "hardware": "g4dn.xlarge",
                },
                {
                    "name": "gemma",
                    "backend": "llamacpp",
                    "model": "builtin:gemma3-270m",
                    "hardware": "local-cpu",
                },
            ],
            "schedule": {"timezone": "Europe/Berlin"},
            "evaluation": {"bottom_k": 1},
        }
    )


def seed(engine: Engine, cfg: SlamConfig) -> None:
    """Generations, pairs, votes (with a retraction and out-of-window votes), judge scores and
    probes, as storage.models rows."""
    with session_scope(engine) as s:
        exp = repo.ensure_experiment(s, cfg.experiment.name, cfg.experiment.prompt_template)
        uc = repo.ensure_user_context(s, "ada", "Ada", {"name": "Ada"})
        assert exp.id and uc.id
        prompt = repo.ensure_prompt(s, exp.id, uc.id, "Context: Ada", "h0")
        assert prompt.id
        mid: dict[str, int] = {}
        for spec in cfg.models:
            rec = repo.ensure_model(s, spec)
            assert rec.id
            mid[spec.name] = rec.id
        gen: dict[str, int] = {}
        for name, model_id in mid.items():
            ref = name == "gpt-4"
            g = Generation(
                experiment_id=exp.id,
                prompt_id=prompt.id,
                model_id=model_id,
                run_date=date(2024, 3, 10),
                backend="x",
                text=f"pep talk by {name}",
                prompt_tokens=200 if ref else None,
                output_tokens=100 if ref else None,
            )
            s.add(g)
            s.flush()
            assert g.id
            gen[name] = g.id
        rnd = RatingRound(experiment_id=exp.id, run_date=date(2024, 3, 10))
        s.add(rnd)
        s.flush()
        assert rnd.id

        def pair(a: str, b: str) -> int:
            p = RatingPair(round_id=rnd.id, generation_a_id=gen[a], generation_b_id=gen[b])  # type: ignore[arg-type]
            s.add(p)
            s.flush()
            assert p.id
            return p.id

        p1, p2, p3 = pair("gpt-4", "mistral"), pair("mistral", "gemma"), pair("gemma", "gpt-4")
        p4, p5 = pair("gpt-4", "mistral"), pair("gemma", "gpt-4")
        raters = []
        for i in range(4):
            r = Rater(platform="slack", user_hash=f"rater{i + 1}")
            s.add(r)
            s.flush()
            raters.append(r.id)
        r1, r2, r3, r4 = raters
        n = 0

        def vote(
            pair_id: int,
            rater: Any,
            when: str,
            choice: str | None = None,
            action: str = "add",
            target: str | None = None,
            score: int | None = None,
        ) -> None:
            nonlocal n
            n += 1
            s.add(
                Vote(
                    pair_id=pair_id,
                    rater_id=rater,
                    kind="score" if score is not None else "pairwise",
                    action=action,
                    choice=choice,
                    target=target,
                    score=score,
                    event_key=f"ev{n}",
                    created_at=berlin(when),
                )
            )

        # The day before (Sunday):
        vote(p1, r1, "2024-03-10T10:00", "A")  # gpt-4 beats mistral
        vote(p1, r2, "2024-03-10T11:00", "A")  # gpt-4 beats mistral
        vote(p2, r1, "2024-03-10T12:00", "A")  # mistral beats gemma
        vote(p3, r4, "2024-03-10T23:30", "A")  # gemma beats gpt-4 (22:30Z: still Sunday)
        # The digest day (Monday):
        vote(p1, r3, "2024-03-11T00:00", "B")  # mistral beats gpt-4, exactly at midnight
        vote(p2, r2, "2024-03-11T09:00", "tie")
        vote(p3, r2, "2024-03-11T10:00", "B")  # gpt-4 beats gemma
        vote(p3, r3, "2024-03-11T11:00", "B")  # gpt-4 beats gemma
        vote(p2, r3, "2024-03-11T12:00", "A")  # ... retracted five minutes later
        vote(p2, r3, "2024-03-11T12:05", "A", action="remove")
        vote(p4, r3, "2024-03-11T13:00", target="A", score=8)  # gpt-4
        vote(p4, r3, "2024-03-11T13:00", target="B", score=5)  # mistral
        vote(p5, r1, "2024-03-11T14:00", target="A", score=6)  # gemma
        vote(p5, r1, "2024-03-11T14:00", target="B", score=8)  # gpt-4
        # Tuesday, after the digest day: never counted.
        vote(p2, r4, "2024-03-12T00:30", "B")

        for name, score in (("gpt-4", 9.0), ("mistral", 6.0), ("gemma", 3.0)):
            s.add(
                JudgeScore(
                    judge="gpt-4",
                    method="scorer",
                    generation_id=gen[name],
                    score=score,
                    raw=str(score),
                    cache_key=f"scorer-{name}",
                )
            )

        def probe(
            model: str,
            when: str,
            latency: float | None,
            ok: bool = True,
            phase: str = "measure",
            tokens: int | None = 100,
        ) -> None:
            ts = berlin(when)
            s.add(
                Probe(
                    model_id=mid[model],
                    run_id="r",
                    phase=phase,
                    hour=ts.hour,
                    started_at=ts,
                    ok=ok,
                    latency_s=latency if ok else None,
                    output_tokens=tokens if ok else None,
                    error=None if ok else "timeout",
                )
            )

        for i, lat in enumerate([0.5, 1.0, 1.5, 2.0]):
            probe("mistral", f"2024-03-11T{8 + i:02d}:00", lat)
        probe("mistral", "2024-03-11T12:00", None, ok=False)
        probe("mistral", "2024-03-11T07:59", 9.0, phase="warmup")  # warmup: not measured
        probe("mistral", "2024-03-10T08:00", 1.0)
        probe("mistral", "2024-03-10T09:00", 2.0)
        probe("mistral", "2024-03-12T08:00", 100.0, tokens=None)  # Tuesday: not this digest
        probe("gemma", "2024-03-11T08:00", 3.0, tokens=None)
        probe("gemma", "2024-03-11T09:00", None, ok=False)
        probe("gemma", "2024-03-11T10:00", None, ok=False)


@pytest.fixture
def seeded(engine: Engine) -> tuple[Engine, SlamConfig]:
    cfg = make_cfg()
    seed(engine, cfg)
    return engine, cfg


def test_day_window_follows_the_local_calendar() -> None:
    start, end = day_window(DAY, BERLIN)
    assert (start.isoformat(), end.isoformat()) == (
        "2024-03-10T23:00:00+00:00",
        "2024-03-11T23:00:00+00:00",
    )
    start, end = day_window(date(2024, 3, 31), BERLIN)  # spring forward: a 23-hour day
    assert (end - start).total_seconds() == 23 * 3600


def test_votes_raters_and_leaderboard_movement(seeded: tuple[Engine, SlamConfig]) -> None:
    engine, cfg = seeded
    d = build_digest(engine, cfg, DAY)
    assert (d.votes, d.score_votes, d.raters, d.total_votes) == (4, 4, 3, 8)
    before = [
        Outcome("gpt-4", "mistral", "A"),
        Outcome("gpt-4", "mistral", "A"),
        Outcome("mistral", "gemma", "A"),
        Outcome("gemma", "gpt-4", "A"),
    ]
    through = [
        *before,
        Outcome("gpt-4", "mistral", "B"),
        Outcome("mistral", "gemma", "tie"),
        Outcome("gemma", "gpt-4", "B"),
        Outcome("gemma", "gpt-4", "B"),
    ]
    # The digest reads the results service: the configured bootstrap, seeded from the data.
    rounds = cfg.evaluation.bootstrap_rounds
    now = bradley_terry(through, reference="gpt-4", n_boot=rounds)
    prev = bradley_terry(before, reference="gpt-4", n_boot=rounds)
    assert [m.model for m in d.leaderboard] == [r.model for r in now.ranked()]
    for m in d.leaderboard:
        r, p = now.ratings[m.model], prev.ratings[m.model]
        assert (m.rating, m.lo, m.hi, m.rank, m.n_votes) == (
            r.rating,
            r.lo,
            r.hi,
            r.rank,
            r.n_votes,
        )
        assert (m.prev_rating, m.prev_rank) == (p.rating, p.rank)
        assert m.delta == pytest.approx(r.rating - p.rating)
    by = {m.model: m for m in d.leaderboard}
    assert by["gpt-4"].rating == pytest.approx(1000.0) and by["gpt-4"].delta == pytest.approx(0)
    assert (by["gpt-4"].n_votes, by["mistral"].n_votes, by["gemma"].n_votes) == (6, 5, 5)
    # Monday: mistral beat the reference (anchored at 1000) once and tied gemma, so it rose;
    # gemma lost both Monday games against the reference, so it fell and dropped a rank.
    assert by["mistral"].delta is not None and by["mistral"].delta > 0
    assert by["gemma"].delta is not None and by["gemma"].delta < 0
    assert (by["mistral"].prev_rank, by["mistral"].rank) == (3, 2)


def test_agreement_latency_availability_and_cost(seeded: tuple[Engine, SlamConfig]) -> None:
    engine, cfg = seeded
    d = build_digest(engine, cfg, DAY)
    # Human mean scores: gpt-4 8, gemma 6, mistral 5; the judge's: gpt-4 9, mistral 6, gemma 3.
    assert d.human_signal == "human mean score (0–10)"
    (a,) = d.agreement
    assert (a.method, a.n_models) == ("scorer", 3)
    assert a.spearman == pytest.approx(0.5)  # 1 - 6·(0+1+1) / (3·(9-1))
    assert a.jaccard == 0.0 and a.rbo == 0.0  # bottom-1: mistral (humans) vs gemma (judge)

    lat = {x.model: x for x in d.latency}
    assert list(lat) == ["mistral", "gemma"]  # config order
    m = lat["mistral"]
    assert (m.n, m.prev_n) == (4, 2)
    assert m.p50 == pytest.approx(1.25) and m.prev_p50 == pytest.approx(1.5)
    assert m.p95 == pytest.approx(float(np.percentile([0.5, 1.0, 1.5, 2.0], 95)))  # 1.925
    assert m.prev_p95 == pytest.approx(1.95)
    g = lat["gemma"]
    assert (g.n, g.p50, g.p95, g.prev_n, g.prev_p50) == (1, 3.0, 3.0, 0, None)

    avail = {x.model: (x.ok, x.total) for x in d.availability}
    assert avail == {"mistral": (4, 5), "gemma": (1, 3)}

    # API: 200 in + 100 out tokens (reference generations) at $0.03/$0.06 per 1K = $0.012.
    assert d.api_per_1k == pytest.approx(0.12)
    costs = {c.model: c for c in d.costs}
    assert list(costs) == ["gpt-4", "mistral", "gemma"]
    # mistral: 600 output tokens in 8.0 s of successful probes = 75 tok/s on a $0.526/h host
    # at 80% utilization: 0.526 / (75 · 3600 · 0.8) · 1000 $ per 1K output tokens.
    per_1k = 0.526 / (75 * 3600 * 0.8) * 1000
    assert costs["mistral"].per_1k == pytest.approx(per_1k)
    assert costs["mistral"].reduction == pytest.approx(0.012 / (per_1k * 100 / 1000))  # ≈ 49.3
    label = costs["mistral"].label  # evaluation.perf.cost's own formatting of the same number
    assert label.startswith("$0.0024") and label.endswith(" / 1K tokens")
    assert costs["mistral"].reduction_label == "49.3×"
    assert costs["gemma"].per_1k == 0.0 and math.isinf(costs["gemma"].reduction or 0)
    assert costs["gpt-4"].is_api and costs["gpt-4"].per_1k == pytest.approx(0.12)


def test_rendered_message(seeded: tuple[Engine, SlamConfig]) -> None:
    engine, cfg = seeded
    reply = render(build_digest(engine, cfg, DAY))
    assert reply.title == "SLaM daily digest · 2024-03-11" and reply.ok
    assert reply.text.startswith("4 vote(s) from 3 rater(s) on Mon 11 Mar (Europe/Berlin).")
    fields = dict(reply.fields)
    assert fields["Votes"] == "4 pairwise + 4 scores from 3 rater(s); 8 pairwise in total"
    board = fields["Leaderboard (Bradley–Terry [interval], vs the day before)"].splitlines()
    assert board[0].startswith("1. gpt-4 (ref): 1000 [") and "(+0)" in board[0]
    assert board[0].endswith("· 6 votes")
    assert fields["Judge/human agreement (vs human mean score (0–10))"] == (
        "scorer: Spearman 0.50, bottom-k Jaccard 0.00, RBO 0.00 (3 models)"
    )
    lat = fields["Latency p50 / p95 (vs the day before)"].splitlines()
    assert lat[0].startswith("mistral: 1.25 s (-17%) / 1.9") and lat[0].endswith("(-1%), 4 probes")
    assert lat[1] == "gemma: 3.00 s / 3.00 s, 1 probes"
    assert fields["Availability"] == (  # worst first
        "gemma: 33.3% (2 of 3 probes failed)\nmistral: 80.0% (1 of 5 probes failed)"
    )
    cost = fields["Cost per 1K output tokens (API: gpt-4 $0.1200)"].splitlines()
    assert cost[0].startswith("mistral: $0.0024") and cost[0].endswith(" · 49.3× vs gpt-4")
    assert cost[1] == "gemma: free (local CPU) · free vs gpt-4"
    assert len(reply.plain()) < 3000  # compact: one chat message


def test_an_empty_database_gives_a_calm_digest(engine: Engine) -> None:
    reply = render(build_digest(engine, make_cfg(), DAY))
    fields = dict(reply.fields)
    assert reply.text.startswith("0 vote(s) from 0 rater(s)")
    assert fields["Leaderboard"] == "no pairwise votes yet"
    assert fields["Latency"] == "no probes that day"
    assert fields["Judge/human agreement"] == "not enough judge scores or human ratings yet"


def test_key_charts_are_attached(seeded: tuple[Engine, SlamConfig], tmp_path: Path) -> None:
    engine, cfg = seeded
    d = build_digest(engine, cfg, DAY, charts=("bradley_terry", "no_such_chart"), out_dir=tmp_path)
    assert list(d.charts) == ["bradley_terry"]
    png = d.charts["bradley_terry"]
    assert png.parent == tmp_path and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reply = render(d)
    assert reply.files == {"bradley_terry": png} and "Key charts are attached" in reply.text


def test_many_models_stay_compact() -> None:
    from bot.ops.digest import Availability, CostLine, DayLatency, Digest, Movement, render

    names = [f"model-{i:02d}" for i in range(30)]
    d = Digest(
        day=DAY, timezone="UTC", votes=1200, score_votes=0, raters=40, total_votes=100_000,
        reference="model-00",
        leaderboard=[Movement(n, 1000.0 - i, 990.0 - i, 1010.0 - i, i + 1, 500, 1000.0 - i,
                              i + 1) for i, n in enumerate(names)],
        human_signal="human Bradley–Terry rating", agreement=[],
        latency=[DayLatency(n, 240, 1.0, 2.0, 240, 1.0, 2.0) for n in reversed(names)],
        availability=[Availability(n, 240 if i % 10 else 239, 240) for i, n in enumerate(names)],
        api_name="gpt-4", api_per_1k=0.12,
        costs=[CostLine(n, False, 0.002, "$0.002 / 1K tokens", 60.0, "60.0×") for n in names],
    )  # fmt: skip
    reply = render(d, limit=5)
    fields = dict(reply.fields)
    board = fields["Leaderboard (Bradley–Terry [interval], vs the day before)"].splitlines()
    assert len(board) == 6 and board[-1] == "… and 25 more (`/slam leaderboard`)"
    assert board[0] == "1. model-00 (ref): 1000 [990, 1010] (+0) · 500 votes"
    lat = fields["Latency p50 / p95 (vs the day before)"].splitlines()
    assert [x.split(":")[0] for x in lat[:5]] == names[:5]  # best rated first
    assert lat[-1] == "… and 25 more models"
    assert fields["Availability"] == (
        "model-00: 99.6% (1 of 240 probes failed)\nmodel-10: 99.6% (1 of 240 probes failed)\n"
        "model-20: 99.6% (1 of 240 probes failed)\n27 model(s) answered every probe"
    )
    assert len(reply.plain()) < 2500


def test_versions_drift_and_open_alerts_in_the_digest(engine: Engine) -> None:
    from datetime import UTC

    from bot.incidents import Condition, reconcile
    from bot.ops.digest import build_digests, render_digests
    from tests.evaluation.results.test_versions import cfg as versions_cfg
    from tests.evaluation.results.test_versions import seed as seed_versions

    seed_versions(engine)
    reconcile(engine, [Condition("host", "i-0abc", "host i-0abc is past its TTL")])
    today = datetime.now(UTC).date()
    ((name, d),) = build_digests(engine, versions_cfg(), today)
    assert name is None
    assert d.versions[0] == ("cand: based on version bbbb from 2026-12-03 (40 votes); "
                             "history: aaaa from 2026-12-01 (40 votes)")  # fmt: skip
    assert d.versions[1].startswith("cand: version bbbb (from 2026-12-03) is ")
    assert d.alerts and d.alerts[0].startswith("[host] host i-0abc is past its TTL (since ")
    fields = dict(render_digests([(name, d)]).fields)
    assert fields["Model versions"] == "\n".join(d.versions)
    assert fields["Open alerts (1)"] == d.alerts[0] + "\n(`/slam alerts`)"
    # the day the new version appeared (its votes came later): the change itself is listed
    ((_, then),) = build_digests(engine, versions_cfg(), date(2026, 12, 3))
    assert then.versions[0] == "cand: new version bbbb (first seen 09:00 UTC)"
