"""Automated quality: LLM judges (`judges`: a judge method is one entry of
`judges.tasks.JUDGE_METHODS`), similarity metrics (`similarity`: a metric is one
`@similarity_metric` function), their metadata registry (`registry`), how a judge's answer
reads as a verdict (`verdicts`), the SBERT encoder on ONNX Runtime (`onnx_encoder`),
per-model method scores, meta-evaluation against the humans,
and how far to trust each judge (`judge_trust`, `judge_style`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from evaluation.auto.corpus import load_corpus
    from evaluation.auto.judge_style import judge_length_biases
    from evaluation.auto.judge_trust import (
        JudgeTrust,
        best_match_sentence,
        crowd_verdicts,
        judge_trust_summary,
        method_data,
        render_text,
    )

    # (the function is exported as assess_judges: `judge_trust` names the module)
    from evaluation.auto.judge_trust import judge_trust as assess_judges
    from evaluation.auto.judges.runner import JudgeRun, check_methods, run_judges
    from evaluation.auto.judges.tasks import judge_methods
    from evaluation.auto.metaeval import MethodAgreement, meta_evaluate, method_model_scores
    from evaluation.auto.method_scores import OrderConsistency, order_consistency
    from evaluation.auto.onnx_encoder import OnnxSentenceEncoder, sentence_encoder
    from evaluation.auto.registry import find
    from evaluation.auto.similarity import (
        SimilarityRun,
        check_metrics,
        run_similarity,
        similarity_metrics,
    )

__getattr__ = lazy_exports(__name__, __file__)
