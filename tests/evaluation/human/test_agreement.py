"""Rater agreement (Krippendorff's alpha, pairwise agreement) and judge–crowd agreement."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from sqlalchemy.engine import Engine

from evaluation.human.agreement import (
    cohen_kappa,
    crowd_majority,
    judge_crowd_agreement,
    krippendorff_alpha,
    majority_of_counts,
    rater_agreement,
    score_alpha,
)
from evaluation.human.votes import EffectiveVote, VotePolicy, effective_votes
from storage.db import session_scope
from storage.models import JudgeScore
from tests.support.eval_seed import rater, seed_generations, seed_pair, seed_round, vote


def test_cohen_kappa_hand_computed_and_matches_sklearn() -> None:
    a, b = ["A", "A", "B", "B"], ["A", "B", "B", "B"]
    # observed 3/4; chance (2·1 + 2·3)/16 = 1/2; kappa = (3/4 - 1/2) / (1/2) = 1/2
    assert cohen_kappa(a, b) == pytest.approx(0.5)
    c = ["A", "tie", "B", "B", "A", "tie", "A"]
    d = ["A", "B", "B", "tie", "A", "tie", "B"]
    assert cohen_kappa(c, d) == pytest.approx(cohen_kappa_score(c, d))
    assert cohen_kappa([], []) is None and cohen_kappa(["A"], ["A"]) is None
    with pytest.raises(ValueError, match="differ in length"):
        cohen_kappa(["A"], [])


def _world(engine: Engine) -> tuple[list[int], list[int], dict[tuple[str, int], int]]:
    gens = seed_generations(
        engine, {"ref": ["r0", "r1", "r2"], "small": ["s0", "s1", "s2"]}, reference="ref"
    )
    rnd = seed_round(engine)
    pairs = [seed_pair(engine, gens[("small", i)], gens[("ref", i)], rnd) for i in range(3)]
    raters = [rater(engine, n) for n in ("ann", "bo", "cy")]
    return pairs, raters, gens


def test_alpha_and_rater_agreement(engine: Engine) -> None:
    pairs, (ann, bo, cy), _ = _world(engine)
    for p, s in zip(pairs, (2, 5, 9), strict=True):
        for r in (ann, bo):
            vote(engine, p, r, kind="score", target="A", score=s)
    with session_scope(engine) as s:
        assert score_alpha(s) == pytest.approx(1.0)
    vote(engine, pairs[0], bo, kind="score", target="A", score=9)  # bo changes his mind
    with session_scope(engine) as s:
        alpha = score_alpha(s)
    assert alpha is not None and alpha < 0.5
    assert krippendorff_alpha([]) is None
    vote(engine, pairs[0], ann, "A")
    vote(engine, pairs[0], bo, "A")
    vote(engine, pairs[0], cy, "B")
    vote(engine, pairs[1], ann, "tie")
    vote(engine, pairs[1], bo, "both_bad")  # both bad counts as a tie
    with session_scope(engine) as s:
        votes = effective_votes(s, "pairwise")
    assert rater_agreement(votes) == pytest.approx(2 / 4)  # (ann,bo) (ann,cy) (bo,cy) + p1 pair
    assert crowd_majority(votes) == {pairs[0]: "A", pairs[1]: "tie"}


def _judge_row(judge: str, x: int, y: int, order: str, points: float) -> JudgeScore:
    key = hashlib.sha256(f"{judge}{x}{y}{order}".encode()).hexdigest()
    return JudgeScore(
        judge=judge, method="pairwise", generation_id=x, other_generation_id=y, order=order,
        score=points, raw="Verdict: ?", cache_key=key,
    )  # fmt: skip


def test_judge_crowd_agreement(engine: Engine) -> None:
    pairs, (ann, bo, _), gens = _world(engine)
    # pair k shows small_k as A and ref_k as B; ref ids are the lower ones (seeded first)
    vote(engine, pairs[0], ann, "B")
    vote(engine, pairs[0], bo, "B")  # crowd: ref better
    vote(engine, pairs[1], ann, "A")  # crowd: small better
    vote(engine, pairs[2], ann, "A")
    vote(engine, pairs[2], bo, "B")  # no majority: left out
    with session_scope(engine) as s:
        rp = {p: (gens[("ref", i)], gens[("small", i)]) for i, p in enumerate(pairs)}
        assert all(x < y for x, y in rp.values())
        # judge "fair" agrees: pair0 ref (x, lower id) wins in both orders; pair1 small (y) wins
        s.add(_judge_row("fair", *rp[pairs[0]], "AB", 1.0))
        s.add(_judge_row("fair", *rp[pairs[0]], "BA", 1.0))
        s.add(_judge_row("fair", *rp[pairs[1]], "AB", 0.0))
        s.add(_judge_row("fair", *rp[pairs[1]], "BA", 0.0))
        # judge "biased" always picks the first shown: inconsistent -> ties
        for p in pairs[:2]:
            s.add(_judge_row("biased", *rp[p], "AB", 1.0))
            s.add(_judge_row("biased", *rp[p], "BA", 0.0))
        # judge "half" answered only one order: not counted
        s.add(_judge_row("half", *rp[pairs[0]], "AB", 1.0))
    with session_scope(engine) as s:
        res = {a.judge: a for a in judge_crowd_agreement(s)}
    assert res["fair"].n_pairs == 2 and res["fair"].agreement == 1.0
    assert res["fair"].kappa == pytest.approx(1.0)
    assert res["biased"].n_pairs == 2 and res["biased"].agreement == 0.0
    assert res["half"].n_pairs == 0 and res["half"].agreement is None
    # The vote policy applies here as everywhere: one counted vote per rater leaves ann's
    # vote on pair 1 out, so only pair 0 has a crowd verdict.
    with session_scope(engine) as s:
        capped = {a.judge: a for a in
                  judge_crowd_agreement(s, policy=VotePolicy(max_votes_per_rater=1))}  # fmt: skip
    assert capped["fair"].n_pairs == 1 and capped["fair"].agreement == 1.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9),
                          st.sampled_from(["A", "B", "tie", "both_bad", "x"])), max_size=60))
def test_majority_of_counts_equals_crowd_majority(votes: list[tuple[int, int, str]]) -> None:
    """The tally's per-pair counts give the same plurality as the votes themselves, and both
    equal a plain reference: per pair, the most common label ('both bad' counts as a tie)
    when no other label has as many votes."""
    effective = [EffectiveVote(id=i, pair_id=p, round_id=1, rater_id=r, kind="pairwise",
                               choice=c, target=None, score=None, model_a="m", model_b="n",
                               created_at=datetime(2026, 1, 1))
                 for i, (p, r, c) in enumerate(votes)]  # fmt: skip
    counts: dict[tuple[int, str], int] = {}
    for v in effective:
        counts[(v.pair_id, str(v.choice))] = counts.get((v.pair_id, str(v.choice)), 0) + 1
    labels: dict[int, list[str]] = {}
    for p, _, c in votes:
        if c in ("A", "B", "tie", "both_bad"):
            labels.setdefault(p, []).append("tie" if c == "both_bad" else c)
    reference = {}
    for p, ls in labels.items():
        (top, n1), *rest = Counter(ls).most_common()
        if not rest or rest[0][1] < n1:
            reference[p] = top
    assert majority_of_counts(counts) == crowd_majority(effective) == reference
