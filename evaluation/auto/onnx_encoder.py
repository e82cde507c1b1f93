"""SBERT on ONNX Runtime: the same sentence-transformers model, about 3× faster on a CPU.

The model's transformer, its mean pooling and its normalization are exported once with
`torch.onnx.export` (the TorchScript exporter) into the model cache (`SLAM_CACHE_DIR/onnx`,
else `~/.cache/slam/onnx`), keyed by the model's files, torch's version and the opset; every
later process loads the file. An export is checked against PyTorch on texts of other lengths
and batch sizes than the traced ones before it is kept, so a trace that did not generalize
is never used. The tokenizer is the model's own (transformers), texts are batched by length
as sentence-transformers batches them and truncated at its `max_seq_length`: the vectors
equal PyTorch's to float precision (tests: within 1e-5), so they share its embedding-cache
label and stored similarity values.

Only folders of a Transformer, mean Pooling and an optional Normalize module (the builtin
all-MiniLM-L6-v2 and most sentence-transformers models) are exported; anything else, or an
export that fails, falls back to the PyTorch encoder with one warning in the log.

Dynamic int8 quantization (onnxruntime.quantization.quantize_dynamic) needs the `onnx`
package, which is not a dependency: without it the TorchScript exporter's one use of `onnx`
(inserting onnx-script functions, of which this graph has none) is skipped, and the model
stays float32 — which already meets the speed target (benchmarks/bench_similarity_encoder.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.env import environment
from evaluation.auto.embeddings import (
    BUILTIN_SBERT,
    Encoder,
    Progress,
    SentenceTransformerEncoder,
    sentence_transformer_source,
)

log = logging.getLogger(__name__)
OPSET = 17
CHECK_TOLERANCE = 1e-4  # max |Δ| of an exported model's unit vectors against PyTorch's
_CHECK_TEXTS = [
    "Good morning!",
    "Plan the day: finish the report, then a walk at noon and the weekly review.",
    "x",
    "You shipped the fix yesterday; today, rest a little and call the client. " * 6,
    "Steady progress.",
]


def model_cache_dir() -> Path:
    """Where exported models live: `SLAM_CACHE_DIR/onnx`, else `~/.cache/slam/onnx` (once per
    machine rather than per project folder)."""
    base = environment().slam_cache_dir
    return (Path(base) if base else Path.home() / ".cache" / "slam") / "onnx"


@dataclass(frozen=True)
class _Layout:
    """What the exported graph computes, read from the model folder's sentence-transformers
    files."""

    max_length: int
    normalize: bool


def _layout(source: Path) -> _Layout | str:
    """The folder's layout, or why it cannot be exported (a reason for the log)."""
    try:
        modules = json.loads((source / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "it has no readable modules.json (not a local sentence-transformers folder)"
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return f"its modules are {kinds}, not Transformer, Pooling (and Normalize)"
    pooling = next(m for m in modules if str(m.get("type", "")).endswith("Pooling"))
    try:
        pool = json.loads((source / pooling.get("path", "") / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return "its pooling config is unreadable"
    modes = sorted(k for k, v in pool.items() if k.startswith("pooling_mode") and v is True)
    if modes != ["pooling_mode_mean_tokens"]:
        return f"its pooling is {modes}, not the mean of the tokens"
    try:
        config = json.loads((source / "sentence_bert_config.json").read_text(encoding="utf-8"))
        max_length = int(config.get("max_seq_length") or 512)
    except (OSError, ValueError, TypeError):
        max_length = 512
    return _Layout(max_length, kinds[-1] == "Normalize")


def _fingerprint(source: Path, layout: _Layout) -> str:
    """A digest of what the exported file depends on: the model's files (names, sizes,
    modification times), torch's version, the opset and the layout."""
    import torch

    h = hashlib.sha256(f"{torch.__version__}|{OPSET}|{layout}".encode())
    for p in sorted(source.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(source)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _without_onnx_package() -> Iterator[None]:
    """The TorchScript exporter imports `onnx` only to insert onnx-script functions (custom
    ops); this graph has none, so without the package that step is skipped."""
    try:
        import onnx  # noqa: F401

        yield
        return
    except ImportError:
        pass
    from torch.onnx._internal.torchscript_exporter import onnx_proto_utils as opu

    original = opu._add_onnxscript_fn
    opu._add_onnxscript_fn = lambda model_bytes, custom_opsets: model_bytes
    try:
        yield
    finally:
        opu._add_onnxscript_fn = original


def _torch_module(source: Path, layout: _Layout) -> tuple[Any, list[str]]:
    """The transformer with mean pooling (and normalization) as one torch module, and the
    names of the inputs it takes from the tokenizer."""
    import inspect

    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    accepted = inspect.signature(bert.forward).parameters
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in accepted]

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, *inputs: Any) -> Any:
            kw = dict(zip(names, inputs, strict=True))
            h = self.bert(**kw).last_hidden_state
            w = kw["attention_mask"].unsqueeze(-1).to(h.dtype)
            v = (h * w).sum(1) / w.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, p=2.0, dim=1) if layout.normalize else v

    return Pooled().eval(), names


def export_model(source: Path, layout: _Layout, target: Path) -> None:
    """Export the model to `target` (written whole or not at all), checked against PyTorch."""
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(source))
    module, names = _torch_module(source, layout)
    example = tok(["Hello there.", "A longer sentence, to have padding in the batch."],
                  padding=True, return_tensors="pt")  # fmt: skip
    args = tuple(example[n] for n in names)
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), _without_onnx_package(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes: checked below
            torch.onnx.export(module, args, tmp, input_names=names, output_names=["embedding"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)  # fmt: skip
        check = tok(_CHECK_TEXTS, padding=True, truncation=True, max_length=layout.max_length,
                    return_tensors="pt")  # fmt: skip
        with torch.no_grad():
            want = module(*(check[n] for n in names)).numpy()
        got = _session(Path(tmp)).run(None, {n: check[n].numpy() for n in names})[0]
        worst = float(np.max(np.abs(got - want)))
        if not worst <= CHECK_TOLERANCE:
            raise RuntimeError(f"the exported model differs from PyTorch by {worst:.1e}")
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only
    # Idle threads sleep rather than spin: on a shared 2-core host spinning takes the CPU the
    # other work (and the next batch's tokenizer) needs; measured no slower when idle.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class _Runner:
    """A loaded ONNX model and its tokenizer (one per model and process)."""

    def __init__(self, source: Path, layout: _Layout, path: Path):
        from transformers import AutoTokenizer

        self.session = _session(path)
        self.names = [i.name for i in self.session.get_inputs()]
        self.tokenizer = AutoTokenizer.from_pretrained(str(source))
        self.max_length = layout.max_length
        self._tok_lock = threading.Lock()  # a fast tokenizer is not safe across threads

    def run(self, texts: list[str]) -> NDArray[np.float32]:
        with self._tok_lock:
            enc = self.tokenizer(texts, padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="np")  # fmt: skip
        feeds = {n: np.asarray(enc[n], dtype=np.int64) for n in self.names}
        return np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)


def _label(model: str) -> str:
    return SentenceTransformerEncoder(model).label


_RUNNERS: dict[str, _Runner | None] = {}
_LOCK = threading.Lock()


def onnx_runner(model: str) -> _Runner | None:
    """The ONNX model for a sentence-transformers model (exported on first use), or None with
    one warning in the log when it cannot be had (the caller then uses PyTorch)."""
    with _LOCK:
        if model in _RUNNERS:
            return _RUNNERS[model]
        runner = None
        try:
            source = Path(sentence_transformer_source(model))
            layout = _layout(source) if source.is_dir() else "it is not a local model folder"
            if isinstance(layout, str):
                log.warning("SBERT on ONNX: %s cannot be exported (%s); using PyTorch",
                            model, layout)  # fmt: skip
            else:
                name = re.sub(r"[^\w.-]+", "_", _label(model))[-80:]
                path = model_cache_dir() / f"{name}-{_fingerprint(source, layout)}.onnx"
                if not path.exists():
                    log.info("SBERT on ONNX: exporting %s to %s (once)", model, path)
                    export_model(source, layout, path)
                runner = _Runner(source, layout, path)
        except Exception as exc:  # any failure to export or load: PyTorch still works
            log.warning("SBERT on ONNX: %s could not be exported or loaded (%s: %s); using "
                        "PyTorch", model, type(exc).__name__, exc)  # fmt: skip
        _RUNNERS[model] = runner
        return runner


class OnnxSentenceEncoder:
    """A sentence-transformers model on ONNX Runtime (falls back to PyTorch, see the module).
    Its vectors are PyTorch's to float precision: the same cache label."""

    def __init__(self, model: str = BUILTIN_SBERT, batch_size: int = 32):
        self.model = model
        self.batch_size = batch_size
        self._torch = SentenceTransformerEncoder(model, batch_size)
        self.label = self._torch.label

    def encode(self, texts: list[str], progress: Progress | None = None) -> NDArray[np.float32]:
        runner = onnx_runner(self.model)
        if runner is None:
            return self._torch.encode(texts, progress)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        # Longest first, in batches, as sentence-transformers does: little padding per batch.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: NDArray[np.float32] | None = None
        step = self.batch_size * 8
        for i in range(0, len(order), step):
            chunk = order[i : i + step]
            for j in range(0, len(chunk), self.batch_size):
                idx = chunk[j : j + self.batch_size]
                vecs = runner.run([texts[k] for k in idx])
                if out is None:
                    out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
                out[idx] = vecs
            if progress is not None:
                progress(len(chunk))
        assert out is not None
        return out


def sentence_encoder(model: str, batch_size: int, backend: str) -> Encoder:
    """The configured SBERT encoder: `backend` 'onnx' (default) or 'torch'."""
    if backend == "onnx":
        return OnnxSentenceEncoder(model, batch_size)
    return SentenceTransformerEncoder(model, batch_size)
