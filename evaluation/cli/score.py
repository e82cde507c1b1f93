"""`slam score`: LLM judges and similarity metrics over the stored generations."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from core.config import EvaluationConfig
from core.options import ConfigOpt, bounded

if TYPE_CHECKING:
    from rich.console import Console

    from evaluation.score import ScoreResult

JUDGES_HELP = (
    "Judge methods, comma-separated: scorer,comparer,comparer-nr,selector,pairwise, all or none."
)
SIM_HELP = "Similarity metrics, comma-separated: tfidf,sbert,bleu,sem-bleu,openai,qa, all or none."


def register(app: typer.Typer) -> None:
    app.command("score")(score_command)


def score_command(
    judges: str = typer.Option("all", "--judges", "-j", help=JUDGES_HELP),
    similarity: str = typer.Option("all", "--similarity", "-s", help=SIM_HELP),
    config: Path | None = ConfigOpt,
    max_tokens: int | None = bounded(
        None,
        "--max-tokens",
        bound=(EvaluationConfig, "judge_max_tokens"),
        help="Judge answer budget in tokens (default: evaluation.judge_max_tokens).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Score every stored response with LLM judges and similarity to the reference.

    Only what is not stored yet is computed: re-running costs nothing.
    """
    from core.config import load_config
    from core.console import make_console
    from evaluation.auto import judge_methods, similarity_metrics
    from evaluation.score import parse_list, score
    from storage.migrate import open_database

    judge_list = parse_list(judges, judge_methods(), "judge method(s)")
    sim_list = parse_list(similarity, similarity_metrics(), "similarity metric(s)")
    cfg = load_config(config)
    engine = open_database(cfg.database.url)
    try:
        result = asyncio.run(
            score(
                engine, cfg, judge_list, sim_list, progress=not quiet, judge_max_tokens=max_tokens
            )
        )
    finally:
        engine.dispose()
    render(result, make_console())


def _fmt(v: float | None, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.{digits}f}"


def render(res: ScoreResult, console: Console) -> None:
    """Print what ran, the per-model means of every method and the agreement with humans."""
    from rich.table import Table

    if res.judge_run is not None:
        t = Table(title=f"LLM judge: {res.judge}", title_justify="left")
        for col in ("method", "questions", "cached", "asked", "parse failures", "errors"):
            t.add_column(col, justify="left" if col == "method" else "right")
        for m in res.judge_run.methods.values():
            t.add_row(
                m.method, str(m.tasks), str(m.cached + m.reused), str(m.calls),
                str(m.parse_failures), str(m.errors),
            )  # fmt: skip
        console.print(t)
        for m in res.judge_run.methods.values():
            if m.first_error:
                console.print(
                    f"[red]{m.method}: {m.errors} request(s) failed[/red]: {m.first_error}"
                )
    if res.similarity_run is not None and res.similarity_run.computed:
        sim = res.similarity_run
        parts = [f"{k} +{sim.computed[k]} ({sim.cached.get(k, 0)} cached)" for k in sim.computed]
        console.print("similarity: " + ", ".join(parts))
    for c in res.consistency:
        console.print(
            f"pairwise order consistency ({c.judge}): {_fmt(c.rate)} over {c.n_pairs} pairs; "
            f"first-shown response preferred {_fmt(c.first_position_rate)} of the time"
        )
    if res.method_scores:
        models = sorted({m for per in res.method_scores.values() for m in per})
        title = "Mean per model (judges 0–10; selector/pairwise win share; similarity 0–1"
        title += f"; humans: {res.human_label})" if res.human_label else ")"
        t = Table(title=title)
        t.add_column("model")
        for method in res.method_scores:
            t.add_column(method, justify="right")
        if res.human_label:
            t.add_column("humans", justify="right")
        for model in models:
            row = [model] + [_fmt(res.method_scores[m].get(model)) for m in res.method_scores]
            if res.human_label:
                row.append(_fmt(res.human_scores.get(model), 1))
            t.add_row(*row)
        console.print(t)
    if res.ratings is not None:
        from evaluation.results import PRIOR_NOTE, ratings_caption, ratings_lines

        console.print(ratings_caption(res.ratings), markup=False, highlight=False)
        for line in ratings_lines(res.ratings):
            console.print("  " + line, markup=False, highlight=False)
        if any(r.bound for r in res.ratings.ratings.values()):
            console.print("  " + PRIOR_NOTE, markup=False, highlight=False)
    if res.meta:
        t = Table(title=f"Agreement with humans ({res.human_label}; bottom-k Jaccard and RBO)")
        for col in ("method", "models", "Jaccard", "RBO", "Spearman", "Kendall"):
            t.add_column(col, justify="left" if col == "method" else "right")
        for a in res.meta:
            t.add_row(a.method, str(a.n_models), _fmt(a.jaccard), _fmt(a.rbo),
                      _fmt(a.spearman), _fmt(a.kendall))  # fmt: skip
        console.print(t)
    for ca in res.crowd_agreement:
        if ca.n_pairs:
            console.print(
                f"judge {ca.judge} vs crowd majority: agreement {_fmt(ca.agreement)}, "
                f"Cohen's kappa {_fmt(ca.kappa)} on {ca.n_pairs} pairs"
            )
    if res.judge_trust:
        from evaluation.auto import best_match_sentence, render_text

        text = render_text(res.judge_trust, best_match_sentence(res.judge_trust), res.crowd_length)
        console.print(text, markup=False, highlight=False)
    for note in res.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
