"""evaluation.results.withheld: answers that still name a model after masking are counted per
model (the rounds leave them out of every pair), and the report's line says so."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from evaluation.results import Results, withheld_text
from tests.support.bot_seed import make_config, seed


def test_withheld_answers_are_counted_per_model(engine: Engine) -> None:
    cfg = make_config()
    seed(engine, cfg, texts={
        "mistral-7b-q4/Ada": "Ada, I am M i s t r a l and I believe in you.",
        "mistral-7b-q4/Grace": "Grace, as Q**wen** I say: go!",
        "gpt-4/Linus": "I am GPT-4, Linus: ship it.",  # masked, so shown: not withheld
    })  # fmt: skip
    counts = Results(engine, cfg, cache=None).withheld
    assert counts == {"mistral-7b-q4": 2}
    assert withheld_text(counts) == ("2 answers still named a model after masking and were "
                                     "never shown to raters (mistral-7b-q4: 2).")  # fmt: skip
    assert withheld_text({}) is None
    assert withheld_text({"a": 1}) == ("1 answer still named a model after masking and was "
                                       "never shown to raters (a: 1).")  # fmt: skip
