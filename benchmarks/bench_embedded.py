"""Embedded backend tokens/s vs calling llama-cpp-python directly on the same prompt, for both
packaged models (Gemma 3 270M base, SmolLM2 135M Instruct).

Target: ratio (ours / raw) >= 0.95 for each model. Both use the same loaded model and the same
prompt text (the model's chat format applied once, as the backend does); runs alternate so
background load hits both equally. Prints medians, the ratio per model and a last line
`summary: ...`.

The raw calls run on the backend's llama.cpp thread too: llama.cpp's OpenMP threads wait per
calling thread, so raw calls from the main thread would leave a second team that slows
whichever side runs next. Same thread = the comparison measures our layer only.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from core.config import ModelSpec, default_config
from core.prompts import load_user_contexts, render_prompt
from hosting.backends.base import GenerationRequest, create_backend
from hosting.backends.llamacpp import load_llama, run_on_llama_thread

ROUNDS = 11
MAX_TOKENS = 64
MODELS = ("builtin:gemma3-270m", "builtin:smollm2-135m")
TARGET = 0.95


def bench(model: str) -> tuple[float, float, int]:
    """(raw median tokens/s, ours median tokens/s, prompt tokens) for one model."""
    cfg = default_config()
    spec = ModelSpec(name="bench", backend="llamacpp", model=model)
    backend = create_backend(spec)
    user = load_user_contexts("builtin")[0]
    prompt = render_prompt(cfg.experiment.prompt_template, user)
    loaded = load_llama(backend.path, spec.n_ctx, spec.n_threads)  # type: ignore[attr-defined]
    llm = loaded.llm
    raw_prompt = loaded.chat(prompt, None)
    request = GenerationRequest(prompt=prompt, max_tokens=MAX_TOKENS, temperature=0.0)

    def raw_once() -> float:
        t0 = time.perf_counter()
        out = llm.create_completion(raw_prompt, max_tokens=MAX_TOKENS, temperature=0.0)
        dt = time.perf_counter() - t0
        return float(out["usage"]["completion_tokens"]) / dt

    async def ours_once() -> float:
        # Wall time seen by the caller, so thread hand-off and bookkeeping are included.
        t0 = time.perf_counter()
        gen = await backend.generate(request)
        dt = time.perf_counter() - t0
        assert gen.ok and gen.output_tokens, gen.error
        return gen.output_tokens / dt

    run_on_llama_thread(raw_once)  # warm-up: weights resident, caches hot
    asyncio.run(ours_once())
    raw, ours = [], []
    for _ in range(ROUNDS):
        raw.append(run_on_llama_thread(raw_once))
        ours.append(asyncio.run(ours_once()))
    n_prompt = len(llm.tokenize(raw_prompt.encode(), special=True))
    return statistics.median(raw), statistics.median(ours), n_prompt


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="a few seconds: 3 rounds of 16 tokens per model")  # fmt: skip
    args = ap.parse_args()
    global ROUNDS, MAX_TOKENS
    if args.quick:
        ROUNDS, MAX_TOKENS = 3, 16
    ratios = {}
    for model in MODELS:
        r, o, n_prompt = bench(model)
        ratios[model] = o / r
        print(f"== {model}: prompt {n_prompt} tokens, max_tokens={MAX_TOKENS}, rounds={ROUNDS}")
        print(f"raw llama-cpp-python create_completion: {r:6.1f} tokens/s (median)")
        print(f"slam embedded backend:                  {o:6.1f} tokens/s (median)")
        print(f"ratio ours/raw: {o / r:.3f}  (target >= {TARGET})")
    worst = min(ratios.values())
    parts = ", ".join(f"{m.removeprefix('builtin:')} {v:.3f}" for m, v in ratios.items())
    verdict = "OK" if worst >= TARGET else "OVER"
    print(f"summary: ours/raw tokens/s {parts} (target >= {TARGET}: {verdict})")


if __name__ == "__main__":
    main()
