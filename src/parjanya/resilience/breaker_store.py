"""Where breaker state lives: an in-process store for tests, one Redis hash per deployment for a cluster.

The store decides nothing (`breaker_state` does); it offers three atomic primitives:

- `load`: the record and the store's clock.
- `count`: add one outcome to the counters (consecutive failures, failure-rate window), only if
  the record is still closed and still at the version the call was admitted under.
- `swap`: compare-and-set a whole record on its version (a transition or a probe claim); the
  store bumps the version and clears the window counters, so every state starts counting afresh.

The Redis store also announces on `keys.BREAKER_CHANGES` every write that other processes must not
miss (a swap, a failure counted), in the same script as the write; `watch` delivers them. That is
what lets each process keep a view in memory (`breaker_view`) instead of reading before each call.

Redis layout (`keys.breaker(deployment)`, a hash): `state`, `version`, `failures`, `opened_at`
and `probe_until` (unix seconds), `probe_id`, and the window buckets `c:<bucket>` (calls) and
`f:<bucket>` (failures). Every write refreshes a TTL (a day by default); an expired hash reads as a
closed breaker, which is what a breaker untouched for that long should be.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import redis.asyncio as aioredis

from parjanya import keys
from parjanya.connect import async_redis_client
from parjanya.resilience.breaker_state import (
    WINDOW_BUCKETS,
    BreakerRecord,
    Snapshot,
    State,
    bucket_of,
    bucket_width_us,
    window_totals,
)
from parjanya.resilience.lua import CLOCK, Clock, clock_arg, seconds

__all__ = ["DEFAULT_TTL_S", "BreakerStore", "MemoryBreakerStore", "RedisBreakerStore"]

DEFAULT_TTL_S = 86_400


class BreakerStore(Protocol):
    """Atomic primitives over one record per deployment; each is one round trip."""

    async def load(self, deployment: str, window_s: float = 0.0) -> Snapshot:
        """The record (a fresh closed one if none is stored) and the store's clock."""
        ...

    async def count(
        self, deployment: str, *, version: int, failed: bool, window_s: float
    ) -> Snapshot | None:
        """Count one outcome; None (nothing counted) unless closed at `version`.

        A failure adds one to `failures`, a success sets it to 0; with `window_s` > 0 the call is
        also added to the failure-rate window."""
        ...

    async def swap(self, deployment: str, *, version: int, record: BreakerRecord) -> bool:
        """Store `record` if the stored version is still `version`; False if someone wrote first."""
        ...


# --- in process ----------------------------------------------------------------------------------


@dataclass
class _Entry:
    record: BreakerRecord = field(default_factory=BreakerRecord)
    buckets: dict[int, tuple[int, int]] = field(default_factory=dict)


class MemoryBreakerStore:
    """One process's breakers. Each method yields to the loop first, like a network store would,
    so concurrent callers in a test interleave between their reads and their writes."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def _snapshot(self, entry: _Entry, window_s: float) -> Snapshot:
        now = self.clock()
        calls, failures = window_totals(entry.buckets, now, window_s)
        record = replace(entry.record, window_calls=calls, window_failures=failures)
        return Snapshot(record=record, now=now)

    async def load(self, deployment: str, window_s: float = 0.0) -> Snapshot:
        await asyncio.sleep(0)
        return self._snapshot(self._entries.get(deployment) or _Entry(), window_s)

    async def count(
        self, deployment: str, *, version: int, failed: bool, window_s: float
    ) -> Snapshot | None:
        await asyncio.sleep(0)
        entry = self._entries.setdefault(deployment, _Entry())
        if entry.record.version != version or entry.record.state != "closed":
            return None
        entry.record = replace(entry.record, failures=entry.record.failures + 1 if failed else 0)
        if window_s > 0:
            current = bucket_of(self.clock(), window_s)
            calls, failures = entry.buckets.get(current, (0, 0))
            entry.buckets[current] = (calls + 1, failures + int(failed))
            for index in [i for i in entry.buckets if i <= current - WINDOW_BUCKETS]:
                del entry.buckets[index]
        return self._snapshot(entry, window_s)

    async def swap(self, deployment: str, *, version: int, record: BreakerRecord) -> bool:
        await asyncio.sleep(0)
        entry = self._entries.setdefault(deployment, _Entry())
        if entry.record.version != version:
            return False
        entry.record = replace(record, version=version + 1, window_calls=0, window_failures=0)
        entry.buckets.clear()
        return True


# --- Redis ---------------------------------------------------------------------------------------

# KEYS: breaker hash. ARGV: now µs ('' = server clock).
_LOAD = (
    CLOCK
    + """
return {us(clock(ARGV[1])), redis.call('HGETALL', KEYS[1])}
"""
)

# KEYS: breaker hash. ARGV: now µs, admitted version, failed (1/0), bucket width µs (0 = no
# window), buckets per window, ttl ms, changes channel, deployment.
_COUNT = (
    CLOCK
    + """
