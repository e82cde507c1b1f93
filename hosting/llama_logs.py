"""Route llama.cpp's own log lines into Python logging (DEBUG), so runs stay readable.

llama.cpp prints loader and quantizer chatter to stderr, some of it at ERROR level although
nothing is wrong (e.g. the SWA cache notice); real failures surface as Python exceptions.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

log = logging.getLogger("slam.llama_cpp")
_callback: Any = None  # keep a reference: ctypes callbacks must outlive their registration


def route_llama_logs() -> None:
    """Install the callback once per process."""
    global _callback
    if _callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def _cb(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", text.decode("utf-8", errors="replace").rstrip())

    llama_cpp.llama_log_set(_cb, ctypes.c_void_p(0))
    _callback = _cb
