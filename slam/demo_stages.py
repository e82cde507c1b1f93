"""Demo stages after generation: score, probe, rate, report — each the real code path."""

from __future__ import annotations

import asyncio
import random
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slam.demo_context import DemoContext, Stage

DEMO_SEED = 7


def stage_score(ctx: DemoContext) -> None:
    """LLM judges (the embedded model judging itself) and similarity to the reference."""
    from evaluation.cli import render
    from evaluation.score import score

    assert ctx.cfg is not None and ctx.engine is not None
    # A subset keeps the demo to a few minutes on 2 cores; `slam score --judges all` runs
    # comparer-nr and pairwise (both orders) too.
    judges = ["scorer", "comparer"] if ctx.quick else ["scorer", "comparer", "selector"]
    similarity = ["tfidf", "bleu", "sbert", "sem-bleu"]
    result = asyncio.run(
        score(ctx.engine, ctx.cfg, judges, similarity, judge_max_tokens=16 if ctx.quick else 32)
    )
    render(result, ctx.console)
    ctx.console.print(
        "[dim]The judge is the same 270M base model: expect many parse failures and little "
        "agreement. With OPENAI_API_KEY set, GPT-4 judges instead.[/dim]"
    )


def stage_probe(ctx: DemoContext) -> None:
    """Latency probes: warm up, then time the same request."""
    from evaluation.probes import run_probes

    assert ctx.cfg is not None and ctx.engine is not None
    warmup, measure = (1, 2) if ctx.quick else (1, 3)
    for summary in asyncio.run(run_probes(ctx.engine, ctx.cfg, warmup=warmup, measure=measure)):
        ctx.console.print(summary.line())


def stage_rate(ctx: DemoContext) -> None:
    """Blind pairs in the console. A person rates when there is a terminal; otherwise a
    scripted rater votes at random so the rating statistics and charts have data."""
    from bot.console import rate_in_console
    from bot.votes import load_salt

    assert ctx.cfg is not None and ctx.engine is not None
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if interactive:
        ctx.console.print(
            "Rate a few blind pairs (models are hidden until the round closes). "
            "Type a, b, tie or bad; q to stop."
        )
        inputs = None
    else:
        rng = random.Random(DEMO_SEED)
        inputs = [rng.choice(["a", "b", "tie", "bad", "a", "b"]) for _ in range(40)]
        ctx.console.print(
            "[yellow]No terminal: a scripted rater votes at random (seed 7) so the rating "
            "statistics and charts have data. These votes carry no signal.[/yellow]"
        )
    summary = asyncio.run(
        rate_in_console(
            ctx.engine,
            ctx.cfg,
            inputs=inputs,
            rng=random.Random(DEMO_SEED),
            # The demo keeps every file it makes inside its workspace.
            salt=load_salt(path=ctx.workspace / "rater_salt"),
        )
    )
    ctx.console.print(f"{summary.recorded} vote(s) on {len(summary.pairs)} pair(s) recorded")
    if not interactive:
        ctx.notes.append("Votes in this demo came from a scripted random rater, not a person.")


def stage_report(ctx: DemoContext) -> None:
    """Every chart, report.html and report.md — the same builder `/slam report` uses."""
    from evaluation.report import build_report

    assert ctx.cfg is not None and ctx.engine is not None
    out = ctx.workspace / "report"
    result = build_report(ctx.engine, ctx.cfg, out)
    ctx.console.print(result.summary_text)
    ctx.console.print(f"{len(result.charts)} charts in {out}")
    ctx.notes.append(f"Open the report: {result.html_path}")


STAGES: list[Stage] = [
    ("score", stage_score),
    ("probe", stage_probe),
    ("rate", stage_rate),
    ("report", stage_report),
]
