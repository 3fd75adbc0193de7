"""Live per-deployment stats shared by every worker: calls in flight and EWMA latency.

The balancers read these (`least_busy`, `lowest_latency`, `round_robin`'s shared counter); the
`TrackingMiddleware` writes them around each deployment call and reports the provider metrics.

In-flight counts are leases, not bare counters. Each call adds its own id to a sorted set scored by
a deadline (now + lease) and removes it when it ends; a count is the number of ids whose deadline is
still ahead. A worker killed mid-call (kill -9, OOM, lost host) never removes its ids, so they stop
counting once their lease runs out instead of inflating the count forever, which a plain INCR/DECR
would do. The lease defaults to twice the deployment's timeout plus a margin: long enough to cover a
retried call, short enough that a dead worker's calls decay within minutes. A call that outlives its
lease is simply no longer counted, which only makes `least_busy` a little optimistic about it.
Deadlines use each host's wall clock (NTP keeps hosts within far less than a lease of each other).

Latency is an exponentially weighted moving average per deployment, `ewma += alpha * (x - ewma)`,
updated in one Lua script so concurrent workers never lose an update. Only successful calls are
sampled (a failing deployment is the breaker's business, and a timeout is not a latency). The entry
expires after `latency_ttl_s` without a sample, so a deployment that `lowest_latency` has stopped
choosing loses its old number and is measured again.

`MemoryTrackStore` is the in-process twin for unit tests; `RedisTrackStore` is the shared one.
Redis keys (built in `parjanya.keys`): `track:inflight:<deployment>` (sorted set),
`track:latency:<deployment>` (hash: ewma, samples), `balance:rr:<group>` (counter).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis

from parjanya import keys, metrics
from parjanya.config import Deployment
from parjanya.connect import async_redis_client
from parjanya.providers.base import ChatRequest, ChatResponse, ProviderError, Refused
from parjanya.queues import Tier
from parjanya.resilience.base import CallIds, Next

__all__ = [
    "DEFAULT_ALPHA",
    "LEASE_MARGIN_S",
    "MemoryTrackStore",
    "RedisTrackStore",
    "TrackStore",
    "TrackingMiddleware",
    "default_lease_s",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

DEFAULT_ALPHA = 0.3  # weight of the newest sample: about the last 6 calls dominate
DEFAULT_LATENCY_TTL_S = 1800  # forget a deployment's latency after this long without a sample
ROTATION_TTL_S = 86_400  # an unused round-robin counter goes away after a day
LEASE_MARGIN_S = 30.0


class TrackStore(Protocol):
    """Where live stats live. Every method is one round trip at most."""

    async def begin(self, deployment: str, call_id: str, lease_s: float) -> None:
        """Count `call_id` as in flight on `deployment` for at most `lease_s` seconds."""

    async def end(self, deployment: str, call_id: str) -> None:
        """Stop counting `call_id` (a no-op if its lease already ran out)."""

    async def inflight(self, deployments: Sequence[str]) -> dict[str, int]:
        """Live calls per deployment, every worker and host included."""

    async def observe_latency(self, deployment: str, seconds: float) -> float:
        """Fold one sample into the deployment's EWMA and return the new value."""

    async def latency(self, deployments: Sequence[str]) -> dict[str, float | None]:
        """EWMA latency per deployment in seconds; None where there is no recent sample."""

    async def rotate(self, group: str) -> int:
        """Advance the group's shared round-robin counter; the first call returns 1."""


def _ewma(old: float | None, sample: float, alpha: float) -> float:
    return sample if old is None else old + alpha * (sample - old)


def _check_alpha(alpha: float) -> float:
    if not 0 < alpha <= 1:
        raise ValueError(f"EWMA alpha must be in (0, 1], not {alpha}")
    return alpha


