"""Data in and out in the field's formats: `slam export KIND` as CSV, JSONL or Parquet with
its provenance (`export`, `tables`, `provenance`), Chatbot Arena's battle format both ways
(`arena`), and raters as stable pseudonyms keyed per deployment (`pseudonyms`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from evaluation.exchange.arena import (
        ARENA_FIELDS,
        ArenaImport,
        arena_battles,
        import_battles,
        read_battles,
    )
    from evaluation.exchange.export import FORMATS, KINDS, ExportRequest, export_data, write_export
    from evaluation.exchange.provenance import Provenance, provenance_of
    from evaluation.exchange.pseudonyms import Pseudonyms, pseudonym_key

__getattr__ = lazy_exports(__name__, __file__)
