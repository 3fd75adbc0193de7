"""The tier chain's order, pinned: retry wraps the middlewares, so the breaker sees every try.

`worker/chain.py` lists the middlewares (cache → rate limit → breaker → tracking) and
`resilience/fallback.py` runs `retry_call` around `compose(middlewares, adapter)`. Docstrings said
the breaker sat outside retry; these tests hold the code and the docs (breaker.py, base.py,
docs/RELIABILITY.md) to the order that runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fakeredis import FakeAsyncRedis

from parjanya.config import BreakerConfig, ParjanyaConfig, RetryConfig
from parjanya.governance.budgets import SpendMiddleware
from parjanya.providers import ProviderTimeout
from parjanya.resilience import set_testing
from parjanya.resilience.breaker import BreakerMiddleware
from parjanya.resilience.breaker_store import MemoryBreakerStore
from parjanya.resilience.cache import CacheMiddleware
from parjanya.resilience.ratelimit import RateLimitMiddleware
from parjanya.resilience.track import TrackingMiddleware
from parjanya.worker.chain import build_chain
from tests.unit.tier_fakes import Scripted, dep, run


@pytest.fixture(autouse=True)
def _no_sleep() -> Iterator[None]:
    with set_testing():
        yield


def test_the_tier_chain_lists_cache_spend_rate_limit_breaker_tracking_and_no_retry() -> None:
    chain = build_chain(ParjanyaConfig(), "low", FakeAsyncRedis())
    assert [type(m) for m in chain.middlewares] == [
        CacheMiddleware,
        SpendMiddleware,
        RateLimitMiddleware,
        BreakerMiddleware,
        TrackingMiddleware,
    ]


def test_each_retried_try_is_one_outcome_for_the_breaker() -> None:
    """Two timeouts on one deployment (one try and its retry) open a breaker whose threshold is 2.

    Were the breaker outside retry, the deployment call with its retry would count once and the
    breaker would stay closed.
    """
    store = MemoryBreakerStore()
    breaker = BreakerMiddleware(store, BreakerConfig(failure_threshold=2))
    only = dep("only")
    providers = Scripted({"only": [ProviderTimeout("slow", deployment="only")]})
    result = run(
        [only],
        providers,
        retry=RetryConfig(max_attempts=3, budgets={"timeout": 2}),
        middlewares=[breaker],
    )
    assert not result.ok
    assert providers.calls["only"] == 2
    assert [a.error_type for a in result.attempts] == ["timeout", "timeout"]
    snapshot = asyncio.run(store.load("only"))
    assert snapshot.record.state == "open" and snapshot.record.failures == 2


def test_a_breaker_opened_by_a_try_refuses_the_retry() -> None:
    """Threshold 1: the first timeout opens it, and the retry of the same call is refused."""
    store = MemoryBreakerStore()
    breaker = BreakerMiddleware(store, BreakerConfig(failure_threshold=1))
    providers = Scripted({"only": [ProviderTimeout("slow", deployment="only")]})
    result = run(
        [dep("only")],
        providers,
        retry=RetryConfig(max_attempts=3, budgets={"timeout": 2}),
        middlewares=[breaker],
    )
    assert providers.calls["only"] == 1
    assert [a.error_type for a in result.attempts] == ["timeout", "circuit_open"]
    assert asyncio.run(store.load("only")).record.state == "open"


def test_call_ids_never_repeat_within_or_across_instances() -> None:
    from parjanya.resilience.base import CallIds

    one, other = CallIds(), CallIds()
    drawn = [one.new() for _ in range(1000)] + [other.new() for _ in range(1000)]
    assert len(set(drawn)) == 2000
