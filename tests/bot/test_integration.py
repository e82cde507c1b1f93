"""The chat commands over the real evaluation modules (ratings, report) and the CLI."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from bot.dispatcher import Dispatcher
from bot.events import Command
from bot.platforms.console import rate_in_console
from tests.bot.test_core import NullPort
from tests.support.bot_seed import make_config, seed


async def rated_db(engine: Engine) -> None:
    cfg = make_config(pairs_per_round=6)
    seed(engine, cfg)
    # One console rater always prefers B: enough votes for a leaderboard.
    await rate_in_console(engine, cfg, ["b"] * 6, io.StringIO(), salt=b"s")


async def test_leaderboard_uses_bradley_terry(engine: Engine) -> None:
    pytest.importorskip("evaluation.human.ratings")
    await rated_db(engine)
    d = Dispatcher(engine, make_config(), salt=b"s")
    try:
        reply = await d.handle_command(Command("console", "u", "c", "leaderboard"), NullPort())
    finally:
        await d.aclose()
    assert reply is not None and reply.ok, reply
    assert reply.title == "Leaderboard"
    names = " ".join(k for k, _ in reply.fields)
    assert all(m in names for m in ("gpt-4", "mistral-7b-q4", "gemma3-270m-q4_k_m"))
    assert "6 pairwise votes" in reply.text and "gpt-4 anchored at 1000" in reply.text
    # the length-controlled rating by the report's and the dashboard's rule (style_cell)
    from evaluation.human import style_cell
    from evaluation.results import Results

    res = Results(engine, make_config())
    assert res.ratings is not None and res.style_ratings is not None
    for key, value in reply.fields:
        model = key.split(". ", 1)[1]
        want = style_cell(res.style_ratings.ratings[model], res.ratings.ratings[model])
        assert want and value.endswith(f" · length-controlled {want}"), (value, want)


async def test_report_with_one_real_chart(engine: Engine, tmp_path: Path) -> None:
    pytest.importorskip("evaluation.report")
    await rated_db(engine)
    d = Dispatcher(engine, make_config(), salt=b"s", report_dir=tmp_path)
    try:
        reply = await d.handle_command(
            Command("console", "u", "c", "report bradley_terry"), NullPort()
        )
        bad = await d.handle_command(Command("console", "u", "c", "report nope"), NullPort())
    finally:
        await d.aclose()
    assert reply is not None and reply.ok and list(reply.files) == ["bradley_terry"]
    assert reply.files["bradley_terry"].read_bytes().startswith(b"\x89PNG")
    assert bad is not None and not bad.ok and "Unknown chart `nope`" in bad.text
    assert "bradley_terry" in bad.text


def test_cli_names_missing_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from slam.cli import main

    for var in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    assert main(["bot", "slack", "--http"]) == 2
    assert main(["bot", "discord"]) == 2
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    assert main(["bot", "slack"]) == 2


def test_cli_errors_are_messages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from slam.cli import main

    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    main(["bot", "slack", "--http"])
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN is not set" in err and "Traceback" not in err
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    main(["bot", "slack", "--socket"])
    assert "SLACK_APP_TOKEN is not set" in capsys.readouterr().err


def test_console_command_runs_from_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from slam.cli import _register_all, app
    from storage.db import make_engine
    from storage.migrate import upgrade
    from tests.support.bot_seed import MODELS
    from tests.support.slack_helpers import write_config

    url = f"sqlite:///{tmp_path / 'slam.db'}"
    eng = make_engine(url)
    upgrade(eng)
    seed(eng, make_config())
    cfg_path = write_config(tmp_path / "slam.toml", url, MODELS, pairs_per_round=2)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLAM_RATER_SALT", "x")
    _register_all()
    result = CliRunner().invoke(app, ["bot", "console", "-c", str(cfg_path)], input="a\nb\n")
    assert result.exit_code == 0, result.output
    assert "2 vote(s) recorded on 2 pair(s)." in result.output


def test_slack_manifest_matches_the_app() -> None:
    yaml = pytest.importorskip("yaml")
    from bot.commands import COMMANDS

    root = Path(__file__).resolve().parents[2]
    manifest = yaml.safe_load((root / "slack_manifest.yml").read_text())
    (slash,) = manifest["features"]["slash_commands"]
    assert slash["command"] == "/slam"
    assert all(name in slash["usage_hint"] for name in COMMANDS)
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert events == {"reaction_added", "reaction_removed", "message.channels", "message.im"}
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "reactions:read", "reactions:write", "files:write",
            "channels:history", "im:history"} <= scopes  # fmt: skip
