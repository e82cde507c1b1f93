"""Judge answer parsing on a corpus of realistic outputs, including garbage and refusals."""

from __future__ import annotations

import pytest

from evaluation.auto.judges.parsing import parse_choice, parse_pairwise, parse_score

SCORES = [
    ("The response is warm and specific.\nScore: 8", 8.0),
    ("Score: 7.5", 7.5),
    ("8/10", 8.0),
    ("I would rate this response 8/10 because it is specific.", 8.0),
    ("**Score:** 9", 9.0),
    ("Reasoning: mentions every task.\n\n**Final score: 6/10**", 6.0),
    ('{"reasoning": "good", "score": 7}', 7.0),
    ('```json\n{"score": "8/10", "explanation": "fine"}\n```', 8.0),
    ("Rating: eight", 8.0),
    ("I'd give it eight out of ten.", 8.0),
    ("Closeness: 85/100", 8.5),
    ("Score: 3 out of 10", 3.0),
    ("It misses the rituals (2 of 4 items). Score: 5.", 5.0),
    ("First pass score: 4. After rereading, final score: 6", 6.0),
    ("[[9]]", 9.0),
    ("7", 7.0),
    ("10.", 10.0),
    ("The closeness score is 0 because it is unrelated.", 0.0),
]

SCORE_FAILURES = [
    ("", "empty"),
    ("I'm sorry, but I can't evaluate this response.", "no score"),
    ("Score: <0-10>", "no score"),
    ("Score: 7-8", "no score"),
    ("Score: 11", "outside"),
    ("Rating: 45/50", "no score"),
    ("The response is good. It has 4 sentences.", "no score"),
    ("<start_of_turn>model\nThe pep talk is", "no score"),
    ("Score: -3", "no score"),
    ("asdf qwer 123456", "no score"),
]


@pytest.mark.parametrize(("text", "expected"), SCORES)
def test_parse_score_reads_real_shapes(text: str, expected: float) -> None:
    p = parse_score(text)
    assert p.ok, (text, p.problem)
    assert p.score == pytest.approx(expected)


@pytest.mark.parametrize(("text", "problem"), SCORE_FAILURES)
def test_parse_score_failures_are_failures(text: str, problem: str) -> None:
    p = parse_score(text)
    assert not p.ok and p.score is None
    assert problem in (p.problem or "")


def test_parse_score_keeps_reasoning() -> None:
    p = parse_score("It names both tasks and the goal.\nScore: 9")
    assert p.reasoning == "It names both tasks and the goal."
    j = parse_score('{"score": 4, "reasoning": "too long"}')
    assert j.reasoning == "too long"


CHOICES = [
    ("Response 2 is the most specific.\nChoice: 2", 3, "2"),
    ("Choice: Response 3", 3, "3"),
    ("The best response is Response 1.", 4, "1"),
    ('{"choice": 4, "reasoning": "clear"}', 4, "4"),
    ('{"best": "Response 2"}', 3, "2"),
    ("[[3]]", 3, "3"),
    ("2", 3, "2"),
    ("Response #1 is clearly the best of the three.", 3, "1"),
    ("Answer: two", 3, "2"),
]


@pytest.mark.parametrize(("text", "n", "expected"), CHOICES)
def test_parse_choice(text: str, n: int, expected: str) -> None:
    p = parse_choice(text, n)
    assert p.ok, (text, p.problem)
    assert p.choice == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Choice: 5", "not one of 1..3"),
        ("Choice: <1-3>", "no choice"),
        ("All of them are great!", "no choice"),
        ("I cannot choose.", "no choice"),
        ("Choice: 1.5", "not one of"),
    ],
)
def test_parse_choice_failures(text: str, problem: str) -> None:
    p = parse_choice(text, 3)
    assert not p.ok and p.choice is None and problem in (p.problem or "")


VERDICTS = [
    ("A is more specific.\nVerdict: A", "A"),
    ("Verdict: B", "B"),
    ("Verdict: tie", "tie"),
    ("**Verdict:** Response B", "B"),
    ("Final verdict: [[A]]", "A"),
    ("[[C]]", "tie"),
    ('{"winner": "B", "reason": "warmer"}', "B"),
    ('{"verdict": "tie"}', "tie"),
    ("Response A is better because it names the rituals.", "A"),
    ("The winner is a tie: both are equally good.", "tie"),
    ("B", "B"),
    ("Tie.", "tie"),
    ("Both are warm. A mentions the gym but B is more specific. Verdict: B", "B"),
]


@pytest.mark.parametrize(("text", "expected"), VERDICTS)
def test_parse_pairwise(text: str, expected: str) -> None:
    p = parse_pairwise(text)
    assert p.ok, (text, p.problem)
    assert p.choice == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("Verdict: <A|B|tie>", "no verdict"),
        ("I'm sorry, I can't compare these.", "no verdict"),
        ("A good pep talk should be specific and warm.", "no verdict"),
        ("Response A is better in tone, but Response B is better overall.", "contradictory"),
        ("<end_of_turn>", "no verdict"),
    ],
)
def test_parse_pairwise_failures(text: str, problem: str) -> None:
    p = parse_pairwise(text)
    assert not p.ok and p.choice is None and problem in (p.problem or "")
