"""Reading and clearing the durable dead-letter store (replay lives with the publisher).

Each dead letter is written once, atomically with the task's move to `dead_lettered`: an entry
(`keys.dead_letter(id)`), its place in its shard's time index (`keys.dead_letter_index`), and, on a
plain Redis, a copy on the Redis list named like the stage's dead-letter queue
(`parjanya.dlq.<stage>`), so queue-length tools (Flower, KEDA, LLEN) see it. Listing merges the
shards' indexes, newest first.
"""

from __future__ import annotations

import heapq
import itertools

import redis

from parjanya import keys
from parjanya.queues import ALL_DEAD_LETTER_QUEUES
from parjanya.schema import DeadLetter
from parjanya.store.shards import per_shard


class DeadLetterStore:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def _newest(self, limit: int | None) -> list[bytes | str]:
        """Dead-letter ids over every shard, newest first (all of them when `limit` is None)."""
        end = -1 if limit is None else limit - 1
        indexes = per_shard(
            self.redis,
            lambda pipe, shard: pipe.zrevrange(
                keys.dead_letter_index(shard), 0, end, withscores=True
            ),
        )
        merged = itertools.chain.from_iterable(indexes)
        if limit is None:
            return [i for i, _ in sorted(merged, key=lambda pair: -pair[1])]
        return [i for i, _ in heapq.nlargest(limit, merged, key=lambda pair: pair[1])]

    def list(self, *, limit: int = 100, queue: str | None = None) -> list[DeadLetter]:
        ids = self._newest(None if queue else limit)
        entries: list[DeadLetter] = []
        for raw_id in ids:
            entry = self.get(raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id))
            if entry is not None and (queue is None or entry.queue == queue):
                entries.append(entry)
            if len(entries) >= limit:
                break
        return entries

    def get(self, dead_letter_id: str) -> DeadLetter | None:
        raw = self.redis.get(keys.dead_letter(dead_letter_id))
        return None if raw is None else DeadLetter.model_validate_json(raw)

    def count(self) -> int:
        counts = per_shard(
            self.redis, lambda pipe, shard: pipe.zcard(keys.dead_letter_index(shard))
        )
        return sum(int(n) for n in counts)

    def queue_lengths(self) -> dict[str, int]:
        """The dead-letter lists' lengths (all 0 on a Redis Cluster, which keeps no such copy)."""
        return {queue: int(self.redis.llen(queue)) for queue in ALL_DEAD_LETTER_QUEUES}

    def purge(self) -> int:
        """Forget every dead letter. Tasks behind them stay readable (status dead_lettered).

        One pipeline, not one transaction: its keys span every shard's hash slot."""
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in self._newest(None)]
        with self.redis.pipeline(transaction=False) as pipe:
            for dead_letter_id in ids:
                pipe.delete(keys.dead_letter(dead_letter_id))
                pipe.hdel(keys.task(dead_letter_id), "dlq_entry", "dlq_list")
            for shard in keys.all_shards():
                pipe.delete(keys.dead_letter_index(shard))
            for queue in ALL_DEAD_LETTER_QUEUES:
                pipe.delete(queue)
            pipe.execute()
        return len(ids)
