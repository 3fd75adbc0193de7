"""Backpressure: past a queue's limits, new work is refused by class (batch first, critical last).

Every work queue has limits on its depth (all its class lists together) and on the age of its
oldest message (`admission.limits`, `admission.queue_limits`). The **load** is the fullest queue's
share of its limits, depth or age, whichever is higher. Class `c` is shed (its new submissions
refused with `Overloaded`, HTTP 503 with Retry-After) once the load reaches `shed_at[c]` (batch
0.6, standard 0.8, critical 1.0 by default), and admitted again only once it falls below
`shed_at[c] * resume_ratio`: hysteresis, so a queue hovering at a limit does not flap.

The state lives in one Redis hash (`keys.SHEDDING`), shared by every producer (SDK processes, API
processes): one script measures the queues (LLEN of each class list, and the oldest message's
`parjanya_sent_at` header, `broker/envelope.py`), applies the hysteresis to the previous flags and
writes the new ones, at most once per `check_interval_s` whoever calls; in between it only reads.
A producer also keeps the answer for `check_interval_s`, so a submission costs no extra round
trip most of the time. Starts, stops and refusals are counted (`shed_started_<class>`,
`shed_stopped_<class>`, `shed_<class>` in `keys.COUNTERS`).

The load is the whole pipeline's (any work queue), because a producer does not know which tier a
task will be classified to: a saturated tier backs pressure up to every new submission of a class.

The script reads the queues' class lists beside its own hash and `keys.COUNTERS` (none of them a
store shard's key): those lists are the broker's, in no one hash slot, so shedding runs on a plain
Redis and not on a Redis Cluster store (README, Capacity).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from parjanya import keys
from parjanya.broker.envelope import SENT_AT_HEADER
from parjanya.config import AdmissionConfig
from parjanya.queues import ALL_WORK_QUEUES, SlaClass, class_lists

# KEYS: shedding hash, counters, then each queue's class lists (critical, standard, batch)
# ARGV: now, check interval, resume ratio, number of queues, shed_at of batch, standard,
#       critical, then each queue's max depth and max age
SHED = (
    """
local classes = {'batch', 'standard', 'critical'}
local st = redis.call('HMGET', KEYS[1], 'at', 'batch', 'standard', 'critical', 'load', 'queue')
local now = tonumber(ARGV[1])
if st[1] and now - tonumber(st[1]) < tonumber(ARGV[2]) and now >= tonumber(st[1]) then
  return {st[2] or '0', st[3] or '0', st[4] or '0', st[5] or '0', st[6] or ''}
end
local worst, worst_queue = 0, ''
for i = 0, tonumber(ARGV[4]) - 1 do
  local depth, oldest = 0, now
  for j = 1, 3 do
    local list = KEYS[3 + i * 3 + j - 1]
    depth = depth + redis.call('LLEN', list)
    local tail = redis.call('LINDEX', list, -1)
    if tail and string.len(tail) < 65536 then
      local ok, envelope = pcall(cjson.decode, tail)
      if ok and type(envelope) == 'table' and type(envelope['headers']) == 'table' then
        local sent = tonumber(envelope['headers']['"""
    + SENT_AT_HEADER
    + """'])
        if sent and sent < oldest then oldest = sent end
      end
    end
  end
  local load = math.max(depth / tonumber(ARGV[8 + i * 2]), (now - oldest) / tonumber(ARGV[9 + i * 2]))
  if load > worst then worst, worst_queue = load, KEYS[3 + i * 3] end
end
local flags = {}
for k = 1, 3 do
  local was = st[k + 1] == '1'
  local at = tonumber(ARGV[4 + k])
  local on = was
  if not was and worst >= at then
    on = true
    redis.call('HINCRBY', KEYS[2], 'shed_started_' .. classes[k], 1)
  elseif was and worst < at * tonumber(ARGV[3]) then
    on = false
    redis.call('HINCRBY', KEYS[2], 'shed_stopped_' .. classes[k], 1)
  end
  flags[k] = on and '1' or '0'
end
local load = string.format('%.4f', worst)
redis.call('HSET', KEYS[1], 'at', ARGV[1], 'batch', flags[1], 'standard', flags[2],
  'critical', flags[3], 'load', load, 'queue', worst_queue)
return {flags[1], flags[2], flags[3], load, worst_queue}
"""
)

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


class Shedding:
    """The script's call and its answer; `ShedGate` and `AsyncShedGate` run it."""

    def __init__(self, config: AdmissionConfig, queues: tuple[str, ...] = ALL_WORK_QUEUES) -> None:
        self.config, self.queues = config, queues
        self._keys = [keys.SHEDDING, keys.COUNTERS] + [
            name for queue in queues for name in class_lists(queue)
        ]
        self._limits: list[float] = []
        for queue in queues:
            limits = config.limits_for(queue)
            self._limits += [limits.max_depth, limits.max_age_s]
        self._cached: tuple[float, ShedState] | None = None

    def call(self) -> tuple[list[str], list[Any]]:
        config = self.config
        args: list[Any] = [
            time.time(),
            config.check_interval_s,
            config.resume_ratio,
            len(self.queues),
            *(config.shed_at[sla] for sla in _ORDER),
            *self._limits,
        ]
        return self._keys, args

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


class ShedGate:
    """The SDK's gate: `check(sla)` raises `Overloaded` while that class is shed."""

    def __init__(self, client: redis.Redis, config: AdmissionConfig) -> None:
        self.client, self.shedding = client, Shedding(config)
        self._script = client.register_script(SHED)

    def state(self) -> ShedState:
        state = self.shedding.cached()
        if state is None:
            call_keys, call_args = self.shedding.call()
            state = self.shedding.keep(self.shedding.state_of(self._script(call_keys, call_args)))
        return state

    def check(self, sla: SlaClass) -> None:
        refusal = self.shedding.refusal(self.state(), sla)
        if refusal is not None:
            self.client.hincrby(keys.COUNTERS, f"shed_{sla}", 1)
            raise refusal


class AsyncShedGate:
    """The API's gate, on its event loop."""

    def __init__(self, client: aioredis.Redis, config: AdmissionConfig) -> None:
        self.client, self.shedding = client, Shedding(config)
        self._script = client.register_script(SHED)

    async def state(self) -> ShedState:
        state = self.shedding.cached()
        if state is None:
            call_keys, call_args = self.shedding.call()
            reply = await self._script(call_keys, call_args)
            state = self.shedding.keep(self.shedding.state_of(reply))
        return state

    async def check(self, sla: SlaClass) -> None:
        refusal = self.shedding.refusal(await self.state(), sla)
        if refusal is not None:
            await self.client.hincrby(keys.COUNTERS, f"shed_{sla}", 1)
            raise refusal


__all__ = ["SHED", "AsyncShedGate", "Overloaded", "ShedGate", "ShedState", "Shedding"]
