"""core.env: the one typed reader of the environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.env import Environment, environment
from core.errors import SlamError

ROOT = Path(__file__).resolve().parents[2]


def test_an_empty_value_counts_as_unset() -> None:
    env = environment({"OLLAMA_HOST": "", "SLAM_DATABASE_URL": "sqlite:///x.db"})
    assert env.ollama_host is None
    assert env.slam_database_url == "sqlite:///x.db"


def test_a_mapping_overrides_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://from-os-environ:11434")
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert environment().ollama_host == "http://from-os-environ:11434"
    given = environment({"DISCORD_TOKEN": "t0ken"})
    assert given.ollama_host is None and given.discord_token == "t0ken"
    # Read when called: a change to os.environ shows in the next snapshot.
    monkeypatch.setenv("OLLAMA_HOST", "http://changed:11434")
    assert environment().ollama_host == "http://changed:11434"


def test_names_are_matched_as_the_shell_spells_them() -> None:
    env = environment({"ollama_host": "http://lower:1", "UNRELATED": "x"})
    assert env.ollama_host is None
    assert environment({"OLLAMA_HOST": "http://upper:1"}).ollama_host == "http://upper:1"


def test_require_names_the_variable_and_what_it_is_for() -> None:
    with pytest.raises(SlamError) as err:
        environment({"DISCORD_TOKEN": ""}).require("discord_token", "export the bot's token")
    assert str(err.value) == (
        "DISCORD_TOKEN is not set; export the bot's token. Secrets come only from the environment."
    )
    assert environment({"DISCORD_TOKEN": "t"}).require("discord_token", "why") == "t"


def readme_environment_table() -> set[str]:
    """The variables README.md's table of environment variables names (its first column)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("| variable | used for |")
    rows = text[start : text.index("\n\n", start)].splitlines()[2:]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_every_variable_the_readme_lists_is_read_here_and_the_other_way_round() -> None:
    listed = readme_environment_table()
    assert {"SLAM_DATABASE_URL", "OLLAMA_HOST", "DISCORD_TOKEN"} <= listed  # the table is found
    # AWS's variables are boto3's own: it reads them itself (core.env says so).
    ours = {name for name in listed if not name.startswith("AWS_")}
    assert ours <= set(Environment.variables()), ours - set(Environment.variables())
    assert set(Environment.variables()) <= ours, set(Environment.variables()) - ours
