"""retry_call and call_tier: bounded retries, Retry-After, fallback order, the attempt history."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

import httpx
import pytest

from parjanya.config import Deployment, RetryConfig
from parjanya.providers import (
    AuthError,
    BadRequest,
    ChatRequest,
    ChatResponse,
    ConnectFailed,
    ContentFiltered,
    ContextTooLong,
    InternalError,
    MalformedResponse,
    Provider,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ServerError,
    build_provider,
)
from parjanya.resilience import (
    RetryDetails,
    TierCall,
    backoff_delay,
    call_tier,
    default_retry_on,
    is_testing,
    retry_call,
    set_testing,
)
from parjanya.schema import Attempt, ChatMessage

KEY_ENV = "PARJANYA_TEST_FALLBACK_KEY"
KEY = "sk-fallback-SECRET0123456789"
REQUEST = ChatRequest(messages=[ChatMessage(role="user", content="hi")], max_tokens=16)
POLICY = RetryConfig(max_attempts=3, backoff_s=0.2, max_backoff_s=5.0)


def deployment(name: str, **extra: Any) -> Deployment:
    return Deployment(
        name=name,
        base_url=f"http://{name}.test/v1",
        model=f"{name}-model",
        api_key_env=KEY_ENV,
        price_in_per_mtok=1.0,
        price_out_per_mtok=4.0,
        context_window=8_000,
        **extra,
    )


PRIMARY, SECONDARY, TERTIARY = (
    deployment("primary"),
    deployment("secondary"),
    deployment("tertiary"),
)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture
def no_sleep() -> Iterator[None]:
    with set_testing():
        yield


def ok_body(text: str = "hello") -> dict[str, Any]:
    return {
        "id": "c1",
        "model": "served-model",
        "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50},
    }


Script = dict[str, list[httpx.Response]]


def run_tier(
    script: Script,
    deployments: list[Deployment] | None = None,
    *,
    policy: RetryConfig = POLICY,
    **kwargs: Any,
) -> tuple[TierCall, dict[str, int]]:
    """Each host answers from its script in order (the last response repeats)."""
    calls: dict[str, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host.removesuffix(".test")
        calls[host] = calls.get(host, 0) + 1
        responses = script[host]
        canned = responses[min(calls[host], len(responses)) - 1]
        return httpx.Response(canned.status_code, headers=canned.headers, content=canned.content)

    async def go() -> TierCall:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await call_tier(
                deployments or [PRIMARY, SECONDARY],
                REQUEST,
                providers=lambda d: build_provider(d, client),
                retry=policy,
                hop=2,
                tier="mid",
                **kwargs,
            )

    return asyncio.run(go()), calls


def status(code: int, **kwargs: Any) -> httpx.Response:
    return httpx.Response(code, json={"error": {"message": f"status {code}"}}, **kwargs)


OK = httpx.Response(200, json=ok_body())


# --- retry_call --------------------------------------------------------------------------------


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
    assert sleeps.delays == [1.5, POLICY.max_backoff_s]


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
        (RuntimeError("bug"), False),
    ],
)
def test_default_retry_on(error: Exception, expected: float | bool) -> None:
    assert default_retry_on(error) == expected


# --- call_tier ---------------------------------------------------------------------------------


def test_primary_success_needs_one_attempt(no_sleep: None) -> None:
    result, calls = run_tier({"primary": [OK], "secondary": [OK]})
    assert result.ok
    assert result.deployment == PRIMARY
    assert calls == {"primary": 1}
    assert [a.outcome for a in result.attempts] == ["ok"]
    assert result.errors == []


def test_falls_back_to_secondary_after_primary_5xx(no_sleep: None) -> None:
    result, calls = run_tier({"primary": [status(500)], "secondary": [OK]})

    assert result.response is not None and result.response.text == "hello"
    assert result.deployment == SECONDARY
    assert calls == {"primary": POLICY.max_attempts, "secondary": 1}
    assert [type(e) for e in result.errors] == [ServerError] * POLICY.max_attempts
    assert [(a.deployment, a.outcome, a.error_type) for a in result.attempts] == [
        ("primary", "error", "server_error"),
        ("primary", "error", "server_error"),
        ("primary", "error", "server_error"),
        ("secondary", "ok", None),
    ]


def test_attempt_history_contents(no_sleep: None) -> None:
    result, _ = run_tier({"primary": [status(503), OK]})
    failed, succeeded = result.attempts

    assert failed.hop == succeeded.hop == 2
    assert failed.stage == failed.tier == "mid"
    assert failed.model == "primary-model"
    assert failed.error is not None and "503" in failed.error
    assert (failed.tokens_in, failed.tokens_out, failed.cost_usd) == (0, 0, 0.0)

    assert succeeded.model == "served-model"
    assert succeeded.error is None and succeeded.error_type is None
    assert (succeeded.tokens_in, succeeded.tokens_out) == (100, 50)
    assert succeeded.cost_usd == pytest.approx(PRIMARY.cost_usd(100, 50)) == (100 + 200) / 1e6
    for attempt in result.attempts:
        assert attempt.started_at.tzinfo == UTC
        assert attempt.started_at <= attempt.finished_at
    assert failed.finished_at <= succeeded.started_at


@pytest.mark.parametrize(
    ("response", "error_type"),
    [
        (status(401), "auth_error"),
        (status(403), "auth_error"),
        (status(422), "bad_request"),
        (
            httpx.Response(400, json={"error": {"message": "", "code": "context_length_exceeded"}}),
            "context_too_long",
        ),
    ],
)
def test_non_retryable_error_moves_on_at_once(
    no_sleep: None, response: httpx.Response, error_type: str
) -> None:
    result, calls = run_tier({"primary": [response], "secondary": [OK]})
    assert calls == {"primary": 1, "secondary": 1}
    assert result.attempts[0].error_type == error_type
    assert result.deployment == SECONDARY


def test_rate_limit_retry_after_is_used_then_succeeds() -> None:
    seen: list[RetryDetails] = []
    limited = status(429, headers={"Retry-After": "1.5"})
    with set_testing():
        result, calls = run_tier({"primary": [limited, OK]}, on_retry=seen.append)
    assert result.deployment == PRIMARY
    assert calls == {"primary": 2}
    assert [d.delay_s for d in seen] == [1.5]
    assert result.attempts[0].error_type == "rate_limited"


def test_all_deployments_failing_returns_history_without_raising(no_sleep: None) -> None:
    policy = RetryConfig(max_attempts=2)
    script: Script = {
        "primary": [status(500)],
        "secondary": [httpx.Response(200, text="<html>")],
        "tertiary": [status(401)],
    }
    result, calls = run_tier(script, [PRIMARY, SECONDARY, TERTIARY], policy=policy)

    assert not result.ok
    assert result.response is None and result.deployment is None
    assert calls == {"primary": 2, "secondary": 2, "tertiary": 1}
    assert [e.error_type for e in result.errors] == [
        "server_error",
        "server_error",
        "malformed_response",
        "malformed_response",
        "auth_error",
    ]
    assert result.last_error is result.errors[-1]
    assert len(result.attempts) == 5


def test_timeout_is_retried_once_then_falls_back(no_sleep: None) -> None:
    def handler_error(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    policy = RetryConfig(max_attempts=2)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        return OK if request.url.host == "secondary.test" else handler_error(request)

    async def go() -> TierCall:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await call_tier(
                [PRIMARY, SECONDARY],
                REQUEST,
                providers=lambda d: build_provider(d, client),
                retry=policy,
                hop=0,
                tier="low",
            )

    result = asyncio.run(go())
    assert calls == ["primary.test", "primary.test", "secondary.test"]
    assert [a.error_type for a in result.attempts] == ["timeout", "timeout", None]


class Exploding:
    """A provider with a bug: raises something outside the taxonomy."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    async def chat(self, request: ChatRequest) -> ChatResponse:
        raise ZeroDivisionError("division by zero")


