"""Results per feature and per slice (issue 19): two features in one database, each number
computed from that feature's (or slice's) rows alone, pinned against an independent count of
the votes seeded for it; feature=None still reads everything. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.config import SlamConfig, parse_config
from evaluation.human import Scope, VotePolicy, bradley_terry, decide, pairwise_results
from evaluation.results import MIN_SLICE_VOTES, ResultCache, Results, slice_decisions
from storage.db import session_scope
from storage.models import ModelRecord, Probe, SimilarityScore
from tests.support.eval_seed import rater, seed_feature, seed_pair, vote

SUPPORT = [("b1", "billing"), ("b2", "billing"), ("b3", "billing"), ("l1", "legal"),
           ("l2", "legal"), ("h1", "hr")]  # fmt: skip
SUMMARIES = [("s1", None), ("s2", None)]
# input -> (model shown as A, model shown as B, {choice: votes})
PLAN: dict[str, tuple[str, str, dict[str, int]]] = {
    **{k: ("api", "small", {"B": 19, "A": 11, "tie": 10}) for k in ("b1", "b2", "b3")},
    **{k: ("small", "api", {"A": 3, "B": 17}) for k in ("l1", "l2")},
    "h1": ("api", "small", {"A": 2, "B": 3}),
    **{k: ("api", "tiny", {"A": 11, "B": 4}) for k in ("s1", "s2")},
}
SLICE_OF = dict(SUPPORT) | dict(SUMMARIES)
FEATURE_OF = {k: "support" for k, _ in SUPPORT} | {k: "summaries" for k, _ in SUMMARIES}


def expected_counts(keep: set[str]) -> list[tuple[str, str, str, int]]:
    """The independent count: (model A, model B, choice, votes) of the plan's inputs in `keep`."""
    acc: dict[tuple[str, str, str], int] = {}
    for key, (a, b, votes) in PLAN.items():
        if key in keep:
            for choice, n in votes.items():
                acc[(a, b, choice)] = acc.get((a, b, choice), 0) + n
    return sorted((a, b, c, n) for (a, b, c), n in acc.items())


def inputs_of(feature: str | None = None, slice_: str | None = None) -> set[str]:
    return {k for k in PLAN if (feature is None or FEATURE_OF[k] == feature)
            and (slice_ is None or SLICE_OF[k] == slice_)}  # fmt: skip


def make_cfg(tmp: Path, **evaluation: object) -> SlamConfig:
    def write(name: str, rows: list[tuple[str, str | None]]) -> str:
        path = tmp / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"id": k, "text": k, "kind": s or "none"}) + "\n"
                                for k, s in rows))  # fmt: skip
        return str(path)

    return parse_config({
        "models": [
            {"name": "api", "backend": "openai", "model": "gpt-4", "hardware": "api",
             "reference": True},
            {"name": "small", "backend": "ollama", "model": "small:1b", "hardware": "local-cpu"},
            {"name": "tiny", "backend": "ollama", "model": "tiny:1b", "hardware": "local-cpu"},
        ],
        "evaluation": {"bootstrap_rounds": 200, **evaluation},
        "features": [
            {"name": "support", "prompt_template": "Answer {{ text }}",
             "inputs": write("support", SUPPORT), "slice_field": "kind",
             "models": ["api", "small"]},
            {"name": "summaries", "prompt_template": "Summarise {{ text }}",
             "inputs": write("summaries", SUMMARIES), "models": ["api", "tiny"],
             "margin_elo": 80},
        ],
    })  # fmt: skip


@dataclass
class Seeded:
    engine: Engine
    cfg: SlamConfig
    experiments: dict[str, int]
    gens: dict[tuple[str, str], int]


