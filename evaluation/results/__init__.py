"""The results service: every number a user sees comes from `Results` (`service`), built from
data-versioned datasets (`datasets`, `perf`, cached by `cache`) and written down by one
formatter per number (`leaderboard`), per feature and per slice of its inputs (`slices`). Chat,
report, digest, CLI and web all read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from evaluation.results.cache import (
        PROCESS_CACHE,
        ResultCache,
        config_fingerprint,
        default_cache_dir,
        table_versions,
    )
    from evaluation.results.health import ProbeHealth
    from evaluation.results.leaderboard import (
        HEADERS,
        PRIOR_NOTE,
        LeaderboardRow,
        cells,
        comment_lines,
        comment_quotes,
        comment_vote,
        drift_text,
        energy_text,
        rank_text,
        rating_text,
        ratings_caption,
        ratings_lines,
        summary_text,
        version_text,
        with_style,
        withheld_text,
    )
    from evaluation.results.service import Results
    from evaluation.results.slices import (
        MIN_SLICE_VOTES,
        SliceDecision,
        slice_decisions,
        slice_names,
    )
    from evaluation.results.versions import Drift, VersionInfo

__getattr__ = lazy_exports(__name__, __file__)
