"""Model versions in storage: a Generation's identity (hosting.backends.identity) becomes the
`model_version` row its generation or probe points at.

A model whose backend states no identity (an Ollama that could not be asked, a server that
sends neither `model` nor `system_fingerprint`) leaves the row's version empty: the results
count such rows with the model's current version (evaluation.results.versions)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from hosting.backends import ModelIdentity, imported_identity
from storage.repo import ensure_model_version


def record_version(session: Session, model_id: int, identity: ModelIdentity | None) -> int | None:
    """The id of the model's version with this identity (made the first time it is seen)."""
    if identity is None:
        return None
    return ensure_model_version(session, model_id, identity.key, identity.label,
                                identity.details_json())  # fmt: skip


def imported_version(session: Session, model_id: int, meta: Mapping[str, Any]) -> int | None:
    """The version an imported answer's file states (its `model` and `system_fingerprint`)."""
    return record_version(session, model_id, imported_identity(meta))


def details(details_json: str) -> dict[str, Any]:
    """A version's stored details (what identified it and what was known of it)."""
    try:
        out = json.loads(details_json or "{}")
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}
