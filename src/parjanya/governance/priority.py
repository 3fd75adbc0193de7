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

Celery's own consumer (the intake queue beside its feeder, and tier pools with `feeder_batch: 0`
or `tier_dispatch: blocking`) reads the same lists strictly in priority order, as kombu's Redis
transport does with its priority steps.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis

from parjanya.queues import SLA_CLASSES, SlaClass, class_list, class_lists


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


class WeightedPop:
    """Pops up to `room` messages from one queue's class lists, by weight, oldest first in each.

    One pipelined round trip pops each class's dealt share (RPOP with a count); slots a class left
    unused (its list ran short) go to the others in a second round trip, most urgent first. An
    idle queue is waited on with one BRPOP over the lists in priority order.
    """

    def __init__(self, broker: redis.Redis, queue: str, weights: Mapping[SlaClass, int]) -> None:
        self.broker, self.queue = broker, queue
        self.lists = {sla: class_list(queue, sla) for sla in SLA_CLASSES}
        self.turns = WeightedTurns(weights)

    def pop(self, room: int, *, idle_block_s: int = 1) -> list[bytes]:
        dealt = self.turns.deal(room)
        popped = self._pop_counts({sla: n for sla, n in dealt.items() if n > 0})
        raws = [raw for sla in SLA_CLASSES for raw in popped.get(sla, [])]
        short = {sla for sla, n in dealt.items() if n > 0 and len(popped.get(sla, [])) < n}
        left = room - len(raws)
        if left > 0 and len(short) < len(SLA_CLASSES):
            for sla in SLA_CLASSES:  # the leftover, most urgent first, to classes not known empty
                if sla in short or left <= 0:
                    continue
                more = self._pop_counts({sla: left}).get(sla, [])
                raws += more
                left -= len(more)
        if raws:
            return raws
        # Idle: block for the next message of any class (BRPOP takes the first non-empty list).
        got = self.broker.brpop(list(class_lists(self.queue)), timeout=idle_block_s)
        return [got[1]] if got else []  # type: ignore[list-item]

    def _pop_counts(self, counts: Mapping[SlaClass, int]) -> dict[SlaClass, list[bytes]]:
        if not counts:
            return {}
        with self.broker.pipeline(transaction=False) as pipe:
            for sla, count in counts.items():
                pipe.rpop(self.lists[sla], count)
            replies = pipe.execute()
        return {sla: list(reply or []) for sla, reply in zip(counts, replies, strict=True)}


def queue_depth(client: redis.Redis, queue: str) -> int:
    """Messages waiting on `queue`, every class together (as kombu's `_size` counts them)."""
    with client.pipeline(transaction=False) as pipe:
        for name in class_lists(queue):
            pipe.llen(name)
        return sum(int(n) for n in pipe.execute())
