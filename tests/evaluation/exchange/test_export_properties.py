"""Property test of the writers: any text (quotes, commas, bare CR and LF, U+2028, emoji) and
any numbers survive CSV, JSONL and Parquet as pandas and pyarrow read them back. (NUL is left
out: pandas' CSV parser ends a field there; and CSV floats are read with
float_precision="round_trip", pandas' default parser being off in the last digit.)"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.exchange.export import WRITERS, Export
from evaluation.exchange.provenance import Provenance

PROV = Provenance("comments", "d" * 16, "c" * 16, "2026-01-01T00:00:00+00:00")
NO_SURROGATES: Any = ("Cs",)
texts = st.text(st.characters(codec="utf-8", exclude_categories=NO_SURROGATES,
                              exclude_characters="\x00"), min_size=1, max_size=80)  # fmt: skip
rows = st.lists(st.fixed_dictionaries({"id": st.integers(0, 2**53), "text": texts,
                                       "value": st.floats(-1e9, 1e9, allow_nan=False)}),
                min_size=1, max_size=8)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(rows)
def test_writers_round_trip(data: list[dict[str, Any]]) -> None:
    exp = Export(["id", "text", "value"], data, PROV)
    csv = pd.read_csv(io.BytesIO(WRITERS["csv"](exp)), dtype={"text": str},
                      keep_default_na=False, float_precision="round_trip")  # fmt: skip
    lines = WRITERS["jsonl"](exp).decode().split("\n")
    assert json.loads(lines[0])["_provenance"]["data_version"] == "d" * 16
    jsonl = [json.loads(x) for x in lines[1:] if x]
    table = pq.read_table(io.BytesIO(WRITERS["parquet"](exp)))
    assert json.loads(table.schema.metadata[b"slam.provenance"])["kind"] == "comments"
    parquet = table.to_pandas()
    for got in (csv.to_dict("records"), jsonl, parquet.to_dict("records")):
        assert [r["id"] for r in got] == [r["id"] for r in data]
        assert [r["text"] for r in got] == [r["text"] for r in data]
        assert [float(r["value"]) for r in got] == [r["value"] for r in data]
    assert set(csv["data_version"]) == {"d" * 16}
