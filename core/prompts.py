"""The pep-talk feature's prompt: sample user contexts and template rendering."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ConfigError


class UserContextData(BaseModel):
    """A user's yesterday, today, rituals and weekly goals."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    completed_tasks: list[str] = Field(default_factory=list)
    focus_tasks: list[str] = Field(min_length=1)
    rituals: list[str] = Field(default_factory=list)
    weekly_goals: list[str] = Field(default_factory=list)


def _join(items: list[str]) -> str:
    if not items:
        return "none"
    if len(items) == 1:
        return items[0]
    return "; ".join(items[:-1]) + "; and " + items[-1]


def render_prompt(template: str, user: UserContextData) -> str:
    """Fill the template's placeholders from one user's context."""
    return template.format(
        name=user.name,
        completed_tasks=_join(user.completed_tasks),
        focus_tasks=_join(user.focus_tasks),
        rituals=_join(user.rituals),
        weekly_goals=_join(user.weekly_goals),
    )


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_user_contexts(source: str = "builtin") -> list[UserContextData]:
    """Load user contexts from the shipped samples ('builtin') or a JSON file (a list)."""
    if source == "builtin":
        raw = resources.files("core.data").joinpath("user_contexts.json").read_text("utf-8")
        label = "<builtin user_contexts.json>"
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(source, ["user contexts file not found (experiment.user_contexts)"])
        raw = path.read_text("utf-8")
        label = source
    try:
        data: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(label, [f"not valid JSON: {exc}"]) from None
    if not isinstance(data, list) or not data:
        raise ConfigError(label, ["expected a non-empty JSON list of user contexts"])
    users, problems = [], []
    for i, item in enumerate(data):
        try:
            users.append(UserContextData.model_validate(item))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"[{i}].{loc}: {err['msg']}")
    keys = [u.key for u in users]
    problems += [f"duplicate key '{k}'" for k in sorted({k for k in keys if keys.count(k) > 1})]
    if problems:
        raise ConfigError(label, problems)
    return users
