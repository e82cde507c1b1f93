"""Demo stages after generation: score, probe, rate, report — each the real code path."""

from __future__ import annotations

import asyncio
import random
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slam.demo.context import DemoContext, Stage

DEMO_SEED = 7


# The judge methods the demo asks: one question per response (scorer) and one per prompt
# (selector), so it stays a few minutes on 2 cores. `slam score --judges all` adds comparer,
# comparer-nr and pairwise (both orders of every candidate–reference and rated pair).
DEMO_JUDGES = ("scorer", "selector")
DEMO_JUDGE_TOKENS = 64  # a one-sentence reasoning, bounded to fit (evaluation.auto.judges.answers)


def stage_score(ctx: DemoContext) -> None:
    """LLM judges (the instruct model, answering in JSON under a grammar), similarity to the
    reference, and how far each judge method agrees with the votes just cast."""
    from evaluation.cli import render
    from evaluation.score import score

    assert ctx.cfg is not None and ctx.engine is not None
    judges = list(DEMO_JUDGES)
    similarity = ["tfidf", "bleu", "sbert", "sem-bleu"]
    result = asyncio.run(
        score(ctx.engine, ctx.cfg, judges, similarity, judge_max_tokens=DEMO_JUDGE_TOKENS)
    )
    render(result, ctx.console)  # ends with how far to trust each judge method
    if result.judge_run is not None:
        asked = sum(m.calls for m in result.judge_run.methods.values())
        failed = sum(m.parse_failures for m in result.judge_run.methods.values())
        if asked:
            ctx.notes.append(
                f"Judge: {result.judge}, {asked} questions asked, {failed} answers unreadable "
                f"({failed / asked:.0%})."
            )
    ctx.console.print(
        "[dim]The judge is SmolLM2 135M Instruct answering in JSON under a llama.cpp grammar: "
        "its answers parse, its judgement is weak. With OPENAI_API_KEY set, "
        "GPT-4 judges instead.[/dim]"
    )


def stage_probe(ctx: DemoContext) -> None:
    """Latency probes: warm up, then time the same request."""
    from evaluation.perf import run_probes

    assert ctx.cfg is not None and ctx.engine is not None
    warmup, measure = (1, 2)
    for summary in asyncio.run(run_probes(ctx.engine, ctx.cfg, warmup=warmup, measure=measure)):
        ctx.console.print(summary.line())


def stage_rate(ctx: DemoContext) -> None:
    """Blind pairs in the console. A person rates when there is a terminal; otherwise a
    scripted rater votes at random so the rating statistics and charts have data."""
    from bot.identity import load_salt
    from bot.platforms import rate_in_console

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


# Rating comes before scoring so the pairwise judge also sees the rated pairs and the
# judge-trust table can set each judge method against the votes.
STAGES: list[Stage] = [
    ("rate", stage_rate),
    ("score", stage_score),
    ("probe", stage_probe),
    ("report", stage_report),
]
