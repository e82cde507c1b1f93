"""Features are data: a feature is a prompt template, a file of inputs and the models that
answer it. `[[features]]` in slam.toml describes them; the old `[experiment]` table is the
built-in `daily-pep-talk` feature over the shipped sample users.

Templates are Jinja2 in a sandbox with undefined variables as errors (promptfoo's and
Langfuse's convention): `{{ subject }}`, `{% for line in lines %}`, filters over list columns.
Inputs are a `.jsonl`, `.csv` or `.parquet` file with one input per row; `id_field` names each
row (unique) and `slice_field`, optionally, the column that groups rows (ticket type, language,
customer tier). Everything wrong with a feature is found when the config loads and reported
at once, each problem with its file and line.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import short

FEATURE_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
INPUT_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".parquet")
MAX_INPUT_BYTES = 64 * 1024 * 1024  # an inputs file larger than this is refused
MAX_INPUT_ROWS = 100_000
MAX_ID_CHARS = 200
MAX_PROMPT_CHARS = 200_000  # a rendered prompt longer than this is refused
MAX_PROBLEMS = 20  # per file: the first problems, then a count


class FeatureConfig(BaseModel):
    """One `[[features]]` table."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=FEATURE_NAME, description="lower case, digits, . _ -")
    prompt_template: str = Field(min_length=1, max_length=100_000)
    system_prompt: str | None = Field(default=None, max_length=100_000)
    inputs: str = Field(min_length=1, description="a .jsonl, .csv or .parquet file")
    id_field: str = Field(default="id", min_length=1, max_length=200)
    slice_field: str | None = Field(default=None, min_length=1, max_length=200)
    models: list[str] | None = Field(default=None, description="names from [[models]]")
    reference: str | None = None
    margin_elo: float | None = Field(default=None, ge=0, le=400)
    samples_per_input: int | None = Field(default=None, ge=1, le=100)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    seed: int | None = None
    channel: str | None = Field(default=None, max_length=200)
    schedule: str | None = Field(default=None, description="cron for this feature's generation")

    @field_validator("inputs")
    @classmethod
    def _known_format(cls, v: str) -> str:
        if not v.lower().endswith(INPUT_SUFFIXES):
            raise ValueError(
                f"expected a {', '.join(INPUT_SUFFIXES)} file (got {short(repr(v), 80)})"
            )
        return v

    @field_validator("prompt_template", "system_prompt")
    @classmethod
    def _valid_template(cls, v: str | None) -> str | None:
        if v is not None:
            problem = template_problem(v)
            if problem:
                raise ValueError(problem)
        return v


# -- templates ------------------------------------------------------------------------------


def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


_ENV: Any = None


def jinja() -> Any:
    """The one sandboxed Jinja2 environment every feature template renders in."""
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV


def template_problem(text: str) -> str | None:
    """Why `text` is not a valid template (a syntax error with its line), or None."""
    from jinja2 import TemplateSyntaxError

    try:
        jinja().parse(text)
    except TemplateSyntaxError as exc:
        why = short(exc.message or str(exc), 160)
        return f"not a valid Jinja2 template: {why} (line {exc.lineno})"
    return None


def template_variables(text: str) -> set[str]:
    """The input columns a template reads (its undeclared top-level variables)."""
    from jinja2 import meta

    return set(meta.find_undeclared_variables(jinja().parse(text)))


class RenderError(ValueError):
    """A template that cannot be filled in from one input (what is wrong, for the user)."""


def render(text: str, row: Mapping[str, Any]) -> str:
    """Fill the template from one input row; a RenderError says why it cannot be."""
    from jinja2 import TemplateError, UndefinedError

    try:
        chunks: list[str] = []
        size = 0
        for chunk in jinja().from_string(text).generate(**row):
            size += len(chunk)
            if size > MAX_PROMPT_CHARS:
                raise RenderError(f"renders longer than {MAX_PROMPT_CHARS:,} characters")
            chunks.append(chunk)
        return "".join(chunks)
    except UndefinedError as exc:
        why = short(exc.message or str(exc), 120)
        raise RenderError(f"uses an undefined value: {why}") from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        if isinstance(exc, RenderError):
            raise
        why = f"{type(exc).__name__}: {short(str(exc), 120)}"
        raise RenderError(f"cannot be filled in ({why})") from None


# -- inputs ---------------------------------------------------------------------------------


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
    for n, line in enumerate(text.splitlines(), 1):
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


# -- the feature as the pipeline sees it ----------------------------------------------------

TemplateKind = Literal["jinja", "format"]


@dataclass(frozen=True)
class Feature:
    """A feature, resolved against the config: its template, inputs, models and settings."""

    name: str
    prompt_template: str
    inputs_source: str  # a path, or 'builtin' (the shipped sample users)
    models: tuple[str, ...]
    reference: str | None
    margin_elo: float
    samples: int
    temperature: float
    max_tokens: int
    system_prompt: str | None = None
    seed: int | None = None
    id_field: str = "id"
    slice_field: str | None = None
    channel: str | None = None
    schedule: str | None = None
    kind: TemplateKind = "jinja"
    builtin: bool = False  # the [experiment] table's pep talk
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def candidates(self) -> tuple[str, ...]:
        return tuple(m for m in self.models if m != self.reference)

    def inputs(self) -> list[FeatureInput]:
        """The feature's inputs (read once per Feature)."""
        if "inputs" not in self._cache:
            if self.kind == "format":
                from core.prompts import load_user_contexts

                users = load_user_contexts(self.inputs_source)
                self._cache["users"] = {u.key: u for u in users}
                self._cache["inputs"] = [
                    FeatureInput(u.key, u.model_dump(), None, i) for i, u in enumerate(users, 1)
                ]
            else:
                self._cache["inputs"] = read_inputs(
                    self.inputs_source, self.id_field, self.slice_field,
                    needs=template_variables(self.prompt_template),
                )  # fmt: skip
        inputs: list[FeatureInput] = self._cache["inputs"]
        return inputs

    def label(self, inp: FeatureInput) -> str:
        """A short human name of an input (a sample user's name; else its id)."""
        if self.kind == "format":
            return str(inp.data.get("name") or inp.id)
        return inp.id

    def render(self, inp: FeatureInput) -> str:
        """The prompt for one input."""
        if self.kind == "format":
            from core.prompts import UserContextData, render_prompt

            return render_prompt(self.prompt_template, UserContextData.model_validate(inp.data))
        return render(self.prompt_template, inp.data)


def slug(text: str) -> str:
    """A feature name made from any text (for messages that suggest one)."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-")[:64] or "feature"
