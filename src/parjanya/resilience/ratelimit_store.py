"""Where rate-limit state lives: GCRA timestamps in process (tests) or in Redis (every worker).

The algorithm is `gcra`; a store only keeps one TAT per deployment and dimension and applies the
algorithm atomically. `MemoryRateLimitStore` calls `gcra` directly. `RedisRateLimitStore` runs the
same arithmetic in one Lua script per operation: a reservation is on the path of every model call,
so it must be one round trip, and rpm and tpm are decided together (both or neither).

Redis keys: `keys.rate_limit(deployment, "rpm" | "tpm")`, a string holding the TAT in integer
microseconds, expiring when the TAT passes (a missing key is a full budget).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis

from parjanya import keys
from parjanya.connect import async_redis_client
from parjanya.resilience import gcra
from parjanya.resilience.gcra import Demand, Limit
from parjanya.resilience.lua import CLOCK, Clock, clock_arg, seconds

__all__ = ["MemoryRateLimitStore", "RateLimitStore", "RedisRateLimitStore", "Reservation"]


@dataclass(frozen=True)
class Reservation:
    allowed: bool  # the slot is taken: wait `wait_s`, then call
    wait_s: float  # if refused: how long until the demand would be admitted at once


class RateLimitStore(Protocol):
    """Shared GCRA state; each method is one atomic round trip."""

    async def reserve(
        self, deployment: str, demands: Sequence[Demand], max_wait_s: float
    ) -> Reservation:
        """Take every demand's slot at one start time within `max_wait_s`, or none of them."""
        ...

    async def adjust(self, deployment: str, changes: Sequence[Demand]) -> None:
        """Spend more (units > 0) or refund (units < 0) after the call."""
        ...

    async def remaining(self, deployment: str, limits: Sequence[Limit]) -> list[float]:
        """Per limit, the units that could still start within the next minute."""
        ...


class MemoryRateLimitStore:
    """One process's limits, on an injectable clock."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._tats: dict[tuple[str, str], float] = {}

    async def reserve(
        self, deployment: str, demands: Sequence[Demand], max_wait_s: float
    ) -> Reservation:
        names = [(deployment, d.limit.dimension) for d in demands]
        decided = gcra.plan([self._tats.get(n) for n in names], demands, self.clock(), max_wait_s)
        if decided.allowed:
            self._tats.update(zip(names, decided.tats, strict=True))
        return Reservation(decided.allowed, decided.wait_s)

    async def adjust(self, deployment: str, changes: Sequence[Demand]) -> None:
        now = self.clock()
        for change in changes:
            name = (deployment, change.limit.dimension)
            self._tats[name] = gcra.adjust(self._tats.get(name), change, now)

    async def remaining(self, deployment: str, limits: Sequence[Limit]) -> list[float]:
        now = self.clock()
        return [gcra.remaining(self._tats.get((deployment, x.dimension)), x, now) for x in limits]


# KEYS: one TAT per dimension. ARGV: now µs ('' = server clock), max wait µs, then per key:
# interval µs, tolerance µs, units. Returns {admitted 1/0, wait µs}.
_RESERVE = (
    CLOCK
    + """
local now = clock(ARGV[1])
local start = now
local tats, costs = {}, {}
for i, key in ipairs(KEYS) do
  local interval, tolerance = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local cost = interval * tonumber(ARGV[3 * i + 2])
  local tat = tonumber(redis.call('GET', key)) or now
  local earliest
  if cost > tolerance then earliest = math.max(now, tat)
  else earliest = math.max(now, tat + cost - tolerance) end
  if earliest > start then start = earliest end
  tats[i], costs[i] = tat, cost
end
local wait = start - now
if wait > tonumber(ARGV[2]) then return {0, us(math.ceil(wait))} end
for i, key in ipairs(KEYS) do
  local tat = math.max(tats[i], start) + costs[i]
  redis.call('SET', key, us(tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
end
return {1, us(math.ceil(wait))}
"""
)

# KEYS: one TAT per dimension. ARGV: now µs, then per key: interval µs, units (< 0 refunds).
_ADJUST = (
    CLOCK
    + """
local now = clock(ARGV[1])
for i, key in ipairs(KEYS) do
  local delta = tonumber(ARGV[2 * i]) * tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key)) or now
  if delta >= 0 then tat = math.max(tat, now) + delta else tat = math.max(now, tat + delta) end
  if tat > now then
    redis.call('SET', key, us(tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
  else
    redis.call('DEL', key)
  end
end
return 1
"""
)

# KEYS: TATs. ARGV: now µs. Returns {now µs, tat µs or '' per key}. Writes nothing.
_PEEK = (
    CLOCK
    + """
local reply = {us(clock(ARGV[1]))}
for i, key in ipairs(KEYS) do reply[i + 1] = redis.call('GET', key) or '' end
return reply
"""
)


def _us(seconds_: float) -> str:
    return repr(seconds_ * 1e6)


class RedisRateLimitStore:
    """Limits shared by every worker process and host. `clock=None` uses the server's clock."""

    def __init__(self, client: aioredis.Redis, *, clock: Clock | None = None) -> None:
        self.redis = client
        self.clock = clock
        self._reserve = client.register_script(_RESERVE)
        self._adjust = client.register_script(_ADJUST)
        self._peek = client.register_script(_PEEK)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisRateLimitStore:
        client = async_redis_client(url, socket_timeout=5)
        return cls(client, **kwargs)

    async def reserve(
        self, deployment: str, demands: Sequence[Demand], max_wait_s: float
    ) -> Reservation:
        args: list[str | float] = [clock_arg(self.clock), _us(max_wait_s)]
        for d in demands:
            args += [_us(d.limit.interval_s), _us(d.limit.tolerance_s), repr(float(d.units))]
        admitted, wait = await self._reserve(
            keys=[keys.rate_limit(deployment, d.limit.dimension) for d in demands], args=args
        )
        return Reservation(int(admitted) == 1, seconds(wait))

    async def adjust(self, deployment: str, changes: Sequence[Demand]) -> None:
        args: list[str | float] = [clock_arg(self.clock)]
        for c in changes:
            args += [_us(c.limit.interval_s), repr(float(c.units))]
        await self._adjust(
            keys=[keys.rate_limit(deployment, c.limit.dimension) for c in changes], args=args
        )

    async def remaining(self, deployment: str, limits: Sequence[Limit]) -> list[float]:
        reply = await self._peek(
            keys=[keys.rate_limit(deployment, x.dimension) for x in limits],
            args=[clock_arg(self.clock)],
        )
        now = seconds(reply[0])
        return [
            gcra.remaining(seconds(tat) if tat else None, limit, now)
            for tat, limit in zip(reply[1:], limits, strict=True)
        ]
