"""`slam demo`: the whole pipeline offline on this machine, in a workspace directory.

Stages run in order and each says what it did; a stage whose part is not configured
(e.g. Slack) says what a real setup adds instead of pretending.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.panel import Panel

from core.config import SlamConfig, parse_config
from core.console import make_console
from core.errors import SlamError
from slam.demo import stages as demo_stages
from slam.demo.context import DemoContext, Stage


@dataclass(frozen=True)
class Family:
    """One packaged model family: its GGUF as shipped, and a lower-bit variant made here."""

    key: str  # the builtin name: `builtin:<key>`
    quant: str  # the packaged file's quantization
    variant: str  # the lower-bit variant llama.cpp's quantizer makes from it
    instruct: bool

    def name(self, quant: str) -> str:
        return f"{self.key}-{quant.lower()}"


# SmolLM2 135M Instruct has a chat template and answers in format under a grammar: it is the
# offline stand-in for the paid API and the judge. Gemma 3 270M is a base model.
FAMILIES = (
    Family("smollm2-135m", "Q4_1", "Q2_K", instruct=True),
    Family("gemma3-270m", "Q4_K_M", "Q3_K_M", instruct=False),
)
REFERENCE_NAME = FAMILIES[0].name(FAMILIES[0].quant)
JUDGE_NAME = REFERENCE_NAME
MARKER = ".slam-demo-workspace"  # written into a workspace the demo created
# What an older demo (before the marker) left in its workspace: --fresh may delete those too.
_DEMO_FILES = {"slam.db", "slam.db-wal", "slam.db-shm", "models", "report", "users.json",
               "rater_salt", MARKER}  # fmt: skip


def demo_config(
    workspace: Path, variant_paths: dict[tuple[str, str], Path], quick: bool
) -> SlamConfig:
    """Two families, each as packaged and as a lower-bit variant; the instruct model as
    packaged stands in for the API and judges."""
    models: list[dict[str, object]] = []
    for fam in FAMILIES:
        models.append(
            {
                "name": fam.name(fam.quant),
                "backend": "llamacpp",
                "model": f"builtin:{fam.key}",
                "quantization": fam.quant,
                "hardware": "local-cpu",
                "reference": fam.name(fam.quant) == REFERENCE_NAME,
            }
        )
        path = variant_paths.get((fam.key, fam.variant))
        if path is not None:
            models.append(
                {
                    "name": fam.name(fam.variant),
                    "backend": "llamacpp",
                    "model": str(path),
                    "quantization": fam.variant,
                    "hardware": "local-cpu",
                }
            )
    users = workspace / "users.json"
    return parse_config(
        {
            "experiment": {
                "name": "daily-pep-talk-demo",
                "user_contexts": str(users) if quick else "builtin",
                "max_tokens": 24 if quick else 80,
                "seed": 7,
            },
            "models": models,
            "judge": {"model": JUDGE_NAME},
            "chat": {"platform": "console"},
            "database": {"url": f"sqlite:///{workspace / 'slam.db'}"},
        },
        "<demo config>",
    )


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """Ctrl-C inside a long llama.cpp C call (the quantizer) is remembered and raised as
    KeyboardInterrupt once the call returns.

    Python runs a signal handler at its next bytecode, which during the quantizer is inside
    llama.cpp's log callback: a KeyboardInterrupt raised there is printed by ctypes as a
    traceback and lost, and the run goes on. Only the main thread receives signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hit: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: hit.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if hit:
        raise KeyboardInterrupt


