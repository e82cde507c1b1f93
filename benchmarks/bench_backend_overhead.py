"""Per-request overhead of our backend layer over the raw SDK client, against local servers.

Starts its own servers on 127.0.0.1 (the fake Ollama server from tests/, and a real
llama_cpp.server on the packaged Gemma GGUF), then sends the same tiny streaming request N
times through the raw SDK (ollama.AsyncClient / openai.AsyncOpenAI) and through our backend
(OllamaBackend / OpenAIBackend), interleaved so drift hits both equally. Prints p50/p95 of
each and the p50 overhead (target: <= 2 ms).

    .venv/bin/python benchmarks/bench_backend_overhead.py [--n 500] [--n-llama 100] [--skip-llama]
        [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import ModelSpec  # noqa: E402
from hosting.backends.base import GenerationRequest  # noqa: E402

TARGET_MS = 2.0
PROMPT = "Say good morning."


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {' '.join(proc.args)}")  # type: ignore[arg-type]
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"server at {url} not ready within {timeout_s}s")


@contextmanager
def server(cmd: list[str], ready_url: str) -> Iterator[None]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(ready_url, proc)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _line(name: str, wall: list[float], cpu: list[float]) -> str:
    return (
        f"  {name:12s} wall p50 {pct(wall, 0.5) * 1e3:7.3f} ms  p95 {pct(wall, 0.95) * 1e3:7.3f} ms"
        f"   client CPU p50 {pct(cpu, 0.5) * 1e3:6.3f} ms"
    )


async def compare(
    label: str,
    raw: Callable[[], Awaitable[Any]],
    ours: Callable[[], Awaitable[Any]],
    n: int,
    warmup: int = 10,
) -> float:
    """Time n requests each way; returns the p50 wall-clock overhead in ms."""
    for _ in range(warmup):
        await raw()
        await ours()
    wall: dict[str, list[float]] = {"raw": [], "ours": []}
    cpu: dict[str, list[float]] = {"raw": [], "ours": []}
    for i in range(n):
        # Alternate the order so neither side always runs on a warmer connection/cache.
        pair = [("raw", raw), ("ours", ours)]
        for key, fn in pair if i % 2 == 0 else reversed(pair):
            c0, t0 = time.process_time(), time.perf_counter()
            await fn()
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    overhead = (statistics.median(wall["ours"]) - statistics.median(wall["raw"])) * 1e3
    paired = statistics.median(o - r for o, r in zip(wall["ours"], wall["raw"], strict=True))
    cpu_over = (statistics.median(cpu["ours"]) - statistics.median(cpu["raw"])) * 1e3
    print(f"\n{label}  (n={n} each, interleaved)")
    print(_line("raw SDK", wall["raw"], cpu["raw"]))
    print(_line("our backend", wall["ours"], cpu["ours"]))
    verdict = "OK" if overhead <= TARGET_MS else "ABOVE TARGET"
    print(
        f"  overhead: p50 wall {overhead:+.3f} ms, median paired diff {paired * 1e3:+.3f} ms, "
        f"p50 client CPU {cpu_over:+.3f} ms  (target <= {TARGET_MS} ms: {verdict})"
    )
    return overhead


async def bench_ollama(url: str, n: int) -> float:
    from ollama import AsyncClient

    from hosting.backends.ollama import OllamaBackend

    model = "gemma3:270m"
    request = GenerationRequest(prompt=PROMPT, max_tokens=8, temperature=0.0, seed=1)
    client = AsyncClient(host=url)
    backend = OllamaBackend(ModelSpec(name="bench", backend="ollama", model=model, host=url))

    async def raw() -> str:
        stream = await client.chat(
            model=model,
            messages=[{"role": "user", "content": PROMPT}],
            options={"temperature": 0.0, "num_predict": 8, "seed": 1},
            stream=True,
        )
        return "".join([c.message.content or "" async for c in stream])

    async def ours() -> str:
        gen = await backend.generate(request)
        assert gen.ok, gen.error
        return gen.text

    try:
        return await compare("ollama: fake Ollama server, /api/chat stream", raw, ours, n)
    finally:
        await client.close()
        await backend.aclose()


async def bench_openai(url: str, n: int) -> float:
    from openai import AsyncOpenAI

    from hosting.backends.openai import PLACEHOLDER_KEY, OpenAIBackend

    model = "gemma3-270m"
    request = GenerationRequest(prompt=PROMPT, max_tokens=1, temperature=0.0, seed=1)
    client = AsyncOpenAI(base_url=url, api_key=PLACEHOLDER_KEY, max_retries=0)
    backend = OpenAIBackend(ModelSpec(name="bench", backend="openai", model=model, host=url))

    async def raw() -> str:
        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            stream_options={"include_usage": True},
            temperature=0.0,
            max_tokens=1,
            seed=1,
        )
        parts = []
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
        return "".join(parts)

    async def ours() -> str:
        gen = await backend.generate(request)
        assert gen.ok, gen.error
        return gen.text

    try:
        return await compare("openai: llama_cpp.server, max_tokens=1", raw, ours, n)
    finally:
        await client.close()
        await backend.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="requests per side, fake Ollama")
    parser.add_argument("--n-llama", type=int, default=100, help="requests per side, llama server")
    parser.add_argument("--skip-llama", action="store_true", help="only the fake Ollama server")
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds: 60 requests per side, 10 on the llama server")
    args = parser.parse_args()
    if args.quick:
        args.n, args.n_llama = min(args.n, 60), min(args.n_llama, 10)
    py = sys.executable
    results: dict[str, float] = {}

    port = free_port()
    ollama_url = f"http://127.0.0.1:{port}"
    fake = [py, str(ROOT / "tests" / "support" / "fake_ollama.py"), "--port", str(port)]
    with server(fake, f"{ollama_url}/api/tags"):
        results["ollama"] = asyncio.run(bench_ollama(ollama_url, args.n))

    if not args.skip_llama:
        from hosting.backends.gguf import packaged_gemma3_270m

        port = free_port()
        url = f"http://127.0.0.1:{port}/v1"
        cmd = [
            py, "-m", "llama_cpp.server", "--model", str(packaged_gemma3_270m()),
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
            "--chat_format", "gemma", "--n_threads", "2", "--verbose", "False",
        ]  # fmt: skip
        with server(cmd, f"{url}/models"):
            results["openai"] = asyncio.run(bench_openai(url, args.n_llama))

    print("\np50 overhead of our backend over the raw SDK")
    for name, ms in results.items():
        verdict = "OK" if ms <= TARGET_MS else "OVER"
        print(f"  {name:7s} {ms:+.3f} ms  ({verdict} target {TARGET_MS} ms)")
    ok = all(ms <= TARGET_MS for ms in results.values())
    parts = ", ".join(f"{name} {ms:+.3f} ms" for name, ms in results.items())
    print(f"summary: p50 overhead over the raw SDK {parts} (target ≤ {TARGET_MS} ms: "
          f"{'OK' if ok else 'OVER'})")


if __name__ == "__main__":
    main()
