"""Embedded backend: llama.cpp in this process (llama-cpp-python) on a local GGUF file.

Generation runs token by token in a worker thread so the event loop stays free and TTFT is
measured at the first sampled token, exactly as a streaming server would report it. The
prompt is wrapped in the GGUF's own chat template when it has one (SmolLM2), else in Gemma's
turns. A request's answer schema becomes a llama.cpp grammar (llama-cpp-python's JSON-schema
converter), so the answer is decoded in that shape.

All llama.cpp work runs on ONE dedicated thread: ggml's CPU backend uses OpenMP, which keeps a
team of threads per calling thread. Two calling threads mean two teams competing, which cost
~10% tokens/s on 2 cores (benchmarks/bench_embedded.py). Idle team threads wait passively
(hosting.backends.llama_logs.configure_openmp): spinning made generation 2.7–3.7× slower when other
work ran on the machine (benchmarks/bench_llama_contention.py).
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hosting.backends.base import AnswerSchema, Generation, GenerationRequest
from hosting.backends.gguf import ChatFormat, chat_format, resolve_model_path
from hosting.backends.identity import ModelIdentity, gguf_identity

if TYPE_CHECKING:
    from core.config import ModelSpec

T = TypeVar("T")
# End-of-turn tokens besides the model's EOS: Gemma's and ChatML's (SmolLM2).
_END_MARKERS = ("<end_of_turn>", "<eos>", "<|im_end|>", "<|endoftext|>")


@dataclass
class _Loaded:
    llm: Any
    lock: threading.Lock
    stop_ids: frozenset[int]
    chat: ChatFormat


log = logging.getLogger(__name__)
_CACHE: dict[tuple[str, int, int, int, int], _Loaded] = {}
_CACHE_LOCK = threading.Lock()
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama.cpp")


def run_on_llama_thread(fn: Callable[[], T]) -> T:
    """Run `fn` on the llama.cpp thread and wait (for synchronous callers and benchmarks)."""
    return _EXECUTOR.submit(fn).result()


def load_llama(path: Path, n_ctx: int = 2048, n_threads: int | None = None) -> _Loaded:
    """Load (once per process) a GGUF with llama.cpp; several specs may share one file. A
    replaced file (new mtime or size: a new model version) is loaded again."""
    threads = n_threads or os.cpu_count() or 1
    st = os.stat(path)
    key = (str(path), n_ctx, threads, st.st_mtime_ns, st.st_size)
    with _CACHE_LOCK:
        loaded = _CACHE.get(key)
        if loaded is None:
            from hosting.backends.llama_logs import configure_openmp, route_llama_logs

            configure_openmp()  # before llama.cpp (and libgomp) loads
            from llama_cpp import Llama

            route_llama_logs()
            llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False)
            stop_ids = {llm.token_eos()}
            for marker in _END_MARKERS:
                ids = llm.tokenize(marker.encode(), add_bos=False, special=True)
                if len(ids) == 1:
                    stop_ids.add(ids[0])
            loaded = _Loaded(
                llm=llm, lock=threading.Lock(), stop_ids=frozenset(stop_ids), chat=chat_format(llm)
            )
            if not _CACHE:
                atexit.register(_close_all)
            _CACHE[key] = loaded
    return loaded


def _close_all() -> None:
    """Free the cached models at exit, while llama.cpp's library is still loaded: left to
    `Llama.__del__` during interpreter teardown, freeing fails and prints a traceback."""
    with _CACHE_LOCK:
        loaded = list(_CACHE.values())
        _CACHE.clear()
    for item in loaded:
        try:
            item.llm.close()
        except Exception:  # exiting anyway: never a traceback for this
            log.debug("closing a llama.cpp model failed", exc_info=True)


@dataclass(frozen=True)
class Grammar:
    """An answer schema as a llama.cpp grammar: its GBNF text and llama-cpp-python's object."""

    gbnf: str
    llama: Any  # llama_cpp.LlamaGrammar


_GRAMMARS: dict[str, Grammar] = {}


def grammar_for(schema: AnswerSchema, llm: Any) -> Grammar:
    """The llama.cpp grammar of an answer schema (llama-cpp-python's JSON-schema converter),
    built once per schema and checked by llama.cpp itself first: a grammar it cannot parse
    would otherwise be added to the sampler chain as a null sampler and crash it."""
    text = schema.to_json()
    grammar = _GRAMMARS.get(text)
    if grammar is None:
        import llama_cpp
        from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

        gbnf = json_schema_to_gbnf(text)
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        probe = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
        if not probe:
            raise ValueError(f"llama.cpp rejected the grammar of answer schema {schema.name!r}")
        llama_cpp.llama_sampler_free(probe)
        grammar = Grammar(gbnf, LlamaGrammar.from_string(gbnf, verbose=False))
        _GRAMMARS[text] = grammar
    return grammar


