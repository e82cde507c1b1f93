"""Lower-bit GGUF variants made with llama.cpp's own quantizer (llama_model_quantize).

The reference study compared quantized variants of each model; `slam quantize` makes real
ones from any GGUF so the offline demo compares Q4_K_M against Q3_K_M and Q2_K.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from core.errors import SlamError

# Label -> llama.cpp ftype constant name.
QUANT_TYPES = {
    "Q2_K": "LLAMA_FTYPE_MOSTLY_Q2_K",
    "Q3_K_S": "LLAMA_FTYPE_MOSTLY_Q3_K_S",
    "Q3_K_M": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
    "Q3_K_L": "LLAMA_FTYPE_MOSTLY_Q3_K_L",
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "Q4_K_S": "LLAMA_FTYPE_MOSTLY_Q4_K_S",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
}
ALIASES = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}


def normalize_quant(label: str) -> str:
    """'q3_k' -> 'Q3_K_M'; raise a clear error for unknown types."""
    up = label.strip().upper()
    up = ALIASES.get(up, up)
    if up not in QUANT_TYPES:
        raise SlamError(
            f"unknown quantization type '{label}'; expected one of "
            f"{', '.join(sorted(QUANT_TYPES) + sorted(ALIASES))}"
        )
    return up


def variant_path(source: Path, quant: str, out_dir: Path) -> Path:
    stem = source.stem
    for known in QUANT_TYPES:
        stem = stem.replace(f"-{known.lower()}", "").replace(f"-{known}", "")
    return out_dir / f"{stem}-{quant.lower()}.gguf"


def quantize(source: Path, quant: str, out_dir: Path, *, force: bool = False) -> Path:
    """Write a `quant` variant of `source` into `out_dir` (skipped when it already exists)."""
    quant = normalize_quant(quant)
    if not source.exists():
        raise SlamError(f"GGUF file not found: {source}")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = variant_path(source, quant, out_dir)
    if target.exists() and not force:
        return target
    import llama_cpp

    from hosting.llama_logs import route_llama_logs

    route_llama_logs()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[quant])
    params.nthread = os.cpu_count() or 1
    # The packaged model is already Q4_K_M: re-quantizing it is what makes the variants.
    params.allow_requantize = True
    tmp = target.with_suffix(".gguf.partial")
    rc = llama_cpp.llama_model_quantize(
        str(source).encode(), str(tmp).encode(), ctypes.byref(params)
    )
    if rc != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise SlamError(f"llama.cpp could not quantize {source} to {quant} (code {rc})")
    tmp.replace(target)  # atomic: a crash never leaves a half-written GGUF under the real name
    return target
