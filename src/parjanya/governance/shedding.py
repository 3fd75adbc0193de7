"""Backpressure: past a queue's limits, new work is refused by class (batch first, critical last).

Every work queue has limits on its depth (all its class lists together) and on the age of its
oldest message (`admission.limits`, `admission.queue_limits`). The **load** is the fullest queue's
share of its limits, depth or age, whichever is higher. Class `c` is shed (its new submissions
refused with `Overloaded`, HTTP 503 with Retry-After) once the load reaches `shed_at[c]` (batch
0.6, standard 0.8, critical 1.0 by default), and admitted again only once it falls below
`shed_at[c] * resume_ratio`: hysteresis, so a queue hovering at a limit does not flap.

The queues are measured on the broker in use, through the `QueueDepths` the process was given
(`broker/depth.py`: Redis lists, or RabbitMQ's class queues, where the oldest message's age is not
available and the load is the depth's share alone). The state lives in one hash of the store's
Redis (`keys.SHEDDING`), shared by every producer (SDK processes, API processes) whatever the
broker: at most once per `check_interval_s`, whoever calls, one producer is told to measure
(`SHED_READ` marks the state fresh as it answers, so the others keep reading the previous flags
meanwhile), computes the load (`load_of`) and hands it to `SHED_APPLY`, which applies the
hysteresis to the shared flags and writes the new ones. A producer also keeps the answer for
`check_interval_s`, so a submission costs no extra round trip most of the time. A measurement
that fails (`DepthUnavailable`) is logged and the previous flags stand for another interval:
shedding protects the queues, and a broker that cannot be asked is no reason to refuse work.
Starts, stops and refusals are counted (`shed_started_<class>`, `shed_stopped_<class>`,
`shed_<class>` in `keys.COUNTERS`).

The load is the whole pipeline's (any work queue), because a producer does not know which tier a
task will be classified to: a saturated tier backs pressure up to every new submission of a class.

The script reads the queues' class lists beside its own hash and `keys.COUNTERS` (none of them a
store shard's key): those lists are the broker's, in no one hash slot, so shedding runs on a plain
Redis and not on a Redis Cluster store (README, Capacity).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from parjanya import keys
from parjanya.broker.depth import DepthUnavailable, QueueDepths, QueueReading
from parjanya.config import AdmissionConfig
from parjanya.queues import ALL_WORK_QUEUES, SlaClass

log = logging.getLogger("parjanya.shedding")

# KEYS: the shedding hash. ARGV: now, check interval.
# Returns the flags (batch, standard, critical), load, queue, and '1' when the caller is to measure
# (the state was stale: it is marked fresh now, so no one else measures this interval).
SHED_READ = """
local st = redis.call('HMGET', KEYS[1], 'at', 'batch', 'standard', 'critical', 'load', 'queue')
local now = tonumber(ARGV[1])
local at = tonumber(st[1])
local due = '0'
if not at or now - at >= tonumber(ARGV[2]) or now < at then
  due = '1'
  redis.call('HSET', KEYS[1], 'at', ARGV[1])
end
return {st[2] or '0', st[3] or '0', st[4] or '0', st[5] or '0', st[6] or '', due}
"""

# KEYS: the shedding hash, counters. ARGV: now, resume ratio, shed_at of batch, standard,
# critical, the load measured and its queue. Returns what SHED_READ returns, never due.
SHED_APPLY = """
local classes = {'batch', 'standard', 'critical'}
local st = redis.call('HMGET', KEYS[1], 'batch', 'standard', 'critical')
local worst = tonumber(ARGV[6])
local flags = {}
for k = 1, 3 do
  local was = st[k] == '1'
  local at = tonumber(ARGV[2 + k])
  local on = was
  if not was and worst >= at then
    on = true
    redis.call('HINCRBY', KEYS[2], 'shed_started_' .. classes[k], 1)
  elseif was and worst < at * tonumber(ARGV[2]) then
    on = false
    redis.call('HINCRBY', KEYS[2], 'shed_stopped_' .. classes[k], 1)
  end
  flags[k] = on and '1' or '0'
end
local load = string.format('%.4f', worst)
redis.call('HSET', KEYS[1], 'at', ARGV[1], 'batch', flags[1], 'standard', flags[2],
  'critical', flags[3], 'load', load, 'queue', ARGV[7])
