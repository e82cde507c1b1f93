"""CLI options shared by every area's commands, and numeric options bounded by the config.

A number a command takes on the command line has the same bounds as the slam.toml key it
overrides (`--samples` and experiment.samples_per_model), or, when there is no such key, as
its field in `core.config.CommandLimits`: `bounded()` reads the range from that one field,
shows it in --help and refuses a value outside it before the command starts.
"""

from __future__ import annotations

from typing import Annotated, Any

import annotated_types as at
import typer
from pydantic import BaseModel, TypeAdapter, ValidationError

from core.errors import short

ConfigOpt = typer.Option(None, "--config", "-c", help="Path to slam.toml (default: ./slam.toml).")


def field_range(model: type[BaseModel], name: str) -> str:
    """The field's bounds as text, e.g. '1 ≤ x ≤ 100' or '0 < x ≤ 168'."""
    lo = hi = ""
    for m in model.model_fields[name].metadata:
        if isinstance(m, at.Ge):
            lo = f"{m.ge} ≤ "
        elif isinstance(m, at.Gt):
            lo = f"{m.gt} < "
        elif isinstance(m, at.Le):
            hi = f" ≤ {m.le:g}" if isinstance(m.le, float) else f" ≤ {m.le}"
        elif isinstance(m, at.Lt):
            hi = f" < {m.lt}"
    return f"{lo}x{hi}"


def _key(model: type[BaseModel], name: str) -> str | None:
    """The slam.toml key whose bound this is ('experiment.samples_per_model'), if any."""
    from core.config import SlamConfig

    for section, f in SlamConfig.model_fields.items():
        if f.annotation is model:
            return f"{section}.{name}"
    return None


def bound_checker(model: type[BaseModel], name: str) -> Any:
    """A typer callback validating a value against the model field's type and bounds."""
    field = model.model_fields[name]
    annotated: Any = Annotated[field.annotation, *field.metadata]
    adapter: TypeAdapter[Any] = TypeAdapter(annotated)
    where, rng = _key(model, name), field_range(model, name)

    def check(value: Any) -> Any:
        if value is None:
            return None
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            same = f" (the same bound as {where} in slam.toml)" if where else ""
            kinds = {e.get("type", "") for e in exc.errors()}
            what = ("is not a whole number" if any(k.startswith("int_") for k in kinds)
                    else "is out of range")  # fmt: skip
            raise typer.BadParameter(
                f"{short(str(value), 40)} {what}; expected {rng}{same}"
            ) from None

    return check


def check_bound(model: type[BaseModel], name: str, value: Any, what: str) -> Any:
    """Validate one value (e.g. an item of a comma-separated option) against a field."""
    from core.errors import SlamError

    try:
        return bound_checker(model, name)(value)
    except typer.BadParameter as exc:
        raise SlamError(f"{what}: {exc.message}") from None


def bounded(
    default: Any, *param_decls: str, bound: tuple[type[BaseModel], str], help: str, **kw: Any
) -> Any:
    """A typer.Option whose range is the named config (or limits) field's."""
    model, name = bound
    return typer.Option(
        default,
        *param_decls,
        callback=bound_checker(model, name),
        help=f"{help} [{field_range(model, name)}]",
        **kw,
    )
