"""`slam demo`: the whole pipeline offline on this machine, in a workspace directory.

Stages run in order and each says what it did; a stage whose part is not configured
(e.g. Slack) says what a real setup adds instead of pretending.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from rich.panel import Panel

from core.config import SlamConfig, parse_config
from core.console import make_console
from slam import demo_stages
from slam.demo_context import DemoContext, Stage

VARIANTS = ("Q3_K_M", "Q2_K")
REFERENCE_NAME = "gemma3-270m-q4_k_m"


def demo_config(workspace: Path, variant_paths: dict[str, Path], quick: bool) -> SlamConfig:
    """Three real quantization variants of one model; the best one stands in for the API."""
    models = [
        {
            "name": REFERENCE_NAME,
            "backend": "llamacpp",
            "model": "builtin:gemma3-270m",
            "quantization": "Q4_K_M",
            "hardware": "local-cpu",
            "reference": True,
        }
    ]
    for quant, path in variant_paths.items():
        models.append(
            {
                "name": f"gemma3-270m-{quant.lower()}",
                "backend": "llamacpp",
                "model": str(path),
                "quantization": quant,
                "hardware": "local-cpu",
            }
        )
    users = workspace / "users.json"
    return parse_config(
        {
            "experiment": {
                "name": "daily-pep-talk-demo",
                "user_contexts": str(users) if quick else "builtin",
                "max_tokens": 24 if quick else 120,
                "seed": 7,
            },
            "models": models,
            "judge": {"model": REFERENCE_NAME},
            "chat": {"platform": "console"},
            "database": {"url": f"sqlite:///{workspace / 'slam.db'}"},
        },
        "<demo config>",
    )


def stage_quantize(ctx: DemoContext) -> None:
    from hosting.gguf import packaged_gemma3_270m
    from hosting.quantize import quantize

    src = packaged_gemma3_270m()
    ctx.console.print(f"source model: {src.name} ({src.stat().st_size / 1e6:.0f} MB, Q4_K_M)")
    paths = {}
    for quant in VARIANTS:
        t0 = time.perf_counter()
        paths[quant] = quantize(src, quant, ctx.workspace / "models")
        size = paths[quant].stat().st_size / 1e6
        ctx.console.print(
            f"  {quant:7s} → {paths[quant]} ({size:.0f} MB, {time.perf_counter() - t0:.1f} s)"
        )
    if ctx.quick:
        _write_quick_users(ctx.workspace / "users.json")
    ctx.cfg = demo_config(ctx.workspace, paths, ctx.quick)
    from storage.migrate import open_database

    ctx.engine = open_database(ctx.cfg.database.url)


def _write_quick_users(path: Path) -> None:
    import json

    from core.prompts import load_user_contexts

    users = [u.model_dump() for u in load_user_contexts("builtin")[:2]]
    path.write_text(json.dumps(users, indent=2), encoding="utf-8")


def stage_generate(ctx: DemoContext) -> None:
    from hosting.generate import generate
    from hosting.summary import render_table, summarize

    assert ctx.cfg is not None and ctx.engine is not None
    res = asyncio.run(generate(ctx.engine, ctx.cfg))
    ctx.console.print(
        f"{res.done} responses generated, {res.skipped} already stored today, {res.errors} errors"
    )
    ctx.console.print(render_table(summarize(ctx.engine, res.run_date), "Today's generations"))
    _show_sample(ctx)


def _show_sample(ctx: DemoContext) -> None:
    from sqlmodel import col, select

    from storage.db import session_scope
    from storage.models import Generation, ModelRecord

    assert ctx.engine is not None
    with session_scope(ctx.engine) as s:
        row = s.exec(
            select(Generation, ModelRecord)
            .join(ModelRecord, col(Generation.model_id) == col(ModelRecord.id))
            .where(col(Generation.error).is_(None))
            .order_by(col(Generation.id))
        ).first()
    if row:
        gen, model = row
        ctx.console.print(Panel(gen.text or "(empty)", title=f"a sample pep talk — {model.name}"))


CORE_STAGES: list[Stage] = [("quantize", stage_quantize), ("generate", stage_generate)]


def extra_stages() -> list[Stage]:
    """Stages contributed by the evaluation, reporting and chat areas."""
    return demo_stages.STAGES


HONEST_NOTE = (
    "[bold]What ran here, offline:[/bold] the embedded llama.cpp backend on Gemma 3 270M (a tiny "
    "[italic]base[/italic] model packaged on PyPI) and two lower-bit variants made with "
    "llama.cpp's own quantizer. The Q4_K_M original stands in for the paid API as the "
    "reference. Expect weak, often off-topic pep talks: the model is tiny, but every part "
    "of the pipeline is real.\n\n"
    "[bold]What a configured setup adds:[/bold]\n"
    "  • Ollama (OLLAMA_HOST): real 7–8B candidates (Llama 3, Mistral, Gemma 2…) on a GPU host; "
    "`slam host up` starts an AWS g4dn one.\n"
    "  • OpenAI (OPENAI_API_KEY): GPT-4 as the true reference and as the LLM judge.\n"
    "  • Slack or Discord tokens: blind pairs posted to your channel, votes by reaction, "
    "`/slam report` and a daily digest.\n"
    "Start with `slam init` to write a commented slam.toml."
)


def run_demo(workspace: Path, *, quick: bool = False, fresh: bool = False) -> DemoContext:
    """Run every demo stage; returns the context (tests inspect it)."""
    console = make_console()
    if fresh and workspace.exists():
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(workspace=workspace.resolve(), quick=quick, console=console)
    console.rule("[bold]SLaM demo[/bold] — can small models replace the API for a daily pep talk?")
    started = time.perf_counter()
    for name, fn in CORE_STAGES + extra_stages():
        console.rule(f"[bold cyan]{name}")
        t0 = time.perf_counter()
        fn(ctx)
        console.print(f"[dim]{name} took {time.perf_counter() - t0:.1f} s[/dim]")
    console.rule("done")
    for note in ctx.notes:
        console.print(note)
    console.print(Panel(HONEST_NOTE, title="about this demo"))
    console.print(f"workspace: {ctx.workspace}  ·  total {time.perf_counter() - started:.0f} s")
    return ctx
