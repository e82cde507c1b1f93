"""Features are data: a feature is a prompt template, a file of inputs and the models that
answer it. `[[features]]` in slam.toml describes them; the old `[experiment]` table is the
built-in `daily-pep-talk` feature over the shipped sample users.

Templates are Jinja2 in a sandbox with undefined variables as errors (promptfoo's and
Langfuse's convention): `{{ subject }}`, `{% for line in lines %}`, filters over list columns.
Inputs are a `.jsonl`, `.csv` or `.parquet` file with one input per row; `id_field` names each
row (unique) and `slice_field`, optionally, the column that groups rows (ticket type, language,
customer tier). Everything wrong with a feature is found when the config loads and reported
at once, each problem with its file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import short
from core.inputs import INPUT_SUFFIXES, FeatureInput, read_inputs
from core.templates import render, template_problem, template_variables

FEATURE_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class FeatureConfig(BaseModel):
    """One `[[features]]` table."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=FEATURE_NAME, description="lower case, digits, . _ -")
    prompt_template: str = Field(min_length=1, max_length=100_000)
    system_prompt: str | None = Field(default=None, max_length=100_000)
    inputs: str = Field(min_length=1, description="a .jsonl, .csv or .parquet file")
    id_field: str = Field(default="id", min_length=1, max_length=200)
    slice_field: str | None = Field(default=None, min_length=1, max_length=200)
    models: list[str] | None = Field(default=None, description="names from [[models]]")
    reference: str | None = None
    margin_elo: float | None = Field(default=None, ge=0, le=400)
    samples_per_input: int | None = Field(default=None, ge=1, le=100)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    seed: int | None = None
    channel: str | None = Field(default=None, max_length=200)
    schedule: str | None = Field(default=None, description="cron for this feature's generation")

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
        if v is not None:
            problem = template_problem(v)
            if problem:
                raise ValueError(problem)
        return v


# -- the feature as the pipeline sees it ----------------------------------------------------

TemplateKind = Literal["jinja", "format"]


@dataclass(frozen=True)
class Feature:
    """A feature, resolved against the config: its template, inputs, models and settings."""

    name: str
    prompt_template: str
    inputs_source: str  # a path, or 'builtin' (the shipped sample users)
    models: tuple[str, ...]
    reference: str | None
    margin_elo: float
    samples: int
    temperature: float
    max_tokens: int
    system_prompt: str | None = None
    seed: int | None = None
    id_field: str = "id"
    slice_field: str | None = None
    channel: str | None = None
    schedule: str | None = None
    kind: TemplateKind = "jinja"
    builtin: bool = False  # the [experiment] table's pep talk
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def candidates(self) -> tuple[str, ...]:
        return tuple(m for m in self.models if m != self.reference)

    def inputs(self) -> list[FeatureInput]:
        """The feature's inputs (read once per Feature)."""
        if "inputs" not in self._cache:
            if self.kind == "format":
                from core.prompts import load_user_contexts

                users = load_user_contexts(self.inputs_source)
                self._cache["users"] = {u.key: u for u in users}
                self._cache["inputs"] = [
                    FeatureInput(u.key, u.model_dump(), None, i) for i, u in enumerate(users, 1)
                ]
            else:
                self._cache["inputs"] = read_inputs(
                    self.inputs_source, self.id_field, self.slice_field,
                    needs=template_variables(self.prompt_template),
                )  # fmt: skip
        inputs: list[FeatureInput] = self._cache["inputs"]
        return inputs

    def label(self, inp: FeatureInput) -> str:
        """A short human name of an input (a sample user's name; else its id)."""
        if self.kind == "format":
            return str(inp.data.get("name") or inp.id)
        return inp.id

    def render(self, inp: FeatureInput) -> str:
        """The prompt for one input."""
        if self.kind == "format":
            from core.prompts import UserContextData, render_prompt

            return render_prompt(self.prompt_template, UserContextData.model_validate(inp.data))
        return render(self.prompt_template, inp.data)


def slug(text: str) -> str:
    """A feature name made from any text (for messages that suggest one)."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-")[:64] or "feature"
