"""Feature templates (sandboxed Jinja2, undefined values are errors) and inputs files (JSONL,
CSV, Parquet) checked at once, each problem with its line; property tests: whatever a file or
template holds, the answer is a list of inputs or one clear error, never another exception."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.inputs import MAX_INPUT_ROWS, InputsError, read_inputs
from core.templates import RenderError, render, template_problem, template_variables

TICKET = "Write a short reply to this ticket: {{ subject }}\n{{ body }}"


def test_template_reads_its_columns_and_renders_loops_and_filters() -> None:
    t = "Dear {{ name | title }}:{% for line in lines %} [{{ loop.index }}] {{ line }}{% endfor %}"
    assert template_variables(t) == {"name", "lines"}
    assert render(t, {"name": "ada lovelace", "lines": ["a", "b"]}) == (
        "Dear Ada Lovelace: [1] a [2] b"
    )
    assert template_variables(TICKET) == {"subject", "body"}


def test_undefined_values_are_errors_not_empty_text() -> None:
    with pytest.raises(RenderError, match="undefined"):
        render(TICKET, {"subject": "refund"})
    with pytest.raises(RenderError, match="undefined"):
        render("{{ customer.tier }}", {"customer": {}})


def test_syntax_errors_name_the_line() -> None:
    problem = template_problem("Hello\n{{ subject ")
    assert problem is not None and "line 2" in problem
    assert template_problem(TICKET) is None


def test_the_sandbox_refuses_unsafe_access() -> None:
    with pytest.raises(RenderError):
        render("{{ x.__class__.__mro__[1].__subclasses__() }}", {"x": "a"})


def test_a_runaway_template_is_bounded() -> None:
    with pytest.raises(RenderError, match="longer than"):
        render("{% for i in range(100000) %}{{ big }}{% endfor %}", {"big": "x" * 100})


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_jsonl_csv_and_parquet_inputs_read_the_same(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"id": "T-1", "subject": "refund", "body": "where is my money", "type": "billing"},
        {"id": "T-2", "subject": "login", "body": "cannot sign in", "type": "account"},
    ]
    j = read_inputs(_jsonl(tmp_path / "t.jsonl", rows), slice_field="type", needs={"subject"})
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("id,subject,body,type\nT-1,refund,where is my money,billing\n"
                        "T-2,login,cannot sign in,account\n")  # fmt: skip
    c = read_inputs(csv_path, slice_field="type")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    p = read_inputs(tmp_path / "t.parquet", slice_field="type")
    for got in (j, c, p):
        assert [(i.id, i.slice, i.data["subject"]) for i in got] == [
            ("T-1", "billing", "refund"), ("T-2", "account", "login")]  # fmt: skip
    assert [i.line for i in j] == [1, 2] and [i.line for i in c] == [2, 3]


def test_every_problem_at_once_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": 1, "subject": "a", "body": "x"}\n'
        '{"id": 1, "subject": "b", "body": "y"}\n'  # duplicate id
        '{"subject": "c", "body": "z"}\n'  # no id
        '[1, 2]\n'  # not an object
        '{"id": 5, "body": "w"}\n'  # lacks subject: the first row that does
        '{"id": 6, "body": "v"}\n',  # lacks it too: not reported again
        encoding="utf-8",
    )
    with pytest.raises(InputsError) as info:
        read_inputs(path, needs=template_variables(TICKET))
    assert info.value.problems == [
        "line 2: duplicate id '1' (first at line 1)",
        "line 3: has no id field 'id'",
        "line 4: expected an object with named fields (got list)",
        "line 5 (id '5'): no column 'subject', which the template uses",
    ]


def test_a_truncated_line_and_an_unfillable_row_are_named(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "a", "subject": "s", "body": "b"}\n{"id": "b", "subj', encoding="utf-8")
    with pytest.raises(InputsError, match=r"line 2: not valid JSON"):
        read_inputs(path)
    _jsonl(path, [{"id": "a", "customer": {"tier": "gold"}}, {"id": "b", "customer": {}}])
    with pytest.raises(InputsError) as info:
        read_inputs(path, template="{{ customer.tier }}")
    assert info.value.problems[0].startswith("line 2 (id 'b'): the template uses an undefined")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        (b"\xff\xfe\x00bad", "not a UTF-8 text file"),
    ],
)
def test_empty_and_binary_files_are_refused(
    tmp_path: Path, content: str | bytes, problem: str
) -> None:
    path = tmp_path / "t.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(InputsError, match=problem):
        read_inputs(path)


def test_missing_folder_bad_parquet_and_too_many_rows(tmp_path: Path) -> None:
    with pytest.raises(InputsError, match="file not found"):
        read_inputs(tmp_path / "none.jsonl")
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(InputsError, match="is a folder"):
        read_inputs(tmp_path / "d.csv")
    os.mkfifo(tmp_path / "pipe.jsonl")  # reading a pipe or a device would never end
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    for name in ("pipe.jsonl", "zero.csv"):
        with pytest.raises(InputsError, match="pipe, socket or device"):
            read_inputs(tmp_path / name)
    (tmp_path / "x.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputsError, match="not a readable Parquet file"):
        read_inputs(tmp_path / "x.parquet")
    big = tmp_path / "big.csv"
    big.write_text("id\n" + "\n".join(str(i) for i in range(MAX_INPUT_ROWS + 1)) + "\n")
    with pytest.raises(InputsError, match="rows; at most"):
        read_inputs(big)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=400), st.sampled_from([".jsonl", ".csv"]))
def test_any_file_is_inputs_or_one_clear_error(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"any{suffix}"
    path.write_bytes(data)
    try:
        got = read_inputs(path, needs={"subject"})
    except InputsError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
    else:
        assert got and len({i.id for i in got}) == len(got)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80), st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4))
def test_any_template_is_checked_or_renders_or_says_why(text: str, row: dict[str, str]) -> None:
    if template_problem(text) is not None:
        return
    try:
        out = render(text, row)
    except RenderError as exc:
        assert str(exc)
    else:
        assert isinstance(out, str)


def test_a_line_separator_inside_a_jsonl_value_stays_in_the_value(tmp_path: Path) -> None:
    """Only a newline ends a JSONL line: U+2028 and U+0085 unescaped inside a string (JSON
    written with ensure_ascii=False) are part of the value, and CRLF line ends still read."""
    body = "line one\u2028line two\x85three"
    path = tmp_path / "t.jsonl"
    path.write_bytes((json.dumps({"id": "T-1", "body": body}, ensure_ascii=False) + "\r\n"
                      + json.dumps({"id": "T-2", "body": "x"}) + "\r\n").encode())  # fmt: skip
    got = read_inputs(path)
    assert [(i.id, i.data["body"]) for i in got] == [("T-1", body), ("T-2", "x")]
