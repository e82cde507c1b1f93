"""The pep-talk feature's prompt: sample user contexts and template rendering."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ConfigError, short
from core.paths import NOT_A_FILE, special_file


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
    """Fill the template's placeholders from one user's context. A template that cannot be
    filled in is a ConfigError naming experiment.prompt_template (the config checks this at
    load; a template built in code gets the same answer here)."""
    from core.config import check_template

    try:
        return template.format(
            name=user.name,
            completed_tasks=_join(user.completed_tasks),
            focus_tasks=_join(user.focus_tasks),
            rituals=_join(user.rituals),
            weekly_goals=_join(user.weekly_goals),
        )
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        try:
            check_template(template)
        except ValueError as bad:
            reason = str(bad)
        else:
            reason = f"cannot be filled in ({type(exc).__name__}: {short(str(exc), 80)})"
        raise ConfigError("experiment.prompt_template", [reason]) from None


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_user_contexts(source: str = "builtin") -> list[UserContextData]:
    """Load user contexts from the shipped samples ('builtin') or a JSON file (a list)."""
    if source == "builtin":
        raw = resources.files("core.data").joinpath("user_contexts.json").read_text("utf-8")
        label = "<builtin user_contexts.json>"
    else:
        path = Path(source).expanduser()
        label = short(source, 200)
        if not path.exists():
            raise ConfigError(label, ["user contexts file not found (experiment.user_contexts)"])
        if path.is_dir():
            raise ConfigError(
                label, ["is a folder; experiment.user_contexts must name a JSON file"]
            )
        if special_file(path):
            raise ConfigError(label, [NOT_A_FILE])
        try:
            raw = path.read_text("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(label, ["not a UTF-8 text file (experiment.user_contexts)"]) from None
        except OSError as exc:
            from core.paths import os_reason

            raise ConfigError(
                label, [f"cannot read it: {os_reason(exc)} (experiment.user_contexts)"]
            ) from None
    try:
        data: Any = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(label, [f"not valid JSON: {short(str(exc), 200)}"]) from None
    if not isinstance(data, list) or not data:
        raise ConfigError(label, ["expected a non-empty JSON list of user contexts"])
    users, problems = [], []
    for i, item in enumerate(data):
        try:
            users.append(UserContextData.model_validate(item))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"[{i}].{short(loc, 80)}: {err['msg']}")
    keys = [u.key for u in users]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    problems += [f"duplicate key {short(repr(k), 60)}" for k in dupes]
    if problems:
        raise ConfigError(label, problems)
    return users