local now = clock(ARGV[1])
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if version ~= tonumber(ARGV[2]) or state ~= 'closed' then return {0} end
local failed = ARGV[3] == '1'
if failed then
  redis.call('HINCRBY', KEYS[1], 'failures', 1)
  redis.call('PUBLISH', ARGV[7], ARGV[8])
else redis.call('HSET', KEYS[1], 'failures', 0) end
local width = tonumber(ARGV[4])
if width > 0 then
  local current = math.floor(now / width)
  redis.call('HINCRBY', KEYS[1], 'c:' .. us(current), 1)
  if failed then redis.call('HINCRBY', KEYS[1], 'f:' .. us(current), 1) end
  local oldest = current - tonumber(ARGV[5])
  for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
    local index = tonumber(string.match(name, '^[cf]:(%-?%d+)$'))
    if index and index <= oldest then redis.call('HDEL', KEYS[1], name) end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {1, us(now), redis.call('HGETALL', KEYS[1])}
"""
)

# KEYS: breaker hash. ARGV: expected version, ttl ms, state, failures, opened_at, probe_id,
# probe_until, changes channel, deployment.
_SWAP = """
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[1]) then return 0 end
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.match(name, '^[cf]:') then redis.call('HDEL', KEYS[1], name) end
end
redis.call('HSET', KEYS[1], 'version', string.format('%d', version + 1), 'state', ARGV[3],
  'failures', ARGV[4], 'opened_at', ARGV[5], 'probe_id', ARGV[6], 'probe_until', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[8], ARGV[9])
return 1
"""


class RedisBreakerStore:
    """Breakers shared by every worker process and host. `clock=None` uses the server's clock."""

    def __init__(
        self, client: aioredis.Redis, *, clock: Clock | None = None, ttl_s: int = DEFAULT_TTL_S
    ) -> None:
        self.redis = client
        self.clock = clock
        self.ttl_ms = ttl_s * 1000
        self._load = client.register_script(_LOAD)
        self._count = client.register_script(_COUNT)
        self._swap = client.register_script(_SWAP)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisBreakerStore:
        client = async_redis_client(url, socket_timeout=5)
        return cls(client, **kwargs)

    async def load(self, deployment: str, window_s: float = 0.0) -> Snapshot:
        now, flat = await self._load(keys=[keys.breaker(deployment)], args=[clock_arg(self.clock)])
        return _snapshot(flat, seconds(now), window_s)

    async def count(
        self, deployment: str, *, version: int, failed: bool, window_s: float
    ) -> Snapshot | None:
        width = bucket_width_us(window_s) if window_s > 0 else 0.0
        reply = await self._count(
            keys=[keys.breaker(deployment)],
            args=[
                clock_arg(self.clock),
                version,
                int(failed),
                repr(width),
                WINDOW_BUCKETS,
                self.ttl_ms,
                keys.BREAKER_CHANGES,
                deployment,
            ],
        )
        if int(reply[0]) == 0:
            return None
        return _snapshot(reply[2], seconds(reply[1]), window_s)

    async def swap(self, deployment: str, *, version: int, record: BreakerRecord) -> bool:
        reply = await self._swap(
            keys=[keys.breaker(deployment)],
            args=[
                version,
                self.ttl_ms,
                record.state,
                record.failures,
                "" if record.opened_at is None else repr(record.opened_at),
                record.probe_id,
                repr(record.probe_until),
                keys.BREAKER_CHANGES,
                deployment,
            ],
        )
        return int(reply) == 1

    async def watch(self, changed: Callable[[str], None], listening: Callable[[], None]) -> None:
        """Call `changed(deployment)` for every announced change, until the connection drops.

        `listening` is called once subscribed: from then on no change is missed.
        """
        async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(keys.BREAKER_CHANGES)
            listening()
            async for message in pubsub.listen():
                data = message.get("data")
                if isinstance(data, bytes | str):
                    changed(data.decode() if isinstance(data, bytes) else data)


_STATES: dict[str, State] = {"closed": "closed", "open": "open", "half_open": "half_open"}


def _snapshot(flat: list[bytes], now: float, window_s: float) -> Snapshot:
    """Parse an HGETALL reply (a flat list of names and values) into a record."""
    fields = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
    buckets: dict[int, tuple[int, int]] = {}
    for name, value in fields.items():
        kind, _, index = name.partition(":")
        if kind in ("c", "f") and index:
            calls, failures = buckets.get(int(index), (0, 0))
            if kind == "c":
                buckets[int(index)] = (calls + int(value), failures)
            else:
                buckets[int(index)] = (calls, failures + int(value))
    calls, failures = window_totals(buckets, now, window_s)
    opened_at = fields.get("opened_at", "")
    record = BreakerRecord(
        state=_STATES.get(fields.get("state", ""), "closed"),
        version=int(fields.get("version", "0")),
        failures=int(fields.get("failures", "0")),
        opened_at=float(opened_at) if opened_at else None,
        probe_id=fields.get("probe_id", ""),
        probe_until=float(fields.get("probe_until") or 0.0),
        window_calls=calls,
        window_failures=failures,
    )
    return Snapshot(record=record, now=now)