def greedy_under_grammar(llm: Any, tokens: list[int], gbnf: str) -> Generator[int, None, None]:
    """Greedy decoding under a grammar that checks the grammar on the model's first choice
    first, as llama.cpp's own common sampler does: the whole vocabulary is masked only when
    that choice is not allowed. The tokens are exactly those of greedy sampling after masking
    every step (what `Llama.generate(..., grammar=...)` at temperature 0 does), without
    walking Gemma's 262k-token vocabulary through the grammar at every step.

    The prompt is evaluated by `Llama.generate` itself (its cached-prefix reuse), whose own
    first sample is discarded; then each chosen token is fed with `Llama.eval`."""
    import llama_cpp
    import numpy as np

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
    if not sampler:
        raise ValueError("llama.cpp rejected the grammar")
    n_vocab = int(llm.n_vocab())
    one = (llama_cpp.llama_token_data * 1)()
    one_arr = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
    full: Any = None
    view: Any = None
    try:
        prompt = llm.generate(tokens, temp=0.0, repeat_penalty=1.0)
        next(prompt)  # evaluates the prompt (reusing the cached prefix); its sample is unused
        prompt.close()
        while True:
            ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
            logits = np.ctypeslib.as_array(ptr, shape=(n_vocab,))
            tok = int(logits.argmax())
            one[0] = llama_cpp.llama_token_data(tok, float(logits[tok]), 0.0)
            one_arr.size, one_arr.selected, one_arr.sorted = 1, -1, False
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(one_arr))
            if not math.isfinite(one[0].logit):  # not allowed here: mask everything
                if full is None:
                    full = (llama_cpp.llama_token_data * n_vocab)()
                    view = np.ctypeslib.as_array(full)
                view["id"] = np.arange(n_vocab, dtype=np.int32)
                view["logit"] = logits
                view["p"] = 0.0
                arr = llama_cpp.llama_token_data_array(
                    data=full, size=n_vocab, selected=-1, sorted=False
                )
                llama_cpp.llama_sampler_apply(sampler, ctypes.byref(arr))
                tok = int(view["logit"].argmax())
                if not math.isfinite(float(view["logit"][tok])):
                    return  # the grammar allows nothing (cannot happen for a valid grammar)
            llama_cpp.llama_sampler_accept(sampler, tok)
            yield tok
            llm.eval([tok])
    finally:
        llama_cpp.llama_sampler_free(sampler)


class LlamaCppBackend:
    """In-process llama.cpp. `model` is 'builtin:gemma3-270m' or a path to a .gguf file."""

    name = "llamacpp"

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.path = resolve_model_path(spec.model)
        self._loaded: _Loaded | None = None
        self.schema_error: str | None = None  # why answer schemas cannot be used (remembered)

    def _ensure_loaded(self) -> _Loaded:
        if self._loaded is None:
            self._loaded = load_llama(self.path, self.spec.n_ctx, self.spec.n_threads)
        return self._loaded

    async def generate(self, request: GenerationRequest) -> Generation:
        """Generate in a worker thread; errors (bad GGUF, context overflow) become data."""
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(_EXECUTOR, self._generate_sync, request)
        except Exception as exc:
            return Generation.failure(self.name, self.spec.name, f"{type(exc).__name__}: {exc}")

    def _generate_sync(self, request: GenerationRequest) -> Generation:
        loaded = self._ensure_loaded()
        llm = loaded.llm
        prompt = loaded.chat(request.prompt, request.system)
        grammar = None
        if request.answer_schema is not None and self.schema_error is None:
            try:
                grammar = grammar_for(request.answer_schema, llm)
            except Exception as exc:  # the schema is unusable here: free text from now on
                self.schema_error = f"{type(exc).__name__}: {exc}"
        with loaded.lock:  # a llama.cpp context serves one sequence at a time
            tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
            budget = min(request.max_tokens, llm.n_ctx() - len(tokens))
            if budget <= 0:
                return Generation.failure(
                    self.name,
                    self.spec.name,
                    f"prompt of {len(tokens)} tokens does not fit n_ctx={llm.n_ctx()}",
                    prompt_tokens=len(tokens),
                )
            if request.seed is not None:
                llm.set_seed(request.seed)
            out: list[int] = []
            finish = "length"
            start = time.perf_counter()
            ttft: float | None = None
            stream: Generator[int, Any, None]
            if grammar is not None and request.temperature == 0.0:
                stream = greedy_under_grammar(llm, tokens, grammar.gbnf)
            else:
                stream = llm.generate(
                    tokens,
                    temp=request.temperature,
                    top_k=64,
                    top_p=0.95,
                    repeat_penalty=1.0,
                    grammar=grammar.llama if grammar is not None else None,
                )
            try:
                for tok in stream:
                    if ttft is None:
                        ttft = time.perf_counter() - start
                    if tok in loaded.stop_ids:
                        finish = "stop"
                        break
                    out.append(tok)
                    if len(out) >= budget:
                        break
            finally:
                stream.close()
            latency = time.perf_counter() - start
            text = llm.detokenize(out).decode("utf-8", errors="replace")
        for stop in request.stop:
            cut = text.find(stop)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        return Generation(
            text=text.strip(),
            backend=self.name,
            model=self.spec.name,
            prompt_tokens=len(tokens),
            output_tokens=len(out),
            ttft_s=ttft,
            latency_s=latency,
            finish_reason=finish,
            structured=grammar is not None,
            identity=self.identity(),
        )

    def identity(self) -> ModelIdentity | None:
        """The GGUF file's sha256 (cached by path, mtime and size: a replaced file is a new
        version) and the configured quantization."""
        quant = self.spec.quantization if self.spec.quantization != "unknown" else None
        return gguf_identity(self.path, quant)

    async def aclose(self) -> None:
        # Models stay cached for the process: reloading costs more than keeping them.
        return None
