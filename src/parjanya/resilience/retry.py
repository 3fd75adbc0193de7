"""Retrying one call to one deployment, in the manner of stamina.

There is no default for what is retryable: the caller passes `retry_on`, a predicate that sees the
exception and answers False/None (give up now), True (retry after exponential backoff with full
jitter) or a number of seconds (retry after exactly that, e.g. a Retry-After header). Every wait is
capped by `max_wait` (the longer of `max_backoff_s` and `max_retry_after_s`) and the number of tries
by `RetryConfig.max_attempts`, so a retry loop can never outlive the task's time limit by more than
the policy allows.

The predicates here are built from the decision matrix (`matrix.py`): `default_retry_on` answers
for one error alone, `budgeted_retry_on` is the one a tier uses, made fresh for each deployment, and
also counts failures per error type against `RetryConfig.budgets`. A 429 whose Retry-After is at
most `max_retry_after_s` waits that long plus a little jitter (so workers told the same instant do
not return together); a longer one gives the deployment up at once.

`set_testing()` removes all waits in the current context and the asyncio tasks started from it
(tests keep the attempt counts and the decisions, and lose only the time); `on_retry` still sees
every wait that would have happened. The switch is a context variable, not a module global, so
one test's switch never leaks into another thread's calls.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from parjanya.config import RetryConfig
from parjanya.providers.base import RateLimited
from parjanya.resilience.matrix import Action, budget, error_type_of, rule_for

__all__ = [
    "OnRetry",
    "RetryDetails",
    "RetryOn",
    "backoff_delay",
    "budgeted_retry_on",
    "default_retry_on",
    "is_testing",
    "max_wait",
    "retry_after_delay",
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


_testing: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "parjanya_retry_testing", default=False
)


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
        _testing.set(self._previous)


def set_testing(testing: bool = True) -> _Restore:
    """Turn waits off (or back on). Call it, or use it as `with set_testing(): ...`."""
    previous = _testing.get()
    _testing.set(testing)
    return _Restore(previous)


def is_testing() -> bool:
    return _testing.get()


def backoff_delay(
    policy: RetryConfig, attempt: int, *, rand: Callable[[], float] = random.random
) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))].

    Jitter over the whole range (not around the exponential value) spreads the workers that all
    saw the same outage, so they do not return in lockstep and knock the provider over again.
    """
    ceiling = min(policy.max_backoff_s, policy.backoff_s * 2.0 ** (attempt - 1))
    return rand() * ceiling


def retry_after_delay(
    policy: RetryConfig, retry_after: float, *, rand: Callable[[], float] = random.random
) -> float:
    """At least what the server asked for, plus up to `backoff_s` of jitter, within `max_wait`."""
    return min(max(0.0, retry_after) + rand() * policy.backoff_s, max_wait(policy))


def max_wait(policy: RetryConfig) -> float:
    """The longest single wait the policy allows: a backoff or an honoured Retry-After."""
    return max(policy.max_backoff_s, policy.max_retry_after_s)


def _delay_for(decision: float | bool | None, policy: RetryConfig, attempt: int) -> float | None:
    if decision is None or decision is False:
        return None
    if decision is True:
        return backoff_delay(policy, attempt)
    return min(max(0.0, float(decision)), max_wait(policy))


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
            if delay > 0 and not _testing.get():
                await sleep(delay)


def default_retry_on(exc: Exception) -> float | bool:
    """The matrix's answer for one error, ignoring budgets: a rate limit with Retry-After waits
    exactly that (capped by the policy), other retrying actions back off, the rest never retry."""
    if not rule_for(exc).action.retries:
        return False
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return exc.retry_after
    return True


def budgeted_retry_on(policy: RetryConfig, *, rand: Callable[[], float] = random.random) -> RetryOn:
    """The predicate for one deployment of one tier call (make a fresh one per deployment).

    It counts the failures of each error type; the deployment is retried while that count is
    below `budget(policy, error_type)`. Refusals, auth errors, bad requests and the like are never
    retried (see `matrix.MATRIX`), and a Retry-After longer than `max_retry_after_s` gives up.
    """
    failures: dict[str, int] = {}

    def retry_on(exc: Exception) -> float | bool:
        rule = rule_for(exc)
        if not rule.action.retries:
            return False
        error_type = error_type_of(exc)
        failures[error_type] = failures.get(error_type, 0) + 1
        if failures[error_type] >= budget(policy, error_type):
            return False
        if rule.action is Action.WAIT_RETRY_AFTER and isinstance(exc, RateLimited):
            if exc.retry_after is None:
                return True
            if exc.retry_after > policy.max_retry_after_s:
                return False
            return retry_after_delay(policy, exc.retry_after, rand=rand)
        return True

    return retry_on
