"""LLM judges: scorer, comparer (with and without reasoning), multi-choice selector, pairwise."""

from evaluation.auto.judges.tasks import METHODS

__all__ = ["METHODS"]
