"""What callbacks are owed, in the store: per store shard, a sorted set of task ids scored by when
each is due.

The store's terminal writes add a task with a callback to its shard's `keys.webhook_outbox`
(store/scripts.py). A sender looks at every shard's earliest due ids in one pipeline, then takes
the `limit` earliest with CLAIM, one call per shard in a second pipeline; CLAIM also moves each one
`lease_s` into the future: two senders never take the same delivery, and one that dies holding it
hands it to the next after the lease. Every outcome is then one atomic step in the task's shard:
`retry_at` moves it to its backoff time, `finish` removes it and records how it ended (delivered,
failed, refused) in `keys.webhook(id)` and in the shard's capped `keys.webhook_log`, newest first.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Literal

from redis import asyncio as aioredis
from redis.typing import EncodableT, FieldT

from parjanya import keys
from parjanya.store.batch import run_batch_async
from parjanya.store.shards import per_shard_async

__all__ = ["Outbox", "Record"]

Outcome = Literal["delivered", "failed", "refused", "expired"]
LOG_LENGTH = 1000
RECORD_TTL_S = 7 * 24 * 3600

# KEYS: outbox. ARGV: now, lease (s), limit. Returns the ids taken.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
end
return due
"""


@dataclass(frozen=True)
class Record:
    """How one task's callback went: the last attempt, and the end once there is one."""

    task_id: str
    url: str
    attempts: int
    state: Literal["pending", "delivered", "failed", "refused", "expired"]
    status_code: int | None = None
    error: str | None = None
    at: float = 0.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Outbox:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._claim = client.register_script(_CLAIM)

    async def claim(self, *, lease_s: float, limit: int) -> list[str]:
        """Take up to `limit` due deliveries, the earliest due over every shard."""
        now = time.time()
        due = await per_shard_async(
            self.redis,
            lambda pipe, shard: pipe.zrangebyscore(
                keys.webhook_outbox(shard), "-inf", now, start=0, num=limit, withscores=True
            ),
        )
        earliest = heapq.nsmallest(
            limit,
            ((shard, score) for shard, ids in enumerate(due) for _, score in ids),
            key=lambda pair: pair[1],
        )
        wanted = Counter(shard for shard, _ in earliest)
        if not wanted:
            return []
        calls = [([keys.webhook_outbox(s)], [now, lease_s, n]) for s, n in wanted.items()]
        taken = await run_batch_async(self.redis, self._claim, calls)
        return [_text(task_id) for task_id in itertools.chain.from_iterable(taken)]

    async def retry_at(self, record: Record, due: float) -> None:
        outbox = keys.webhook_outbox(keys.shard_of(record.task_id))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.webhook(record.task_id), mapping=_fields(record))
            pipe.expire(keys.webhook(record.task_id), RECORD_TTL_S)
            pipe.zadd(outbox, {record.task_id: due})
            await pipe.execute()

    async def finish(self, record: Record) -> None:
        shard = keys.shard_of(record.task_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.webhook_outbox(shard), record.task_id)
            pipe.hset(keys.webhook(record.task_id), mapping=_fields(record))
            pipe.expire(keys.webhook(record.task_id), RECORD_TTL_S)
            pipe.lpush(keys.webhook_log(shard), json.dumps(asdict(record)))
            pipe.ltrim(keys.webhook_log(shard), 0, LOG_LENGTH - 1)
            await pipe.execute()

    async def owed(self) -> int:
        """How many callbacks are owed (due now or later), over every shard."""
        counts = await per_shard_async(
            self.redis, lambda pipe, shard: pipe.zcard(keys.webhook_outbox(shard))
        )
        return sum(int(n) for n in counts)

    async def record(self, task_id: str) -> Record | None:
        raw = await self.redis.hgetall(keys.webhook(task_id))
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return Record(
            task_id=task_id,
            url=fields.get("url", ""),
            attempts=int(fields.get("attempts", 0)),
            state=fields.get("state", "pending"),  # type: ignore[arg-type]
            status_code=int(fields["status_code"]) if fields.get("status_code") else None,
            error=fields.get("error") or None,
            at=float(fields.get("at", 0)),
        )

    async def log(self, limit: int = 100) -> list[Record]:
        """The last `limit` finished deliveries over every shard, newest first."""
        logs = await per_shard_async(
            self.redis, lambda pipe, shard: pipe.lrange(keys.webhook_log(shard), 0, limit - 1)
        )
        records = (Record(**json.loads(raw)) for raw in itertools.chain.from_iterable(logs))
        return heapq.nlargest(limit, records, key=lambda record: record.at)


def _fields(record: Record) -> dict[FieldT, EncodableT]:
    return {
        "url": record.url,
        "attempts": record.attempts,
        "state": record.state,
        "status_code": "" if record.status_code is None else record.status_code,
        "error": record.error or "",
        "at": record.at,
    }