class MemoryTrackStore:
    """One process's stats, same semantics as Redis (leases, expiry); `clock` is injectable."""

    def __init__(
        self,
        *,
        alpha: float = DEFAULT_ALPHA,
        latency_ttl_s: float = DEFAULT_LATENCY_TTL_S,
        clock: Clock = time.time,
    ) -> None:
        self.alpha = _check_alpha(alpha)
        self.latency_ttl_s = latency_ttl_s
        self.clock = clock
        self._calls: dict[str, dict[str, float]] = {}  # deployment -> call id -> deadline
        self._latency: dict[str, tuple[float, float]] = {}  # deployment -> (ewma, expires at)
        self._turns: dict[str, int] = {}
        self._swept_at = float("-inf")

    async def begin(self, deployment: str, call_id: str, lease_s: float) -> None:
        now = self.clock()
        calls = self._calls.setdefault(deployment, {})
        # Calls end in a `finally`, so expired leases are rare here; sweeping on every call cost
        # O(calls in flight) per call, so sweep once a second.
        if now >= self._swept_at + 1.0:
            self._swept_at = now
            for expired in [c for c, deadline in calls.items() if deadline <= now]:
                del calls[expired]
        calls[call_id] = now + lease_s

    async def end(self, deployment: str, call_id: str) -> None:
        self._calls.get(deployment, {}).pop(call_id, None)

    async def inflight(self, deployments: Sequence[str]) -> dict[str, int]:
        now = self.clock()
        return {
            name: sum(1 for deadline in self._calls.get(name, {}).values() if deadline > now)
            for name in deployments
        }

    async def observe_latency(self, deployment: str, seconds: float) -> float:
        now = self.clock()
        old = self._current_latency(deployment, now)
        value = _ewma(old, seconds, self.alpha)
        self._latency[deployment] = (value, now + self.latency_ttl_s)
        return value

    async def latency(self, deployments: Sequence[str]) -> dict[str, float | None]:
        now = self.clock()
        return {name: self._current_latency(name, now) for name in deployments}

    async def rotate(self, group: str) -> int:
        self._turns[group] = self._turns.get(group, 0) + 1
        return self._turns[group]

    def _current_latency(self, deployment: str, now: float) -> float | None:
        entry = self._latency.get(deployment)
        return entry[0] if entry is not None and entry[1] > now else None


# KEYS: in-flight sorted set. ARGV: call id, now, deadline, lease in ms.
# Drops expired leases, adds this one, and keeps the key alive as long as its longest lease.
_BEGIN = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return redis.call('ZCARD', KEYS[1])
"""

# KEYS: latency hash. ARGV: sample seconds, alpha, ttl seconds.
# Returned as a string: Redis would truncate a Lua number reply to an integer.
_OBSERVE = """
local sample = tonumber(ARGV[1])
local ewma = sample
local old = redis.call('HGET', KEYS[1], 'ewma')
if old then
  local prev = tonumber(old)
  ewma = prev + tonumber(ARGV[2]) * (sample - prev)
