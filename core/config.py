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

from core.env import environment
from core.errors import ConfigError, short
from core.inputs import INPUT_SUFFIXES
from core.paths import NOT_A_FILE, special_file
from core.templates import template_problem

PROMPT_FIELDS = ("name", "completed_tasks", "focus_tasks", "rituals", "weekly_goals")

DEFAULT_PROMPT_TEMPLATE = """\
Context: My name is {name}. Yesterday I completed these tasks: {completed_tasks}.
Today I want to focus on these tasks: {focus_tasks}.
My daily rituals are: {rituals}.
My goals for this week are: {weekly_goals}.

Query: Write my daily pep talk: a 4-sentence morning briefing that acknowledges what I
finished yesterday, names today's focus, reminds me of my rituals and connects today to my
weekly goals. Be warm, specific and encouraging. Reply with the 4 sentences only."""


MAX_SEED = 2**31 - 1 - 100  # a seed plus a sample index fits every backend's seed

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
    # What every backend takes (llama.cpp a 32-bit seed), with room for + sample index.
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)

    @field_validator("prompt_template")
    @classmethod
    def _known_placeholders(cls, v: str) -> str:
        check_template(v)
        return v


def _template_fields(template: str) -> list[tuple[str, str, str | None]]:
    """(field, format spec, conversion) of every placeholder, nested specs included."""
    out: list[tuple[str, str, str | None]] = []
    for _, fname, spec, conv in string.Formatter().parse(template):
        if fname is None:
            continue
        out.append((fname, spec or "", conv))
        if spec and "{" in spec:
            out.extend(_template_fields(spec))
    return out


def check_template(template: str) -> None:
    """ValueError unless `template` fills in with exactly the prompt fields: only known
    placeholders (no attributes, indexes or nested fields), and a trial render succeeds."""
    hint = f"allowed: {', '.join('{' + f + '}' for f in PROMPT_FIELDS)}; write {{{{ and }}}} for"
    hint += " literal braces"
    try:
        fields = _template_fields(template)
    except ValueError as exc:
        raise ValueError(f"not a valid template: {exc}; {hint}") from None
    unknown = sorted({f for f, _, _ in fields} - set(PROMPT_FIELDS), key=str)
    if unknown:
        shown = ", ".join(short(repr(u), 40) for u in unknown[:10])
        raise ValueError(f"unknown placeholder(s) [{shown}]; {hint}")
    bad = sorted({short(f"{{{f}:{spec}}}", 40) for f, spec, conv in fields if spec or conv})
    if bad:
        shown = ", ".join(bad)
        raise ValueError(f"placeholders take no format spec or conversion ({shown}); {hint}")
    try:
        template.format(**{f: "x" for f in PROMPT_FIELDS})
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise ValueError(f"cannot be filled in ({type(exc).__name__}: {exc}); {hint}") from None


