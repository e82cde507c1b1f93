"""Every built-in automated method, registered: readers of the registry import this module.

(The registry itself imports nothing, so the judge and similarity modules can register into
it without an import cycle.)
"""

from __future__ import annotations

import evaluation.auto.judges.tasks
import evaluation.auto.similarity
from evaluation.auto.registry import MethodInfo, all_methods, find, get, names

JUDGE_METHODS = evaluation.auto.judges.tasks.METHODS
SIMILARITY_METRICS = evaluation.auto.similarity.METRICS

__all__ = [
    "JUDGE_METHODS",
    "SIMILARITY_METRICS",
    "MethodInfo",
    "all_methods",
    "find",
    "get",
    "names",
]