end
local text = string.format('%.17g', ewma)
redis.call('HSET', KEYS[1], 'ewma', text)
redis.call('HINCRBY', KEYS[1], 'samples', 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return text
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisTrackStore:
    """Stats shared by every worker process and host through one Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        alpha: float = DEFAULT_ALPHA,
        latency_ttl_s: int = DEFAULT_LATENCY_TTL_S,
        clock: Clock = time.time,
    ) -> None:
        self.redis = client
        self.alpha = _check_alpha(alpha)
        self.latency_ttl_s = latency_ttl_s
        self.clock = clock
        self._begin = client.register_script(_BEGIN)
        self._observe = client.register_script(_OBSERVE)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisTrackStore:
        client = async_redis_client(url, socket_timeout=5)
        return cls(client, **kwargs)

    async def begin(self, deployment: str, call_id: str, lease_s: float) -> None:
        now = self.clock()
        await self._begin(
            keys=[keys.track_inflight(deployment)],
            args=[call_id, repr(now), repr(now + lease_s), max(1, int(lease_s * 1000))],
        )

    async def end(self, deployment: str, call_id: str) -> None:
        await self.redis.zrem(keys.track_inflight(deployment), call_id)

    async def inflight(self, deployments: Sequence[str]) -> dict[str, int]:
        now = f"({self.clock()!r}"  # exclusive: a lease ending right now no longer counts
        pipe = self.redis.pipeline(transaction=False)
        for name in deployments:
            pipe.zcount(keys.track_inflight(name), now, "+inf")
        counts = await pipe.execute()
        return {name: int(count) for name, count in zip(deployments, counts, strict=True)}

    async def observe_latency(self, deployment: str, seconds: float) -> float:
        reply = await self._observe(
            keys=[keys.track_latency(deployment)],
            args=[repr(float(seconds)), repr(self.alpha), self.latency_ttl_s],
        )
        return float(_text(reply))

    async def latency(self, deployments: Sequence[str]) -> dict[str, float | None]:
        pipe = self.redis.pipeline(transaction=False)
        for name in deployments:
            pipe.hget(keys.track_latency(name), "ewma")
        values = await pipe.execute()
        return {
            name: None if value is None else float(_text(value))
            for name, value in zip(deployments, values, strict=True)
        }

    async def rotate(self, group: str) -> int:
        key = keys.balance_rotation(group)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, ROTATION_TTL_S)
        turn, _ = await pipe.execute()
        return int(turn)


def default_lease_s(deployment: Deployment) -> float:
    """How long one call counts as in flight at most: a timed-out try, its retry, and a margin."""
    return 2 * deployment.timeout_s + LEASE_MARGIN_S


async def _quietly(step: Awaitable[object], what: str, deployment: str) -> None:
    """Stats are advisory: a store that is down must never fail or change the call itself."""
    try:
        await step
    except Exception:
        log.warning("track store: %s failed for %s", what, deployment, exc_info=True)


class TrackingMiddleware:
    """Counts a deployment call in flight, samples its latency, and reports provider metrics.

    `tier`, when given, also moves the process-local `parjanya_inflight_calls{tier}` gauge; the
    tier worker builds one middleware per tier, so it knows. Where it sits in the chain decides
    what one "call" is: inside retry, every HTTP try; outside it, one deployment's tries together
    (the latency then includes backoff, which is what the caller waited).
    """

    def __init__(
        self,
        store: TrackStore,
        *,
        tier: Tier | None = None,
        lease_s: Callable[[Deployment], float] = default_lease_s,
        clock: Clock = time.perf_counter,
    ) -> None:
        self.store = store
        self.tier = tier
        self.lease_s = lease_s
        self.clock = clock
        self._call_ids = CallIds()

    async def __call__(
        self, deployment: Deployment, request: ChatRequest, call_next: Next
    ) -> ChatResponse:
        name, call_id = deployment.name, self._call_ids.new()
        await _quietly(self.store.begin(name, call_id, self.lease_s(deployment)), "begin", name)
        gauge = metrics.INFLIGHT.labels(self.tier) if self.tier is not None else None
        if gauge is not None:
            gauge.inc()
        started = self.clock()
        try:
            response = await call_next(deployment, request)
        except ProviderError as exc:
            _count_failure(name, "refused" if isinstance(exc, Refused) else "error", exc.error_type)
            raise
        except Exception:
            _count_failure(name, "error", "internal")
            raise
        finally:
            if gauge is not None:
                gauge.dec()
            await _quietly(self.store.end(name, call_id), "end", name)
        elapsed = max(0.0, self.clock() - started)
        if response.cached:  # answered without a call: neither a sample nor a provider call
            metrics.PROVIDER_CALLS.labels(name, "cached").inc()
            return response
        metrics.PROVIDER_CALLS.labels(name, "ok").inc()
        metrics.PROVIDER_LATENCY.labels(name).observe(elapsed)
        await _quietly(self.store.observe_latency(name, elapsed), "observe_latency", name)
        return response


def _count_failure(deployment: str, outcome: str, error_type: str) -> None:
    metrics.PROVIDER_CALLS.labels(deployment, outcome).inc()
    metrics.PROVIDER_ERRORS.labels(deployment, error_type).inc()