FEATURE_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class FeatureConfig(_Strict):
    """One `[[features]]` table: a product feature to decide on (core.features).

    Unset keys fall back to `[experiment]` (samples, temperature, max tokens, seed),
    `[evaluation] margin_elo`, every configured model, and the model with `reference = true`.
    """

    name: str = Field(pattern=FEATURE_NAME, description="lower case letters, digits, . _ -")
    prompt_template: str = Field(min_length=1, max_length=100_000, description="Jinja2")
    system_prompt: str | None = Field(default=None, max_length=100_000)
    inputs: str = Field(min_length=1, description="a .jsonl, .csv or .parquet file")
    id_field: str = Field(default="id", min_length=1, max_length=200)
    slice_field: str | None = Field(default=None, min_length=1, max_length=200)
    models: list[str] | None = Field(default=None, description="names from [[models]]; default all")
    reference: str | None = Field(default=None, description="default: the model with reference")
    margin_elo: float | None = Field(default=None, gt=0, le=400)
    samples_per_input: int | None = Field(default=None, ge=1, le=100)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    channel: str | None = Field(default=None, min_length=1, max_length=200)
    schedule: str | None = Field(default=None, description="cron of this feature's generation")

    @field_validator("inputs")
    @classmethod
    def _known_format(cls, v: str) -> str:
        if not v.lower().endswith(INPUT_SUFFIXES):
            raise ValueError(
                f"expected a {', '.join(INPUT_SUFFIXES)} file (got {short(repr(v), 80)})"
            )
        return v

    @field_validator("prompt_template", "system_prompt")
    @classmethod
    def _valid_template(cls, v: str | None) -> str | None:
        problem = template_problem(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("schedule")
    @classmethod
    def _five_fields(cls, v: str | None) -> str | None:
        if v is not None and len(v.split()) != 5:
            raise ValueError("expected a 5-field cron expression like '0 7 * * *'")
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
            raise ValueError(
                f"unknown backend {short(repr(v), 40)}; expected one of {', '.join(names)}"
            )
        return v


class JudgeConfig(_Strict):
    """Which configured model acts as the LLM judge (temperature 0)."""

    model: str | None = Field(default=None, description="name of a [[models]] entry")


_DEFAULT_INSTANCES = {"g4dn.xlarge": 0.526, "g4dn.2xlarge": 0.752, "local-cpu": 0.0}


class PricingConfig(_Strict):
    """Prices are configuration: moto has no Pricing API and list prices change."""

    api_name: str = "gpt-4"
    api_input_per_1k: float = Field(default=0.03, ge=0)
    api_output_per_1k: float = Field(default=0.06, ge=0)
    prices_as_of: str = "2024-03-01"
    utilization: float = Field(default=0.8, gt=0, le=1)
    instances: dict[str, float] = Field(
        default_factory=lambda: dict(_DEFAULT_INSTANCES),
        description="on-demand $ per hour (us-east-1, Linux)",
    )
    electricity_per_kwh: float | None = Field(
        default=None,
        ge=0,
        description="$ per kWh for on-premises hardware (None: electricity is in the hourly price)",
    )
    pue: float = Field(
        default=1.0, ge=1, le=3, description="power usage effectiveness: facility ÷ GPU energy"
    )


class ScheduleConfig(_Strict):
    timezone: str = "UTC"
    probe_cron: str = "0 * * * *"
    generate_cron: str = "0 6 * * *"
    digest_cron: str = "0 9 * * *"
    misfire_grace_s: int = Field(default=3600, ge=1)
    lease_ttl_s: int = Field(
        default=300,
        ge=10,
        le=86_400,
        description="a replica renews its running job's lease every third of this; a lease "
        "not renewed for this long (the replica died) is taken over by another replica",
    )

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


class WebConfig(_Strict):
    """The web front on the bot's HTTP server (bot/web): the rating page and the dashboard."""

    enabled: bool = Field(default=True, description="serve /r/… (rating) and /dashboard")
    public_url: str | None = Field(
        default=None,
        description="the address people reach the bot at (https://slam.example.com): invite "
        "links use it, and `/slam report` links to its dashboard",
    )
    invite_days: float = Field(default=14, gt=0, le=366, description="rater links expire")
    viewer_days: float = Field(default=90, gt=0, le=366, description="viewer links expire")
    chart_refresh_s: float = Field(
        default=30, ge=1, le=86400, description="the dashboard redraws charts at most this often"
    )

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.fullmatch(r"https?://[^\s/?#@]+(/[^\s?#]*)?", v.strip()):
            raise ValueError("expected an http(s) address like https://slam.example.com")
        return v.strip().rstrip("/")


class DatabaseConfig(_Strict):
    url: str = "sqlite:///slam.db"

    @field_validator("url")
    @classmethod
    def _no_password(cls, v: str) -> str:
        if url_has_password(v):
            raise ValueError(
                "the URL contains a password; secrets belong in the environment: export "
                "SLAM_DATABASE_URL='postgresql://user:password@host/db' and drop the password "
                "here (or the whole url)"
            )
        return v


def url_has_password(url: str) -> bool:
    """True when a URL carries a password (user:password@ or a password= query)."""
    from urllib.parse import parse_qs, urlsplit

    try:
        parts = urlsplit(url.strip())
        if parts.password:
            return True
        query = parse_qs(parts.query)
    except ValueError:
        return bool(re.search(r"://[^/@\s]*:[^/@\s]*@", url))
    return any(k.lower() in ("password", "passwd", "pwd") for k in query)


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
    bootstrap_rounds: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="bootstrap rounds behind every interval (seeded from the data: the same "
        "votes give the same interval on every surface)",
    )
    confidence: float = Field(default=0.95, ge=0.5, le=0.999, description="interval coverage")
    margin_elo: float = Field(
        default=50.0,
        gt=0,
        le=400,
        description="non-inferiority margin: a candidate is acceptable when its rating is at "
        "most this far below the reference's (50 Elo: preferred in at least 43% of votes)",
    )
    both_bad: Literal["tie", "exclude"] = Field(
        default="tie", description="count a 'both bad' vote as a tie, or leave it out"
    )
    require_completion: bool = Field(
        default=False, description="count a rater's votes in a round only once they rated it all"
    )
    max_votes_per_rater: int | None = Field(
        default=None, ge=1, description="count at most this many effective votes per rater"
    )
    pair_selection: Literal["active", "round_robin"] = Field(
        default="active",
        description="which pairs raters get: 'active' (the pairs whose votes most narrow the "
        "open decision, evaluation.human.active) or 'round_robin' (every model pair in turn)",
    )
    explore: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="share of pairs chosen for coverage (least-voted model pairs) rather than "
        "information, so every model keeps getting votes",
    )
    gold_rate: float = Field(
        default=0.1,
        ge=0,
        le=0.5,
        description="share of the pairs `/slam rate` hands a rater that are gold pairs (the "
        "reference's answer against a clearly bad one); 0 turns gold pairs off",
    )
    rater_quality: Literal["exclude", "report"] = Field(
        default="exclude",
        description="raters flagged by the gold or the chance rule: 'exclude' their votes "
        "from the results, or only 'report' how many there are (every vote counts)",
    )
    sbert_backend: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="how sentence-transformers models (sbert_model, qa_model) run: 'onnx' "
        "(ONNX Runtime, exported once into the model cache; about 3x faster, the same vectors "
        "to float precision; falls back to torch with a warning) or 'torch' (PyTorch)",
    )


