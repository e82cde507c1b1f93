"""The one retry policy for network backends: exponential backoff with jitter on transient
failures (429, 5xx, connection errors), honouring the server's Retry-After.

The SDKs' own retries are switched off so this is the only policy, and every backend retries
the same way. Timeouts are not retried: a model too slow once is usually too slow again.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
SleepFn = Callable[[float], Awaitable[None]]


class Retryable(Exception):
    """A transient failure worth another attempt; `message` is the user-facing description."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.attempts = 1  # set by call_with_retries when it gives up

    def final_message(self) -> str:
        if self.attempts <= 1:
            return self.message
        return f"{self.message} (gave up after {self.attempts} attempts)"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait. `sleep` is injectable so tests never really sleep."""

    max_retries: int = 3
    base_s: float = 0.5
    max_wait_s: float = 30.0
    sleep: SleepFn = field(default=asyncio.sleep, compare=False)

    def wait_for(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt `attempt + 1`: Retry-After if given, else backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait_s)
        import random

        backoff = self.base_s * 2 ** (attempt - 1)
        # Full jitter spreads clients that failed together (e.g. a restarted server).
        return min(backoff + random.uniform(0, self.base_s), self.max_wait_s)


def is_retryable_status(status: int) -> bool:
    """429 (rate limited), 408 (request timeout) and 5xx (server trouble) are transient."""
    return status in (408, 429) or 500 <= status <= 599


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from `Retry-After` (delta-seconds or HTTP-date) or OpenAI's `retry-after-ms`."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def connection_refused(exc: BaseException) -> bool:
    """Whether a connection error was, somewhere down its cause chain, ECONNREFUSED."""
    seen: BaseException | None = exc
    for _ in range(8):  # cause chains are short; the bound guards against cycles
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == (
            errno.ECONNREFUSED
        ):
            return True
        if "connection refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def call_with_retries(attempt: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """Await `attempt()`, retrying on Retryable up to `policy.max_retries` times.

    Raises the last Retryable (with `.attempts` set) when the retries are used up; any other
    exception propagates at once.
    """
    # Fast path: most requests succeed first time, so tenacity is only set up after a failure.
    try:
        return await attempt()
    except Retryable as exc:
        if policy.max_retries <= 0:
            raise
        first = exc

    from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
    from tenacity.stop import stop_after_attempt

    def seconds_after(failed_attempt: int, exc: BaseException | None) -> float:
        retry_after = exc.retry_after if isinstance(exc, Retryable) else None
        seconds = policy.wait_for(failed_attempt, retry_after)
        log.info("attempt %d failed (%s); retrying in %.2fs", failed_attempt, exc, seconds)
        return seconds

    def wait(state: RetryCallState) -> float:
        # tenacity counts from the first retry; the fast-path attempt was number 1.
        exc = state.outcome.exception() if state.outcome else None
        return seconds_after(state.attempt_number + 1, exc)

    await policy.sleep(seconds_after(1, first))
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_retries),
        retry=retry_if_exception_type(Retryable),
        wait=wait,
        sleep=policy.sleep,
        reraise=True,
    )
    number = 0
    try:
        async for try_ in retrying:
            with try_:
                number = try_.retry_state.attempt_number
                return await attempt()
    except Retryable as exc:
        exc.attempts = number + 1  # + the fast-path attempt
        raise
    raise AssertionError("unreachable: tenacity either returns or reraises")
