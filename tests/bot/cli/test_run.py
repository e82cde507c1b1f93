"""`slam bot` with no platform runs the one `[chat].platform` names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slam.cli import main


def config(tmp_path: Path, platform: str | None) -> Path:
    path = tmp_path / "slam.toml"
    chat = "" if platform is None else f'[chat]\nplatform = "{platform}"\n'
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "slam.db"}"\n{chat}')
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture(autouse=True)
def no_secrets(monkeypatch: pytest.MonkeyPatch, clean_root: None) -> None:
    """No platform secrets; and the root logger as it was after each test (`slam bot`
    configures logging, which would change what later tests' logs look like)."""
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_TOKEN",
                 "SLAM_DATABASE_URL", "SLAM_HTTP_PORT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_the_configured_platform_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # slack, as `slam bot slack` would: Socket Mode, so the app token is the one missing
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-run-test")
    code, text = run(capsys, "bot", "-c", str(config(tmp_path, "slack")))
    assert code == 2 and "SLACK_APP_TOKEN is not set; Socket Mode needs" in text, text
    code, text = run(capsys, "bot", "-c", str(config(tmp_path, "discord")))
    assert code == 2 and "DISCORD_TOKEN is not set; create a bot" in text, text


def test_the_platform_gets_its_own_defaults_and_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.platforms.discord

    seen: dict[str, Any] = {}

    async def fake_discord(engine: Any, cfg: Any, token: str, **kwargs: Any) -> None:
        seen.update(kwargs, token=token, channel=cfg.chat.channel)

    monkeypatch.setattr(bot.platforms.discord, "run_discord", fake_discord)
    monkeypatch.setenv("DISCORD_TOKEN", "discord-run-test")
    monkeypatch.setenv("SLAM_HTTP_PORT", "4321")
    code, text = run(capsys, "bot", "--config", str(config(tmp_path, "discord")))
    assert code == 0, text
    assert seen == {"token": "discord-run-test", "channel": "slam-ratings",
                    "host": "127.0.0.1", "port": 4321, "scheduler": True}  # fmt: skip


def test_console_is_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.platforms.console

    seen: dict[str, Any] = {}

    class Summary:
        recorded = 0
        pairs = ()

    async def fake_console(engine: Any, cfg: Any, *, start_round: bool) -> Summary:
        seen["start_round"] = start_round
        return Summary()

    monkeypatch.setattr(bot.platforms.console, "rate_in_console", fake_console)
    code, text = run(capsys, "bot", "-c", str(config(tmp_path, None)))
    assert code == 0 and "0 vote(s) recorded on 0 pair(s)." in text, text
    assert seen == {"start_round": True}


def test_config_before_a_platform_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = run(capsys, "bot", "-c", str(config(tmp_path, "slack")), "discord")
    text = " ".join(text.replace("│", " ").split())  # typer's usage errors come in a wrapped box
    assert code == 2 and "give it after the platform: slam bot discord --config" in text, text
    code, text = run(capsys, "bot", "--help")
    assert code == 0 and "[chat].platform" in text and "discord" in text