class CommandLimits(_Strict):
    """Bounds of command-line numbers that have no key in slam.toml.

    Options read their range from here (`core.options.bounded`), exactly as options with a
    key read the key's (`--samples` from experiment.samples_per_model): one source per bound.
    """

    probe_warmup: int = Field(default=10, ge=0, le=1000, description="slam probe --warmup")
    probe_measure: int = Field(default=10, ge=1, le=1000, description="slam probe --measure")
    # In chat a probe blocks the bot's answer: a smaller bound than the command line's.
    chat_probe_measure: int = Field(default=3, ge=1, le=50, description="/slam probe MEASURE")
    sweep_requests: int = Field(default=8, ge=1, le=100_000, description="slam sweep --requests")
    sweep_n_rates: int = Field(default=3, ge=1, le=100, description="slam sweep --n-rates")
    sweep_concurrency: int = Field(default=1, ge=1, le=1024, description="one --concurrency level")
    sweep_rate: float = Field(default=1.0, gt=0, le=100_000, description="one --rates value")
    slo_ttft_ms: float = Field(default=2000, gt=0, le=3_600_000, description="--slo-ttft-ms")
    slo_tpot_ms: float = Field(default=200, gt=0, le=600_000, description="--slo-tpot-ms")
    slo_e2e_s: float = Field(default=30, gt=0, le=86_400, description="--slo-e2e-s")
    report_days: int = Field(default=30, ge=1, le=3660, description="slam report --days")
    requests_per_day: float = Field(
        default=1000, ge=1, le=1e12, description="slam report --requests-per-day"
    )


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
    replicas: int = Field(
        default=1, ge=1, le=16, description="Ollama servers (or parallel slots) on the one GPU"
    )
    replica_mode: Literal["servers", "parallel"] = Field(
        default="servers",
        description="'servers': N Ollama servers on consecutive ports; 'parallel': one server "
        "with OLLAMA_NUM_PARALLEL=N",
    )
    dcgm_exporter: bool = Field(
        default=True, description="start NVIDIA's dcgm-exporter next to Ollama (GPU telemetry)"
    )

    @field_validator("ollama_models")
    @classmethod
    def _model_names(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/-]*", m)]
        if bad:
            shown = ", ".join(short(repr(m), 40) for m in bad[:5])
            raise ValueError(f"invalid Ollama model name(s) [{shown}]; expected e.g. 'llama3.2:1b'")
        return v

    @field_validator("tag_prefix")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v.lower().startswith("aws"):
            raise ValueError("tags starting with 'aws' are reserved by AWS; pick another prefix")
        return v


