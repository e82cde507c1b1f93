"""Wait until an Ollama server answers `/api/tags` and lists every model it must serve."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from core.errors import SlamError


def canonical(name: str) -> str:
    """Ollama lists 'llama3.2' as 'llama3.2:latest'; compare names with the tag made explicit."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def missing_models(endpoint: str, models: list[str], timeout_s: float = 10.0) -> list[str]:
    """The models `endpoint` does not list yet (raises httpx errors when it does not answer)."""
    resp = httpx.get(f"{endpoint.rstrip('/')}/api/tags", timeout=timeout_s)
    resp.raise_for_status()
    listed = set()
    for entry in resp.json().get("models") or []:
        for key in ("name", "model"):
            if entry.get(key):
                listed.add(canonical(str(entry[key])))
    return [m for m in models if canonical(m) not in listed]


def wait_for_ollama(
    endpoint: str,
    models: list[str],
    *,
    timeout_s: float,
    poll_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll until Ollama at `endpoint` serves all `models`; SlamError after `timeout_s`.

    Always tries at least once, so a zero timeout means "check now".
    """
    deadline = clock() + timeout_s
    attempts = 0
    while True:
        attempts += 1
        try:
            missing = missing_models(endpoint, models, timeout_s=max(1.0, min(10.0, timeout_s)))
            if not missing:
                return
            problem = f"it answers but has not pulled {missing} yet"
        except httpx.HTTPStatusError as exc:
            problem = f"/api/tags returned HTTP {exc.response.status_code}"
        except (httpx.HTTPError, ValueError) as exc:
            problem = f"no answer ({type(exc).__name__}: {exc})"
        if clock() + poll_s >= deadline:
            raise SlamError(
                f"Ollama at {endpoint} was not ready after {timeout_s:g}s ({attempts} attempts):"
                f" {problem}. Check that the security group allows TCP {_port(endpoint)} from"
                " this machine, and read /var/log/slam-userdata.log on the host; raise"
                " [aws].ready_timeout_s if model pulls are just slow."
            )
        sleep(poll_s)


def _port(endpoint: str) -> str:
    return str(httpx.URL(endpoint).port or 11434)
