"""Typed configuration: `slam.toml` for the experiment, environment variables for secrets.

Every problem in a config file is reported with the file, the key and what was expected,
all at once, so a user fixes the file in one pass.
"""

from __future__ import annotations

import os
import re
import string
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

PROMPT_FIELDS = ("name", "completed_tasks", "focus_tasks", "rituals", "weekly_goals")

DEFAULT_PROMPT_TEMPLATE = """\
Context: My name is {name}. Yesterday I completed these tasks: {completed_tasks}.
Today I want to focus on these tasks: {focus_tasks}.
My daily rituals are: {rituals}.
My goals for this week are: {weekly_goals}.

Query: Write my daily pep talk: a 4-sentence morning briefing that acknowledges what I
finished yesterday, names today's focus, reminds me of my rituals and connects today to my
weekly goals. Be warm, specific and encouraging. Reply with the 4 sentences only."""


class _Strict(BaseModel):
    # Unknown keys are almost always typos; reject them so the user learns at once.
    model_config = ConfigDict(extra="forbid")


class ExperimentConfig(_Strict):
    """What is generated: the feature's prompt, the users it is generated for, and how."""

    name: str = "daily-pep-talk"
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    system_prompt: str | None = None
    user_contexts: str = Field(
        default="builtin",
        description="'builtin' for the shipped sample users, or a path to a JSON file",
    )
    samples_per_model: int = Field(default=1, ge=1, le=100)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=160, ge=1, le=8192)
    seed: int | None = None

    @field_validator("prompt_template")
    @classmethod
    def _known_placeholders(cls, v: str) -> str:
        fields = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        unknown = sorted(fields - set(PROMPT_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {unknown}; allowed: {', '.join(PROMPT_FIELDS)}"
                " (write {{ and }} for literal braces)"
            )
        return v


class ModelSpec(_Strict):
    """One model under test (or the reference, or a judge) and where it runs."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:+-]*$")
    backend: str = Field(description="a registered backend: llamacpp, ollama or openai")
    model: str = Field(min_length=1, description="backend model id, or a GGUF path for llamacpp")
    host: str | None = Field(default=None, description="endpoint; env OLLAMA_HOST/OPENAI_BASE_URL")
    quantization: str = "unknown"
    hardware: str = Field(default="local-cpu", description="a key of [pricing.instances] or 'api'")
    reference: bool = False
    concurrency: int = Field(default=1, ge=1, le=64)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    n_ctx: int = Field(default=2048, ge=256)
    n_threads: int | None = Field(default=None, ge=1)

    @field_validator("backend")
    @classmethod
    def _registered_backend(cls, v: str) -> str:
        from core.backends import backend_names

        names = backend_names()
        if v not in names:
            raise ValueError(f"unknown backend {v!r}; expected one of {', '.join(names)}")
        return v


class JudgeConfig(_Strict):
    """Which configured model acts as the LLM judge (temperature 0)."""

    model: str | None = Field(default=None, description="name of a [[models]] entry")


class PricingConfig(_Strict):
    """Prices are configuration: moto has no Pricing API and list prices change."""

    api_name: str = "gpt-4"
    api_input_per_1k: float = Field(default=0.03, ge=0)
    api_output_per_1k: float = Field(default=0.06, ge=0)
    prices_as_of: str = "2024-03-01"
    utilization: float = Field(default=0.8, gt=0, le=1)
    instances: dict[str, float] = Field(
        default_factory=lambda: {
            "g4dn.xlarge": 0.526,
            "g4dn.2xlarge": 0.752,
            "local-cpu": 0.0,
        },
        description="on-demand $ per hour (us-east-1, Linux)",
    )


class ScheduleConfig(_Strict):
    timezone: str = "UTC"
    probe_cron: str = "0 * * * *"
    generate_cron: str = "0 6 * * *"
    digest_cron: str = "0 9 * * *"
    misfire_grace_s: int = Field(default=3600, ge=1)

    @field_validator("probe_cron", "generate_cron", "digest_cron")
    @classmethod
    def _five_fields(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError("expected a 5-field cron expression like '0 * * * *'")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("expected an IANA time zone such as 'Europe/Berlin'") from exc
        return v


class ReactionConfig(_Strict):
    a: str = "a"
    b: str = "b"
    tie: str = "handshake"
    both_bad: str = "-1"


class ChatConfig(_Strict):
    platform: Literal["console", "slack", "discord"] = "console"
    channel: str = "slam-ratings"
    admin_channel: str | None = None
    admins: list[str] = Field(default_factory=list)
    reactions: ReactionConfig = Field(default_factory=ReactionConfig)
    score_mode: bool = False
    votes_per_rater_per_hour: int = Field(default=120, ge=1)
    pairs_per_round: int = Field(default=10, ge=1)


class DatabaseConfig(_Strict):
    url: str = "sqlite:///slam.db"


class EvaluationConfig(_Strict):
    """How `slam score` judges and compares responses (embedding models, judge budget, stats)."""

    sbert_model: str = Field(
        default="builtin:all-MiniLM-L6-v2",
        description="sentence-transformers model (path or name) for the SBERT cosine",
    )
    qa_model: str = Field(
        default="builtin:all-MiniLM-L6-v2",
        description="sentence-transformers model for the question-answer embedding slot",
    )
    openai_embedding_model: str = "text-embedding-3-small"
    embedding_batch_size: int = Field(default=32, ge=1, le=4096)
    judge_max_tokens: int = Field(default=256, ge=8, le=8192)
    bottom_k: int = Field(default=10, ge=1)
    rbo_p: float = Field(default=0.9, gt=0, lt=1)
    bootstrap_rounds: int = Field(default=1000, ge=0, le=100_000)


DLAMI_SSM_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
)


class AwsConfig(_Strict):
    """The GPU host `slam host up` launches: an EC2 instance serving Ollama.

    Credentials never live here: boto3's standard chain (environment, profile, instance role).
    """

    region: str = "us-east-1"
    instance_type: str = "g4dn.xlarge"
    ami_id: str = Field(
        default=f"ssm:{DLAMI_SSM_PARAMETER}",
        description="an AMI id, or 'ssm:<parameter name>' resolved at launch",
    )
    key_name: str | None = Field(default=None, description="EC2 key pair for SSH (optional)")
    security_group_ids: list[str] = Field(default_factory=list)
    subnet_id: str | None = None
    ttl_hours: float = Field(default=8.0, gt=0, le=168)
    ollama_models: list[str] = Field(
        default_factory=list, description="models to pull; default: the ollama [[models]]"
    )
    tag_prefix: str = Field(default="slam", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
    volume_gb: int = Field(default=100, ge=8, le=16384)
    ollama_port: int = Field(default=11434, ge=1, le=65535)
    use_private_ip: bool = False
    self_terminate: bool = Field(
        default=True, description="the host also shuts itself down (terminates) at its TTL"
    )
    boot_timeout_s: float = Field(default=600.0, ge=0)
    ready_timeout_s: float = Field(default=1800.0, ge=0)
    poll_interval_s: float = Field(default=10.0, ge=0)

    @field_validator("ollama_models")
    @classmethod
    def _model_names(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/-]*", m)]
        if bad:
            raise ValueError(f"invalid Ollama model name(s) {bad}; expected e.g. 'llama3.2:1b'")
        return v

    @field_validator("tag_prefix")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v.lower().startswith("aws"):
            raise ValueError("tags starting with 'aws' are reserved by AWS; pick another prefix")
        return v


class SlamConfig(_Strict):
    """The whole `slam.toml`."""

    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)
    models: list[ModelSpec] = Field(default_factory=list)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    aws: AwsConfig = Field(default_factory=AwsConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> SlamConfig:
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"models: duplicate model name(s) {dupes}; names must be unique")
        refs = [m.name for m in self.models if m.reference]
        if len(refs) > 1:
            raise ValueError(f"models: only one model may have reference = true (got {refs})")
        if self.judge.model is not None and self.judge.model not in names:
            raise ValueError(
                f"judge.model: '{self.judge.model}' is not a [[models]] name;"
                f" expected one of {names}"
            )
        for m in self.models:
            if m.hardware != "api" and m.hardware not in self.pricing.instances:
                raise ValueError(
                    f"models.{m.name}.hardware: '{m.hardware}' has no price; expected 'api' or one"
                    f" of {sorted(self.pricing.instances)} (add it under [pricing.instances])"
                )
        return self

    @property
    def reference(self) -> ModelSpec | None:
        """The reference model (the paid API in production), if one is configured."""
        return next((m for m in self.models if m.reference), None)

    @property
    def candidates(self) -> list[ModelSpec]:
        return [m for m in self.models if not m.reference]

    @property
    def judge_model(self) -> ModelSpec | None:
        """The judge: the named model, else the reference."""
        if self.judge.model:
            return self.model(self.judge.model)
        return self.reference

    def model(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        from core.errors import SlamError

        raise SlamError(f"unknown model '{name}'; configured: {[m.name for m in self.models]}")


class Secrets(BaseSettings):
    """Secrets and endpoints come only from the environment, never from slam.toml."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str | None = None
    discord_token: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    ollama_host: str | None = None
    slam_database_url: str | None = None
    slam_rater_salt: str | None = None


SECRET_KEY = re.compile(r"(^|_)(token|secret|api_key|apikey|password|key_id|access_key)$")


def _format_loc(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            # Name list entries by their model name when we can: models.qwen2 beats models[3].
            name = None
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict):
                name = node[item].get("name")
            parts.append(f"[{item}]" if not name else f".{name}")
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(f".{item}" if parts else str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts).lstrip(".")


def _problems(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    out = []
    for err in exc.errors():
        loc = _format_loc(tuple(err["loc"]), data)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; `slam init` writes a commented example)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif (
            "input" in err
            and err["type"] not in ("value_error",)
            and not isinstance(err["input"], dict | list)
        ):
            msg = f"{msg} (got {err['input']!r})"
        out.append(f"{loc}: {msg}" if loc else msg)
    return out


def parse_config(data: dict[str, Any], source: str = "<config>") -> SlamConfig:
    """Validate a config mapping; raise ConfigError listing every problem."""
    try:
        return SlamConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc, data)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> SlamConfig:
    """Load `slam.toml` (or the built-in defaults when there is none) and apply env overrides."""
    if path is None:
        default = Path("slam.toml")
        if not default.exists():
            return apply_env(default_config())
        path = default
    p = Path(path)
    if not p.exists():
        raise ConfigError(str(p), ["file not found; run `slam init` to write an example"])
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), [f"not valid TOML: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(str(p), ["not a UTF-8 text file"]) from None
    for key in _find_secret_keys(data):
        raise ConfigError(
            str(p), [f"{key}: secrets belong in environment variables, not in slam.toml"]
        )
    cfg = parse_config(data, str(p))
    base = p.parent.resolve()
    ctx = cfg.experiment.user_contexts
    if ctx != "builtin" and not Path(ctx).is_absolute():
        cfg.experiment.user_contexts = str(base / ctx)
    return apply_env(cfg)


def _find_secret_keys(data: Any, prefix: str = "") -> list[str]:
    found = []
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if SECRET_KEY.search(str(k).lower()):
                found.append(key)
            found.extend(_find_secret_keys(v, key))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found.extend(_find_secret_keys(v, f"{prefix}[{i}]"))
    return found


def apply_env(cfg: SlamConfig) -> SlamConfig:
    """`SLAM_DATABASE_URL` overrides the file's database url."""
    url = os.environ.get("SLAM_DATABASE_URL")
    if url:
        cfg.database.url = url
    return cfg


def default_config() -> SlamConfig:
    """The offline defaults: the packaged Gemma 3 270M, embedded, as the only model."""
    return parse_config(
        {
            "models": [
                {
                    "name": "gemma3-270m-q4_k_m",
                    "backend": "llamacpp",
                    "model": "builtin:gemma3-270m",
                    "quantization": "Q4_K_M",
                    "hardware": "local-cpu",
                    "reference": True,
                }
            ]
        },
        "<built-in defaults>",
    )