class TelemetryConfig(_Strict):
    """GPU telemetry read around probe batches and sweep levels (hosting.telemetry)."""

    source: Literal["auto", "nvml", "dcgm", "off"] = Field(
        default="auto",
        description="auto: dcgm-exporter on a remote model host, NVML for a local model",
    )
    dcgm_port: int = Field(default=9400, ge=1, le=65535)
    dcgm_url: str | None = Field(
        default=None, description="dcgm-exporter's metrics page (default: the model's host)"
    )
    interval_s: float = Field(
        default=1.0, ge=0, le=60, description="reading interval during a batch (0: ends only)"
    )


class AlertsConfig(_Strict):
    """`[alerts]`: what the bot raises in chat (each once per incident and once on clearing,
    and as a `slam_alert` gauge on /metrics). Checked after every probe run."""

    enabled: bool = True
    channel: str | None = Field(
        default=None, max_length=200, description="where alerts go; default: the team channel"
    )
    availability_probes: int = Field(
        default=20, ge=1, le=10_000, description="availability is over the last N measure probes"
    )
    min_availability: float = Field(default=0.9, ge=0, le=1)
    p95_slo_s: float = Field(
        default=10.0, gt=0, le=86_400, description="p95 latency over the same probes above this"
    )
    host_ttl_warning_min: float = Field(
        default=30.0, ge=0, le=10_080, description="warn this long before a g4dn host's TTL"
    )
    drift_margin_elo: float | None = Field(
        default=None, gt=0, le=1000,
        description="quality change between two versions of a model; default: the margin",
    )  # fmt: skip
    min_version_votes: int = Field(
        default=20, ge=1, le=100_000, description="a new version is warming up below this"
    )
    min_judge_agreement: float = Field(
        default=0.5, ge=0, le=1, description="judges agreeing with the crowd less often than this"
    )
    min_agreement_pairs: int = Field(default=30, ge=1, le=1_000_000)
    event_hours: float = Field(
        default=24.0, gt=0, le=720, description="a decision change stays open this long"
    )


class SlamConfig(_Strict):
    """The whole `slam.toml`."""

    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)
    features: list[FeatureConfig] = Field(default_factory=list, max_length=50)
    models: list[ModelSpec] = Field(default_factory=list)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    aws: AwsConfig = Field(default_factory=AwsConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> SlamConfig:
        problems = cross_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(problems))
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


def cross_problems(data: Any, *, require_reference: bool = False) -> list[str]:
    """Problems that involve several keys (unique names, at most one reference, the judge
    is a model, every model's hardware has a price), every one of them, read from the raw
    mapping so they are reported beside any per-key problem. With `require_reference` (a
    slam.toml file), two or more models need exactly one reference."""
    if not isinstance(data, dict):
        return []
    raw_models = data.get("models")
    models = [m for m in raw_models if isinstance(m, dict)] if isinstance(raw_models, list) else []
    names = [m["name"] for m in models if isinstance(m.get("name"), str)]
    out: list[str] = []
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        shown = ", ".join(short(repr(n), 40) for n in dupes[:10])
        out.append(f"models: duplicate model name(s) [{shown}]; names must be unique")
    refs = [m.get("name", f"[{i}]") for i, m in enumerate(models) if m.get("reference") is True]
    if len(refs) > 1:
        shown = ", ".join(short(repr(n), 40) for n in refs[:10])
        out.append(
            f"models: only one model may have reference = true (got [{shown}]); the reference "
            "is the paid API the candidates are compared against"
        )
    elif not refs and len(models) > 1 and require_reference:
        out.append(
            "models: no model has reference = true; mark exactly one (the paid API the "
            "candidates are compared against) with reference = true"
        )
    judge = data.get("judge")
    jm = judge.get("model") if isinstance(judge, dict) else None
    if isinstance(jm, str) and jm not in names:
        out.append(
            f"judge.model: {short(repr(jm), 60)} is not a [[models]] name;"
            f" expected one of {[short(n, 40) for n in names[:20]]}"
        )
    pricing = data.get("pricing")
    instances = pricing.get("instances") if isinstance(pricing, dict) else None
    priced = set(instances) if isinstance(instances, dict) else set(_DEFAULT_INSTANCES)
    for m in models:
        hw = m.get("hardware", "local-cpu")
        if isinstance(hw, str) and hw != "api" and hw not in priced:
            out.append(
                f"models.{short(str(m.get('name', '?')), 60)}.hardware: {short(repr(hw), 60)} has "
                f"no price; expected 'api' or one of {sorted(priced)[:20]} (add it under "
                "[pricing.instances])"
            )
    return out


