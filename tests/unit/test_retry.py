"""retry_call and the matrix's predicates: bounds, budgets per error type, Retry-After, jitter."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from parjanya.config import RetryConfig
from parjanya.providers.base import (
    AuthError,
    BadRequest,
    CircuitOpen,
    ConnectFailed,
    ContentFiltered,
    ContextTooLong,
    DeploymentDisabled,
    InternalError,
    LocalRateLimited,
    MalformedResponse,
    ProviderTimeout,
    RateLimited,
    ServerError,
)
from parjanya.resilience.retry import (
    RetryDetails,
    backoff_delay,
    budgeted_retry_on,
    default_retry_on,
    is_testing,
    max_wait,
    retry_after_delay,
    retry_call,
    set_testing,
)

POLICY = RetryConfig(max_attempts=3, backoff_s=0.2, max_backoff_s=5.0)


class Flaky:
    """Fails with `error` the first `failures` times, then returns "done"."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def retry(call: Flaky, retry_on: Callable[[Exception], Any], **kwargs: Any) -> Any:
    return asyncio.run(retry_call(call, policy=POLICY, retry_on=retry_on, **kwargs))


def test_retry_succeeds_within_the_bound() -> None:
    call, sleeps = Flaky(2, ServerError("boom", deployment="d")), Sleeps()
    assert retry(call, lambda e: True, sleep=sleeps) == "done"
    assert call.calls == 3
    assert len(sleeps.delays) == 2


def test_retries_are_bounded_by_max_attempts() -> None:
    call = Flaky(99, ServerError("boom", deployment="d"))
    with pytest.raises(ServerError), set_testing():
        retry(call, lambda e: True)
    assert call.calls == POLICY.max_attempts


@pytest.mark.parametrize("answer", [False, None])
def test_no_retry_when_predicate_declines(answer: bool | None) -> None:
    call = Flaky(1, AuthError("no", deployment="d"))
    with pytest.raises(AuthError):
        retry(call, lambda e: answer, sleep=Sleeps())
    assert call.calls == 1


def test_a_float_answer_is_the_delay_capped_by_policy() -> None:
    call, sleeps = Flaky(2, RateLimited("slow down", deployment="d")), Sleeps()
    answers = iter([1.5, 60.0])
    retry(call, lambda e: next(answers), sleep=sleeps)
    assert sleeps.delays == [1.5, max_wait(POLICY)]


def test_max_wait_is_the_longer_of_backoff_and_retry_after_caps() -> None:
    assert max_wait(RetryConfig(max_backoff_s=2.0, max_retry_after_s=30.0)) == 30.0
    assert max_wait(RetryConfig(max_backoff_s=8.0, max_retry_after_s=3.0)) == 8.0


def test_retry_after_is_honoured_through_default_retry_on() -> None:
    limited = RateLimited("429", deployment="d", retry_after=2.5)
    call, sleeps, seen = Flaky(1, limited), Sleeps(), list[RetryDetails]()
    retry(call, default_retry_on, sleep=sleeps, on_retry=seen.append)
    assert sleeps.delays == [2.5]
    assert seen == [RetryDetails(attempt=1, delay_s=2.5, error=limited)]


def test_backoff_is_exponential_full_jitter_and_capped() -> None:
    assert [backoff_delay(POLICY, n, rand=lambda: 1.0) for n in (1, 2, 3, 6, 10)] == [
        0.2,
        0.4,
        0.8,
        5.0,
        5.0,
    ]
    assert backoff_delay(POLICY, 3, rand=lambda: 0.0) == 0.0
    rng = random.Random(7)
    assert all(0 <= backoff_delay(POLICY, 4, rand=rng.random) <= 1.6 for _ in range(200))


def test_set_testing_removes_sleeps_and_restores() -> None:
    assert not is_testing()
    with set_testing():
        assert is_testing()
        sleeps = Sleeps()
        retry(Flaky(2, ServerError("x", deployment="d")), lambda e: 3.0, sleep=sleeps)
        assert sleeps.delays == []
    assert not is_testing()
    set_testing(True)
    set_testing(False)
    assert not is_testing()


def test_cancellation_is_never_retried() -> None:
    call = Flaky(5, asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        retry(call, lambda e: True, sleep=Sleeps())
    assert call.calls == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RateLimited("", deployment="d", retry_after=4.0), 4.0),
        (RateLimited("", deployment="d"), True),
        (ProviderTimeout("", deployment="d"), True),
        (ServerError("", deployment="d", status=503), True),
        (MalformedResponse("", deployment="d"), True),
        (ConnectFailed("", deployment="d"), True),
        (AuthError("", deployment="d"), False),
        (BadRequest("", deployment="d"), False),
        (ContextTooLong("", deployment="d"), False),
        (ContentFiltered("", deployment="d"), False),
        (InternalError("", deployment="d"), False),
        (CircuitOpen("", deployment="d"), False),
        (LocalRateLimited("", deployment="d", wait_s=0.1), False),
        (DeploymentDisabled("", deployment="d"), False),
        (RuntimeError("bug"), False),
    ],
)
def test_default_retry_on(error: Exception, expected: float | bool) -> None:
    assert default_retry_on(error) == expected


