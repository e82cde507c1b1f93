"""`slam export KIND`: one kind of data as CSV, JSONL or Parquet (or votes as Chatbot Arena
battles), in one feature's scope and a time window, with its provenance.

Kinds: votes, generations, judgements, similarity, probes, ratings, comments (the columns are
in evaluation.exchange.tables; comments in evaluation.exchange.comments). Formats: `csv`,
`jsonl`, `parquet` and, for votes, `arena` (evaluation.exchange.arena). Where each file
keeps its provenance: evaluation.exchange.provenance.

The file is written to a temporary name and moved into place, so a failed export never
leaves half a file; on stdout, Parquet (binary) is refused when stdout is a terminal.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.config import SlamConfig
from core.errors import SlamError
from evaluation.exchange import tables
from evaluation.exchange.provenance import JSONL_KEY, PARQUET_KEY, Provenance, provenance_of
from evaluation.exchange.pseudonyms import Pseudonyms
from evaluation.human import Scope

KINDS = ("votes", "generations", "judgements", "similarity", "probes", "ratings", "comments")
FORMATS = ("csv", "jsonl", "parquet", "arena")


@dataclass(frozen=True)
class ExportRequest:
    kind: str
    format: str = "csv"
    feature: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def check(self) -> None:
        if self.kind not in KINDS:
            raise SlamError(f"unknown export kind '{self.kind}'; choose one of {', '.join(KINDS)}")
        if self.format not in FORMATS:
            raise SlamError(f"unknown format '{self.format}'; choose one of "
                            f"{', '.join(FORMATS)}")  # fmt: skip
        if self.format == "arena" and self.kind != "votes":
            raise SlamError("--format arena is for votes only (Chatbot Arena's battles); use "
                            "csv, jsonl or parquet for the other kinds")  # fmt: skip
        if self.since and self.until and self.since >= self.until:
            raise SlamError("--since must be before --until")
        if self.kind == "ratings" and self.since is not None:
            raise SlamError("ratings are computed over every vote up to a moment: use --until "
                            "(ratings as of then), not --since")  # fmt: skip


@dataclass
class Export:
    """What an export produced: its rows (with the kind's columns) and provenance."""

    columns: list[str]
    rows: list[dict[str, Any]]
    provenance: Provenance
    battles: list[dict[str, Any]] | None = None  # --format arena

    def frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)


def _rows(
    engine: Engine, cfg: SlamConfig, req: ExportRequest, names: Pseudonyms
) -> tuple[list[str], list[dict[str, Any]]]:
    from core.features import feature as find_feature

    if req.feature is not None:
        find_feature(cfg, req.feature)  # an unknown name is a SlamError naming the features
    if req.kind == "ratings":
        from evaluation.results import Results

        res = Results(engine, cfg, feature=req.feature, as_of=req.until, cache=None)
        return tables.RATING_COLUMNS, tables.rating_rows(res)
    with Session(engine) as session:
        window = tables.Window(Scope.of(session, req.feature), req.since, req.until)
        if req.kind == "votes":
            return tables.VOTE_COLUMNS, tables.vote_rows(session, cfg, window, names)
        if req.kind == "generations":
            return tables.GENERATION_COLUMNS, tables.generation_rows(session, window)
        if req.kind == "judgements":
            return tables.JUDGEMENT_COLUMNS, tables.judgement_rows(session, window)
        if req.kind == "similarity":
            return tables.SIMILARITY_COLUMNS, tables.similarity_rows(session, window)
        if req.kind == "probes":
            models = set(find_feature(cfg, req.feature).models) if req.feature else None
            return tables.PROBE_COLUMNS, tables.probe_rows(session, window, models)
        from evaluation.exchange.comments import COMMENT_COLUMNS, comment_rows

        return COMMENT_COLUMNS, comment_rows(session, window, names)


def export_data(
    engine: Engine, cfg: SlamConfig, req: ExportRequest, names: Pseudonyms
) -> Export:
    """The rows of one export and their provenance (read in one snapshot's order: the
    provenance is read first, so new rows arriving meanwhile make it older, never newer)."""
    req.check()
    prov = provenance_of(engine, cfg, req.kind, feature=req.feature, since=req.since,
                         until=req.until)  # fmt: skip
    if req.format == "arena":
        from evaluation.exchange.arena import arena_battles

        with Session(engine) as session:
            window = tables.Window(Scope.of(session, req.feature), req.since, req.until)
            battles = arena_battles(session, cfg, window, names)
        prov = _with_rows(prov, len(battles))
        return Export([], [], prov, battles=battles)
    columns, rows = _rows(engine, cfg, req, names)
    return Export(columns, rows, _with_rows(prov, len(rows)))


def _with_rows(p: Provenance, n: int) -> Provenance:
    from dataclasses import replace

    return replace(p, rows=n)


# -- writing ---------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _csv(exp: Export) -> bytes:
    frame = exp.frame()
    frame["data_version"] = exp.provenance.data_version
    frame["config_fingerprint"] = exp.provenance.config_fingerprint
    for col in frame.columns:  # ISO times, whatever pandas would make of them
        frame[col] = frame[col].map(_plain)
    # RFC 4180 line ends: a field holding a bare "\r" (or "\n") is then quoted; with pandas'
    # default "\n" a "\r" inside a comment went out unquoted and split the row.
    return frame.to_csv(index=False, lineterminator="\r\n").encode()


def _jsonl(exp: Export) -> bytes:
    lines = [json.dumps({JSONL_KEY: exp.provenance.as_dict()}, sort_keys=True)]
    for row in exp.rows:
        lines.append(json.dumps({c: _plain(row.get(c)) for c in exp.columns},
                                ensure_ascii=False))  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


def _parquet(exp: Export) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = exp.frame()
    for col in frame.columns:  # mixed or all-None object columns become strings or nulls
        if frame[col].dtype == object and frame[col].map(
            lambda v: isinstance(v, dict | list)).any():
            frame[col] = frame[col].map(lambda v: None if v is None else json.dumps(v))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[PARQUET_KEY] = exp.provenance.json().encode()
    table = table.replace_schema_metadata(meta)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _arena(exp: Export) -> bytes:
    """A JSON array, one battle per line (FastChat reads it with pandas.read_json)."""
    assert exp.battles is not None
    body = ",\n".join(json.dumps(b, ensure_ascii=False) for b in exp.battles)
    return (f"[\n{body}\n]\n" if exp.battles else "[]\n").encode()


WRITERS: dict[str, Callable[[Export], bytes]] = {
    "csv": _csv, "jsonl": _jsonl, "parquet": _parquet, "arena": _arena,
}  # fmt: skip


def sidecar(out: Path) -> Path:
    return out.with_name(out.name + ".provenance.json")


def write_export(exp: Export, fmt: str, out: Path | None, stdout: IO[bytes] | None = None,
                 stdout_is_tty: bool = False) -> list[Path]:
    """Write the export to `out` (atomically) or to `stdout`; the files written."""
    if out is None and fmt == "parquet" and stdout_is_tty:
        raise SlamError("Parquet is binary: name a file with --out FILE.parquet, or pipe "
                        "stdout into a file or another program")  # fmt: skip
    data = WRITERS[fmt](exp)
    if out is None:
        assert stdout is not None
        stdout.write(data)
        stdout.flush()
        return []
    written = [_atomic(out, data)]
    if fmt == "arena":
        written.append(_atomic(sidecar(out), (exp.provenance.json() + "\n").encode()))
    return written


def _atomic(path: Path, data: bytes) -> Path:
    if path.is_dir():
        raise SlamError(f"{path} is a folder; name the file to write (e.g. {path}/votes.csv)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
