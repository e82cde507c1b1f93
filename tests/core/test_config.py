"""Configuration: defaults, the shipped example, and one clear message per problem."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from core.config import DEFAULT_PROMPT_TEMPLATE, default_config, load_config
from core.errors import ConfigError

GOOD_MODEL = """
[[models]]
name = "m1"
backend = "llamacpp"
model = "builtin:gemma3-270m"
reference = true
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "slam.toml"
    p.write_text(text, encoding="utf-8")
    return p


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert str(tmp_path / "slam.toml") in str(info.value)
    return info.value.problems


def test_defaults_are_offline_and_valid() -> None:
    cfg = default_config()
    assert cfg.experiment.temperature == 0.7
    assert cfg.reference is not None and cfg.reference.backend == "llamacpp"
    assert cfg.judge_model == cfg.reference
    assert cfg.pricing.api_input_per_1k == 0.03 and cfg.pricing.api_output_per_1k == 0.06
    assert cfg.pricing.instances["g4dn.xlarge"] > 0


def test_shipped_example_is_valid(tmp_path: Path) -> None:
    data = resources.files("core.data")
    text = data.joinpath("slam.example.toml").read_text("utf-8")
    (tmp_path / "support-tickets.jsonl").write_text(
        data.joinpath("support-tickets.jsonl").read_text("utf-8"))  # fmt: skip
    cfg = load_config(write(tmp_path, text))
    assert cfg.reference is not None and cfg.reference.name == "gpt-4"
    assert {m.backend for m in cfg.models} == {"openai", "ollama", "llamacpp"}
    assert cfg.experiment.prompt_template == DEFAULT_PROMPT_TEMPLATE
    from core.features import features

    names = [f.name for f in features(cfg)]
    assert names == ["daily-pep-talk", "support-reply"]
    support = features(cfg)[1]
    inputs = support.inputs()
    assert len(inputs) == 6 and {i.slice for i in inputs} == {"billing", "login", "shipping"}
    assert "enterprise plan" in support.render(inputs[1])
    assert "enterprise plan" not in support.render(inputs[0])


def test_the_example_feature_needs_its_inputs_file(tmp_path: Path) -> None:
    text = resources.files("core.data").joinpath("slam.example.toml").read_text("utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert any("features.support-reply.inputs:" in p and "file not found" in p
               for p in info.value.problems)  # fmt: skip


def test_unknown_key_and_bad_backend_reported_together(tmp_path: Path) -> None:
    text = """
[experiment]
temprature = 0.5

[[models]]
name = "qwen"
backend = "olama"
model = "qwen2:7b"
"""
    found = problems(tmp_path, text)
    assert len(found) == 2
    assert any(p.startswith("experiment.temprature: unknown key") for p in found)
    assert any(
        p.startswith("models.qwen.backend: unknown backend 'olama'")
        and all(name in p.split("expected one of")[1] for name in ("llamacpp", "ollama", "openai"))
        for p in found
    ), found


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("[experiment]\ntemperature = 3.5\n", "experiment.temperature: Input should be less"),
        ("[experiment]\nmax_tokens = 'many'\n", "experiment.max_tokens: Input should be a valid"),
        ("[experiment]\nprompt_template = 'Hi {nmae}'\n", "unknown placeholder(s) ['nmae']"),
        ("[schedule]\nprobe_cron = 'hourly'\n", "schedule.probe_cron: expected a 5-field cron"),
        ("[schedule]\ntimezone = 'Mars/Olympus'\n", "schedule.timezone: expected an IANA"),
        ("[judge]\nmodel = 'nope'\n", "judge.model: 'nope' is not a [[models]] name"),
        ("[chat]\nplatform = 'irc'\n", "chat.platform: Input should be 'console', 'slack'"),
        # A seed every backend takes (llama.cpp's is 32 bits), not a generation error per row.
        ("[experiment]\nseed = 99999999999999999999\n", "experiment.seed: Input should be less"),
        ("[experiment]\nseed = -1\n", "experiment.seed: Input should be greater"),
    ],
)
def test_each_bad_value_names_key_and_expectation(
    tmp_path: Path, snippet: str, expected: str
) -> None:
    found = problems(tmp_path, GOOD_MODEL + snippet)
    assert any(expected in p for p in found), found


def test_duplicate_names_and_two_references(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD_MODEL + GOOD_MODEL)
    assert any("duplicate model name(s) ['m1']" in p for p in found), found
    twice = GOOD_MODEL + GOOD_MODEL.replace('"m1"', '"m2"')
    found = problems(tmp_path, twice)
    assert any("only one model may have reference = true" in p for p in found), found


def test_hardware_without_price(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD_MODEL.replace("reference", 'hardware = "p4d"\nreference'))
    assert any("'p4d' has no price" in p and "[pricing.instances]" in p for p in found), found


def test_toml_syntax_error_has_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "[experiment\nname = 1\n")
    assert len(found) == 1 and "not valid TOML" in found[0] and "line 1" in found[0]


def test_secrets_are_refused_in_the_file(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD_MODEL + '\n[chat]\nslack_bot_token = "xoxb-1"\n')
    assert found == [
        "chat.slack_bot_token: secrets belong in environment variables, not in slam.toml"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found; run `slam init`"):
        load_config(tmp_path / "nope.toml")


def test_env_overrides_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLAM_DATABASE_URL", "postgresql://postgres@127.0.0.1/test")
    cfg = load_config(write(tmp_path, GOOD_MODEL))
    assert cfg.database.url == "postgresql://postgres@127.0.0.1/test"


def test_relative_user_contexts_resolve_next_to_the_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[experiment]\nuser_contexts = "users.json"\n' + GOOD_MODEL))
    assert cfg.experiment.user_contexts == str(tmp_path.resolve() / "users.json")
