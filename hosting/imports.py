"""`slam import responses`: answers produced elsewhere (the paid API's production logs, a
batch job) stored as one model's generations for one feature, so the reference is never paid
for twice.

Formats, detected from the content:

- **OpenAI Batch API output** (JSONL): `{"custom_id": ..., "response": {"status_code": 200,
  "body": <chat completion>}, "error": null}`; `custom_id` is the input id. A line whose
  request failed (`error` set, or a status other than 200) is not an answer: it is counted and
  skipped.
- **Chat-completion responses** (JSONL): a chat completion object per line with the input id
  in `input_id` (or `custom_id`, or `metadata.input_id`).
- **Plain rows** (CSV or JSONL): `input_id, text`, optionally `latency_ms, ttft_ms,
  prompt_tokens, completion_tokens, created_at`.

The usage, the model, `system_fingerprint` and the ids a file gives are kept with each answer
(`generation.meta_json`), its latency and token counts as measurements, and the row is marked
`source = 'imported'`. An import is all or nothing: a bad line (named with its number and what
is wrong) stores nothing; and idempotent: an answer already imported (same model, input and
text) is not stored again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import Engine
from sqlmodel import select

from core.config import ModelSpec
from core.errors import SlamError, short
from core.features import Feature
from core.paths import read_import_file
from core.prompts import text_hash
from hosting.versions import imported_version
from storage import models as tables
from storage.db import session_scope
from storage.repo import ensure_experiment, ensure_input, ensure_model, ensure_prompt

Format = Literal["batch", "chat", "rows"]
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_TEXT_CHARS = 200_000
MAX_PROBLEMS = 20
ROW_FIELDS = {"input_id", "text", "latency_ms", "ttft_ms", "prompt_tokens",
              "completion_tokens", "created_at"}  # fmt: skip


class ImportError_(SlamError):
    """What is wrong with an import file: each problem with its line."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{source}: {len(problems)} problem(s); nothing was stored:\n{shown}"
        )


@dataclass(frozen=True)
class Answer:
    """One imported answer, as read from its line."""

    line: int
    input_id: str
    text: str
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    created_at: datetime | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportResult:
    format: Format
    read: int = 0  # answers read from the file
    stored: int = 0
    duplicates: int = 0  # already imported before
    failed_requests: int = 0  # batch lines whose request failed (no answer to import)
    by_day: dict[date, int] = field(default_factory=dict)

    def summary(self, dry_run: bool = False) -> str:
        verb = "would store" if dry_run else "stored"
        parts = [f"{self.read} answer(s) read ({self.format} format)", f"{verb} {self.stored}"]
        if self.duplicates:
            parts.append(f"{self.duplicates} already imported (not stored again)")
        if self.failed_requests:
            parts.append(f"{self.failed_requests} failed request(s) in the file skipped")
        return "; ".join(parts)


# -- reading --------------------------------------------------------------------------------


def _lines(text: str) -> Iterator[tuple[int, str]]:
    # Only "\n" ends a JSON line: str.splitlines would also split inside a string holding
    # U+2028 or U+0085, which JSON writes unescaped (ensure_ascii=False). A CRLF's "\r" is
    # JSON whitespace.
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            yield n, line


def detect(text: str, suffix: str) -> Format:
    """The format of a file's content (its first non-empty line decides)."""
    first = next((line for _, line in _lines(text)), "")
    if suffix == ".csv" or not first.lstrip().startswith("{"):
        return "rows"
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:
        return "rows"  # reported by the reader with its line
    if isinstance(obj, dict) and "custom_id" in obj and ("response" in obj or "error" in obj):
        return "batch"
    if isinstance(obj, dict) and "choices" in obj:
        return "chat"
    return "rows"


MAX_TOKENS = 100_000_000  # per answer: far beyond any context window


def _int(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what} is not a whole number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not a number (got {short(repr(value), 40)})") from None
    if not number.is_integer() or number < 0:
        raise ValueError(f"{what} is not a whole number ≥ 0 (got {short(repr(value), 40)})")
    if number > MAX_TOKENS:  # a token count; beyond it the database's integers overflow
        raise ValueError(f"{what} is more than {MAX_TOKENS:,} (got {short(repr(value), 40)})")
    return int(number)


