"""SQLModel tables. Votes, judgements and generations are immutable records: ratings,
win rates and means are computed over them, never stored as mutable counters.

Schema changes need an Alembic revision in storage/migrations/versions; a test checks that
the migrations produce exactly these tables.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Timezone-aware UTC now (sqlmodel's UTCDateTime columns require aware values)."""
    return datetime.now(UTC)


class Experiment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    prompt_template: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ModelRecord(SQLModel, table=True):
    """A model as configured when it was used (backend, id, quantization, hardware)."""

    __tablename__ = "model"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    backend: str = Field(max_length=32)
    model_id: str = Field(max_length=1000)
    host: str | None = Field(default=None, max_length=1000)
    quantization: str = Field(default="unknown", max_length=64)
    hardware: str = Field(default="local-cpu", max_length=64)
    is_reference: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class UserContext(SQLModel, table=True):
    """One input of a feature (the table's name is the pep talk's: its inputs are sample
    users): its id within the feature (`key`), a label, the row as JSON and its slice."""

    __tablename__ = "user_context"
    __table_args__ = (
        Index("uq_user_context_experiment_key", "experiment_id", "key", unique=True),
    )
    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int | None = Field(default=None, foreign_key="experiment.id", index=True)
    key: str = Field(index=True, max_length=200)
    name: str = Field(max_length=200)
    data_json: str = Field(sa_column=Column(Text, nullable=False))
    slice: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class Prompt(SQLModel, table=True):
    """A rendered prompt; identical text for the same experiment and user is stored once."""

    __table_args__ = (UniqueConstraint("experiment_id", "user_context_id", "text_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True)
    user_context_id: int = Field(foreign_key="user_context.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    text_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Measured(SQLModel):
    """What every generation and probe records of one request (not a table): token counts,
    client timings (time to first token, total, per output token) and the server's own."""

    prompt_tokens: int | None = None
    output_tokens: int | None = None
    ttft_s: float | None = None
    latency_s: float | None = None
    tpot_s: float | None = None
    server_load_s: float | None = None
    server_prompt_eval_s: float | None = None
    server_eval_s: float | None = None
    server_total_s: float | None = None


class Generation(Measured, table=True):
    """One response of one model to one prompt: text, token counts and timings, or an error.

    (prompt, model, run_date, sample_index) is unique, so re-running a day's generation resumes
    instead of duplicating.
    """

    __table_args__ = (
        UniqueConstraint("prompt_id", "model_id", "run_date", "sample_index"),
        Index("ix_generation_model_date", "model_id", "run_date"),
    )
    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    run_date: date
    sample_index: int = 0
    backend: str = Field(max_length=32)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    temperature: float | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # 'generated' here, or 'imported' (`slam import responses`: answers produced elsewhere,
    # e.g. the paid API's production logs); meta_json keeps what the source said (its model,
    # system_fingerprint, usage, custom_id, the import's content hash).
    source: str = Field(
        default="generated", max_length=16, sa_column_kwargs={"server_default": "generated"}
    )
    meta_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    # which exact model answered (a model_version row); None before versions were recorded
    model_version_id: int | None = Field(default=None, foreign_key="model_version.id", index=True)


class Probe(Measured, table=True):
    """One latency probe request; failures are availability data, not dropped."""

    __table_args__ = (Index("ix_probe_model_time", "model_id", "started_at"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    run_id: str = Field(max_length=64, index=True)
    phase: str = Field(default="measure", max_length=16)  # warmup | measure | sweep
    concurrency: int = 1
    hour: int = Field(ge=0, le=23)
    started_at: datetime = Field(default_factory=utcnow)
    ok: bool = True
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    model_version_id: int | None = Field(default=None, foreign_key="model_version.id", index=True)


class Rater(SQLModel, table=True):
    """A rater, identified only by a salted hash of their platform user id."""

    __table_args__ = (UniqueConstraint("platform", "user_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    user_hash: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class RatingRound(SQLModel, table=True):
    __tablename__ = "rating_round"
    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True)
    status: str = Field(default="open", max_length=16)  # open | closed
    run_date: date | None = None
    opened_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None


class RatingPair(SQLModel, table=True):
    """A blind pair shown to raters. Which generation is 'A' is randomized and recorded."""

    __tablename__ = "rating_pair"
    __table_args__ = (UniqueConstraint("platform", "channel", "message_ref"),)
    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="rating_round.id", index=True)
    generation_a_id: int = Field(foreign_key="generation.id", index=True)
    generation_b_id: int = Field(foreign_key="generation.id", index=True)
    a_was_first_choice: bool = True  # True when A is the first model of the pair as drawn
    masked: bool = False  # a response named its own model and was masked
    platform: str | None = Field(default=None, max_length=32)
    channel: str | None = Field(default=None, max_length=200)
    message_ref: str | None = Field(default=None, max_length=200)
    revealed: bool = False
    # 'round': drawn when the round opened and posted in the channel; 'rater': drawn for one
    # rater by `/slam rate` (bot.rating.selection); 'gold': a rater-quality check, never counted in
    # ratings (evaluation.human.votes rule 8): the reference's answer against a clearly bad one.
    kind: str = Field(default="round", max_length=16)
    gold_answer: str | None = Field(default=None, max_length=1)  # gold: the right side, A or B
    decoy: str | None = Field(default=None, max_length=16)  # gold: truncated|off_topic|other_user
    # gold: the bad response as shown (its side's generation is the text it was made from)
    decoy_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class Vote(SQLModel, table=True):
    """An immutable vote event. The effective vote of a rater on a pair is their latest event;
    a 'remove' event retracts. `event_key` makes redelivered events idempotent.

    choice: 'A' | 'B' | 'tie' | 'both_bad' for pairwise votes; for score votes, `target` is
    'A' or 'B' and `score` is 0..10.
    """

    __table_args__ = (Index("ix_vote_pair_rater", "pair_id", "rater_id"),)
    id: int | None = Field(default=None, primary_key=True)
    pair_id: int = Field(foreign_key="rating_pair.id", index=True)
    rater_id: int = Field(foreign_key="rater.id", index=True)
    kind: str = Field(default="pairwise", max_length=16)  # pairwise | score
    action: str = Field(default="add", max_length=8)  # add | remove
    choice: str | None = Field(default=None, max_length=16)
    target: str | None = Field(default=None, max_length=1)
    score: int | None = None
    event_key: str = Field(max_length=200, unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class JudgeScore(SQLModel, table=True):
    """An immutable LLM-judge verdict. Unparseable answers keep the raw text, parse_ok False.

    `cache_key` hashes (judge, method, prompt, responses) so re-scoring costs nothing.
    """

    __tablename__ = "judge_score"
    id: int | None = Field(default=None, primary_key=True)
    judge: str = Field(max_length=200, index=True)
    method: str = Field(max_length=32, index=True)  # scorer|comparer|comparer-nr|selector|pairwise
    generation_id: int | None = Field(default=None, foreign_key="generation.id", index=True)
    other_generation_id: int | None = Field(default=None, foreign_key="generation.id")
    group_key: str | None = Field(default=None, max_length=128)  # selector: one prompt's set
    order: str | None = Field(default=None, max_length=16)  # pairwise: 'AB' or 'BA'
    score: float | None = None
    choice: str | None = Field(default=None, max_length=32)
    reasoning: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    raw: str = Field(default="", sa_column=Column(Text, nullable=False))
    parse_ok: bool = True
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    cache_key: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class SimilarityScore(SQLModel, table=True):
    __tablename__ = "similarity_score"
    __table_args__ = (UniqueConstraint("metric", "generation_id", "reference_generation_id"),)
    id: int | None = Field(default=None, primary_key=True)
    metric: str = Field(max_length=64, index=True)
    generation_id: int = Field(foreign_key="generation.id", index=True)
    reference_generation_id: int = Field(foreign_key="generation.id")
    value: float
    created_at: datetime = Field(default_factory=utcnow)


class EmbeddingCache(SQLModel, table=True):
    """One embedding per (model, text content hash); float32 bytes."""

    __tablename__ = "embedding_cache"
    __table_args__ = (UniqueConstraint("model", "content_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(max_length=200)
    content_hash: str = Field(max_length=64)
    dim: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ProcessedEvent(SQLModel, table=True):
    """Platform event ids already handled, so redelivered events are never double-counted."""

    __tablename__ = "processed_event"
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    event_id: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    __table_args__ = (UniqueConstraint("platform", "event_id"),)


class JobLease(SQLModel, table=True):
    """A scheduled job's slot, claimed by exactly one bot replica (insert wins).

    The owner renews `expires_at` while the job runs (a heartbeat); an unfinished lease past
    it belongs to a replica that died mid-job, and another replica takes the slot over.
    """

    __tablename__ = "job_lease"
    __table_args__ = (UniqueConstraint("job_id", "slot"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=200)
    slot: str = Field(max_length=64)
    owner: str = Field(max_length=200)
    claimed_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    expires_at: datetime | None = None  # None: a lease from before heartbeats (claimed_at + TTL)


class HostRecord(SQLModel, table=True):
    """A GPU host the bot launched (e.g. an AWS g4dn instance running Ollama)."""

    __tablename__ = "host"
    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(default="aws", max_length=32)
    instance_id: str = Field(max_length=64, unique=True)
    instance_type: str = Field(max_length=64)
    region: str = Field(max_length=32)
    endpoint: str | None = Field(default=None, max_length=1000)
    state: str = Field(default="pending", max_length=32)
    launched_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    terminated_at: datetime | None = None


class PairMessage(SQLModel, table=True):
    """A chat message showing a rating pair: the channel post, a rater's DM copy, or (score mode)
    the per-response score prompt. Reactions are mapped to pairs through this table."""

    __tablename__ = "pair_message"
    __table_args__ = (UniqueConstraint("platform", "channel", "message_ref"),)
    id: int | None = Field(default=None, primary_key=True)
    pair_id: int = Field(foreign_key="rating_pair.id", index=True)
    platform: str = Field(max_length=32)
    channel: str = Field(max_length=200)
    message_ref: str = Field(max_length=200)
    target: str | None = Field(default=None, max_length=1)  # None: pairwise; 'A'/'B': score prompt
    rater_id: int | None = Field(default=None, foreign_key="rater.id", index=True)  # DM recipient
    created_at: datetime = Field(default_factory=utcnow)


class Notice(SQLModel, table=True):
    """A message the bot posts once (e.g. "the decision is settled"): the unique key is
    claimed by an insert, so with several replicas exactly one posts it."""

    __tablename__ = "notice"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class GpuEnergy(SQLModel, table=True):
    """What the GPU did during one probe batch or one sweep level (`run_id` is the Probe
    rows' run id): energy from NVML or dcgm-exporter, per output token and per request."""

    __tablename__ = "gpu_energy"
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    run_id: str = Field(max_length=64, index=True)
    phase: str = Field(default="measure", max_length=16)  # measure | sweep
    source: str = Field(max_length=16)  # nvml | dcgm
    method: str = Field(max_length=16)  # counter | power | counter+power | none
    started_at: datetime = Field(default_factory=utcnow)
    duration_s: float
    gpus: int = 1
    requests: int = 0
    output_tokens: int | None = None
    joules: float | None = None
    joules_per_output_token: float | None = None
    joules_per_request: float | None = None
    mean_watts: float | None = None
    util_pct: float | None = None
    memory_used_mib: float | None = None
    counter_resets: int = 0


class ModelVersion(SQLModel, table=True):
    """One version of a configured model: what its backend said identified the model that
    answered (an Ollama digest, an API's model and fingerprint, a GGUF file's sha256), first
    seen when. Generations and probes point at the version that answered them; a new identity
    is a new row, never an update (hosting.backends.identity)."""

    __tablename__ = "model_version"
    __table_args__ = (UniqueConstraint("model_id", "identity"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    identity: str = Field(max_length=64)  # ModelIdentity.key
    label: str = Field(max_length=200)  # a short name for people
    details_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    first_seen: datetime = Field(default_factory=utcnow)


class VoteComment(SQLModel, table=True):
    """A rater's own words on a pair ("B invents a meeting"), sent with or after their vote.

    Immutable: an edit is a new row, and a rater's newest comment on a pair is the one shown
    (edits are accepted only while the pair's round is open). `event_key` makes a redelivered
    message idempotent. The text is stored cleaned (control characters stripped, bounded) and
    as written: every surface that shows it while the pair is blind masks model names."""

    __tablename__ = "vote_comment"
    __table_args__ = (Index("ix_vote_comment_pair_rater", "pair_id", "rater_id"),)
    id: int | None = Field(default=None, primary_key=True)
    pair_id: int = Field(foreign_key="rating_pair.id", index=True)
    rater_id: int = Field(foreign_key="rater.id", index=True)
    platform: str = Field(max_length=32)
    text: str = Field(sa_column=Column(Text, nullable=False))
    event_key: str = Field(max_length=200, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
