"""call_tier over HTTP (MockTransport) and fake providers: the fallback chain of one tier.

Per-row behaviour of the decision matrix is in test_matrix.py, context windows and truncation in
test_context_fit.py, the retry predicate in test_retry.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

import httpx
import pytest
from fakeredis import FakeAsyncRedis
from prometheus_client import REGISTRY

from parjanya import keys
from parjanya.config import Deployment, RetryConfig
from parjanya.providers import (
    AuthError,
    BadRequest,
    ChatRequest,
    ChatResponse,
    ContentFiltered,
    InternalError,
    Provider,
    ProviderError,
    ProviderTimeout,
    ServerError,
    build_provider,
)
from parjanya.providers.base import CircuitOpen, DeploymentDisabled, LocalRateLimited
from parjanya.resilience import RetryDetails, TierCall, call_tier, set_testing
from parjanya.resilience.base import Next
from parjanya.resilience.disabled import (
    DisabledDeployments,
    MemoryDisabledDeployments,
    RedisDisabledDeployments,
)
from parjanya.schema import Attempt, ChatMessage
from tests.unit.tier_fakes import Refuse, Scripted, answer, dep, run

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
        **{"context_window": 8_000, **extra},
    )


PRIMARY, SECONDARY, TERTIARY = (
    deployment("primary"),
    deployment("secondary"),
    deployment("tertiary"),
)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


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


# --- call_tier ---------------------------------------------------------------------------------


def test_primary_success_needs_one_attempt(no_sleep: None) -> None:
    result, calls = run_tier({"primary": [OK], "secondary": [OK]})
    assert result.ok
    assert result.deployment == PRIMARY
    assert calls == {"primary": 1}
    assert [a.outcome for a in result.attempts] == ["ok"]
    assert result.errors == []


def test_dead_primary_falls_back_to_secondary_after_exactly_one_5xx(no_sleep: None) -> None:
    result, calls = run_tier({"primary": [status(500)], "secondary": [OK]})

    assert result.response is not None and result.response.text == "hello"
    assert result.deployment == SECONDARY
    assert calls == {"primary": 1, "secondary": 1}  # server_error's budget is 1 try
    assert [type(e) for e in result.errors] == [ServerError]
    assert [(a.deployment, a.outcome, a.error_type) for a in result.attempts] == [
        ("primary", "error", "server_error"),
        ("secondary", "ok", None),
    ]
    assert not result.cached and result.truncation is None


def test_attempt_history_contents(no_sleep: None) -> None:
    result, _ = run_tier({"primary": [status(503)], "secondary": [OK]})
    failed, succeeded = result.attempts

    assert failed.hop == succeeded.hop == 2
    assert failed.stage == failed.tier == "mid"
    assert failed.model == "primary-model"
    assert failed.error is not None and "503" in failed.error
    assert (failed.tokens_in, failed.tokens_out, failed.cost_usd) == (0, 0, 0.0)

    assert succeeded.model == "served-model"
    assert succeeded.error is None and succeeded.error_type is None
    assert (succeeded.tokens_in, succeeded.tokens_out) == (100, 50)
    assert succeeded.cost_usd == pytest.approx(SECONDARY.cost_usd(100, 50)) == (100 + 200) / 1e6
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
    wider = deployment("secondary", context_window=32_000)  # a larger window, for context_too_long
    result, calls = run_tier({"primary": [response], "secondary": [OK]}, [PRIMARY, wider])
    assert calls == {"primary": 1, "secondary": 1}
    assert result.attempts[0].error_type == error_type
    assert result.deployment == wider


def test_rate_limit_retry_after_is_used_then_succeeds() -> None:
    seen: list[RetryDetails] = []
    limited = status(429, headers={"Retry-After": "1.5"})
    with set_testing():
        result, calls = run_tier({"primary": [limited, OK]}, on_retry=seen.append)
    assert result.deployment == PRIMARY
    assert calls == {"primary": 2}
    assert len(seen) == 1
    assert 1.5 <= seen[0].delay_s <= 1.5 + POLICY.backoff_s  # what was asked, plus jitter
    assert result.attempts[0].error_type == "rate_limited"


def test_rate_limit_with_a_long_retry_after_moves_on_without_waiting() -> None:
    seen: list[RetryDetails] = []
    limited = status(429, headers={"Retry-After": "30"})
    with set_testing():
        result, calls = run_tier({"primary": [limited], "secondary": [OK]}, on_retry=seen.append)
    assert seen == []
    assert calls == {"primary": 1, "secondary": 1}
    assert result.deployment == SECONDARY


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
    assert calls == {"primary": 1, "secondary": 2, "tertiary": 1}
    assert [e.error_type for e in result.errors] == [
        "server_error",
        "malformed_response",
        "malformed_response",
        "auth_error",
    ]
    assert result.last_error is result.errors[-1]
    assert len(result.attempts) == 4
    assert not result.cached


def test_timeout_is_retried_exactly_once_then_falls_back(no_sleep: None) -> None:
    def handler_error(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    policy = RetryConfig(max_attempts=5)  # the timeout budget (2 tries) decides, not the cap
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


def no_adapter(deployment: Deployment) -> Provider:
    raise NotImplementedError(f"no adapter for provider {deployment.provider!r}")


def test_unexpected_exceptions_are_wrapped_recorded_and_never_escape(no_sleep: None) -> None:
    other = deployment("claude", provider="anthropic")
    factories: dict[str, Callable[[Deployment], Provider]] = {
        "primary": Exploding,
        "claude": no_adapter,
        "secondary": Fixed,
    }

    result = asyncio.run(
        call_tier(
            [PRIMARY, other, SECONDARY],
            REQUEST,
            providers=lambda d: factories[d.name](d),
            retry=POLICY,
            hop=1,
            tier="high",
        )
    )
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
    result, _ = run_tier({"primary": [status(500)], "secondary": [OK]}, on_attempt=seen.append)
    assert seen == result.attempts

    def broken(attempt: Attempt) -> None:
        raise RuntimeError("metrics down")

    result, _ = run_tier({"primary": [OK]}, on_attempt=broken)
    assert result.ok


def test_api_key_is_sent_but_never_recorded(
    no_sleep: None, caplog: pytest.LogCaptureFixture
) -> None:
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
    assert len(result.attempts) == 2
    assert "ALERT" in caplog.text and KEY not in caplog.text
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


# --- the chain with fake providers (tier_fakes) -----------------------------------------------


def disabled_total(name: str) -> float:
    value = REGISTRY.get_sample_value("parjanya_deployment_disabled_total", {"deployment": name})
    return value or 0.0


def test_auth_error_disables_alerts_and_the_next_call_skips_without_calling(
    no_sleep: None, caplog: pytest.LogCaptureFixture
) -> None:
    keyless, backup = dep("keyless"), dep("backup")
    providers = Scripted({"keyless": [AuthError("HTTP 401: bad key", deployment="keyless")]})
    store = MemoryDisabledDeployments(ttl_s=600)
    before = disabled_total("keyless")

    first = run([keyless, backup], providers, disabled=store)
    assert first.deployment == backup
    assert providers.calls == {"keyless": 1, "backup": 1}  # never retried
    assert asyncio.run(store.reason("keyless")) == "HTTP 401: bad key"
    assert disabled_total("keyless") == before + 1
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR and "ALERT" in r.message]
    assert len(alerts) == 1 and "keyless" in alerts[0].message

    second = run([keyless, backup], providers, disabled=store)
    assert providers.calls == {"keyless": 1, "backup": 2}  # skipped: no call
    skip = second.attempts[0]
    assert (skip.deployment, skip.outcome, skip.error_type) == (
        "keyless",
        "error",
        "deployment_disabled",
    )
    assert (skip.tokens_in, skip.tokens_out, skip.cost_usd) == (0, 0, 0.0)
    assert "bad key" in (skip.error or "")
    assert isinstance(second.errors[0], DeploymentDisabled)

    assert asyncio.run(store.clear("keyless")) is True  # the manual clear
    run([keyless, backup], providers, disabled=store)
    assert providers.calls["keyless"] == 2


def test_a_disabled_store_that_is_down_fails_open(no_sleep: None) -> None:
    class Down:
        async def reason(self, deployment: str) -> str | None:
            raise ConnectionError("redis down")

        async def disable(self, deployment: str, reason: str) -> None:
            raise ConnectionError("redis down")

        async def clear(self, deployment: str) -> bool:
            raise ConnectionError("redis down")

    providers = Scripted({"a": [AuthError("401", deployment="a")]})
    result = run([dep("a"), dep("b")], providers, disabled=Down())
    assert result.deployment is not None and result.deployment.name == "b"
    assert providers.calls == {"a": 1, "b": 1}


def test_content_filtered_skips_the_same_provider_host_and_tries_others(no_sleep: None) -> None:
    first, sibling, elsewhere = dep("first", host="vendor"), dep("sibling", host="vendor"), dep("c")
    providers = Scripted({"first": [ContentFiltered("filtered", deployment="first")]})

    result = run([first, sibling, elsewhere], providers)

    assert result.deployment == elsewhere
    assert providers.calls == {"first": 1, "c": 1}
    assert [(a.deployment, a.outcome, a.error_type) for a in result.attempts] == [
        ("first", "error", "content_filtered"),
        ("sibling", "error", "content_filtered"),  # skipped, recorded
        ("c", "ok", None),
    ]
    assert "first" in (result.attempts[1].error or "")


def test_another_vendor_on_the_same_host_is_another_provider(no_sleep: None) -> None:
    first, gateway = dep("first", host="gw"), dep("gateway", host="gw", provider="anthropic")
    providers = Scripted({"first": [ContentFiltered("filtered", deployment="first")]})
    result = run([first, gateway], providers)
    assert result.deployment == gateway


def test_all_failing_with_a_stale_answer_returns_it_as_cached(no_sleep: None) -> None:
    primary, secondary = dep("primary"), dep("secondary")
    down = ServerError("HTTP 503", deployment="x", status=503)
    providers = Scripted({"primary": [down], "secondary": [down]})
    asked: list[ChatRequest] = []

    async def stale(request: ChatRequest) -> ChatResponse | None:
        asked.append(request)
        return answer("secondary", "from yesterday")

    result = run([primary, secondary], providers, stale_lookup=stale)

    assert asked == [REQUEST]
    assert result.ok and result.cached
    assert result.response is not None and result.response.text == "from yesterday"
    assert result.response.cached
    assert result.deployment == secondary
    cached = result.attempts[-1]
    assert (cached.outcome, cached.deployment, cached.error_type) == ("cached", "secondary", None)
    assert (cached.tokens_in, cached.tokens_out, cached.cost_usd) == (0, 0, 0.0)
    assert [a.outcome for a in result.attempts] == ["error", "error", "cached"]


@pytest.mark.parametrize("found", ["nothing", "broken"])
def test_no_stale_answer_returns_the_failure(no_sleep: None, found: str) -> None:
    async def stale(request: ChatRequest) -> ChatResponse | None:
        if found == "broken":
            raise ConnectionError("cache down")
        return None

    providers = Scripted({"a": [BadRequest("no", deployment="a")]})
    result = run([dep("a")], providers, stale_lookup=stale)
    assert not result.ok and not result.cached
    assert [a.outcome for a in result.attempts] == ["error"]


def test_stale_cache_is_not_asked_when_a_deployment_answers(no_sleep: None) -> None:
    async def stale(request: ChatRequest) -> ChatResponse | None:
        raise AssertionError("must not be asked")

    assert run([dep("a")], Scripted(), stale_lookup=stale).ok


@pytest.mark.parametrize(
    "refusal",
    [
        CircuitOpen("breaker open", deployment="primary"),
        LocalRateLimited("no rpm left", deployment="primary", wait_s=20.0),
        DeploymentDisabled("disabled", deployment="primary"),
    ],
    ids=lambda e: e.error_type,
)
def test_middleware_refusal_moves_on_at_once_without_sleeping(refusal: ProviderError) -> None:
    primary, secondary = dep("primary"), dep("secondary")
    providers, guard = Scripted(), Refuse(refusal, ["primary"])
    seen: list[RetryDetails] = []
    slow = RetryConfig(backoff_s=30.0, max_backoff_s=30.0, max_retry_after_s=30.0)

    with set_testing(False):
        started = time.monotonic()
        result = run(
            [primary, secondary], providers, retry=slow, middlewares=[guard], on_retry=seen.append
        )
        assert time.monotonic() - started < 5

    assert seen == []
    assert result.deployment == secondary
    assert providers.calls == {"secondary": 1}  # no HTTP call to the refused deployment
    assert guard.passes == {"primary": 1, "secondary": 1}
    refused = result.attempts[0]
    assert (refused.deployment, refused.error_type) == ("primary", refusal.error_type)
    assert (refused.tokens_in, refused.cost_usd) == (0, 0.0)


def test_retry_wraps_the_middleware_chain_so_each_try_passes_through_it(no_sleep: None) -> None:
    providers = Scripted({"a": [ProviderTimeout("slow", deployment="a"), answer("a")]})
    counter = Refuse(CircuitOpen("unused", deployment="-"), names=[])
    result = run([dep("a")], providers, middlewares=[counter])
    assert counter.passes == {"a": 2}
    assert [a.outcome for a in result.attempts] == ["error", "ok"]


def test_a_breaker_opening_between_tries_stops_the_retry(no_sleep: None) -> None:
    class OpensAfterOneFailure:
        def __init__(self) -> None:
            self.failed = False

        async def __call__(
            self, deployment: Deployment, request: ChatRequest, call_next: Next
        ) -> ChatResponse:
            if self.failed:
                raise CircuitOpen("open", deployment=deployment.name)
            try:
                return await call_next(deployment, request)
            except ProviderError:
                self.failed = True
                raise

    providers = Scripted({"a": [ProviderTimeout("slow", deployment="a")]})
    result = run([dep("a"), dep("b")], providers, middlewares=[OpensAfterOneFailure()])
    assert [(a.deployment, a.error_type) for a in result.attempts] == [
        ("a", "timeout"),
        ("a", "circuit_open"),  # the retry was refused, not sent
        ("b", "circuit_open"),  # this toy breaker is shared by all deployments
    ]
    assert providers.calls == {"a": 1}


def test_budgets_come_from_the_config(no_sleep: None) -> None:
    down = ServerError("HTTP 502", deployment="a", status=502)
    providers = Scripted({"a": [down]})
    seen: list[RetryDetails] = []
    policy = RetryConfig(max_attempts=5, budgets={"server_error": 3})
    result = run([dep("a"), dep("b")], providers, retry=policy, on_retry=seen.append)
    assert providers.calls == {"a": 3, "b": 1}
    assert [d.attempt for d in seen] == [1, 2]
    assert result.deployment is not None and result.deployment.name == "b"


def test_max_attempts_stays_a_global_cap_per_deployment(no_sleep: None) -> None:
    slow = ProviderTimeout("slow", deployment="a")
    providers = Scripted({"a": [slow]})
    policy = RetryConfig(max_attempts=3, budgets={"timeout": 10})
    run([dep("a"), dep("b")], providers, retry=policy)
    assert providers.calls == {"a": 3, "b": 1}


def test_the_balancer_orders_the_chain(no_sleep: None) -> None:
    class Reverse:
        async def order(
            self, deployments: Sequence[Deployment], request: ChatRequest
        ) -> list[Deployment]:
            return list(reversed(deployments))

    a, b = dep("a"), dep("b")
    providers = Scripted({"b": [ServerError("down", deployment="b")]})
    result = run([a, b], providers, balancer=Reverse())
    assert [x.deployment for x in result.attempts] == ["b", "a"]


def test_a_broken_balancer_falls_back_to_the_configured_order(no_sleep: None) -> None:
    class Broken:
        async def order(
            self, deployments: Sequence[Deployment], request: ChatRequest
        ) -> list[Deployment]:
            raise RuntimeError("stats unavailable")

    result = run([dep("a"), dep("b")], Scripted(), balancer=Broken())
    assert result.deployment is not None and result.deployment.name == "a"


def test_a_fresh_cache_hit_in_the_chain_is_recorded_as_cached_and_free(no_sleep: None) -> None:
    class Hit:
        async def __call__(
            self, deployment: Deployment, request: ChatRequest, call_next: Next
        ) -> ChatResponse:
            return answer(deployment.name, "remembered", cached=True)

    providers = Scripted()
    result = run([dep("a")], providers, middlewares=[Hit()])
    assert providers.calls == {}
    assert result.cached and result.response is not None and result.response.cached
    [attempt] = result.attempts
    assert (attempt.outcome, attempt.tokens_in, attempt.cost_usd) == ("cached", 0, 0.0)


def test_every_non_ok_attempt_has_its_error_in_order(no_sleep: None) -> None:
    providers = Scripted(
        {
            "a": [ContentFiltered("no", deployment="a")],
            "c": [ProviderTimeout("slow", deployment="c")],
        }
    )
    result = run([dep("a", host="h"), dep("b", host="h"), dep("c")], providers)
    failed = [a for a in result.attempts if a.outcome == "error"]
    assert [a.error_type for a in failed] == [e.error_type for e in result.errors]
    assert [a.error for a in failed] == [str(e) for e in result.errors]
    assert not result.ok


# --- the disabled-deployments store, over both implementations ---------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_disabled_store_disable_reason_clear(kind: str) -> None:
    async def go() -> None:
        store: DisabledDeployments
        if kind == "memory":
            store = MemoryDisabledDeployments(ttl_s=60)
        else:
            store = RedisDisabledDeployments(FakeAsyncRedis(), ttl_s=60)
        assert await store.reason("d") is None
        await store.disable("d", "HTTP 401")
        assert await store.reason("d") == "HTTP 401"
        assert await store.reason("other") is None
        assert await store.clear("d") is True
        assert await store.clear("d") is False
        assert await store.reason("d") is None

    asyncio.run(go())


def test_memory_disabled_store_expires_after_its_ttl() -> None:
    clock = Clock()
    store = MemoryDisabledDeployments(ttl_s=600, clock=clock)

    async def go() -> None:
        await store.disable("d", "401")
        clock.now += 599
        assert await store.reason("d") == "401"
        clock.now += 1
        assert await store.reason("d") is None

    asyncio.run(go())


def test_redis_disabled_store_sets_a_ttl_on_the_shared_key() -> None:
    async def go() -> None:
        client = FakeAsyncRedis()
        await RedisDisabledDeployments(client, ttl_s=600).disable("d", "401")
        ttl_ms = await client.pttl(keys.disabled_deployment("d"))
        assert 599_000 < ttl_ms <= 600_000

    asyncio.run(go())
