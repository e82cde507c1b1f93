"""The pep-talk prompt and the sample users."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import DEFAULT_PROMPT_TEMPLATE
from core.errors import ConfigError
from core.prompts import load_user_contexts, render_prompt


def test_builtin_users_are_varied_and_complete() -> None:
    users = load_user_contexts("builtin")
    assert len(users) >= 5
    assert len({u.key for u in users}) == len(users)
    assert all(u.focus_tasks and u.weekly_goals for u in users)


def test_prompt_contains_every_part_of_the_context() -> None:
    user = load_user_contexts("builtin")[0]
    text = render_prompt(DEFAULT_PROMPT_TEMPLATE, user)
    for item in user.completed_tasks + user.focus_tasks + user.rituals + user.weekly_goals:
        assert item in text
    assert "4-sentence" in text and user.name in text
    assert "{" not in text


def test_bad_user_file_lists_every_problem(tmp_path: Path) -> None:
    p = tmp_path / "users.json"
    p.write_text(
        json.dumps([{"key": "a", "name": "A", "focus_tasks": []}, {"key": "a", "nme": "B"}]),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_user_contexts(str(p))
    text = str(info.value)
    assert "[0].focus_tasks" in text and "[1].name: Field required" in text
    assert "[1].nme: Extra inputs are not permitted" in text


def test_user_file_not_json(tmp_path: Path) -> None:
    p = tmp_path / "users.json"
    p.write_text("{oops", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_user_contexts(str(p))
