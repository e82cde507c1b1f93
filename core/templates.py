"""Prompt templates: Jinja2 in a sandbox, with undefined variables as errors (the convention of
promptfoo and Langfuse): `{{ subject }}`, `{% for line in lines %}`, filters over list columns.

A template is checked once (`template_problem`: a syntax error with its line), read for the
columns it uses (`template_variables`) and filled in per input (`render`, bounded in size; a
RenderError says why an input cannot fill it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import short

MAX_PROMPT_CHARS = 200_000  # a rendered prompt longer than this is refused


def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


_ENV: Any = None


def jinja() -> Any:
    """The one sandboxed Jinja2 environment every feature template renders in."""
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV


def template_problem(text: str) -> str | None:
    """Why `text` is not a valid template (a syntax error with its line), or None."""
    from jinja2 import TemplateSyntaxError

    try:
        jinja().parse(text)
    except TemplateSyntaxError as exc:
        why = short(exc.message or str(exc), 160)
        return f"not a valid Jinja2 template: {why} (line {exc.lineno})"
    return None


def template_variables(text: str) -> set[str]:
    """The input columns a template reads (its undeclared top-level variables)."""
    from jinja2 import meta

    return set(meta.find_undeclared_variables(jinja().parse(text)))


class RenderError(ValueError):
    """A template that cannot be filled in from one input (what is wrong, for the user)."""


def render(text: str, row: Mapping[str, Any]) -> str:
    """Fill the template from one input row; a RenderError says why it cannot be."""
    from jinja2 import TemplateError, UndefinedError

    try:
        chunks: list[str] = []
        size = 0
        for chunk in jinja().from_string(text).generate(**row):
            size += len(chunk)
            if size > MAX_PROMPT_CHARS:
                raise RenderError(f"renders longer than {MAX_PROMPT_CHARS:,} characters")
            chunks.append(chunk)
        return "".join(chunks)
    except UndefinedError as exc:
        why = short(exc.message or str(exc), 120)
        raise RenderError(f"uses an undefined value: {why}") from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        if isinstance(exc, RenderError):
            raise
        why = f"{type(exc).__name__}: {short(str(exc), 120)}"
        raise RenderError(f"cannot be filled in ({why})") from None


