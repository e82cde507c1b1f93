"""What produced an export: the data version and the configuration, carried by every file.

`data_version` is a short hash of the data versions of the tables the results read
(evaluation.results.cache.table_versions: row count and max id of each append-only table, a
hash of each small mutable one, and which database it is); `config_fingerprint` is the
results' configuration fingerprint (the whole config and the code that computes results).
Two exports with the same pair were made from the same data under the same configuration,
so they hold the same rows and the same numbers.

Where a file carries it (docs/data.md):

- **Parquet**: the schema metadata key `slam.provenance` (JSON), and the columns below;
- **JSONL**: a first record `{"_provenance": {...}}`;
- **CSV**: the columns `data_version` and `config_fingerprint` on every row (pandas reads no
  comment header, and a CSV on stdout has no sidecar);
- **Arena JSON**: a sidecar `FILE.provenance.json` next to `--out` (Arena's battle records keep
  exactly their fields, so FastChat reads them unchanged); on stdout, a line on stderr.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from core.config import SlamConfig

PARQUET_KEY = b"slam.provenance"
JSONL_KEY = "_provenance"


@dataclass(frozen=True)
class Provenance:
    kind: str
    data_version: str
    config_fingerprint: str
    exported_at: str
    feature: str | None = None
    since: str | None = None
    until: str | None = None
    rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)


def data_version(engine: Engine) -> str:
    """A short hash of every results table's data version (and of the database's identity)."""
    from evaluation.results import table_versions

    versions = table_versions(engine)
    blob = json.dumps(sorted((k, list(v)) for k, v in versions.items()), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def provenance_of(
    engine: Engine,
    cfg: SlamConfig,
    kind: str,
    *,
    feature: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    rows: int = 0,
    now: datetime | None = None,
) -> Provenance:
    from evaluation.results import config_fingerprint

    return Provenance(
        kind=kind,
        data_version=data_version(engine),
        config_fingerprint=config_fingerprint(cfg),
        exported_at=(now or datetime.now(UTC)).isoformat(),
        feature=feature,
        since=since.isoformat() if since else None,
        until=until.isoformat() if until else None,
        rows=rows,
    )
