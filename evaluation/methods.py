"""Every built-in automated method, registered: readers of the registry import this module.

(The registry itself imports nothing, so the judge and similarity modules can register into
it without an import cycle.)
"""

from __future__ import annotations

import evaluation.judges.tasks
import evaluation.similarity
from evaluation.registry import MethodInfo, all_methods, find, get, names

JUDGE_METHODS = evaluation.judges.tasks.METHODS
SIMILARITY_METRICS = evaluation.similarity.METRICS

__all__ = [
    "JUDGE_METHODS",
    "SIMILARITY_METRICS",
    "MethodInfo",
    "all_methods",
    "find",
    "get",
    "names",
]
