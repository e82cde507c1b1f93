"""Lower-bit GGUF variants made with llama.cpp's own quantizer (llama_model_quantize).

The reference study compared quantized variants of each model; `slam quantize` makes real
ones from any GGUF so the offline demo compares Q4_K_M against Q3_K_M and Q2_K.
"""

from __future__ import annotations

import ctypes
import os
import re
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


# A quantization label at the end of a GGUF file's stem, after '-', '.' or '_' (Q4_K_M, Q4_1,
# IQ2_XS, Q8_0, F16, BF16…): a variant drops its source's label, so a Q2_K made from
# 'SmolLM2-135M-Instruct.Q4_1.gguf' is 'SmolLM2-135M-Instruct-q2_k.gguf', not '…Q4_1-q2_k'.
_QUANT_SUFFIX = re.compile(r"[-._](?:I?Q\d(?:_[A-Z0-9]+)*|B?F16|F32)$", re.IGNORECASE)


def variant_path(source: Path, quant: str, out_dir: Path) -> Path:
    """Where the `quant` variant of `source` goes: its stem without its own quantization."""
    stem = _QUANT_SUFFIX.sub("", source.stem) or source.stem
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

    from hosting.backends import route_llama_logs

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
