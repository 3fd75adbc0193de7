"""SLA classes as priorities on a busy queue: weighted turns between a queue's class lists.

Every work queue is one Redis list per SLA class (`queues.class_list`, kombu's priority sub-list
names). The rule, stated once: **weighted, never strict**. When a pool has `n` free slots, the
slots are dealt out by smooth weighted round robin (nginx's algorithm: each turn every class gains
its weight, the class with the most credit takes the slot and pays the sum of the weights), so
with every class queued critical, standard and batch hops are admitted 8 : 3 : 1 (the default
`admission.class_weights`) in an even interleave, whatever `n` is, even one slot at a time. A
class with nothing queued gives its turns to the others, most urgent first, and its credit moves
as if it had taken them, so it neither hoards turns while idle nor bursts when work arrives. A
batch hop therefore waits at most about `sum(weights) / weight(batch)` (12) admissions behind a
flood of critical work: overtaken, never starved.

On RabbitMQ every class is a queue of its own (same names, `broker/amqp.py`), and the feeder deals
among the messages the three consumers delivered by the same turns (`WeightedTurns.take`).

Celery's own consumer (the intake queue beside its feeder, and tier pools with `feeder_batch: 0`
or `tier_dispatch: blocking`) reads the same lists strictly in priority order, as kombu's Redis
transport does with its priority steps; on RabbitMQ it consumes the three class queues side by
side, in the order the server delivers (no priority between them; consumer priorities,
`x-priority`, rank the consumers of one queue, not one consumer's queues, so they cannot help).
"""

from __future__ import annotations

from collections.abc import Mapping

import redis

from parjanya.queues import SLA_CLASSES, SlaClass, class_lists


class WeightedTurns:
    """Deals slots among the classes by smooth weighted round robin (state: each class's credit)."""

    def __init__(self, weights: Mapping[SlaClass, int]) -> None:
        self.weights = {sla: weights[sla] for sla in SLA_CLASSES}
        self.total = sum(self.weights.values())
        self.credit = dict.fromkeys(SLA_CLASSES, 0)

    def deal(self, slots: int) -> dict[SlaClass, int]:
        """How many of `slots` each class gets this time."""
        dealt = dict.fromkeys(SLA_CLASSES, 0)
        for _ in range(slots):
            for sla in SLA_CLASSES:
                self.credit[sla] += self.weights[sla]
            best = max(SLA_CLASSES, key=lambda sla: self.credit[sla])  # ties: the most urgent
            self.credit[best] -= self.total
            dealt[best] += 1
        return dealt

    def take(self, room: int, available: Mapping[SlaClass, int]) -> dict[SlaClass, int]:
        """How many of `room` to take from each class, of the `available` ones: each class's
        dealt share, then the slots a class left unused to the others, most urgent first.

        The rule `POP` applies to Redis lists, for messages already delivered (RabbitMQ's
        class queues, `worker/amqp_feeder.py`). Credit moves as `deal` moves it, whatever was
        available, so an idle class neither hoards turns nor bursts when work arrives.
        """
        dealt = self.deal(room)
        taken = {sla: min(dealt[sla], available.get(sla, 0)) for sla in SLA_CLASSES}
        left = room - sum(taken.values())
        for sla in SLA_CLASSES:
            if left <= 0:
                break
            more = min(left, available.get(sla, 0) - taken[sla])
            taken[sla] += more
            left -= more
        return taken


#: Pop each class's dealt share, then fill what is left of `room` from the lists that did not run
#: short, most urgent first: one round trip, whatever the lists hold.
#: KEYS: the class lists, most urgent first. ARGV: each list's dealt share, then room.
POP = """
local out, short = {}, {}
for i = 1, #KEYS do
  local n = tonumber(ARGV[i])
  if n > 0 then
    local got = redis.call('RPOP', KEYS[i], n)
    if not got or #got < n then short[i] = true end
    if got then for _, raw in ipairs(got) do out[#out + 1] = raw end end
  end
end
local left = tonumber(ARGV[#KEYS + 1]) - #out
for i = 1, #KEYS do
  if left <= 0 then break end
  if not short[i] then
    local got = redis.call('RPOP', KEYS[i], left)
    if got then
      for _, raw in ipairs(got) do out[#out + 1] = raw end
      left = left - #got
    end
  end
end
return out
"""


class WeightedPop:
    """Pops up to `room` messages from one queue's class lists, by weight, oldest first in each.

    One script (`POP`) pops each class's dealt share (RPOP with a count) and gives the slots a
    class left unused (its list ran short) to the others, most urgent first. An idle queue is
    waited on with one BRPOP over the lists in priority order.
    """

    def __init__(self, broker: redis.Redis, queue: str, weights: Mapping[SlaClass, int]) -> None:
        self.broker, self.queue = broker, queue
        self.lists = list(class_lists(queue))
        self.turns = WeightedTurns(weights)
        self._pop = broker.register_script(POP)

    def pop(self, room: int, *, idle_block_s: int = 1) -> list[bytes]:
        dealt = self.turns.deal(room)
        raws: list[bytes] = self._pop(self.lists, [*(dealt[sla] for sla in SLA_CLASSES), room])
        if raws:
            return raws
        # Idle: block for the next message of any class (BRPOP takes the first non-empty list).
        got = self.broker.brpop(self.lists, timeout=idle_block_s)
        return [got[1]] if got else []  # type: ignore[list-item]


def queue_depth(client: redis.Redis, queue: str) -> int:
    """Messages waiting on `queue`, every class together (as kombu's `_size` counts them)."""
    with client.pipeline(transaction=False) as pipe:
        for name in class_lists(queue):
            pipe.llen(name)
        return sum(int(n) for n in pipe.execute())
