"""Retrying one call to one deployment, in the manner of stamina.

There is no default for what is retryable: the caller passes `retry_on`, a predicate that sees the
exception and answers False/None (give up now), True (retry after exponential backoff with full
jitter) or a number of seconds (retry after exactly that, e.g. a Retry-After header). Every wait is
capped by `RetryConfig.max_backoff_s` and the number of tries by `RetryConfig.max_attempts`, so a
retry loop can never outlive the task's time limit by more than the policy allows.

`default_retry_on` is that predicate built from the provider error taxonomy. `set_testing()` removes
all waits process-wide (tests keep the attempt counts and the decisions, and lose only the time).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from parjanya.config import RetryConfig
from parjanya.providers.base import (
    ConnectFailed,
    MalformedResponse,
    ProviderTimeout,
    RateLimited,
    ServerError,
)

__all__ = [
    "OnRetry",
    "RetryDetails",
    "RetryOn",
    "backoff_delay",
    "default_retry_on",
    "is_testing",
    "retry_call",
    "set_testing",
]

T = TypeVar("T")

#: False/None: do not retry. True: retry after backoff. A float: retry after that many seconds.
RetryOn = Callable[[Exception], float | bool | None]


@dataclass(frozen=True)
class RetryDetails:
    """Handed to an `on_retry` hook before each wait: metrics and logs subscribe to retries
    through it, so this module imports neither."""

    attempt: int  # the attempt that just failed, counting from 1
    delay_s: float  # the wait before the next attempt (skipped under set_testing)
    error: Exception


OnRetry = Callable[[RetryDetails], None]


class _Switch:
    testing = False


_switch = _Switch()


class _Restore:
    """Returned by `set_testing`; as a context manager it puts the previous setting back on exit."""

    def __init__(self, previous: bool) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _switch.testing = self._previous


def set_testing(testing: bool = True) -> _Restore:
    """Turn waits off (or back on). Call it, or use it as `with set_testing(): ...`."""
    previous, _switch.testing = _switch.testing, testing
    return _Restore(previous)


def is_testing() -> bool:
    return _switch.testing


def backoff_delay(
    policy: RetryConfig, attempt: int, *, rand: Callable[[], float] = random.random
) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))].

    Jitter over the whole range (not around the exponential value) spreads the workers that all
    saw the same outage, so they do not return in lockstep and knock the provider over again.
    """
    ceiling = min(policy.max_backoff_s, policy.backoff_s * 2.0 ** (attempt - 1))
    return rand() * ceiling


def _delay_for(decision: float | bool | None, policy: RetryConfig, attempt: int) -> float | None:
    if decision is None or decision is False:
        return None
    if decision is True:
        return backoff_delay(policy, attempt)
    return min(max(0.0, float(decision)), policy.max_backoff_s)


async def retry_call(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryConfig,
    retry_on: RetryOn,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    on_retry: OnRetry | None = None,
) -> T:
    """Await `call()` up to `policy.max_attempts` times; re-raise the last error when done.

    Only `Exception`s are considered: cancellation and KeyboardInterrupt pass straight through.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as exc:
            delay = _delay_for(retry_on(exc), policy, attempt)
            if delay is None or attempt >= policy.max_attempts:
                raise
            if on_retry is not None:
                on_retry(RetryDetails(attempt=attempt, delay_s=delay, error=exc))
            if delay > 0 and not _switch.testing:
                await sleep(delay)


#: Errors a second try can fix. Everything else (auth, bad request, context too long, filtered,
#: internal) would fail the same way again, so it goes straight to the next deployment.
_TRANSIENT: tuple[type[Exception], ...] = (
    RateLimited,
    ProviderTimeout,
    ServerError,
    MalformedResponse,
    ConnectFailed,
)


def default_retry_on(exc: Exception) -> float | bool:
    """The taxonomy's answer: a rate limit with Retry-After waits exactly that (capped)."""
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return exc.retry_after
    return isinstance(exc, _TRANSIENT)
