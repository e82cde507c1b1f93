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

from core.config import FeatureConfig, SlamConfig
from core.errors import SlamError, short
from core.inputs import FeatureInput, read_inputs
from core.templates import render, template_variables

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


def _from_table(cfg: SlamConfig, f: FeatureConfig) -> Feature:
    exp = cfg.experiment
    models = tuple(f.models) if f.models else tuple(m.name for m in cfg.models)
    reference = f.reference or (cfg.reference.name if cfg.reference else None)
    return Feature(
        name=f.name, prompt_template=f.prompt_template, inputs_source=f.inputs,
        models=models, reference=reference if reference in models else None,
        margin_elo=f.margin_elo or cfg.evaluation.margin_elo,
        samples=f.samples_per_input or exp.samples_per_model,
        temperature=exp.temperature if f.temperature is None else f.temperature,
        max_tokens=f.max_tokens or exp.max_tokens,
        system_prompt=f.system_prompt, seed=exp.seed if f.seed is None else f.seed,
        id_field=f.id_field, slice_field=f.slice_field, channel=f.channel,
        schedule=f.schedule,
    )  # fmt: skip


def builtin_feature(cfg: SlamConfig) -> Feature:
    """The `[experiment]` table as a feature: the pep talk over the sample users."""
    exp = cfg.experiment
    return Feature(
        name=exp.name, prompt_template=exp.prompt_template, inputs_source=exp.user_contexts,
        models=tuple(m.name for m in cfg.models),
        reference=cfg.reference.name if cfg.reference else None,
        margin_elo=cfg.evaluation.margin_elo, samples=exp.samples_per_model,
        temperature=exp.temperature, max_tokens=exp.max_tokens,
        system_prompt=exp.system_prompt, seed=exp.seed, id_field="key", kind="format",
        builtin=True,
    )  # fmt: skip


def features(cfg: SlamConfig) -> list[Feature]:
    """Every feature of a config, in its order: the `[experiment]` table's pep talk first when
    the file has one or names no `[[features]]`, then each `[[features]]` table."""
    cache = cfg.__dict__.setdefault("_features", {})
    key = id(cfg.features), len(cfg.features)
    if key not in cache:
        out = [_from_table(cfg, f) for f in cfg.features]
        if "experiment" in cfg.model_fields_set or not out:
            out.insert(0, builtin_feature(cfg))
        cache.clear()
        cache[key] = out
    found: list[Feature] = cache[key]
    return found


def feature(cfg: SlamConfig, name: str | None = None) -> Feature:
    """The feature called `name` (None: the first, the one a single-feature config has)."""
    every = features(cfg)
    if name is None:
        return every[0]
    for f in every:
        if f.name == name:
            return f
    raise SlamError(f"unknown feature '{short(name, 60)}'; configured: "
                    f"{', '.join(f.name for f in every)}")  # fmt: skip


def slug(text: str) -> str:
    """A feature name made from any text (for messages that suggest one)."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-")[:64] or "feature"