class Fixed:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return ChatResponse(text="fine", model="m", deployment=self.deployment.name)


def test_unexpected_exceptions_are_wrapped_recorded_and_never_escape(no_sleep: None) -> None:
    anthropic = deployment("claude", provider="anthropic")

    async def go() -> TierCall:
        async with httpx.AsyncClient() as client:
            factories: dict[str, Callable[[Deployment], Provider]] = {
                "primary": Exploding,
                "claude": lambda d: build_provider(d, client),  # no adapter yet
                "secondary": Fixed,
            }
            return await call_tier(
                [PRIMARY, anthropic, SECONDARY],
                REQUEST,
                providers=lambda d: factories[d.name](d),
                retry=POLICY,
                hop=1,
                tier="high",
            )

    result = asyncio.run(go())
    assert result.deployment == SECONDARY
    assert [(a.deployment, a.error_type) for a in result.attempts] == [
        ("primary", "internal"),
        ("claude", "internal"),
        ("secondary", None),
    ]
    assert all(isinstance(e, InternalError) for e in result.errors)
    assert "ZeroDivisionError" in (result.attempts[0].error or "")
    assert "anthropic" in (result.attempts[1].error or "")


def test_on_attempt_sees_every_attempt_and_a_broken_hook_is_harmless(no_sleep: None) -> None:
    seen: list[Attempt] = []
    result, _ = run_tier({"primary": [status(500), OK]}, on_attempt=seen.append)
    assert seen == result.attempts

    def broken(attempt: Attempt) -> None:
        raise RuntimeError("metrics down")

    result, _ = run_tier({"primary": [OK]}, on_attempt=broken)
    assert result.ok


def test_api_key_is_sent_but_never_recorded(no_sleep: None) -> None:
    sent: list[str] = []
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["authorization"])
        if request.url.host == "primary.test":
            return httpx.Response(401, json=echo)
        return httpx.Response(500, text=f"debug: Authorization: Bearer {KEY}")

    async def go() -> TierCall:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await call_tier(
                [PRIMARY, SECONDARY],
                REQUEST,
                providers=lambda d: build_provider(d, client),
                retry=POLICY,
                hop=0,
                tier="low",
            )

    result = asyncio.run(go())
    assert sent and all(header == f"Bearer {KEY}" for header in sent)
    assert len(result.attempts) == 1 + POLICY.max_attempts
    for attempt in result.attempts:
        assert KEY not in attempt.model_dump_json()
    for error in result.errors:
        assert KEY not in str(error) and KEY not in repr(error)
    assert KEY not in repr(result)


def test_provider_error_in_history_is_the_exception_message(no_sleep: None) -> None:
    result, _ = run_tier({"primary": [status(400)], "secondary": [OK]})
    error: ProviderError = result.errors[0]
    assert result.attempts[0].error == str(error)
    assert result.attempts[0].error_type == error.error_type == "bad_request"
