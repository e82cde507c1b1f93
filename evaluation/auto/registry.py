"""Registries of the automated quality methods, with the metadata every reader needs.

Like lm-evaluation-harness's metric registry: each method declares its range, whether a higher
value is better and whether it needs the reference's response. The meta-evaluation, the charts
and the report read the direction from here instead of assuming it, and adding a similarity
metric is one registered function:

    @similarity_metric("jaccard", "word-set Jaccard overlap with the reference", lo=0, hi=1)
    def jaccard(pairs, ctx):
        return np.array([...])

The registry is a `core.registry.Registry` (`METHOD_INFO`) whose built-in methods register
when their modules are imported (evaluation.auto.judges.tasks, evaluation.auto.similarity):
the first lookup imports both, so a reader imports only this module, and every lookup reads
the registry as it is now. Judge methods are asked by evaluation.auto.judges; their entry
declares the answer shape ('score': reasoning then a 0–10 score, 'verdict': A / B / tie,
'index': one of 1..N) that the judge asks for with the backend's constrained decoding and
parses as a fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from core.errors import SlamError
from core.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

Kind = Literal["judge", "similarity"]
Answer = Literal["score", "verdict", "index"]
SimilarityFn = Callable[[Sequence[tuple[Any, Any]], Any], "NDArray[np.float64]"]


@dataclass(frozen=True)
class MethodInfo:
    """One automated method: what its stored values mean."""

    name: str
    kind: Kind
    description: str
    lo: float
    hi: float
    higher_is_better: bool = True
    needs_reference: bool = False
    answer: Answer | None = None  # judges: the shape of the judge's answer
    compute: SimilarityFn | None = field(default=None, compare=False, repr=False)
    unit: str = ""

    def better(self, a: float, b: float) -> bool:
        """Is value a better than value b for this method?"""
        return a > b if self.higher_is_better else a < b

    def oriented(self, value: float) -> float:
        """The value with 'higher is better' orientation (negated when lower is better)."""
        return value if self.higher_is_better else -value


METHOD_INFO: Registry[MethodInfo] = Registry(
    "method", builtins=("evaluation.auto.judges.tasks", "evaluation.auto.similarity")
)


def register(info: MethodInfo) -> MethodInfo:
    """Add a method's metadata: a second, different entry under its name is an error, and so
    is an empty range."""
    METHOD_INFO.add(info.name, info, replace=False)
    if not info.lo < info.hi:
        METHOD_INFO.remove(info.name)
        raise ValueError(f"method {info.name!r}: range [{info.lo}, {info.hi}] is empty")
    return info


def similarity_metric(
    name: str,
    description: str,
    *,
    lo: float = 0.0,
    hi: float = 1.0,
    higher_is_better: bool = True,
) -> Callable[[SimilarityFn], SimilarityFn]:
    """Register a similarity metric: fn(pairs of (candidate, reference) rows, context) ->
    one value per pair. Every similarity metric compares with the reference's response."""

    def deco(fn: SimilarityFn) -> SimilarityFn:
        register(
            MethodInfo(
                name=name,
                kind="similarity",
                description=description,
                lo=lo,
                hi=hi,
                higher_is_better=higher_is_better,
                needs_reference=True,
                compute=fn,
            )
        )
        return fn

    return deco


def names(kind: Kind) -> tuple[str, ...]:
    """Every registered method of `kind`, in registration order."""
    return tuple(n for n, m in METHOD_INFO.items() if m.kind == kind)


def checked(names: list[str], known: Sequence[str], what: str) -> list[str]:
    """`names` without repeats, in order; any not in `known` is a SlamError listing them."""
    bad = [n for n in names if n not in known]
    if bad:
        raise SlamError(f"unknown {what} {bad}; expected any of {', '.join(known)}")
    return list(dict.fromkeys(names))


def get(name: str) -> MethodInfo:
    """The method stored under `name` ('scorer', 'sbert', 'sbert:<model>', 'scorer@judge')."""
    base = name.split("@", 1)[0]
    info = METHOD_INFO.find(base) or METHOD_INFO.find(base.split(":", 1)[0])
    if info is None:
        known = ", ".join(sorted(METHOD_INFO.names()))
        raise KeyError(f"unknown method {name!r}; registered: {known}")
    return info


def find(name: str) -> MethodInfo | None:
    try:
        return get(name)
    except KeyError:
        return None


def all_methods() -> dict[str, MethodInfo]:
    return dict(METHOD_INFO.items())
