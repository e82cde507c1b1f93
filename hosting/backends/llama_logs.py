"""llama.cpp process setup: its log lines go to Python logging, its OpenMP threads wait
passively.

llama.cpp prints loader and quantizer chatter to stderr, some of it at ERROR level although
nothing is wrong (e.g. the SWA cache notice); real failures surface as Python exceptions. The
callback routes it to the `slam.llama_cpp` logger at DEBUG.

ggml's CPU backend runs an OpenMP team. libgomp's default lets idle team threads spin before
they sleep; when other work wants the same cores, the spinning threads and that work take
turns and generation slows several-fold (benchmarks/bench_llama_contention.py: SmolLM2 135M
6.6 tokens/s by default vs 24.3 passive with one competing process on 2 cores). So before
llama.cpp loads, OMP_WAIT_POLICY is set to PASSIVE unless the environment already chose one
(SLAM_OMP_WAIT_POLICY=library keeps libgomp's own default).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from typing import Any

from core.env import environment

log = logging.getLogger("slam.llama_cpp")
_callback: Any = None  # keep a reference: ctypes callbacks must outlive their registration


def configure_openmp() -> None:
    """Set OMP_WAIT_POLICY=PASSIVE for llama.cpp's OpenMP threads, before the library loads.

    An OMP_WAIT_POLICY already in the environment wins, and SLAM_OMP_WAIT_POLICY=library
    leaves libgomp's default. libgomp reads its environment once, when it loads: after
    llama_cpp is imported this can no longer change anything (a debug line says so)."""
    if (environment().slam_omp_wait_policy or "").lower() == "library":
        return
    # OMP_WAIT_POLICY is libgomp's own variable: it reads os.environ when it loads, so set it there
    if "OMP_WAIT_POLICY" in os.environ:
        return
    if "llama_cpp" in sys.modules:
        log.debug("llama_cpp is already loaded: OMP_WAIT_POLICY=PASSIVE would come too late")
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def route_llama_logs() -> None:
    """Install the callback once per process."""
    global _callback
    if _callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def _cb(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        # Never let an exception escape into ctypes (it would print a traceback and drop it).
        try:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s", text.decode("utf-8", errors="replace").rstrip())
        except Exception:
            return

    llama_cpp.llama_log_set(_cb, ctypes.c_void_p(0))
    _callback = _cb
