"""Who is calling: the auth mode is chosen once, when the app starts, and every route asks it.

`KeyAccess` (`api.auth: keys`) wants `Authorization: Bearer <key>`; the key's tenant becomes the
caller's, so a task's tenant comes from the key and never from the body, and a read, wait or
cancel of another tenant's task is a 404 (`Caller.owns`). Each key has a request rate shared by
every API process: the project's GCRA limiter in Redis, one atomic round trip; over it is a 429
with `Retry-After`. A key found in the store is kept for `api.key_cache_s`, so a revoked key stops
working within that and a request costs no lookup in between.

The limiter's round trip was the largest single cost of `POST /v1/tasks` (a fifth of the route's
time under `bench/api.py`), so a process takes a key's permits from the shared budget a few at a
time (`_chunk`: a tenth of the key's burst, at most `MAX_CHUNK`) and spends them locally; a key
whose burst is one request still asks Redis every time, so it is exact. What this costs: a process
may hold a few permits it has paid for and not used yet (dropped after `api.key_cache_s`), so
every minute still admits no more than the key's rate plus its burst, across all processes.

`OpenAccess` (`api.auth: off`) lets anyone in as the anonymous caller: local development only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol

from parjanya.api.errors import ApiError
from parjanya.config import ApiConfig
from parjanya.resilience.gcra import Demand, Limit
from parjanya.resilience.ratelimit_store import RateLimitStore
from parjanya.schema import TaskRequest, TaskResult
from parjanya.store.apikeys import ApiKey, ApiKeyStore

__all__ = ["MAX_CHUNK", "Access", "Caller", "KeyAccess", "OpenAccess", "access_for"]

#: The most permits one process takes from a key's shared budget in one round trip.
MAX_CHUNK = 64


def _chunk(limit: Limit) -> int:
    """Permits to take at once: a tenth of the burst, so no process can hoard a key's budget."""
    return max(1, min(MAX_CHUNK, int(0.1 * limit.tolerance_s / limit.interval_s)))


@dataclass(frozen=True)
class Caller:
    """Who is calling. `tenant=None`: anonymous (only with `api.auth: off`)."""

    tenant: str | None = None
    key_id: str | None = None

    def stamp(self, request: TaskRequest) -> TaskRequest:
        """The task's tenant comes from the caller when it has one, never from the body."""
        if self.tenant is None:
            return request
        return request.model_copy(update={"tenant": self.tenant})

    def owns(self, result: TaskResult) -> bool:
        return self.tenant is None or result.tenant == self.tenant


class Access(Protocol):
    async def caller(self, token: str | None) -> Caller:
        """The caller this bearer token proves, or an `ApiError` (401, 429)."""
        ...


class OpenAccess:
    async def caller(self, token: str | None) -> Caller:
        return Caller()


def unauthorized(message: str, *, error: str = "invalid_token") -> ApiError:
    # RFC 6750: the challenge names the scheme; `error` only once a token was presented.
    challenge = 'Bearer realm="parjanya"'
    if error != "missing_token":
        challenge += f', error="{error}"'
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


@dataclass
class KeyAccess:
    keys: ApiKeyStore
    limiter: RateLimitStore
    rate_per_minute: int
    burst_s: float
    cache_s: float
    _cache: dict[str, tuple[float, ApiKey | None]] = field(default_factory=dict)
    #: Per key id: permits paid for and not spent yet, and until when they may be spent.
    _permits: dict[str, tuple[int, float]] = field(default_factory=dict)

    async def caller(self, token: str | None) -> Caller:
        if not token:
            raise unauthorized(
                "send an API key as 'Authorization: Bearer <key>' (parjanya keys create)",
                error="missing_token",
            )
        record = await self._lookup(token)
        if record is None:
            raise unauthorized("the API key is not valid (unknown or revoked)")
        await self._admit(record)
        return Caller(tenant=record.tenant, key_id=record.id)

    async def _lookup(self, key: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await self.keys.lookup(key)
        if record is not None and self.cache_s > 0:  # an unknown key is asked again every time
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self.cache_s, record)
        return record

    async def _admit(self, record: ApiKey) -> None:
        now = time.monotonic()
        left, until = self._permits.get(record.id, (0, 0.0))
        if left > 0 and until > now:
            self._permits[record.id] = (left - 1, until)
            return
        limit = Limit("rpm", record.rate_per_minute or self.rate_per_minute, self.burst_s)
        name, chunk = f"apikey:{record.id}", _chunk(limit)
        reservation = await self.limiter.reserve(name, [Demand(limit, chunk)], 0.0)
        if not reservation.allowed and chunk > 1:  # what is left of the budget, one at a time
            chunk = 1
            reservation = await self.limiter.reserve(name, [Demand(limit, 1)], 0.0)
        if not reservation.allowed:
            retry_after = max(1, math.ceil(reservation.wait_s))
            raise ApiError(
                429,
                "rate_limited",
                f"API key {record.id} is over its rate of {limit.per_minute} requests a minute; "
                f"retry in {retry_after}s",
                headers={"Retry-After": str(retry_after)},
            )
        if len(self._permits) > 10_000:
            self._permits.clear()
        self._permits[record.id] = (chunk - 1, now + max(self.cache_s, 1.0))


def access_for(config: ApiConfig, keys: ApiKeyStore, limiter: RateLimitStore) -> Access:
    """The one place the auth mode is decided."""
    if config.auth == "off":
        return OpenAccess()
    return KeyAccess(
        keys,
        limiter,
        rate_per_minute=config.key_rate_per_minute,
        burst_s=config.key_burst_s,
        cache_s=config.key_cache_s,
    )