def feature_problems(data: Any) -> list[str]:
    """Problems between `[[features]]` and the rest: unique names (the built-in pep talk's
    among them), models and references that exist, a reference among the feature's models."""
    if not isinstance(data, dict) or not isinstance(data.get("features"), list):
        return []
    feats = [f for f in data["features"] if isinstance(f, dict)]
    raw_models = data.get("models")
    models = [m for m in raw_models if isinstance(m, dict)] if isinstance(raw_models, list) else []
    known = [m["name"] for m in models if isinstance(m.get("name"), str)]
    default_ref = next((m.get("name") for m in models if m.get("reference") is True), None)
    names = [f["name"] for f in feats if isinstance(f.get("name"), str)]
    exp = data.get("experiment")
    builtin = exp.get("name", "daily-pep-talk") if isinstance(exp, dict) else "daily-pep-talk"
    if "experiment" in data:
        names.append(builtin)
    out: list[str] = []
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        shown = ", ".join(short(repr(n), 40) for n in dupes[:10])
        out.append(f"features: duplicate feature name(s) [{shown}]; names must be unique "
                   "(the [experiment] table is a feature too)")  # fmt: skip
    for f in feats:
        label = f"features.{short(str(f.get('name', '?')), 60)}"
        chosen = f.get("models")
        chosen = [m for m in chosen if isinstance(m, str)] if isinstance(chosen, list) else known
        missing = [m for m in chosen if m not in known]
        if missing:
            shown = ", ".join(short(repr(m), 40) for m in missing[:10])
            out.append(f"{label}.models: unknown model(s) [{shown}]; configured: "
                       f"{', '.join(known) or 'none'}")  # fmt: skip
        if isinstance(f.get("models"), list) and not f["models"]:
            out.append(f"{label}.models: name at least one model (or leave the key out: all)")
        ref = f.get("reference", default_ref)
        if isinstance(ref, str):
            if ref not in known:
                out.append(f"{label}.reference: unknown model {short(repr(ref), 40)}")
            elif ref not in chosen:
                out.append(f"{label}.reference: {short(repr(ref), 40)} is not among the "
                           "feature's models")  # fmt: skip
    return out


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
            ok_name = isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9][\w.:+-]{0,63}", name)
            parts.append(f".{name}" if ok_name else f"[{item}]")
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            key = short(str(item), 60)
            parts.append(f".{key}" if parts else key)
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts).lstrip(".")


