"""The tier call, assembled in one visible place: which pieces, in which order, sharing what.

    fallback over filter → balancer.order(deployments)   skip disabled, larger window, truncation,
      └─ retry (per error type budgets)                   stale cache as the last step
           └─ cache → spend → rate limit → breaker → tracking → provider adapter (HTTP)

The filter stage drops deployments the task may not use (governance/capabilities.py); spend
refuses a call the task's budget cannot cover and charges every paid answer to its tenant
(governance/budgets.py).

Shared state (breakers, rate limits, live stats, cache, disabled deployments) lives in the store's
Redis, so every worker process and host sees the same breaker and spends the same rpm/tpm budget.
One async Redis client with a bounded, blocking pool serves them all: hundreds of calls in flight
share a few dozen connections instead of opening one each (redis-py's MaxConnectionsError).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from parjanya.config import BalanceStrategy, ParjanyaConfig, TierConfig
from parjanya.connect import async_redis_client
from parjanya.governance.budgets import SpendLedger, SpendMiddleware
from parjanya.governance.capabilities import FilterStage
from parjanya.providers import ChatRequest, ChatResponse
from parjanya.queues import Tier
from parjanya.resilience.balance import make_balancer
from parjanya.resilience.base import Balancer, CallMiddleware
from parjanya.resilience.breaker import BreakerMiddleware
from parjanya.resilience.breaker_metrics import record_transition
from parjanya.resilience.breaker_store import RedisBreakerStore
from parjanya.resilience.breaker_view import BreakerView
from parjanya.resilience.cache import CacheMiddleware, RedisCacheStore
from parjanya.resilience.disabled import (
    DisabledDeployments,
    RecheckedDisabledDeployments,
    RedisDisabledDeployments,
)
from parjanya.resilience.ratelimit import RateLimitCapacity, RateLimitMiddleware
from parjanya.resilience.ratelimit_store import RedisRateLimitStore
from parjanya.resilience.track import MemoryTrackStore, RedisTrackStore, TrackingMiddleware

#: Balancers that read live stats shared across workers; others get a process-local track store.
_NEEDS_SHARED_STATS: frozenset[BalanceStrategy] = frozenset(
    {"round_robin", "least_busy", "lowest_latency", "scored"}
)

StaleLookup = Callable[[ChatRequest], Awaitable[ChatResponse | None]]


def shared_redis(url: str, max_connections: int = 64) -> aioredis.Redis:
    return async_redis_client(
        url, socket_timeout=None, socket_connect_timeout=None, max_connections=max_connections
    )


@dataclass(frozen=True)
class TierChain:
    middlewares: list[CallMiddleware]
    balancer: Balancer
    disabled: DisabledDeployments
    stale_lookup: StaleLookup | None


def build_chain(config: ParjanyaConfig, tier: Tier, client: aioredis.Redis) -> TierChain:
    tier_config: TierConfig = config.tiers[tier]
    tracks = (
        RedisTrackStore(client)
        if tier_config.balance in _NEEDS_SHARED_STATS
        else MemoryTrackStore()
    )
    limiter = RateLimitMiddleware(
        RedisRateLimitStore(client),
        config.rate_limit.max_wait_s,
        burst_s=config.rate_limit.burst_s,
        headroom=config.rate_limit.headroom,
    )
    breakers = RedisBreakerStore(client)
    cache = CacheMiddleware(RedisCacheStore(client), config.cache) if config.cache.enabled else None
    spend = SpendMiddleware(
        SpendLedger(config.governance.budgets, aio=client),
        tier,
        config.tiers["high"].deployments[0],
        config.routing.expected_output_tokens,
    )
    middlewares: list[CallMiddleware] = [
        *([cache] if cache else []),
        spend,
        limiter,
        BreakerMiddleware(
            BreakerView(breakers, breakers.watch, recheck_s=config.breaker.recheck_s),
            config.breaker,
            listeners=[record_transition],
        ),
        TrackingMiddleware(tracks, tier=tier),
    ]
    balancer = FilterStage(
        make_balancer(
            tier_config.balance,
            stats=tracks,
            capacity=RateLimitCapacity(limiter),
            matching=config.governance.matching,
        )
    )
    return TierChain(
        middlewares=middlewares,
        balancer=balancer,
        disabled=RecheckedDisabledDeployments(
            RedisDisabledDeployments(client, config.auth_disable.ttl_s),
            config.auth_disable.recheck_s,
        ),
        stale_lookup=cache.stale_lookup if cache else None,
    )
