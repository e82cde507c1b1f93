"""Property tests of the Arena battle reader: any valid battles, written as JSON Lines or as
a JSON array, read back as the same battles with their lines; any bytes at all end in
battles or in a SlamError, never in another exception."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import SlamError
from evaluation.exchange import read_battles
from evaluation.exchange.arena import WINNERS

NO_SURROGATES: Any = ("Cs",)
chars = st.characters(codec="utf-8", exclude_categories=NO_SURROGATES)
name = st.text(chars, min_size=1, max_size=30).filter(lambda s: s.strip() == s and s != "")
content = st.text(chars, max_size=200)


@st.composite
def battle(draw: Any) -> dict[str, Any]:
    a, b = draw(st.lists(name, min_size=2, max_size=2, unique=True))
    ask = draw(content)
    return {
        "model_a": a, "model_b": b, "winner": draw(st.sampled_from(sorted(WINNERS))),
        "judge": draw(name), "tstamp": draw(st.floats(1, 1e10)),
        "question_id": draw(name), "anony": draw(st.booleans()),
        "conversation_a": [{"role": "user", "content": ask},
                           {"role": "assistant", "content": draw(content)}],
        "conversation_b": [{"role": "user", "content": ask},
                           {"role": "assistant", "content": draw(content)}],
    }  # fmt: skip


def _read(text: str) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b.json"
        path.write_text(text, encoding="utf-8")
        return read_battles(path)


@settings(max_examples=60, deadline=None)
@given(st.lists(battle(), min_size=1, max_size=6), st.booleans(), st.booleans())
def test_valid_battles_read_back(rows: list[dict[str, Any]], as_array: bool, ascii: bool) -> None:
    def dump(r: dict[str, Any]) -> str:
        return json.dumps(r, ensure_ascii=ascii)  # unescaped U+2028 and friends too

    if as_array:
        text = "[\n" + ",\n".join(dump(r) for r in rows) + "\n]"
    else:
        text = "".join(dump(r) + "\n" for r in rows)
    got = _read(text)
    assert [b.line for b in got] == [i + (2 if as_array else 1) for i in range(len(rows))]
    for b, r in zip(got, rows, strict=True):
        assert (b.model_a, b.model_b, b.judge, b.question_id) == (
            r["model_a"], r["model_b"], r["judge"], r["question_id"])
        assert b.choice == WINNERS[r["winner"]] and b.tstamp == r["tstamp"]
        assert b.answer_a == r["conversation_a"][1]["content"]
        assert b.prompt == r["conversation_a"][0]["content"]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300) | st.builds(lambda r: json.dumps(r)[: len(json.dumps(r)) // 2],
                                          battle()))
def test_any_text_is_battles_or_a_clear_error(text: str) -> None:
    try:
        _read(text)
    except SlamError as exc:
        assert str(exc)
