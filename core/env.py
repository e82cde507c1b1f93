"""The one reader of the environment: every variable the bot reads, typed, in one place.

Secrets and endpoints come only from the environment, never from slam.toml. Code that needs
one calls `environment()` (a snapshot of `os.environ`, read when called, so a test's or a
shell's change is seen) or passes a mapping of its own (tests):

    env = environment()            # os.environ now
    env = environment({"OLLAMA_HOST": "http://127.0.0.1:1"})
    env.ollama_host, env.slam_database_url, env.require("discord_token", why="…")

Names are matched as the shell spells them (upper case); a variable that is set but empty
counts as unset. Variables that other libraries read for themselves (AWS_*, HF_HUB_OFFLINE,
OMP_WAIT_POLICY) are not listed here; code that sets them for a library
(hosting.backends.llama_logs, evaluation.auto.embeddings) writes `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from core.errors import SlamError


class Environment(BaseModel):
    """The environment variables the bot reads (field name = variable name, lower case)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # chat platforms
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str | None = None
    discord_token: str | None = None
    # model backends and similarity
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    ollama_host: str | None = None
    # storage and results
    slam_database_url: str | None = None
    slam_cache_dir: str | None = None
    # secrets the bot keeps (else generated once into a private file)
    slam_rater_salt: str | None = None
    slam_rater_salt_file: str | None = None
    slam_web_secret: str | None = None
    slam_web_secret_file: str | None = None
    # serving and logs
    slam_http_host: str | None = None
    slam_http_port: str | None = None
    slam_log_level: str | None = None
    slam_log_format: str | None = None
    slam_debug: str | None = None
    slam_omp_wait_policy: str | None = None

    @classmethod
    def variables(cls) -> list[str]:
        """Every variable name, as the shell spells it."""
        return [name.upper() for name in cls.model_fields]

    def require(self, field: str, why: str) -> str:
        """A variable that must be set, or a SlamError naming it and what it is for."""
        value = getattr(self, field)
        if not value:
            raise SlamError(
                f"{field.upper()} is not set; {why}. Secrets come only from the environment."
            )
        return str(value)


def environment(env: Mapping[str, str] | None = None) -> Environment:
    """The environment as typed settings: `os.environ` now, or the mapping given."""
    source = os.environ if env is None else env
    values = {name: source.get(name.upper()) for name in Environment.model_fields}
    return Environment(**{name: value for name, value in values.items() if value})