def seed(engine: Engine, cfg: SlamConfig) -> Seeded:
    exp_s, gens = seed_feature(engine, "support", SUPPORT, ["api", "small"], "api", (100, 200))
    exp_m, more = seed_feature(engine, "summaries", SUMMARIES, ["api", "tiny"], "api", (1000, 50))
    gens |= more
    raters = [rater(engine, f"r{i}") for i in range(40)]  # ≤ 7 votes each: rule 9 stays quiet
    pairs = {}
    for key, (a, b, votes) in PLAN.items():
        exp = exp_s if FEATURE_OF[key] == "support" else exp_m
        pairs[key] = pid = seed_pair(engine, gens[(a, key)], gens[(b, key)], experiment_id=exp)
        choices = [c for c, n in votes.items() for _ in range(n)]
        for r, choice in zip(raters, choices, strict=False):
            vote(engine, pid, r, choice)
    # 0–10 scores on the summaries only; similarity scores on one billing and one summary input
    vote(engine, pairs["s1"], raters[0], kind="score", target="A", score=7)
    vote(engine, pairs["s2"], raters[1], kind="score", target="B", score=9)
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        s.add(SimilarityScore(metric="rougeL", generation_id=gens[("small", "b1")],
                              reference_generation_id=gens[("api", "b1")], value=0.5))
        s.add(SimilarityScore(metric="rougeL", generation_id=gens[("tiny", "s1")],
                              reference_generation_id=gens[("api", "s1")], value=0.2))  # fmt: skip
        for name in ("small", "tiny"):  # priced: throughput from single-stream probes
            mid = s.exec(select(ModelRecord).where(ModelRecord.name == name)).one().id
            for h in range(3):
                s.add(Probe(model_id=mid, run_id=f"p{name}{h}", hour=h,
                            started_at=now - timedelta(hours=h + 1), latency_s=1.0 + h / 10,
                            output_tokens=50, prompt_tokens=10))  # fmt: skip
    return Seeded(engine, cfg, {"support": exp_s, "summaries": exp_m}, gens)


@pytest.fixture
def seeded(any_engine: Engine, tmp_path: Path) -> Seeded:
    return seed(any_engine, make_cfg(tmp_path))


def results(sd: Seeded, feature: str | None = None, slice_: str | None = None) -> Results:
    return Results(sd.engine, sd.cfg, feature=feature, slice=slice_, cache=ResultCache())


def bt(counts: list[tuple[str, str, str, int]], cfg: SlamConfig, reference: str = "api"):  # type: ignore[no-untyped-def]
    ev = cfg.evaluation
    return bradley_terry(counts, reference=reference, n_boot=ev.bootstrap_rounds,
                         both_bad=ev.both_bad, ci=ev.confidence)  # fmt: skip


def same_ratings(got, want) -> None:  # type: ignore[no-untyped-def]
    assert got is not None and set(got.ratings) == set(want.ratings)
    for m, w in want.ratings.items():
        g = got.ratings[m]
        assert (g.rating, g.lo, g.hi, g.n_votes) == pytest.approx((w.rating, w.lo, w.hi, w.n_votes))


@pytest.mark.parametrize("feature,slice_", [
    ("support", None), ("summaries", None), ("support", "billing"), ("support", "legal"),
    (None, None),
])  # fmt: skip
def test_each_scope_counts_and_rates_its_own_votes(
    seeded: Seeded, feature: str | None, slice_: str | None
) -> None:
    want = expected_counts(inputs_of(feature, slice_))
    r = results(seeded, feature, slice_)
    assert r.pairwise_counts == want
    same_ratings(r.ratings, bt(want, seeded.cfg))
    # the SQL readers (no tally) give the same counts for the same scope
    scope = Scope(seeded.experiments[feature] if feature else None, slice_)
    with Session(seeded.engine) as s:
        assert pairwise_results(s, VotePolicy(scope=scope)) == want
        assert pairwise_results(s, VotePolicy(rater_quality=True, scope=scope)) == want
        assert pairwise_results(s, VotePolicy(max_votes_per_rater=1000, scope=scope)) == want


def test_the_log_path_gives_the_same_numbers(seeded: Seeded, tmp_path: Path) -> None:
    """Rules 5–6 on (a cap that never binds): the policy cannot be folded, so every reader
    reads the log with the scope; the numbers are the tally's."""
    cfg = make_cfg(tmp_path, max_votes_per_rater=1000)
    r = Results(seeded.engine, cfg, feature="support", slice="billing", cache=ResultCache())
    assert r.tally is None
    want = expected_counts(inputs_of("support", "billing"))
    assert r.pairwise_counts == want
    same_ratings(r.ratings, bt(want, cfg))
    assert Results(seeded.engine, cfg, feature="summaries", cache=ResultCache()).human_scores[
        "tiny"].values == [9.0]  # fmt: skip


