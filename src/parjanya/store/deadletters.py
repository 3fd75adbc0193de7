"""Reading and clearing the durable dead-letter store (replay lives with the publisher).

Each dead letter is written once, atomically with the task's move to `dead_lettered`: an entry
(`parjanya:dlq:entry:<id>`), its place in a time index, and a copy on the Redis list named like the
stage's dead-letter queue (`parjanya.dlq.<stage>`), so queue-length tools (Flower, KEDA, LLEN) see it.
"""

from __future__ import annotations

import redis

from parjanya import keys
from parjanya.queues import ALL_DEAD_LETTER_QUEUES
from parjanya.schema import DeadLetter


class DeadLetterStore:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def list(self, *, limit: int = 100, queue: str | None = None) -> list[DeadLetter]:
        ids = self.redis.zrevrange(keys.DEAD_LETTER_INDEX, 0, -1 if queue else limit - 1)
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
        return int(self.redis.zcard(keys.DEAD_LETTER_INDEX))

    def queue_lengths(self) -> dict[str, int]:
        return {queue: int(self.redis.llen(queue)) for queue in ALL_DEAD_LETTER_QUEUES}

    def purge(self) -> int:
        """Forget every dead letter. Tasks behind them stay readable (status dead_lettered)."""
        ids = [
            i.decode() if isinstance(i, bytes) else str(i)
            for i in self.redis.zrange(keys.DEAD_LETTER_INDEX, 0, -1)
        ]
        with self.redis.pipeline() as pipe:
            for dead_letter_id in ids:
                pipe.delete(keys.dead_letter(dead_letter_id))
                pipe.hdel(keys.task(dead_letter_id), "dlq_entry", "dlq_list")
            pipe.delete(keys.DEAD_LETTER_INDEX, *ALL_DEAD_LETTER_QUEUES)
            pipe.execute()
        return len(ids)