return {flags[1], flags[2], flags[3], load, ARGV[7], '0'}
"""

_ORDER: tuple[SlaClass, ...] = ("batch", "standard", "critical")  # the script's flag order


class Overloaded(Exception):
    """New work of this SLA class is refused for now: retry after `retry_after_s` (HTTP 503)."""

    def __init__(self, sla: SlaClass, retry_after_s: float, queue: str, load: float) -> None:
        super().__init__(
            f"overloaded: {sla} work is refused while {queue or 'a queue'} is at {load:.0%} of "
            f"its limits; retry after {retry_after_s:g}s"
        )
        self.sla, self.retry_after_s, self.queue, self.load = sla, retry_after_s, queue, load


@dataclass(frozen=True)
class ShedState:
    shedding: frozenset[SlaClass]
    load: float
    queue: str

    def refuses(self, sla: SlaClass) -> bool:
        return sla in self.shedding


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def load_of(
    readings: Mapping[str, QueueReading], config: AdmissionConfig, now: float
) -> tuple[float, str]:
    """The fullest queue's share of its limits, depth or age, whichever is higher, and its name.

    A queue the reading does not cover is not counted; an oldest message of unknown age
    (RabbitMQ) adds nothing, and a date in the future (another host's clock) counts as now.
    """
    worst, worst_queue = 0.0, ""
    for queue, reading in readings.items():
        limits = config.limits_for(queue)
        age = 0.0 if reading.oldest_sent_at is None else max(0.0, now - reading.oldest_sent_at)
        load = max(reading.depth / limits.max_depth, age / limits.max_age_s)
        if load > worst:
            worst, worst_queue = load, queue
    return worst, worst_queue


class Shedding:
    """The scripts' calls and their answers; `ShedGate` and `AsyncShedGate` run them."""

    def __init__(self, config: AdmissionConfig, queues: tuple[str, ...] = ALL_WORK_QUEUES) -> None:
        self.config, self.queues = config, queues
        self._cached: tuple[float, ShedState] | None = None

    def read_call(self) -> tuple[list[str], list[Any]]:
        return [keys.SHEDDING], [time.time(), self.config.check_interval_s]

    def apply_call(self, readings: Mapping[str, QueueReading]) -> tuple[list[str], list[Any]]:
        config, now = self.config, time.time()
        load, queue = load_of(readings, config, now)
        args: list[Any] = [
            now,
            config.resume_ratio,
            *(config.shed_at[sla] for sla in _ORDER),
            repr(load),
            queue,
        ]
        return [keys.SHEDDING, keys.COUNTERS], args

    @staticmethod
    def due(reply: list[Any]) -> bool:
        """Whether `SHED_READ` told this caller to measure."""
        return _text(reply[5]) == "1"

    @staticmethod
    def state_of(reply: list[Any]) -> ShedState:
        flags = [_text(v) for v in reply[:3]]
        shedding = frozenset(sla for sla, flag in zip(_ORDER, flags, strict=True) if flag == "1")
        return ShedState(shedding, float(_text(reply[3]) or 0), _text(reply[4]))

    def cached(self) -> ShedState | None:
        if self._cached is not None and time.monotonic() < self._cached[0]:
            return self._cached[1]
        return None

    def keep(self, state: ShedState) -> ShedState:
        self._cached = (time.monotonic() + self.config.check_interval_s, state)
        return state

    def refusal(self, state: ShedState, sla: SlaClass) -> Overloaded | None:
        if not state.refuses(sla):
            return None
        return Overloaded(sla, self.config.retry_after_s, state.queue, state.load)


def _unmeasured(exc: DepthUnavailable) -> None:
    log.warning("shedding: cannot read the queues, the previous flags stand: %s", exc)


class ShedGate:
    """The SDK's gate: `check(sla)` raises `Overloaded` while that class is shed."""

    def __init__(self, client: redis.Redis, config: AdmissionConfig, depths: QueueDepths) -> None:
        self.client, self.depths, self.shedding = client, depths, Shedding(config)
        self._read = client.register_script(SHED_READ)
        self._apply = client.register_script(SHED_APPLY)

    def state(self) -> ShedState:
        state = self.shedding.cached()
        if state is None:
            reply = self._read(*self.shedding.read_call())
            if self.shedding.due(reply):
                try:
                    readings = self.depths.read(self.shedding.queues)
                    reply = self._apply(*self.shedding.apply_call(readings))
                except DepthUnavailable as exc:
                    _unmeasured(exc)
            state = self.shedding.keep(self.shedding.state_of(reply))
        return state

    def check(self, sla: SlaClass) -> None:
        refusal = self.shedding.refusal(self.state(), sla)
        if refusal is not None:
            self.client.hincrby(keys.COUNTERS, f"shed_{sla}", 1)
            raise refusal


class AsyncShedGate:
    """The API's gate, on its event loop; the depth read (blocking clients) runs in a thread."""

    def __init__(
        self, client: aioredis.Redis, config: AdmissionConfig, depths: QueueDepths
    ) -> None:
        self.client, self.depths, self.shedding = client, depths, Shedding(config)
        self._read = client.register_script(SHED_READ)
        self._apply = client.register_script(SHED_APPLY)

    async def state(self) -> ShedState:
        state = self.shedding.cached()
        if state is None:
            reply = await self._read(*self.shedding.read_call())
            if self.shedding.due(reply):
                try:
                    readings = await asyncio.to_thread(self.depths.read, self.shedding.queues)
                    reply = await self._apply(*self.shedding.apply_call(readings))
                except DepthUnavailable as exc:
                    _unmeasured(exc)
            state = self.shedding.keep(self.shedding.state_of(reply))
        return state

    async def check(self, sla: SlaClass) -> None:
        refusal = self.shedding.refusal(await self.state(), sla)
        if refusal is not None:
            await self.client.hincrby(keys.COUNTERS, f"shed_{sla}", 1)
            raise refusal


__all__ = [
    "SHED_APPLY",
    "SHED_READ",
    "AsyncShedGate",
    "Overloaded",
    "ShedGate",
    "ShedState",
    "Shedding",
    "load_of",
]
