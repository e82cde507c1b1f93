"""Human judgement: the one definition of a counted vote (`votes`, folded incrementally by
`tally`), Bradley–Terry ratings with bootstrap intervals (`ratings`), style control
(`style`), absolute scores (`scores`), agreement among raters (`agreement`), informative pairs
and the stopping rule (`active`), the non-inferiority decision (`decision`) and what
raters said (`comments`); `scope` says
which feature and slice they read.
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
    from evaluation.human.comments import (
        ModelComments,
        PairComment,
        comments_by_model,
        load_comments,
    )
    from evaluation.human.decision import STATUS_LABEL, Decision, decide
    from evaluation.human.ratings import BTResult, ModelRating, bradley_terry, win_rate_matrix
    from evaluation.human.scope import EVERYTHING, Scope
    from evaluation.human.scores import load_absolute_scores, score_summary
    from evaluation.human.style import (
        NEEDS_MORE_VOTES,
        LengthBias,
        Row,
        StyleResult,
        generation_features,
        length_bias,
        pair_generations,
        pair_rows,
        report_lines,
        style_cell,
        style_control,
        style_ratings,
        style_shown,
    )
    from evaluation.human.tally import VoteTally
    from evaluation.human.votes import (
        DEFAULT_POLICY,
        PAIRWISE_CHOICES,
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

__getattr__ = lazy_exports(__name__, __file__)
