"""LLM judges: scorer, comparer (with and without reasoning), multi-choice selector, pairwise.

The methods are the `evaluation.auto.judges.tasks.JUDGE_METHODS` registry (`judge_methods()`
names them)."""