def stage_quantize(ctx: DemoContext) -> None:
    from hosting.backends import configure_openmp, resolve_model_path

    configure_openmp()  # before the quantizer loads llama.cpp, so generation later waits passively
    from hosting.quantize import quantize

    paths: dict[tuple[str, str], Path] = {}
    for fam in FAMILIES:
        src = resolve_model_path(f"builtin:{fam.key}")
        ctx.console.print(
            f"source model: {src.name} ({src.stat().st_size / 1e6:.0f} MB, {fam.quant}"
            f"{', instruct' if fam.instruct else ', base model'})"
        )
        t0 = time.perf_counter()
        with sigint_deferred():
            path = quantize(src, fam.variant, ctx.workspace / "models")
        paths[(fam.key, fam.variant)] = path
        size = path.stat().st_size / 1e6
        ctx.console.print(
            f"  {fam.variant:7s} → {path} ({size:.0f} MB, {time.perf_counter() - t0:.1f} s)"
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
    "[bold]What ran here, offline:[/bold] the embedded llama.cpp backend on two tiny model "
    "families packaged on PyPI — SmolLM2 135M Instruct and Gemma 3 270M (a "
    "[italic]base[/italic] model) — each as packaged and as a lower-bit variant made with "
    "llama.cpp's own quantizer. SmolLM2 as packaged stands in for the paid API as the "
    "reference and is the LLM judge: it answers in the judges' JSON shape under a llama.cpp "
    "grammar, but a 135M model's judgement (of its own answers, too) is weak. Expect weak, "
    "often off-topic pep talks: the models are tiny, but every part of the pipeline is real."
    "\n\n"
    "[bold]What a configured setup adds:[/bold]\n"
    "  • Ollama (OLLAMA_HOST): real 7–8B candidates (Llama 3, Mistral, Gemma 2…) on a GPU host; "
    "`slam host up` starts an AWS g4dn one.\n"
    "  • OpenAI (OPENAI_API_KEY): GPT-4 as the true reference and as the LLM judge.\n"
    "  • Slack or Discord tokens: blind pairs posted to your channel, votes by reaction, "
    "`/slam report` and a daily digest.\n"
    "Start with `slam init` to write a commented slam.toml."
)


def prepare_workspace(workspace: Path, *, fresh: bool) -> Path:
    """Create (or, with `fresh`, empty) the workspace. `fresh` deletes only a folder that is
    empty or is a demo workspace (it carries the marker, or holds nothing but demo files)."""
    if fresh and workspace.exists():
        if not workspace.is_dir():
            raise SlamError(f"--workspace {workspace} is a file, not a folder")
        entries = {e.name for e in workspace.iterdir()}
        if entries and MARKER not in entries and not entries <= _DEMO_FILES:
            raise SlamError(
                f"refusing to delete {workspace} for --fresh: it is not a demo workspace "
                f"(no {MARKER} file, and it holds other files such as "
                f"{sorted(entries - _DEMO_FILES)[0]!r}); pick another --workspace or "
                "delete the folder yourself"
            )
        shutil.rmtree(workspace)
    created = not workspace.exists() or not any(workspace.iterdir())
    workspace.mkdir(parents=True, exist_ok=True)
    if created:  # never mark a folder that held something else: --fresh must not delete it
        (workspace / MARKER).write_text(
            "This folder is a `slam demo` workspace: `slam demo --fresh` may delete it.\n",
            encoding="utf-8",
        )
    return workspace.resolve()


def run_demo(workspace: Path, *, quick: bool = False, fresh: bool = False) -> DemoContext:
    """Run every demo stage; returns the context (tests inspect it)."""
    console = make_console()
    ctx = DemoContext(
        workspace=prepare_workspace(workspace, fresh=fresh), quick=quick, console=console
    )
    console.rule("[bold]SLaM demo[/bold] — can small models replace the API for a daily pep talk?")
    started = time.perf_counter()
    for name, fn in CORE_STAGES + extra_stages():
        console.rule(f"[bold cyan]{name}")
        t0, c0 = time.perf_counter(), time.process_time()
        fn(ctx)
        # CPU time beside wall time: on a busy machine the wall time says more about the others
        console.print(
            f"[dim]{name} took {time.perf_counter() - t0:.1f} s "
            f"(CPU {time.process_time() - c0:.1f} s)[/dim]"
        )
    console.rule("done")
    for note in ctx.notes:
        console.print(note)
    console.print(Panel(HONEST_NOTE, title="about this demo"))
    console.print(f"workspace: {ctx.workspace}  ·  total {time.perf_counter() - started:.0f} s")
    return ctx
