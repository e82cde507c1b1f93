"""How far to trust each judge: κ with the crowd (pinned against scikit-learn), its bootstrap
interval, position and length bias, and the sentence that names the best match."""

from __future__ import annotations

import hashlib
import itertools
import random

import pytest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy.engine import Engine

from core.config import parse_config
from evaluation.auto.judge_trust import (
    MIN_PAIRS,
    JudgeTrust,
    best_match_sentence,
    judge_trust,
    judge_trust_summary,
    kappa_interval,
    render_text,
)
from evaluation.results.cache import ResultCache
from evaluation.results.service import Results
from storage.db import session_scope
from storage.models import JudgeScore
from tests.support.eval_seed import rater, seed_generations, seed_pair, seed_round, vote

_keys = itertools.count()


@pytest.mark.parametrize("seed", range(5))
def test_kappa_matches_sklearn_and_the_interval_holds_it(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(25, 120)
    a = [rng.choice(["A", "B", "tie"]) for _ in range(n)]
    # b agrees with a 60% of the time: a κ well inside (0, 1)
    b = [x if rng.random() < 0.6 else rng.choice(["A", "B", "tie"]) for x in a]
    kappa, lo, hi = kappa_interval(a, b, rounds=2000, seed=seed)
    assert kappa == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    assert lo is not None and hi is not None and lo < kappa < hi
    # deterministic for a seed; more pairs, a narrower interval
    assert kappa_interval(a, b, rounds=2000, seed=seed) == (kappa, lo, hi)
    _, lo4, hi4 = kappa_interval(a * 4, b * 4, rounds=2000, seed=seed)
    assert lo4 is not None and hi4 is not None and hi4 - lo4 < hi - lo


def test_kappa_interval_matches_a_pair_resampling_bootstrap() -> None:
    """The interval (drawn as multinomial tables) against an independent bootstrap that
    resamples the pairs themselves and scores each resample with scikit-learn."""
    rng = random.Random(7)
    a = [rng.choice(["A", "B", "tie"]) for _ in range(80)]
    b = [x if rng.random() < 0.6 else rng.choice(["A", "B", "tie"]) for x in a]
    _, lo, hi = kappa_interval(a, b, rounds=4000, seed=1)
    samples = []
    for _ in range(1500):
        idx = [rng.randrange(len(a)) for _ in a]
        ra, rb = [a[i] for i in idx], [b[i] for i in idx]
        samples.append(cohen_kappa_score(ra, rb))
    samples.sort()
    ref_lo, ref_hi = samples[int(0.025 * len(samples))], samples[int(0.975 * len(samples))]
    assert lo is not None and hi is not None
    assert abs(lo - ref_lo) < 0.04 and abs(hi - ref_hi) < 0.04, (lo, hi, ref_lo, ref_hi)


def test_kappa_interval_edge_cases() -> None:
    assert kappa_interval([], []) == (None, None, None)
    assert kappa_interval(["A"], ["A"]) == (None, None, None)  # chance agreement is 1
    k, lo, hi = kappa_interval(["A", "B"], ["A", "B"], rounds=50)
    assert k == pytest.approx(1.0) and lo is not None and hi == pytest.approx(1.0)


def _judge(
    judge: str, method: str, gen: int, score: float | None, *, other: int | None = None,
    order: str | None = None, choice: str | None = None, group: str | None = None,
    ok: bool = True,
) -> JudgeScore:  # fmt: skip
    return JudgeScore(
        judge=judge, method=method, generation_id=gen, other_generation_id=other, order=order,
        score=score, choice=choice, group_key=group, parse_ok=ok, raw="{}",
        cache_key=hashlib.sha256(f"{next(_keys)}".encode()).hexdigest(),
    )  # fmt: skip


N_USERS = 24


def _world(engine: Engine) -> tuple[dict[tuple[str, int], int], list[int], list[str]]:
    """24 prompts, two models: 'long' answers with 12 words, 'short' with 3. Pair k shows
    long_k as A for even k, as B for odd k. The crowd prefers the long answer, except on
    every fourth pair, where it votes tie."""
    gens = seed_generations(
        engine,
        {
            "long": [f"answer {i} " + "word " * 10 for i in range(N_USERS)],
            "short": [f"short {i} reply" for i in range(N_USERS)],
        },
        reference="long",
    )
    rnd = seed_round(engine)
    raters = [rater(engine, n) for n in ("ann", "bo", "cy")]
    pairs, crowd = [], []
    for k in range(N_USERS):
        long_, short = gens[("long", k)], gens[("short", k)]
        a, b = (long_, short) if k % 2 == 0 else (short, long_)
        pid = seed_pair(engine, a, b, rnd)
        pairs.append(pid)
        label = "tie" if k % 4 == 3 else ("A" if a == long_ else "B")
        for r in raters[:2]:
            vote(engine, pid, r, label)
        vote(engine, pid, raters[2], "both_bad")  # outvoted
        crowd.append(label)
    return gens, pairs, crowd


def test_judge_trust_rows_on_a_seeded_world(engine: Engine) -> None:
    gens, _pairs, crowd = _world(engine)
    with session_scope(engine) as s:
        for k in range(N_USERS):
            long_, short = gens[("long", k)], gens[("short", k)]
            # scorer: always prefers long (length-biased, agrees with the crowd off the ties)
            s.add(_judge("j", "scorer", long_, 8.0))
            s.add(_judge("j", "scorer", short, 3.0))
            # selector: always picks the first shown (position 1 of 2); long is first on even k
            first, second = (long_, short) if k % 2 == 0 else (short, long_)
            s.add(_judge("j", "selector", first, 1.0, order="1/2", choice="1", group=f"g{k}"))
            s.add(_judge("j", "selector", second, 0.0, order="2/2", choice="1", group=f"g{k}"))
            # pairwise: always 'A' (first shown) in both orders: inconsistent -> tie
            x, y = sorted((long_, short))
            s.add(_judge("j", "pairwise", x, 1.0, other=y, order="AB", choice="A"))
            s.add(_judge("j", "pairwise", x, 0.0, other=y, order="BA", choice="A"))
        s.add(_judge("j", "scorer", gens[("long", 0)], None, ok=False))  # a parse failure
    with session_scope(engine) as s:
        rows, (crowd_n, crowd_longer) = judge_trust(s, rounds=500)
    by = {r.method: r for r in rows}
    assert set(by) == {"scorer", "selector", "pairwise"}

    # What each method says on the rated pairs, as shown (A / B / tie)
    shown_long = ["A" if k % 2 == 0 else "B" for k in range(N_USERS)]
    expected = {
        "scorer": shown_long,
        "selector": ["A"] * N_USERS,
        "pairwise": ["tie"] * N_USERS,
    }
    for method, labels in expected.items():
        r = by[method]
        assert r.n == N_USERS
        assert r.agreement == pytest.approx(
            sum(c == m for c, m in zip(crowd, labels, strict=True)) / N_USERS
        )
        if len(set(labels)) > 1:
            assert r.kappa == pytest.approx(cohen_kappa_score(crowd, labels))
        else:  # a constant judge: κ = 0 whatever the crowd says (sklearn agrees)
            assert r.kappa == pytest.approx(cohen_kappa_score(crowd, labels)) == 0.0
    assert by["scorer"].answers == 2 * N_USERS + 1 and by["scorer"].parse_failures == 1
    assert by["selector"].answers == N_USERS  # one question per set, stored as two rows

    # position bias: the selector always picks the first shown; pairwise always says A
    assert by["selector"].first_shown == 1.0 and by["selector"].first_expected == 0.5
    assert by["selector"].position_n == N_USERS
    assert by["pairwise"].first_shown == 1.0 and by["pairwise"].position_n == 2 * N_USERS
    assert by["pairwise"].order_consistency == 0.0
    assert by["scorer"].first_shown is None and by["scorer"].order_consistency is None
    # length bias: the scorer always prefers the longer answer; the selector half the time
    assert (by["scorer"].length_n, by["scorer"].longer_wins) == (N_USERS, 1.0)
    assert by["selector"].longer_wins == 0.5
    assert by["pairwise"].longer_wins is None  # all ties: no decided comparison
    assert (crowd_n, crowd_longer) == (N_USERS - N_USERS // 4, 1.0)

    with session_scope(engine) as s:
        cfg = parse_config({"evaluation": {"bootstrap_rounds": 200}})
        summary_rows, sentence = judge_trust_summary(s, cfg)
    assert [r.method for r in summary_rows] == sorted(by)
    assert sentence.startswith("scorer matches the human raters best (κ ")
    text = render_text(summary_rows, sentence, (crowd_n, crowd_longer))
    assert "scorer" in text and "selector" in text and text.endswith(sentence)
    assert "The crowd itself chose the longer response in 100% of 18" in text


def _row(method: str, kappa: float, lo: float, hi: float, n: int = 40) -> JudgeTrust:
    return JudgeTrust(
        judge="j", method=method, answers=n, parse_failures=0, n=n, agreement=0.5,
        kappa=kappa, kappa_lo=lo, kappa_hi=hi, position_n=0, first_shown=None,
        first_expected=None, order_consistency=None, length_n=0, longer_wins=None,
    )  # fmt: skip


def test_best_match_sentence_says_when_it_cannot_tell() -> None:
    assert "No stored judgements" in best_match_sentence([])
    few = [_row("scorer", 0.8, 0.5, 0.9, n=MIN_PAIRS - 1), _row("pairwise", 0.2, 0.0, 0.4, n=3)]
    assert best_match_sentence(few) == (
        "Too few rated pairs to tell which judge method matches the human raters best: the "
        f"most any method shares with the crowd is n={MIN_PAIRS - 1} (at least {MIN_PAIRS} "
        "are needed)."
    )
    clear = [_row("pairwise", 0.6, 0.45, 0.75), _row("scorer", 0.2, 0.05, 0.35)]
    assert best_match_sentence(clear) == (
        "pairwise matches the human raters best (κ 0.60 [0.45, 0.75], n=40)."
    )
    overlap = [_row("scorer", 0.3, 0.1, 0.5), _row("pairwise", 0.4, 0.2, 0.6)]
    assert best_match_sentence(overlap).endswith(
        "but its interval overlaps scorer's (κ 0.30 [0.10, 0.50], n=40): more rated pairs are "
        "needed to tell them apart."
    )
    chance = [_row("selector", 0.1, -0.1, 0.3)]
    assert best_match_sentence(chance).endswith("includes 0: no better than chance so far.")


def test_results_service_judge_trust_equals_the_direct_reading(engine: Engine) -> None:
    """The results service keeps judge verdicts while only votes change and reads the crowd
    from its vote tally: the rows must equal a fresh reading of the log, before and after a
    vote that flips one pair's majority."""
    gens, pairs, _crowd = _world(engine)
    with session_scope(engine) as s:
        for k in range(N_USERS):
            s.add(_judge("j", "scorer", gens[("long", k)], 8.0))
            s.add(_judge("j", "scorer", gens[("short", k)], 3.0 + (k % 3) * 3))
    cfg = parse_config({"evaluation": {"bootstrap_rounds": 200}})
    cache = ResultCache()

    def both() -> tuple[list[JudgeTrust], list[JudgeTrust]]:
        served, _ = Results(engine, cfg, cache=cache).judge_trust
        with session_scope(engine) as s:
            direct, _ = judge_trust_summary(s, cfg)
        return served, direct

    served, direct = both()
    assert served == direct and served[0].n == N_USERS
    # Two more raters make pair 0's majority the short answer (tie counts before: A 2, bb 1).
    for name in ("dee", "eve", "fay"):  # pair 0 shows the long answer as A
        vote(engine, pairs[0], rater(engine, name), "B")
    served2, direct2 = both()
    assert served2 == direct2
    assert served2[0].agreement != served[0].agreement  # the flip is seen, not a stale value
