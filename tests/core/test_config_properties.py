"""Property-based tests of the config loader: whatever a slam.toml holds, loading it gives a
config or a ConfigError whose lines name keys, stay short and report every problem at once."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import SlamConfig, load_config, parse_config
from core.errors import ConfigError, SlamError

SECTIONS = ["experiment", "models", "judge", "pricing", "schedule", "chat", "database", "aws",
            "evaluation"]  # fmt: skip
KNOWN_KEYS = ["name", "backend", "model", "reference", "samples_per_model", "max_tokens",
              "temperature", "timezone", "probe_cron", "url", "platform", "ttl_hours",
              "hardware", "instances", "prompt_template", "user_contexts", "admins"]  # fmt: skip
SECRET_NAMES = ["token", "slack_bot_token", "api_key", "password", "secret", "access_key",
                "openai_api_key", "aws_secret_access_key", "db_password"]  # fmt: skip
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip

keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(min_size=1, max_size=12))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["builtin", "llamacpp", "ollama", "openai", "api", "0 * * * *", "UTC",
                     "{name}", "{name:{x}}", "sqlite:///x.db", "postgresql://u:p@h/d"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)
    ),
    max_leaves=12,
)
model = st.fixed_dictionaries(
    {"name": st.sampled_from(["m1", "m2", "m3"]), "backend": st.sampled_from(["llamacpp", "x"]),
     "model": st.just("builtin:gemma3-270m")},
    optional={"reference": st.booleans(), "hardware": st.sampled_from(["api", "p4d", "local-cpu"]),
              "concurrency": st.integers(-5, 100)},
)  # fmt: skip
configs = st.fixed_dictionaries(
    {},
    optional={
        **{s: st.dictionaries(keys, values, max_size=4) for s in SECTIONS if s != "models"},
        "models": st.lists(st.one_of(model, values), max_size=4),
        "extra_section": values,
    },
)


def check_problems(exc: ConfigError) -> None:
    assert exc.problems, "a ConfigError always says what is wrong"
    text = str(exc)
    for line in text.splitlines()[1:]:
        assert len(line) <= 520, line
    assert len(text) < 60 * 520


@SETTINGS
@given(configs)
def test_any_mapping_gives_a_config_or_a_config_error(data: dict[str, Any]) -> None:
    try:
        cfg = parse_config(data, "<prop>", require_reference=True)
    except ConfigError as exc:
        check_problems(exc)
        return
    assert isinstance(cfg, SlamConfig)
    # What was accepted keeps the promises the README makes about a valid config.
    assert len([m for m in cfg.models if m.reference]) <= 1
    if len(cfg.models) > 1:
        assert cfg.reference is not None
    assert len({m.name for m in cfg.models}) == len(cfg.models)


@SETTINGS
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_file_gives_a_config_or_a_config_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "slam.toml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as exc:
        check_problems(exc)
        assert str(path) in str(exc)
    except SlamError as exc:  # pragma: no cover - would be a message without the file
        raise AssertionError(f"not a ConfigError: {exc!r}") from exc


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(SECTIONS[2:]), st.sampled_from(SECRET_NAMES)),
        min_size=1, max_size=5, unique=True,
    ),
    st.booleans(),
)  # fmt: skip
def test_every_secret_is_reported_beside_every_other_problem(
    secrets: list[tuple[str, str]], also_bad: bool
) -> None:
    data: dict[str, Any] = {
        "models": [{"name": "m1", "backend": "llamacpp", "model": "builtin:gemma3-270m"}]
    }
    for section, key in secrets:
        data.setdefault(section, {})[key] = "xoxb-not-here"
    if also_bad:
        data["experiment"] = {"samples_per_model": 0}
    try:
        parse_config(data, "<prop>")
    except ConfigError as exc:
        found = exc.problems
    else:
        raise AssertionError("secrets in the file must be refused")
    for section, key in secrets:
        assert any(p.startswith(f"{section}.{key}: secrets belong in environment") for p in found)
    assert any("samples_per_model" in p for p in found) == also_bad
    assert not [p for p in found if "unknown key" in p]  # a secret is not also a typo


@SETTINGS
@given(st.integers(2, 4), st.sampled_from(["samples", "backend", "judge", "hardware"]))
def test_cross_key_problems_are_reported_beside_per_key_ones(n_refs: int, other: str) -> None:
    models: list[dict[str, Any]] = [
        {"name": f"m{i}", "backend": "llamacpp", "model": "x", "reference": True}
        for i in range(n_refs)
    ]
    data: dict[str, Any] = {"models": models}
    if other == "samples":
        data["experiment"] = {"samples_per_model": -1}
    elif other == "backend":
        models[0]["backend"] = "olama"
    elif other == "judge":
        data["judge"] = {"model": "nobody"}
    else:
        models[-1]["hardware"] = "p4d"
    try:
        parse_config(data, "<prop>")
    except ConfigError as exc:
        found = exc.problems
    else:
        raise AssertionError("two references must be refused")
    assert any("only one model may have reference = true" in p for p in found), found
    needle = {"samples": "samples_per_model", "backend": "unknown backend", "judge": "nobody",
              "hardware": "'p4d' has no price"}[other]  # fmt: skip
    assert any(needle in p for p in found), found


def test_no_reference_among_several_models_in_a_file(tmp_path: Path) -> None:
    text = "".join(
        f'[[models]]\nname = "m{i}"\nbackend = "llamacpp"\nmodel = "x"\n' for i in range(2)
    )
    path = tmp_path / "slam.toml"
    path.write_text(text)
    try:
        load_config(path)
    except ConfigError as exc:
        assert any("no model has reference = true" in p for p in exc.problems)
    else:
        raise AssertionError("a file with two models and no reference must be refused")
    path.write_text(text.split("[[models]]", 2)[1].join(["[[models]]", ""]))
    assert load_config(path).reference is None  # one model alone: nothing to compare


@SETTINGS
@given(
    st.sampled_from(["postgresql", "postgres", "mysql", "postgresql+psycopg"]),
    st.text("abcdefgh12345", min_size=1, max_size=8),
    st.booleans(),
)
def test_a_password_in_the_database_url_is_refused(scheme: str, pw: str, as_query: bool) -> None:
    url = f"{scheme}://slam@db/slam?password={pw}" if as_query else f"{scheme}://slam:{pw}@db/x"
    try:
        parse_config({"database": {"url": url}}, "<prop>")
    except ConfigError as exc:
        assert any(p.startswith("database.url: the URL contains a password") for p in exc.problems)
        assert "SLAM_DATABASE_URL" in str(exc)
    else:
        raise AssertionError(f"{url} was accepted")
    assert parse_config({"database": {"url": f"{scheme}://slam@db/slam"}})  # no password: fine


@SETTINGS
@given(
    st.sampled_from([("experiment", "name"), ("experiment", "seed"), ("models", "backend"),
                     ("chat", "platform"), ("judge", "model"), ("nonsense", "key"),
                     ("experiment", "prompt_template"), ("aws", "ollama_models")]),
    st.integers(2_000, 200_000),
)  # fmt: skip
def test_a_huge_value_is_never_echoed_whole(tmp_path: Path, where: tuple[str, str], n: int) -> None:
    section, key = where
    big = "Q" * n
    value: Any = [big] if key == "ollama_models" else (f"{{{big}}}" if key == "prompt_template"
                                                       else big)  # fmt: skip
    data: dict[str, Any] = {section: {key: value}}
    if section == "models":
        data = {"models": [{"name": "m", "model": "x", key: value}]}
    try:
        parse_config(data, "<prop>")
    except ConfigError as exc:
        text = str(exc)
    else:
        return  # a long experiment name is allowed
    assert "Q" * 200 not in text
    assert len(text) < 2000


def test_the_loader_reads_what_tomllib_reads(tmp_path: Path) -> None:
    """The property tests feed mappings; this pins that files go through the same path."""
    path = tmp_path / "slam.toml"
    path.write_text('[experiment]\nsamples_per_model = 0\n[chat]\ntoken = "x"\n')
    assert tomllib.loads(path.read_text())["chat"] == {"token": "x"}
    try:
        load_config(path)
    except ConfigError as exc:
        assert len(exc.problems) == 2
    else:
        raise AssertionError("two problems expected")
