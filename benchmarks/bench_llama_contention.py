"""llama.cpp tokens/s when other work competes for the CPU, under different thread settings.

ggml's CPU backend runs its threads in an OpenMP team. By default libgomp lets a waiting
thread spin before it sleeps; when another process wants the same cores, the spinning team
and the other work take turns at the scheduler and both slow down. This benchmark measures
the embedded backend's generation speed (the packaged SmolLM2 and Gemma models, 48 tokens,
temperature 0) with and without a competing CPU-bound process, for:

- `default`: the library's defaults (n_threads = cores, libgomp's spin-then-sleep);
- `passive`: OMP_WAIT_POLICY=PASSIVE (waiting threads sleep at once), set before llama.cpp
  loads — what hosting.backends.llamacpp sets unless the environment already says otherwise;
- `active`: OMP_WAIT_POLICY=ACTIVE (threads always spin);
- `1-thread`: n_threads = 1 (no team to wait for).

Each setting runs in a fresh process (libgomp reads its environment once, when it loads);
settings are interleaved over the repetitions so background load hits all of them alike.
Prints per setting the median tokens/s idle and under load, and the slowdown.

    python benchmarks/bench_llama_contention.py [--reps 3] [--hogs 1] [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SETTINGS: dict[str, dict[str, str]] = {
    "default": {"SLAM_OMP_WAIT_POLICY": "library"},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "active": {"OMP_WAIT_POLICY": "ACTIVE"},
    "1-thread": {"SLAM_OMP_WAIT_POLICY": "library", "BENCH_THREADS": "1"},
}
MODELS = ("builtin:smollm2-135m", "builtin:gemma3-270m")
TOKENS = 48
ROUNDS = 3
TARGET_RATIO = 0.5  # the kept setting (PASSIVE) keeps at least half its idle speed under load


def _worker() -> None:
    """Child: load the models, then print tokens/s of ROUNDS generations per model as JSON."""
    import asyncio

    from core.config import ModelSpec, default_config
    from core.prompts import load_user_contexts, render_prompt
    from hosting.backends.base import GenerationRequest, create_backend

    threads = int(os.environ.get("BENCH_THREADS", "0")) or None
    quick = os.environ.get("BENCH_QUICK") == "1"
    models, tokens, rounds = (MODELS[:1], 16, 1) if quick else (MODELS, TOKENS, ROUNDS)
    cfg = default_config()
    prompt = render_prompt(cfg.experiment.prompt_template, load_user_contexts("builtin")[0])
    request = GenerationRequest(prompt=prompt, max_tokens=tokens, temperature=0.0, seed=1)
    out: dict[str, list[float]] = {}

    async def run() -> None:
        for model in models:
            spec = ModelSpec(name="m", backend="llamacpp", model=model, n_threads=threads)
            backend = create_backend(spec)
            await backend.generate(request)  # warm-up: load, page in the weights
            speeds = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                gen = await backend.generate(request)
                assert gen.ok and gen.output_tokens, gen.error
                speeds.append(gen.output_tokens / (time.perf_counter() - t0))
            out[model] = speeds

    asyncio.run(run())
    print(json.dumps(out))


def _hog(stop: Any) -> None:
    """A CPU-bound competitor: pure Python arithmetic until told to stop."""
    x = 0
    while not stop.is_set():
        for i in range(100_000):
            x ^= i


def _measure(setting: str, hogs: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY",)}
    env.update(SETTINGS[setting])
    env["PYTHONPATH"] = str(ROOT)
    stop = mp.Event()
    procs = [mp.Process(target=_hog, args=(stop,), daemon=True) for _ in range(hogs)]
    for p in procs:
        p.start()
    try:
        res = subprocess.run(
            [sys.executable, __file__, "--worker"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        )
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=10)
    speeds = json.loads(res.stdout.strip().splitlines()[-1])
    return {m: statistics.median(v) for m, v in speeds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--hogs", type=int, default=1, help="competing CPU-bound processes")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds: PASSIVE only, one run, SmolLM2, 16 tokens")
    args = parser.parse_args()
    if args.worker:
        _worker()
        return
    if args.quick:
        args.reps, args.settings = 1, "passive"
        os.environ["BENCH_QUICK"] = "1"
    chosen = [s for s in args.settings.split(",") if s]
    idle: dict[str, dict[str, list[float]]] = {s: {m: [] for m in MODELS} for s in chosen}
    busy: dict[str, dict[str, list[float]]] = {s: {m: [] for m in MODELS} for s in chosen}
    for rep in range(args.reps):
        for s in chosen:
            for load, table in ((0, idle), (args.hogs, busy)):
                for m, v in _measure(s, load).items():
                    table[s][m].append(v)
        print(f"rep {rep + 1}/{args.reps} done (load average {os.getloadavg()[0]:.2f})")
    print(f"tokens/s, median of {args.reps} runs x {ROUNDS} generations of {TOKENS} tokens;")
    print(f"'busy' = with {args.hogs} competing CPU-bound process(es) on {os.cpu_count()} cores")
    for m in MODELS:
        if not idle[chosen[0]][m]:
            continue
        print(f"== {m}")
        for s in chosen:
            i, b = statistics.median(idle[s][m]), statistics.median(busy[s][m])
            print(f"  {s:9s} idle {i:6.1f}  busy {b:6.1f}  busy/idle {b / i:5.2f}")
    summary = ", ".join(f"{s} busy {statistics.median(busy[s][MODELS[0]]):.1f}" for s in chosen)
    kept = "passive" if "passive" in chosen else chosen[0]
    ratio = statistics.median(busy[kept][MODELS[0]]) / statistics.median(idle[kept][MODELS[0]])
    print(f"summary: {MODELS[0]} tokens/s under load: {summary}; {kept} busy/idle {ratio:.2f} "
          f"(target ≥ {TARGET_RATIO}: {'OK' if ratio >= TARGET_RATIO else 'OVER'})")


if __name__ == "__main__":
    main()
