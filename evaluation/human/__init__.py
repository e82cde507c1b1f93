"""Human judgement: the one definition of a counted vote (`votes`, folded incrementally by
`tally`), Bradley–Terry ratings with bootstrap intervals (`ratings`), style control
(`style`), absolute scores (`scores`), agreement among raters (`agreement`), informative pairs
and the stopping rule (`active`) and the non-inferiority decision (`decision`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from evaluation.human.active import (
        Plan,
        gold_due,
        gold_phase,
        make_plan,
        notice_key,
        open_comparisons,
        plan_batch,
        settled,
        settled_text,
        spread_factor,
    )
    from evaluation.human.agreement import (
        JudgeCrowdAgreement,
        cohen_kappa,
        crowd_majority,
        judge_crowd_agreement,
        majority_of_counts,
    )
    from evaluation.human.decision import STATUS_LABEL, Decision, decide
    from evaluation.human.ratings import BTResult, ModelRating, bradley_terry, win_rate_matrix
    from evaluation.human.scores import load_absolute_scores, score_summary
    from evaluation.human.style import (
        LengthBias,
        Row,
        StyleResult,
        generation_features,
        length_bias,
        pair_generations,
        pair_rows,
        report_lines,
        style_control,
        style_ratings,
    )
    from evaluation.human.tally import VoteTally
    from evaluation.human.votes import (
        DEFAULT_POLICY,
        VotePolicy,
        all_effective_votes,
        assess_raters,
        effective_from,
        effective_votes,
        fold,
        fold_events,
        pairwise_results,
        rater_quality,
    )

# The wing's public surface: name -> the module that defines it (imported on first use).
EXPORTS = {
    "BTResult": "ratings",
    "DEFAULT_POLICY": "votes",
    "Decision": "decision",
    "JudgeCrowdAgreement": "agreement",
    "LengthBias": "style",
    "ModelRating": "ratings",
    "Plan": "active",
    "Row": "style",
    "STATUS_LABEL": "decision",
    "StyleResult": "style",
    "VotePolicy": "votes",
    "VoteTally": "tally",
    "all_effective_votes": "votes",
    "assess_raters": "votes",
    "bradley_terry": "ratings",
    "cohen_kappa": "agreement",
    "crowd_majority": "agreement",
    "decide": "decision",
    "effective_from": "votes",
    "effective_votes": "votes",
    "fold": "votes",
    "fold_events": "votes",
    "generation_features": "style",
    "gold_due": "active",
    "gold_phase": "active",
    "judge_crowd_agreement": "agreement",
    "length_bias": "style",
    "load_absolute_scores": "scores",
    "majority_of_counts": "agreement",
    "make_plan": "active",
    "notice_key": "active",
    "open_comparisons": "active",
    "pair_generations": "style",
    "pair_rows": "style",
    "pairwise_results": "votes",
    "plan_batch": "active",
    "rater_quality": "votes",
    "report_lines": "style",
    "score_summary": "scores",
    "settled": "active",
    "settled_text": "active",
    "spread_factor": "active",
    "style_control": "style",
    "style_ratings": "style",
    "win_rate_matrix": "ratings",
}
__getattr__ = lazy_exports(__name__, EXPORTS)
__all__ = [
    "DEFAULT_POLICY",
    "STATUS_LABEL",
    "BTResult",
    "Decision",
    "JudgeCrowdAgreement",
    "LengthBias",
    "ModelRating",
    "Plan",
    "Row",
    "StyleResult",
    "VotePolicy",
    "VoteTally",
    "all_effective_votes",
    "assess_raters",
    "bradley_terry",
    "cohen_kappa",
    "crowd_majority",
    "decide",
    "effective_from",
    "effective_votes",
    "fold",
    "fold_events",
    "generation_features",
    "gold_due",
    "gold_phase",
    "judge_crowd_agreement",
    "length_bias",
    "load_absolute_scores",
    "majority_of_counts",
    "make_plan",
    "notice_key",
    "open_comparisons",
    "pair_generations",
    "pair_rows",
    "pairwise_results",
    "plan_batch",
    "rater_quality",
    "report_lines",
    "score_summary",
    "settled",
    "settled_text",
    "spread_factor",
    "style_control",
    "style_ratings",
    "win_rate_matrix",
]
