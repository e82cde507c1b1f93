"""Tags, times and cost: the small pure helpers of the host lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config import SlamConfig


def iso(dt: datetime) -> str:
    """The expires-at tag format: UTC, seconds, 'Z'."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str | None) -> datetime | None:
    """A tag's UTC time, or None when it is missing or unparseable (never guess a time)."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def utc(dt: datetime | None) -> datetime | None:
    """Aware UTC (stored columns require it); a naive time is taken to be UTC already."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def accrued_cost(price_per_hour: float, start: datetime, end: datetime) -> float:
    """On-demand Linux is billed per second with a one-minute minimum."""
    seconds = max(60.0, (end - start).total_seconds())
    return price_per_hour * seconds / 3600.0


def ollama_models(cfg: SlamConfig) -> list[str]:
    """Models the host must serve: [aws].ollama_models, else the ollama [[models]]."""
    models = list(cfg.aws.ollama_models) or [m.model for m in cfg.models if m.backend == "ollama"]
    return list(dict.fromkeys(models))


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}
