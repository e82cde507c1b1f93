"""evaluation.auto.judge_style: a judge's length bias from stored verdicts, beside the crowd's."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from evaluation.auto.judge_style import judge_rows, length_biases
from evaluation.human.style import report_lines
from storage.db import session_scope
from storage.models import JudgeScore
from tests.support.eval_seed import rater, seed_generations, seed_pair, seed_round, vote


def test_a_judge_that_likes_long_answers_shows_its_length_bias(engine: Engine) -> None:
    short = "Keep going today."
    long = ("Keep going today: finish the report, call the team, and take a walk at noon "
            "because rest matters as much as the work itself.")  # fmt: skip
    n_ctx = 24
    gens = seed_generations(engine, {"ref": [short, long] * (n_ctx // 2),
                                     "cand": [long, short] * (n_ctx // 2)},
                            reference="ref")  # fmt: skip
    # The judge picks the longer response in 3 of 4 prompts, in both orders; the scorer gives
    # the longer one 8 and the shorter 3 the same way.
    with session_scope(engine) as s:
        n = 0
        for i in range(n_ctx):
            g_ref, g_cand = gens[("ref", i)], gens[("cand", i)]
            longer = g_cand if i % 2 == 0 else g_ref
            shorter_wins = i % 8 in (0, 5)  # one in four, whichever model wrote the longer
            winner = ({g_ref, g_cand} - {longer}).pop() if shorter_wins else longer
            x, y = sorted((g_ref, g_cand))
            for order in ("AB", "BA"):
                s.add(JudgeScore(judge="j", method="pairwise", generation_id=x,
                                 other_generation_id=y, order=order,
                                 score=1.0 if winner == x else 0.0, raw="{}",
                                 cache_key=f"k{n}"))  # fmt: skip
                n += 1
            for g in (g_ref, g_cand):
                s.add(JudgeScore(judge="j", method="scorer", generation_id=g,
                                 score=8.0 if g == winner else 3.0, raw="{}",
                                 cache_key=f"k{n}"))  # fmt: skip
                n += 1
    rows = judge_rows_of(engine)
    assert len(rows["j / pairwise"]) == 2 * n_ctx and len(rows["j / scorer"]) == n_ctx
    # The crowd does not care about length: half its votes for each.
    rnd = seed_round(engine)
    for i in range(6):
        pid = seed_pair(engine, gens[("ref", i)], gens[("cand", i)], rnd)
        for k in range(4):
            vote(engine, pid, rater(engine, f"r{i}{k}"), "A" if k % 2 else "B")
    with session_scope(engine) as s:
        biases = {b.judge: b for b in length_biases(s)}
    assert set(biases) == {"crowd", "j / pairwise", "j / scorer"}
    crowd, judged = biases["crowd"], biases["j / pairwise"]
    assert crowd.lo is not None and crowd.lo < 0 < (crowd.hi or 0)
    assert judged.elo is not None and judged.lo is not None and judged.elo > 100
    assert judged.lo > 0 and crowd.hi is not None and crowd.hi < judged.elo
    scorer = biases["j / scorer"]
    assert scorer.elo is not None and scorer.lo is not None and scorer.lo > 0
    text = "\n".join(report_lines(None, None, list(biases.values())))
    assert "j / pairwise: +" in text and "crowd" in text


def judge_rows_of(engine: Engine) -> dict[str, list[tuple[str, str, int, int, str, float]]]:
    with session_scope(engine) as s:
        return judge_rows(s)