# --- budgeted_retry_on: the matrix's per-deployment predicate ---------------------------------


def decisions(policy: RetryConfig, errors: list[Exception]) -> list[float | bool | None]:
    retry_on = budgeted_retry_on(policy, rand=lambda: 0.5)
    return [retry_on(error) for error in errors]


def test_budget_per_error_type_counts_failures_of_that_type() -> None:
    policy = RetryConfig(max_attempts=10, budgets={"timeout": 3, "server_error": 1})
    timeout = ProviderTimeout("slow", deployment="d")
    assert decisions(policy, [timeout, timeout, timeout]) == [True, True, False]
    assert decisions(policy, [ServerError("x", deployment="d")]) == [False]


def test_budget_is_one_try_when_the_type_is_missing_from_the_config() -> None:
    policy = RetryConfig(max_attempts=10, budgets={})
    assert decisions(policy, [ConnectFailed("reset", deployment="d")]) == [False]


def test_budgets_are_counted_separately_per_type() -> None:
    policy = RetryConfig(max_attempts=10, budgets={"timeout": 2, "connect_failed": 2})
    timeout, reset = ProviderTimeout("", deployment="d"), ConnectFailed("", deployment="d")
    assert decisions(policy, [timeout, reset, timeout]) == [True, True, False]


@pytest.mark.parametrize(
    "error",
    [
        AuthError("", deployment="d"),
        BadRequest("", deployment="d"),
        ContextTooLong("", deployment="d"),
        ContentFiltered("", deployment="d"),
        InternalError("", deployment="d"),
        CircuitOpen("", deployment="d"),
        LocalRateLimited("", deployment="d", wait_s=0.01),
        DeploymentDisabled("", deployment="d"),
        RuntimeError("bug"),
    ],
)
def test_never_retried_whatever_the_budget(error: Exception) -> None:
    budgets = {t: 9 for t in ("auth_error", "bad_request", "internal", "circuit_open")}
    assert decisions(RetryConfig(max_attempts=10, budgets=budgets), [error]) == [False]


def test_short_retry_after_is_honoured_with_jitter_on_top() -> None:
    policy = RetryConfig(backoff_s=0.2, max_retry_after_s=5.0)
    limited = RateLimited("429", deployment="d", retry_after=1.5)
    assert decisions(policy, [limited]) == [pytest.approx(1.5 + 0.5 * 0.2)]


def test_long_retry_after_gives_the_deployment_up_at_once() -> None:
    policy = RetryConfig(max_retry_after_s=5.0)
    assert decisions(policy, [RateLimited("429", deployment="d", retry_after=30.0)]) == [False]


def test_rate_limit_without_retry_after_backs_off() -> None:
    assert decisions(RetryConfig(), [RateLimited("429", deployment="d")]) == [True]


def test_retry_after_delay_never_waits_less_than_asked_nor_beyond_the_cap() -> None:
    policy = RetryConfig(backoff_s=0.2, max_backoff_s=1.0, max_retry_after_s=5.0)
    rng = random.Random(3)
    delays = [retry_after_delay(policy, 2.0, rand=rng.random) for _ in range(200)]
    assert all(2.0 <= d <= 2.2 for d in delays)
    assert len(set(delays)) > 1  # jittered
    assert retry_after_delay(policy, 5.0, rand=lambda: 1.0) == 5.0  # capped by max_wait
    assert retry_after_delay(policy, -1.0, rand=lambda: 0.0) == 0.0


def test_max_attempts_caps_a_generous_budget() -> None:
    policy = RetryConfig(max_attempts=2, budgets={"timeout": 5})
    call = Flaky(99, ProviderTimeout("slow", deployment="d"))
    with pytest.raises(ProviderTimeout), set_testing():
        asyncio.run(retry_call(call, policy=policy, retry_on=budgeted_retry_on(policy)))
    assert call.calls == 2


def test_budget_caps_a_generous_max_attempts() -> None:
    policy = RetryConfig(max_attempts=10, budgets={"malformed_response": 3})
    call = Flaky(99, MalformedResponse("<html>", deployment="d"))
    with pytest.raises(MalformedResponse), set_testing():
        asyncio.run(retry_call(call, policy=policy, retry_on=budgeted_retry_on(policy)))
    assert call.calls == 3