def test_each_feature_has_its_models_reference_margin_and_decision(seeded: Seeded) -> None:
    support, summaries, everything = (results(seeded, f) for f in ("support", "summaries", None))
    assert support.reference == summaries.reference == "api"
    assert support.candidates == ["small"] and summaries.candidates == ["tiny"]
    assert {row.model for row in support.leaderboard} == {"api", "small"}  # tiny is probed
    assert {row.model for row in everything.leaderboard} == {"api", "small", "tiny"}
    assert summaries.decision.margin == 80 and support.decision.margin == 50
    for r, cand, margin in ((support, "small", 50.0), (summaries, "tiny", 80.0)):
        ev = seeded.cfg.evaluation
        want = decide(bt(expected_counts(inputs_of(r.feature)), seeded.cfg), r.costs, "api",
                      [cand], margin=margin, confidence=ev.confidence,
                      api_name=seeded.cfg.pricing.api_name)  # fmt: skip
        assert r.decision == want


def test_scores_similarity_and_tokens_are_the_features(seeded: Seeded) -> None:
    support, summaries, everything = (results(seeded, f) for f in ("support", "summaries", None))
    assert support.human_scores == {}
    assert {m: s.values for m, s in summaries.human_scores.items()} == {"api": [7.0],
                                                                        "tiny": [9.0]}
    assert support.method_scores == {"rougeL": {"small": 0.5}}
    assert summaries.method_scores == {"rougeL": {"tiny": 0.2}}
    assert everything.method_scores == {"rougeL": {"small": 0.5, "tiny": 0.2}}
    assert results(seeded, "support", "legal").method_scores == {}
    assert support.request_tokens == (100.0, 200.0, "reference generations")
    assert summaries.request_tokens == (1000.0, 50.0, "reference generations")
    assert everything.request_tokens[:2] == (325.0, 162.5)  # (6·100 + 2·1000)/8, (6·200 + 2·50)/8
    # probes are the model's, whatever the feature: the same throughput everywhere
    assert support.throughput["small"] == everything.throughput["small"]
    # rule 9 judges raters over every feature
    assert support.rater_quality.raters == everything.rater_quality.raters == 40


def test_slices_decide_on_their_own_votes(seeded: Seeded) -> None:
    lines = slice_decisions(seeded.engine, seeded.cfg, "support", cache=ResultCache())
    by = {s.slice: s for s in lines}
    assert list(by) == ["billing", "hr", "legal"]
    assert [by[s].votes for s in by] == [120, 5, 40]
    for s in by.values():  # the same rule as `Results(feature, slice).decision`
        assert s.decision == results(seeded, "support", s.slice).decision
    assert by["billing"].decision.kind == "switch" and by["billing"].decision.model == "small"
    assert by["legal"].decision.kind == "keep"
    assert by["billing"].line().startswith("billing: switch to small (120 votes)")
    assert by["legal"].line().startswith("legal: keep api")
    assert by["hr"].too_few and not by["billing"].too_few and MIN_SLICE_VOTES > 5
    assert "too few votes to decide" in by["hr"].line()
    assert slice_decisions(seeded.engine, seeded.cfg, "summaries") == []  # no slice_field


def test_unknown_feature_is_a_clear_error(seeded: Seeded) -> None:
    from core.errors import SlamError

    with pytest.raises(SlamError, match="unknown feature"):
        Results(seeded.engine, seeded.cfg, feature="nope")


def test_a_single_feature_database_reads_the_same_with_or_without_its_name(engine: Engine) -> None:
    """feature=None is everything the database holds: for the one feature of a single-feature
    deployment, the same numbers as naming it."""
    from tests.support.eval_seed import seed_generations

    cfg = parse_config({"models": [
        {"name": "a", "backend": "openai", "model": "gpt-4", "hardware": "api", "reference": True},
        {"name": "b", "backend": "ollama", "model": "b:1b", "hardware": "local-cpu"},
    ]})  # fmt: skip
    gens = seed_generations(engine, {"a": ["x", "y"], "b": ["u", "v"]}, reference="a")
    raters = [rater(engine, f"q{i}") for i in range(6)]
    for i in range(2):
        pid = seed_pair(engine, gens[("a", i)], gens[("b", i)])
        for k, r in enumerate(raters):
            vote(engine, pid, r, "A" if k % 3 else "B")
    plain = Results(engine, cfg, cache=ResultCache())
    named = Results(engine, cfg, feature=cfg.experiment.name, cache=ResultCache())
    want = [("a", "b", "A", 8), ("a", "b", "B", 4)]
    assert plain.pairwise_counts == named.pairwise_counts == want
    same_ratings(named.ratings, plain.ratings)
    assert named.decision == plain.decision
