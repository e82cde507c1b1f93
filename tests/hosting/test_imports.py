"""`slam import responses`'s reader and store: the OpenAI Batch API's output layout, chat
completion JSONL and plain CSV/JSONL rows become one model's generations for one feature, all
or nothing, idempotently, with line-numbered errors."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.config import ModelSpec
from core.errors import SlamError
from core.features import Feature
from hosting import imports
from hosting.imports import ImportError_, import_responses, read_answers
from storage.models import Generation, ModelVersion, UserContext

GPT4 = ModelSpec(name="gpt-4", backend="openai", model="gpt-4-0613", hardware="api",
                 reference=True)  # fmt: skip


def _feature(tmp_path: Path) -> Feature:
    inputs = tmp_path / "tickets.jsonl"
    inputs.write_text(
        "\n".join(json.dumps(r) for r in [
            {"id": "T-1", "subject": "refund", "body": "where is my money", "type": "billing"},
            {"id": "T-2", "subject": "login", "body": "cannot sign in", "type": "account"},
        ]) + "\n", encoding="utf-8")  # fmt: skip
    return Feature(
        name="support-reply", prompt_template="Reply to: {{ subject }}\n{{ body }}",
        inputs_source=str(inputs), models=("gpt-4",), reference="gpt-4", margin_elo=50,
        samples=1, temperature=0.7, max_tokens=160, slice_field="type",
    )  # fmt: skip


def _batch_line(custom_id: str, text: str, *, error: bool = False) -> str:
    """One line of the Batch API's output file, as OpenAI documents it."""
    if error:
        return json.dumps({"id": f"batch_req_{custom_id}", "custom_id": custom_id,
                           "response": None,
                           "error": {"code": "server_error", "message": "boom"}})  # fmt: skip
    body = {
        "id": f"chatcmpl-{custom_id}", "object": "chat.completion", "created": 1733500000,
        "model": "gpt-4-0613", "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 22, "completion_tokens": 9, "total_tokens": 31},
    }  # fmt: skip
    return json.dumps({"id": f"batch_req_{custom_id}", "custom_id": custom_id,
                       "response": {"status_code": 200, "request_id": f"req_{custom_id}",
                                    "body": body}, "error": None})  # fmt: skip


def _generations(engine: Engine) -> list[Generation]:
    with Session(engine) as s:
        return list(s.exec(select(Generation).order_by(Generation.id)).all())


def test_batch_output_is_stored_once_with_what_the_api_said(engine: Engine, tmp_path: Path) -> None:
    feature = _feature(tmp_path)
    path = tmp_path / "batch_output.jsonl"
    path.write_text("\n".join([_batch_line("T-1", "We sent the refund."),
                               _batch_line("T-2", "Reset your password."),
                               _batch_line("T-9", "", error=True)]) + "\n")  # fmt: skip
    result = import_responses(engine, feature, GPT4, path)
    assert (result.format, result.read, result.stored, result.failed_requests) == ("batch", 2, 2, 1)
    rows = _generations(engine)
    assert [r.text for r in rows] == ["We sent the refund.", "Reset your password."]
    assert {r.source for r in rows} == {"imported"}
    assert [(r.prompt_tokens, r.output_tokens) for r in rows] == [(22, 9), (22, 9)]
    meta = json.loads(rows[0].meta_json or "{}")
    assert meta["system_fingerprint"] == "fp_44709d6fcb" and meta["model"] == "gpt-4-0613"
    assert meta["custom_id"] == "T-1" and meta["usage"]["total_tokens"] == 31
    assert rows[0].run_date == date(2024, 12, 6)  # the completion's `created`
    with Session(engine) as s:
        slices = {u.key: u.slice for u in s.exec(select(UserContext)).all()}
        (version,) = s.exec(select(ModelVersion)).all()
    # the version is what the file says answered: its model and system_fingerprint
    assert {r.model_version_id for r in rows} == {version.id}
    assert version.label == "gpt-4-0613 fp_44709d6fcb"
    assert slices == {"T-1": "billing", "T-2": "account"}

    again = import_responses(engine, feature, GPT4, path)
    assert (again.stored, again.duplicates) == (0, 2)
    assert len(_generations(engine)) == 2
    assert "2 already imported" in again.summary()