def _problems(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    out = []
    for err in exc.errors():
        if not err["loc"] and err["type"] == "value_error":
            continue  # a cross-key check: cross_problems() reports those from the raw data
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
            msg = f"{msg} (got {short(repr(err['input']), 60)})"
        out.append(f"{loc}: {msg}" if loc else msg)
    return out


def parse_config(
    data: dict[str, Any], source: str = "<config>", *, require_reference: bool = False
) -> SlamConfig:
    """Validate a config mapping; raise ConfigError listing every problem at once: secrets
    in the file, per-key problems and cross-key problems together. `require_reference`:
    two or more models need exactly one reference (slam.toml files; configs built in code
    may leave it out)."""
    secret_keys = _find_secret_keys(data)
    problems = [
        f"{short(key, 80)}: secrets belong in environment variables, not in slam.toml"
        for key in secret_keys
    ]
    clean = _without_secret_keys(data) if secret_keys else data
    cfg: SlamConfig | None = None
    model_level: list[str] = []
    try:
        cfg = SlamConfig.model_validate(clean)
    except ValidationError as exc:
        problems += _problems(exc, clean)
        model_level = [
            str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
            if not e["loc"] and e["type"] == "value_error"
        ]
    # The model's own check (model_level) and the raw one agree; the raw one also runs when
    # a per-key problem stopped the model's, so everything is reported in one pass.
    problems += cross_problems(clean, require_reference=require_reference) or model_level
    problems += feature_problems(clean)
    if problems or cfg is None:
        raise ConfigError(source, problems or ["invalid configuration"])
    return cfg


def load_config(path: str | os.PathLike[str] | None = None) -> SlamConfig:
    """Load `slam.toml` (or the built-in defaults when there is none) and apply env overrides."""
    if path is None:
        default = Path("slam.toml")
        if not default.exists():
            return apply_env(default_config())
        path = default
    p = Path(path)
    shown = short(str(p), 200)
    if not p.exists():
        raise ConfigError(shown, ["file not found; run `slam init` to write an example"])
    if p.is_dir():
        raise ConfigError(
            shown, ["is a folder; name the config file, e.g. --config slam.toml"]
        )
    if special_file(p):  # reading would wait for a writer, or never end (/dev/zero)
        raise ConfigError(shown, ["is a pipe, socket or device, not a file; name the config file"])
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(shown, [f"not valid TOML: {short(str(exc), 200)}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(shown, ["not a UTF-8 text file"]) from None
    except OSError as exc:
        from core.paths import os_reason

        raise ConfigError(shown, [f"cannot read the file: {os_reason(exc)}"]) from None
    except RecursionError:
        raise ConfigError(shown, ["nested too deeply to read"]) from None
    exp = data.get("experiment")
    if isinstance(exp, dict) and isinstance(exp.get("user_contexts"), str):
        ctx = exp["user_contexts"]
        if ctx != "builtin" and not Path(ctx).expanduser().is_absolute():
            data["experiment"] = {**exp, "user_contexts": str(p.parent.resolve() / ctx)}
    feats = data.get("features")
    if isinstance(feats, list):
        data["features"] = [
            {**f, "inputs": str(p.parent.resolve() / f["inputs"])}
            if isinstance(f, dict) and isinstance(f.get("inputs"), str)
            and not Path(f["inputs"]).expanduser().is_absolute()
            else f
            for f in feats
        ]
    try:
        cfg = parse_config(data, shown, require_reference=True)
    except ConfigError as exc:
        exc.problems += _user_contexts_problems(data)
        raise ConfigError(shown, exc.problems) from None
    problems = _user_contexts_problems(data) + _inputs_problems(cfg)
    if problems:
        raise ConfigError(shown, problems)
    return apply_env(cfg)


def _inputs_problems(cfg: SlamConfig) -> list[str]:
    """Every feature's inputs file read and checked against its template at load: every
    problem of every file, each with its line."""
    from core.inputs import InputsError, read_inputs
    from core.templates import template_variables

    out = []
    for f in cfg.features:
        needs = template_variables(f.prompt_template)
        if f.system_prompt:
            needs |= template_variables(f.system_prompt)
        try:
            read_inputs(f.inputs, f.id_field, f.slice_field, needs=needs,
                        template=f.prompt_template, shown=short(f.inputs, 200))  # fmt: skip
        except InputsError as exc:
            out += [f"features.{f.name}.inputs: {exc.source} {p}" for p in exc.problems]
    return out


def _user_contexts_problems(data: dict[str, Any]) -> list[str]:
    """experiment.user_contexts must not name a folder (checked at load, not first use; a
    missing file is reported when the users are read, so a config can name one to come)."""
    exp = data.get("experiment")
    ctx = exp.get("user_contexts") if isinstance(exp, dict) else None
    if not isinstance(ctx, str) or ctx == "builtin":
        return []
    path = Path(ctx).expanduser()
    key = "experiment.user_contexts"
    if path.is_dir():
        return [f"{key}: {short(ctx, 200)} is a folder; name the JSON file of user contexts"]
    if special_file(path):
        return [f"{key}: {short(ctx, 200)} {NOT_A_FILE}"]
    return []


def _find_secret_keys(data: Any, prefix: str = "") -> list[str]:
    found = []
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if SECRET_KEY.search(str(k).lower()):
                found.append(key)
            else:
                found.extend(_find_secret_keys(v, key))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found.extend(_find_secret_keys(v, f"{prefix}[{i}]"))
    return found


def _without_secret_keys(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            k: _without_secret_keys(v)
            for k, v in data.items()
            if not SECRET_KEY.search(str(k).lower())
        }
    if isinstance(data, list):
        return [_without_secret_keys(v) for v in data]
    return data


def apply_env(cfg: SlamConfig) -> SlamConfig:
    """`SLAM_DATABASE_URL` overrides the file's database url."""
    url = environment().slam_database_url
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
