"""Property-based tests of the judge-answer parser (Hypothesis): it never raises on any text,
and well-formed answers (the schema's JSON, or the free-text answer line) read back exactly."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from evaluation.auto.judges.answers import answer_schema
from evaluation.auto.judges.parsing import (
    parse_answer,
    parse_choice,
    parse_pairwise,
    parse_score,
    parse_structured,
)
from evaluation.auto.judges.tasks import shape_of
from evaluation.auto.registry import names

# Nothing in the working tree (.hypothesis/): no example database, caches in a temp folder.
set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "slam-hypothesis"))
settings.register_profile("slam", database=None)
settings.load_profile("slam")
SHAPES = ("score", "verdict", "index")
# Reasoning a judge might write before its answer line: prose without answer labels.
PROSE = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ,.'!?"),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400), n=st.integers(min_value=0, max_value=12))
@example(text='{"score": 1' + "0" * 400 + "}", n=3)  # an integer too large for a float
@example(text='{"choice": 1e999}', n=3)
@example(text='{"score": NaN}', n=3)
@example(text="Score: ٣", n=3)  # a digit of another script
@example(text="[" * 2000, n=3)  # deeply nested JSON
def test_parser_never_raises_on_any_text(text: str, n: int) -> None:
    for p in (
        parse_score(text),
        parse_choice(text, n),
        parse_pairwise(text),
        *(parse_answer(text, shape, n) for shape in SHAPES),  # type: ignore[arg-type]
    ):
        assert p.ok == (p.problem is None)
        if p.ok:
            assert p.score is not None or p.choice is not None
        else:
            assert p.score is None and p.choice is None and p.problem


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(
        alphabet=st.characters(codec="utf-8") | st.sampled_from('{}":,[]'),
        max_size=120,
    )
)
def test_json_looking_garbage_never_raises(text: str) -> None:
    for shape in SHAPES:
        parse_answer("{" + text, shape, 4)  # type: ignore[arg-type]
        parse_structured(text, shape, 4)  # type: ignore[arg-type]


@given(reasoning=st.text(max_size=300), score=st.integers(min_value=0, max_value=10))
def test_structured_score_round_trips(reasoning: str, score: int) -> None:
    raw = json.dumps({"reasoning": reasoning, "score": score})
    p = parse_answer(raw, "score")
    assert p.ok and p.score == score
    assert p.reasoning == (reasoning.strip() or None)


@given(
    reasoning=st.text(max_size=300),
    n=st.integers(min_value=1, max_value=12),
    data=st.data(),
)
def test_structured_choice_round_trips(reasoning: str, n: int, data: st.DataObject) -> None:
    pick = data.draw(st.integers(min_value=1, max_value=n))
    raw = json.dumps({"reasoning": reasoning, "choice": pick}, ensure_ascii=False)
    p = parse_answer(raw, "index", n)
    assert p.ok and p.choice == str(pick)


@given(reasoning=st.text(max_size=300), verdict=st.sampled_from(["A", "B", "tie"]))
def test_structured_verdict_round_trips(reasoning: str, verdict: str) -> None:
    raw = json.dumps({"reasoning": reasoning, "verdict": verdict}, ensure_ascii=False)
    p = parse_answer(raw, "verdict")
    assert p.ok and p.choice == verdict


@given(score=st.integers(min_value=11, max_value=10**6) | st.integers(max_value=-1))
def test_structured_score_out_of_range_is_a_failure(score: int) -> None:
    p = parse_answer(json.dumps({"reasoning": "x", "score": score}), "score")
    assert not p.ok and p.score is None and "outside 0–10" in (p.problem or "")


@given(reasoning=PROSE, score=st.integers(min_value=0, max_value=10))
def test_free_text_score_line_round_trips(reasoning: str, score: int) -> None:
    p = parse_answer(f"{reasoning}\nScore: {score}", "score")
    assert p.ok and p.score == score


@given(reasoning=PROSE, verdict=st.sampled_from(["A", "B", "tie"]))
def test_free_text_verdict_line_round_trips(reasoning: str, verdict: str) -> None:
    p = parse_answer(f"{reasoning}\nVerdict: {verdict}", "verdict")
    assert p.ok and p.choice == verdict


@given(reasoning=PROSE, n=st.integers(min_value=1, max_value=9), data=st.data())
def test_free_text_choice_line_round_trips(reasoning: str, n: int, data: st.DataObject) -> None:
    pick = data.draw(st.integers(min_value=1, max_value=n))
    p = parse_answer(f"{reasoning}\nChoice: {pick}", "index", n)
    assert p.ok and p.choice == str(pick)


@given(
    method=st.sampled_from(names("judge")),
    reasoning=st.text(max_size=80),
    n=st.integers(min_value=2, max_value=6),
    data=st.data(),
)
def test_every_value_the_schema_allows_parses(
    method: str, reasoning: str, n: int, data: st.DataObject
) -> None:
    """What constrained decoding can produce (any value of the schema) always reads back."""
    shape = shape_of(method)
    schema = answer_schema(method, reasoning=True, n=n, max_tokens=256).as_dict()
    props = schema["properties"]
    answer_key = list(props)[-1]
    value = data.draw(st.sampled_from(props[answer_key]["enum"]))
    obj = {k: reasoning for k in props if k != answer_key} | {answer_key: value}
    p = parse_answer(json.dumps(obj, ensure_ascii=False), shape, n)
    assert p.ok, p.problem
    assert (p.score if shape == "score" else p.choice) == (
        float(value) if shape == "score" else str(value)
    )


def test_cut_off_json_says_so() -> None:
    p = parse_answer('{"reasoning": "The response names the report and', "score")
    assert not p.ok and p.problem == "incomplete JSON answer (cut off at the token budget?)"