def test_chat_completions_and_plain_rows(engine: Engine, tmp_path: Path) -> None:
    feature = _feature(tmp_path)
    chat = tmp_path / "logs.jsonl"
    completion = json.loads(_batch_line("x", "Hello T-1"))["response"]["body"]
    chat.write_text(json.dumps({**completion, "input_id": "T-1"}) + "\n")
    assert import_responses(engine, feature, GPT4, chat).stored == 1
    rows = tmp_path / "answers.csv"
    rows.write_text("input_id,text,latency_ms,ttft_ms,completion_tokens,created_at\n"
                    'T-2,"Sign in again, please.",1500,300,5,2026-12-01T09:00:00Z\n')  # fmt: skip
    result = import_responses(engine, feature, GPT4, rows)
    assert (result.format, result.stored) == ("rows", 1)
    last = _generations(engine)[-1]
    assert last.latency_s == 1.5 and last.ttft_s == 0.3 and last.output_tokens == 5
    assert last.tpot_s == pytest.approx((1.5 - 0.3) / 4)
    assert last.run_date == date(2026, 12, 1)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"input_id": "T-1", "text": "ok"}\n{"input_id": "T-2", "te', "line 2: not valid JSON"),
        ('{"input_id": "T-1", "text": "ok", "score": 3}\n', "line 1: unknown field(s) 'score'"),
        ('{"input_id": "T-1", "text": 5}\n', "line 1: has no answer text"),
        ('{"input_id": "T-1", "text": "a", "latency_ms": "fast"}\n', "line 1: latency_ms is not"),
        ('{"input_id": "T-1", "text": "a"}\n{"input_id": "T-1", "text": "b"}\n',
         "line 2: a second answer for input 'T-1'"),
        ('{"input_id": "T-7", "text": "a"}\n', "line 1: no input with id 'T-7'"),
        ("input_id,body\nT-1,x\n", "the header must name at least input_id and text"),
        # Beyond the database's integers (an OverflowError, a "bug in slam", before).
        ('{"input_id": "T-1", "text": "a", "completion_tokens": 1e300}\n',
         "line 1: completion_tokens is more than 100,000,000"),
        ('{"input_id": "T-1", "text": "a", "prompt_tokens": "99999999999999999999"}\n',
         "line 1: prompt_tokens is more than"),
    ],
)
def test_a_bad_line_stores_nothing_and_is_named(
    engine: Engine, tmp_path: Path, content: str, expected: str
) -> None:
    feature = _feature(tmp_path)
    path = tmp_path / ("bad.csv" if content.startswith("input_id,") else "bad.jsonl")
    # a good line first: it must not be stored either
    path.write_text(content)
    with pytest.raises(ImportError_) as info:
        import_responses(engine, feature, GPT4, path)
    assert expected in str(info.value) and "nothing was stored" in str(info.value)
    assert _generations(engine) == []


def test_dry_run_stores_nothing(engine: Engine, tmp_path: Path) -> None:
    feature = _feature(tmp_path)
    path = tmp_path / "a.jsonl"
    path.write_text('{"input_id": "T-1", "text": "a"}\n')
    result = import_responses(engine, feature, GPT4, path, dry_run=True)
    assert result.stored == 1 and "would store 1" in result.summary(dry_run=True)
    assert _generations(engine) == []


def test_unreadable_files_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SlamError, match="file not found"):
        read_answers(tmp_path / "none.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SlamError, match="not a UTF-8 text file"):
        read_answers(tmp_path / "bin.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(SlamError, match="no answers"):
        read_answers(tmp_path / "empty.jsonl")
    # A pipe or a device (through a symlink) would be read forever: refused up front.
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "zero.jsonl").symlink_to("/dev/zero")
    for name in ("pipe.jsonl", "zero.jsonl"):
        with pytest.raises(SlamError, match="pipe, socket or device"):
            read_answers(tmp_path / name)
    monkeypatch.setattr(imports, "MAX_FILE_BYTES", 10)
    (tmp_path / "big.jsonl").write_text('{"input_id": "T-1", "text": "long enough"}\n')
    with pytest.raises(SlamError, match="per import"):
        read_answers(tmp_path / "big.jsonl")


def test_a_line_separator_inside_an_answer_stays_in_the_answer(
    engine: Engine, tmp_path: Path
) -> None:
    """JSON written with ensure_ascii=False keeps U+2028 and U+0085 unescaped; only a newline
    ends a JSONL line (str.splitlines split the answer, and the file was refused)."""
    feature = _feature(tmp_path)
    text = "First line\u2028second\x85third"
    path = tmp_path / "answers.jsonl"
    path.write_bytes((json.dumps({"input_id": "T-1", "text": text}, ensure_ascii=False)
                      + "\r\n").encode("utf-8"))  # fmt: skip
    assert import_responses(engine, feature, GPT4, path).stored == 1
    assert [g.text for g in _generations(engine)] == [text]