def _ms(value: Any, what: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not a number (got {short(repr(value), 40)})") from None
    if not (0 <= number < 1e9):
        raise ValueError(f"{what} must be between 0 and 1e9 ms (got {short(repr(value), 40)})")
    return number / 1000.0


def _when(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not (0 < value < 1e11):
            raise ValueError(f"created_at {value!r} is not a Unix time in seconds")
        return datetime.fromtimestamp(value, UTC)
    try:
        ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"created_at is not an ISO date-time or Unix time (got {short(repr(value), 40)})"
        ) from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _id(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError("has no input id")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text or isinstance(value, dict | list):
        raise ValueError("has no input id")
    return text


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("has no answer text")
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"answer is longer than {MAX_TEXT_CHARS:,} characters")
    return value


def _completion(body: Any, line: int, input_id: str, extra: Mapping[str, Any]) -> Answer:
    """An answer from a chat completion object."""
    if not isinstance(body, dict):
        raise ValueError("the response body is not a chat completion object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("the chat completion has no choices")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if content is None:
        raise ValueError("the first choice has no message content")
    raw_usage = body.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    created = body.get("created")
    meta = {k: body[k] for k in ("id", "model", "system_fingerprint") if body.get(k) is not None}
    if usage:
        meta["usage"] = usage
    meta.update(extra)
    return Answer(
        line, input_id, _text(content),
        prompt_tokens=_int(usage.get("prompt_tokens"), "usage.prompt_tokens"),
        output_tokens=_int(usage.get("completion_tokens"), "usage.completion_tokens"),
        created_at=_when(created) if created is not None else None,
        meta=meta,
    )  # fmt: skip


def _json_answers(
    text: str, fmt: Format, result: ImportResult, problems: list[str]
) -> list[Answer]:
    out: list[Answer] = []
    for n, line in _lines(text):
        if len(problems) >= MAX_PROBLEMS:
            break
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            problems.append(f"line {n}: not valid JSON ({short(str(exc), 80)}; a truncated line?)")
            continue
        if not isinstance(obj, dict):
            problems.append(f"line {n}: expected a JSON object (got {type(obj).__name__})")
            continue
        try:
            if fmt == "batch":
                answer = _batch_line(obj, n, result)
                if answer is None:
                    continue
            elif fmt == "chat":
                metadata = obj.get("metadata")
                meta_id = metadata.get("input_id") if isinstance(metadata, dict) else None
                raw_id = obj.get("input_id", obj.get("custom_id", meta_id))
                answer = _completion(obj, n, _id(raw_id), {})
            else:
                answer = _row(obj, n)
        except ValueError as exc:
            problems.append(f"line {n}: {exc}")
            continue
        out.append(answer)
    return out


def _batch_line(obj: dict[str, Any], n: int, result: ImportResult) -> Answer | None:
    custom_id = _id(obj.get("custom_id"))
    response = obj.get("response")
    status = response.get("status_code") if isinstance(response, dict) else None
    if obj.get("error") or not isinstance(response, dict) or status not in (200, None):
        result.failed_requests += 1
        return None
    extra = {"custom_id": custom_id}
    if obj.get("id"):
        extra["batch_request_id"] = obj["id"]
    if response.get("request_id"):
        extra["request_id"] = response["request_id"]
    return _completion(response.get("body"), n, custom_id, extra)


def _row(obj: Mapping[str, Any], n: int) -> Answer:
    unknown = sorted(set(obj) - ROW_FIELDS)
    if unknown:
        shown = ", ".join(short(repr(k), 30) for k in unknown[:5])
        raise ValueError(f"unknown field(s) {shown}; expected {', '.join(sorted(ROW_FIELDS))}")
    return Answer(
        n, _id(obj.get("input_id")), _text(obj.get("text")),
        prompt_tokens=_int(obj.get("prompt_tokens"), "prompt_tokens"),
        output_tokens=_int(obj.get("completion_tokens"), "completion_tokens"),
        latency_s=_ms(obj.get("latency_ms"), "latency_ms"),
        ttft_s=_ms(obj.get("ttft_ms"), "ttft_ms"),
        created_at=_when(obj.get("created_at")),
    )  # fmt: skip


def read_answers(path: Path) -> tuple[list[Answer], ImportResult]:
    """Every answer in an import file; ImportError_ (nothing read) when any line is bad."""
    shown = short(str(path), 200)
    text = read_import_file(path, "answers", MAX_FILE_BYTES)
    fmt = detect(text, path.suffix.lower())
    result = ImportResult(fmt)
    problems: list[str] = []
    if fmt == "rows" and (path.suffix.lower() == ".csv" or not text.lstrip().startswith("{")):
        answers = _csv_answers(text, problems)
    else:
        answers = _json_answers(text, fmt, result, problems)
    seen: dict[str, int] = {}
    for a in answers:
        if a.input_id in seen and len(problems) < MAX_PROBLEMS:
            what = short(repr(a.input_id), 60)
            problems.append(f"line {a.line}: a second answer for input {what} (first at line "
                            f"{seen[a.input_id]}); import one answer per input")  # fmt: skip
        seen.setdefault(a.input_id, a.line)
    if problems:
        raise ImportError_(shown, problems)
    if not answers and not result.failed_requests:
        raise SlamError(f"{shown}: no answers in the file")
    result.read = len(answers)
    return answers, result


def _csv_answers(text: str, problems: list[str]) -> list[Answer]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    out: list[Answer] = []
    try:
        if reader.fieldnames is None or "input_id" not in reader.fieldnames or "text" not in (
            reader.fieldnames
        ):
            problems.append("line 1: the header must name at least input_id and text")
            return out
        for row in reader:
            if len(problems) >= MAX_PROBLEMS:
                break
            n = reader.line_num
            if None in row:
                problems.append(f"line {n}: more values than columns")
                continue
            try:
                out.append(_row({k: v for k, v in row.items() if v != ""}, n))
            except ValueError as exc:
                problems.append(f"line {n}: {exc}")
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not valid CSV ({exc})")
    return out


# -- storing --------------------------------------------------------------------------------


def import_key(model: str, input_id: str, text: str) -> str:
    """What makes an imported answer the same answer again."""
    return hashlib.sha256(f"{model}\x1f{input_id}\x1f{text}".encode()).hexdigest()[:32]


def import_responses(
    engine: Engine,
    feature: Feature,
    model: ModelSpec,
    path: Path,
    *,
    dry_run: bool = False,
    today: date | None = None,
) -> ImportResult:
    """Store a file's answers as `model`'s generations for `feature` (all or nothing)."""
    from hosting.backends import tpot

    answers, result = read_answers(path)
    inputs = {i.id: i for i in feature.inputs()}
    unknown = [a for a in answers if a.input_id not in inputs]
    if unknown:
        where = f"in feature '{feature.name}' ({short(feature.inputs_source, 120)})"
        problems = [f"line {a.line}: no input with id {short(repr(a.input_id), 60)} {where}"
                    for a in unknown[:MAX_PROBLEMS]]  # fmt: skip
        if len(unknown) > MAX_PROBLEMS:
            problems.append(f"… and {len(unknown) - MAX_PROBLEMS} more")
        raise ImportError_(short(str(path), 200), problems)
    day = today or datetime.now(UTC).date()
    with session_scope(engine) as s:
        exp = ensure_experiment(s, feature.name, feature.prompt_template)
        rec = ensure_model(s, model)
        assert exp.id is not None and rec.id is not None
        known = {
            json.loads(meta).get("import_key")
            for meta in s.exec(
                select(tables.Generation.meta_json).where(
                    tables.Generation.experiment_id == exp.id,
                    tables.Generation.model_id == rec.id,
                    tables.Generation.source == "imported",
                )
            ).all()
            if meta
        }
        rows: list[tables.Generation] = []
        for a in answers:
            key = import_key(model.name, a.input_id, a.text)
            if key in known:
                result.duplicates += 1
                continue
            known.add(key)
            inp = inputs[a.input_id]
            uc = ensure_input(s, exp.id, inp.id, feature.label(inp), dict(inp.data), inp.slice)
            prompt_text = feature.render(inp)
            assert uc.id is not None
            prompt = ensure_prompt(s, exp.id, uc.id, prompt_text, text_hash(prompt_text))
            assert prompt.id is not None
            run_date = a.created_at.date() if a.created_at else day
            taken = set(s.exec(select(tables.Generation.sample_index).where(
                tables.Generation.prompt_id == prompt.id, tables.Generation.model_id == rec.id,
                tables.Generation.run_date == run_date)).all())  # fmt: skip
            taken |= {r.sample_index for r in rows
                      if r.prompt_id == prompt.id and r.run_date == run_date}  # fmt: skip
            sample = next(i for i in range(len(taken) + 1) if i not in taken)
            meta = {**a.meta, "import_key": key, "imported_from": path.name}
            rows.append(tables.Generation(
                experiment_id=exp.id, prompt_id=prompt.id, model_id=rec.id, run_date=run_date,
                sample_index=sample, backend=model.backend, text=a.text,
                prompt_tokens=a.prompt_tokens, output_tokens=a.output_tokens,
                latency_s=a.latency_s, ttft_s=a.ttft_s,
                tpot_s=tpot(a.latency_s, a.ttft_s, a.output_tokens),
                source="imported", meta_json=json.dumps(meta, sort_keys=True, default=str),
                created_at=a.created_at or datetime.now(UTC),
                model_version_id=None if dry_run else imported_version(s, rec.id, a.meta),
            ))  # fmt: skip
            result.by_day[run_date] = result.by_day.get(run_date, 0) + 1
        result.stored = len(rows)
        if dry_run:
            s.rollback()
            return result
        s.add_all(rows)
    return result
