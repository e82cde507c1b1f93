"""A feature's inputs: a `.jsonl`, `.csv` or `.parquet` file with one input per row.

`id_field` names each row (unique) and `slice_field`, optionally, the column that groups rows
(ticket type, language, customer tier). Everything wrong with a file is found at once and
reported with its line (JSONL, CSV) or row (Parquet): not an object, no id, a duplicate id,
a column the template uses missing (the first row that lacks it), a row the template cannot
fill; empty and oversized files are refused.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import short
from core.paths import NOT_A_FILE, special_file
from core.templates import RenderError, render

INPUT_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".parquet")
MAX_INPUT_BYTES = 64 * 1024 * 1024  # an inputs file larger than this is refused
MAX_INPUT_ROWS = 100_000
MAX_ID_CHARS = 200
MAX_PROBLEMS = 20  # per file: the first problems, then "(and possibly more)"


@dataclass(frozen=True)
class FeatureInput:
    """One input row: its id, its values, its slice, and where it is in the file."""

    id: str
    data: Mapping[str, Any]
    slice: str | None = None
    line: int = 0  # 1-based line (JSONL, CSV) or row (Parquet)


class InputsError(ValueError):
    """Everything wrong with an inputs file, each problem naming its line."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def _where(fmt: str, n: int) -> str:
    return f"row {n}" if fmt == "parquet" else f"line {n}"


def _rows(path: Path, shown: str) -> tuple[str, list[tuple[int, Any]]]:
    """(format, [(line, row)]) of an inputs file; InputsError for what makes it unreadable."""
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputsError(shown, ["file not found"]) from None
    except OSError as exc:
        raise InputsError(shown, [f"cannot read it ({exc.strerror})"]) from None
    if path.is_dir():
        raise InputsError(shown, ["is a folder; name the inputs file"])
    if special_file(path):
        raise InputsError(shown, [NOT_A_FILE])
    if size > MAX_INPUT_BYTES:
        limit = MAX_INPUT_BYTES / 1e6
        raise InputsError(shown, [f"is {size / 1e6:.0f} MB; at most {limit:.0f} MB"])
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises many kinds for a bad file
            why = short(str(exc), 120)
            raise InputsError(shown, [f"not a readable Parquet file ({why})"]) from None
        return "parquet", [(i, r) for i, r in enumerate(rows, 1)]
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputsError(shown, ["not a UTF-8 text file"]) from None
    except OSError as exc:
        raise InputsError(shown, [f"cannot read it ({exc.strerror})"]) from None
    if suffix == ".csv":
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
            out = []
            for row in reader:
                if None in row:
                    raise InputsError(shown, [f"line {reader.line_num}: more values than columns"])
                out.append((reader.line_num, dict(row)))
        except csv.Error as exc:
            raise InputsError(shown, [f"line {reader.line_num}: not valid CSV ({exc})"]) from None
        return "csv", out
    out, problems = [], []
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines: U+2028 may be in a string
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except (json.JSONDecodeError, RecursionError) as exc:
            problems.append(f"line {n}: not valid JSON ({short(str(exc), 80)})")
            if len(problems) >= MAX_PROBLEMS:
                break
    if problems:
        raise InputsError(shown, problems)
    return "jsonl", out


def _key(value: Any) -> str | None:
    """An id or slice value as text (strings and whole numbers; nothing else names a row)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def read_inputs(
    path: str | Path,
    id_field: str = "id",
    slice_field: str | None = None,
    *,
    needs: Iterable[str] = (),
    template: str | None = None,
    shown: str | None = None,
) -> list[FeatureInput]:
    """Read and check an inputs file: every row an object with a unique id, every column the
    template reads present (`needs`), and (with `template`) every row renders. InputsError
    lists the problems, the first row at fault named with its line."""
    p = Path(path).expanduser()
    label = shown or short(str(path), 200)
    fmt, rows = _rows(p, label)
    if not rows:
        raise InputsError(label, ["is empty; one input per row is expected"])
    if len(rows) > MAX_INPUT_ROWS:
        raise InputsError(label, [f"has {len(rows):,} rows; at most {MAX_INPUT_ROWS:,}"])
    needed = sorted(set(needs))
    problems: list[str] = []
    seen: dict[str, int] = {}
    out: list[FeatureInput] = []
    lacking_reported: set[str] = set()

    def problem(text: str) -> bool:
        problems.append(text)
        return len(problems) >= MAX_PROBLEMS

    for n, row in rows:
        at = _where(fmt, n)
        if not isinstance(row, dict):
            if problem(f"{at}: expected an object with named fields (got {type(row).__name__})"):
                break
            continue
        rid = _key(row.get(id_field))
        if rid is None:
            what = "has no" if id_field not in row else "has an empty or non-text"
            if problem(f"{at}: {what} id field '{short(id_field, 60)}'"):
                break
            continue
        if len(rid) > MAX_ID_CHARS:
            if problem(f"{at}: id is longer than {MAX_ID_CHARS} characters"):
                break
            continue
        if rid in seen:
            first = _where(fmt, seen[rid])
            if problem(f"{at}: duplicate id {short(repr(rid), 60)} (first at {first})"):
                break
            continue
        seen[rid] = n
        for col in needed:
            if col not in row and col not in lacking_reported:
                lacking_reported.add(col)  # the first row that lacks it, once per column
                if problem(f"{at} (id {short(repr(rid), 40)}): no column '{short(col, 60)}', "
                           "which the template uses"):  # fmt: skip
                    break
        slice_value = None
        if slice_field is not None:
            slice_value = _key(row.get(slice_field))
            if slice_value is None and problem(
                f"{at} (id {short(repr(rid), 40)}): "
                f"no value in slice field '{short(slice_field, 60)}'"
            ):
                break
        out.append(FeatureInput(rid, row, slice_value, n))
    if template is not None and not problems:
        for inp in out:
            try:
                render(template, inp.data)
            except RenderError as exc:
                at = f"{_where(fmt, inp.line)} (id {short(repr(inp.id), 40)})"
                if problem(f"{at}: the template {exc}"):
                    break
    if problems:
        more = " (and possibly more)" if len(problems) >= MAX_PROBLEMS else ""
        raise InputsError(label, [*problems[:-1], problems[-1] + more])
    return out


