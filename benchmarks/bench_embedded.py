"""Embedded backend tokens/s vs calling llama-cpp-python directly on the same prompt.

Target: ratio (ours / raw) >= 0.95. Both use the same loaded model; runs alternate so
background load hits both equally. Prints medians and the ratio.

The raw calls run on the backend's llama.cpp thread too: llama.cpp's OpenMP threads spin per
calling thread, so raw calls from the main thread would leave a second spinning team that
slows whichever side runs next. Same thread = the comparison measures our layer only.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from core.config import default_config
from core.prompts import load_user_contexts, render_prompt
from hosting.base import GenerationRequest, create_backend
from hosting.gguf import gemma_turns
from hosting.llamacpp import load_llama, run_on_llama_thread

ROUNDS = 11
MAX_TOKENS = 64


def main() -> None:
    cfg = default_config()
    spec = cfg.models[0]
    backend = create_backend(spec)
    user = load_user_contexts("builtin")[0]
    prompt = render_prompt(cfg.experiment.prompt_template, user)
    loaded = load_llama(backend.path, spec.n_ctx, spec.n_threads)  # type: ignore[attr-defined]
    llm = loaded.llm
    raw_prompt = gemma_turns(prompt)
    request = GenerationRequest(prompt=prompt, max_tokens=MAX_TOKENS, temperature=0.0)

    def raw_once() -> float:
        t0 = time.perf_counter()
        out = llm.create_completion(raw_prompt, max_tokens=MAX_TOKENS, temperature=0.0)
        dt = time.perf_counter() - t0
        return out["usage"]["completion_tokens"] / dt

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
    r, o = statistics.median(raw), statistics.median(ours)
    print(
        f"prompt: {len(llm.tokenize(raw_prompt.encode(), special=True))} tokens, "
        f"max_tokens={MAX_TOKENS}, rounds={ROUNDS}"
    )
    print(f"raw llama-cpp-python create_completion: {r:6.1f} tokens/s (median)")
    print(f"slam embedded backend:                  {o:6.1f} tokens/s (median)")
    print(f"ratio ours/raw: {o / r:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
